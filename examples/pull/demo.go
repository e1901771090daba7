package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/walrelay/walrelay/idempotency"
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
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "serving the pull API at %s (user %s, password %s)\n\n", base, username, cfg.Password)

	// Page through the topic by offset, two records at a time, then read
	// it through a consumer group.
	paths := []string{
		"/fetch?topic=" + topic + "&partition=0&offset=0&limit=2",
		"/fetch?topic=" + topic + "&partition=0&offset=2&limit=2",
		"/fetch?topic=" + topic + "&partition=0&offset=4&limit=2",
		"/consume/demo-group/instance-1/" + topic + "?timeout=5000&limit=10",
	}
	client := &http.Client{Timeout: 30 * time.Second}
	for _, path := range paths {
		fmt.Fprintf(out, "$ curl -u %s:%s '%s%s'\n", username, cfg.Password, base, path)
		body, err := get(ctx, client, base+path, cfg.Password)
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

func get(ctx context.Context, client *http.Client, url, password string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(username, password)
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
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, nil
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
		msgs = append(msgs, message.Message{
			Record: map[string]any{"id": int64(i + 1), "status": "placed"},
			Action: message.ActionInsert,
			Metadata: message.Metadata{
				TableSchema: "public", TableName: "orders",
				IdempotencyKey:  idempotency.ChangeKey(lsn, 0),
				CommitTimestamp: ts.Add(time.Duration(i) * time.Second),
				CommitLSN:       lsn,
				PrimaryKey:      []string{"id"},
				Columns:         []string{"id", "status"},
			},
		})
	}
	werr := sk.Write(ctx, msgs...)
	return errors.Join(werr, sk.Close(ctx))
}
