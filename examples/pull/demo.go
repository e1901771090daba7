package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/pull"
	"github.com/walrelay/walrelay/sink/kafka"
)

const (
	topic    = "sequin.public.orders"
	username = "reader"
)

type demoConfig struct {
	Brokers  []string
	Addr     string
	Serve    bool
	Password string
}

func demo(ctx context.Context, cfg demoConfig, out io.Writer) error {
	if len(cfg.Brokers) == 0 {
		kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
		if err != nil {
			return fmt.Errorf("start kfake: %w", err)
		}
		defer kc.Close()
		cfg.Brokers = kc.ListenAddrs()
		fmt.Fprintf(out, "started an in-process Kafka at %v\n", cfg.Brokers)
	}
	if err := produce(ctx, cfg.Brokers); err != nil {
		return err
	}

	h, err := pull.NewHandler(pull.Config{Brokers: cfg.Brokers, Username: username, Password: cfg.Password})
	if err != nil {
		return err
	}
	defer h.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	// Bound every phase of a connection. Fetch and consume calls wait up to
	// pull.Config.MaxTimeout (30 s by default) before answering, so the
	// write timeout leaves room for that.
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      pull.DefaultMaxTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "serving the pull API at %s (user %s, password %s)\n\n", base, username, cfg.Password)

	// The client flow of Upstash's Kafka REST API, which the pull API
	// speaks: list topics, page by offset, then read through a consumer
	// group, commit what was processed, check it, and leave.
	consumer := "/demo-group/instance-1"
	steps := []step{
		{"GET", "/topics", "", nil},
		{"POST", "/fetch", `{"topic":"` + topic + `","partition":0,"offset":0,"limit":2}`, nil},
		{"POST", "/fetch", `{"topic":"` + topic + `","partition":0,"offset":2,"limit":2}`, nil},
		{"POST", "/consume" + consumer, `{"topic":"` + topic + `","timeout":5000}`,
			[]string{"Kafka-Auto-Offset-Reset: earliest", "Kafka-Enable-Auto-Commit: false"}},
		{"POST", "/commit" + consumer, "", nil},
		{"POST", "/committed" + consumer, `{"topic":"` + topic + `","partition":0}`, nil},
		{"POST", "/delete-consumer" + consumer, "", nil},
	}
	client := &http.Client{Timeout: 30 * time.Second}
	for _, st := range steps {
		fmt.Fprintf(out, "$ %s\n", st.curl(base, cfg.Password))
		body, err := st.do(ctx, client, base, cfg.Password)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s\n", body)
	}

	if !cfg.Serve {
		return nil
	}
	fmt.Fprintln(out, "serving until interrupted")
	select {
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	case err := <-serveErr:
		return err
	}
}

// step is one call of the demonstration.
type step struct {
	method, path, body string
	headers            []string // "Name: value"
}

// curl is the command line that makes the call.
func (s step) curl(base, password string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "curl -sS -u %s:%s", username, password)
	if s.method != http.MethodGet && !(s.method == http.MethodPost && s.body != "") {
		fmt.Fprintf(&b, " -X %s", s.method)
	}
	for _, h := range s.headers {
		fmt.Fprintf(&b, " -H '%s'", h)
	}
	if s.body != "" {
		fmt.Fprintf(&b, " -d '%s'", s.body)
	}
	fmt.Fprintf(&b, " %s%s", base, s.path)
	return b.String()
}

func (s step) do(ctx context.Context, client *http.Client, base, password string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, s.method, base+s.path, strings.NewReader(s.body))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(username, password)
	for _, h := range s.headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s", s.method, s.path, resp.Status, body)
	}
	return bytes.TrimSpace(body), nil
}

// produce writes five changes of public.orders with the Kafka sink, as a
// walrelay stream would.
func produce(ctx context.Context, brokers []string) error {
	sk, err := kafka.New(kafka.Config{Brokers: brokers})
	if err != nil {
		return err
	}
	var msgs []message.Message
	ts := time.Date(2024, 10, 28, 21, 37, 1, 127470000, time.UTC)
	for i := range 5 {
		lsn := message.LSN(0x16_B374_D848 + 0x100*uint64(i))
		m := message.Message{
			Record: map[string]any{"id": int64(i + 1), "status": "placed"},
			Action: message.ActionInsert,
			Metadata: message.Metadata{
				TableSchema: "public", TableName: "orders",
				IdempotencyKey:  message.ChangeKey(lsn, 0),
				CommitTimestamp: ts.Add(time.Duration(i) * time.Second),
				CommitLSN:       lsn,
			},
		}
		m.Metadata.SetPrimaryKey("id")
		m.Metadata.SetColumns("id", "status")
		msgs = append(msgs, m)
	}
	werr := sk.Write(ctx, msgs...)
	return errors.Join(werr, sk.Close(ctx))
}
