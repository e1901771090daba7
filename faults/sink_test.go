package faults

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/kafka"
	"github.com/walrelay/walrelay/sink/webhook"
)

// inProcess runs a stream and cdc.Run in this process, into sk.
type inProcess struct {
	s    *cdc.Stream
	done chan error
	stop context.CancelFunc
}

func runInProcess(t *testing.T, e *env, sk sink.Sink) *inProcess {
	t.Helper()
	s, err := cdc.Open(t.Context(), cdc.Config{
		ConnString: e.url, Slot: e.slot, Publication: e.pub,
		StatusInterval: 50 * time.Millisecond, HeartbeatInterval: -1, Backoff: quickBackoff,
		Truncate: cdc.TruncateEmit, // the audit counts truncates
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{s: s, done: make(chan error, 1), stop: cancel}
	go func() { p.done <- cdc.Run(ctx, s, sk, cdc.RunOptions{BatchSize: 100, Backoff: quickBackoff}) }()
	t.Cleanup(func() { p.close(t) })
	return p
}

func (p *inProcess) alive() error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	default:
		return nil
	}
}

func (p *inProcess) close(t *testing.T) {
	p.stop()
	if err := <-p.done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v", err)
	}
	p.done <- context.Canceled
	p.s.Close()
}

// outage waits, down, until the sink has been failing for d while the
// workload runs, and checks that nothing reached the receiver meanwhile.
func outage(t *testing.T, what string, rec *memSource, d time.Duration) {
	t.Helper()
	before := rec.size()
	time.Sleep(d)
	if after := rec.size(); after != before {
		t.Errorf("%s: %d messages acknowledged while the sink was down", what, after-before)
	}
}

// F5 (webhook): the endpoint answers 503, hangs past the timeout, and drops
// connections, each for a while, then comes back.
func TestF5WebhookOutage(t *testing.T) {
	cycles := pick(1, 5)
	sd := seed(t)
	e := newEnv(t, []string{"items"})
	ds := &deliveries{}
	rec := &memSource{}
	ds.add(rec)
	var mode atomic.Int32 // 0 up, 1 503, 2 hang, 3 drop the connection
	// A request answered while up holds up for reading until it has
	// recorded its messages: taking up for writing after a mode change
	// waits for the requests that still saw the endpoint up.
	var up sync.RWMutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up.RLock()
		m := mode.Load()
		if m != 0 {
			up.RUnlock()
		} else {
			defer up.RUnlock()
		}
		switch m {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		case 2:
			select { // past the client's timeout
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return
		case 3:
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var batch struct {
			Data []json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &batch); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		lines := make([][]byte, len(batch.Data))
		for i, m := range batch.Data {
			lines[i] = m
		}
		rec.add(lines...)
	}))
	defer func() { srv.CloseClientConnections(); srv.Close() }()
	mon := startMonitor(t, e, ds)
	sk, err := webhook.New(webhook.Config{
		URL: srv.URL, Batch: true, MaxBatchSize: 100, Timeout: 300 * time.Millisecond, MaxAttempts: 2,
		Backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(20 * time.Millisecond) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close(context.Background())
	p := runInProcess(t, e, sk)
	w := newWorkload(e)
	w.maxRows, w.pause = 5, 5*time.Millisecond
	wr := w.background(sd, 2, 0)
	for range cycles {
		for _, m := range []int32{1, 2, 3} {
			time.Sleep(300 * time.Millisecond)
			mode.Store(m)
			up.Lock() // requests in flight finish
			//lint:ignore SA2001 waits for the requests in flight
			up.Unlock()
			outage(t, []string{"", "503", "hang", "drop"}[m], rec, 500*time.Millisecond)
			mode.Store(0)
		}
	}
	if err := wr.stop(); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, e, ds, time.Minute, p.alive)
	p.close(t)
	compare(t, e, ds, mon, result{Fault: "F5", Name: "webhook 503/hang/drop outages", Runs: 3 * cycles}, compareOpts{commitOrder: true})
}

// F5 (Kafka): the broker is stopped for a while and started again on the
// same port and data directory.
func TestF5KafkaOutage(t *testing.T) {
	cycles := pick(2, 6)
	sd := seed(t)
	e := newEnv(t, []string{"items"})
	ds := &deliveries{}
	rec := &memSource{}
	ds.add(rec)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	topic := "sequin.public.items"
	start := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir), kfake.SeedTopics(3, topic))
		if err != nil {
			t.Fatalf("kfake: %v", err)
		}
		return c
	}
	cl := start()
	defer func() { cl.Close() }()
	brokers := cl.ListenAddrs()
	ks, err := kafka.New(kafka.Config{Brokers: brokers, MaxAttempts: 2, WriteTimeout: time.Second, DialTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close(context.Background())
	// What the Kafka sink acknowledged, in order, for the slot monitor. A
	// Write holds writing for reading until it has recorded what it wrote:
	// taking it for writing after the broker stopped waits for a Write that
	// may have been answered before.
	var writing sync.RWMutex
	sk := sink.Func(func(ctx context.Context, msgs ...message.Message) error {
		writing.RLock()
		defer writing.RUnlock()
		if err := ks.Write(ctx, msgs...); err != nil {
			return err
		}
		lines := make([][]byte, len(msgs))
		for i, m := range msgs {
			b, err := m.MarshalJSON()
			if err != nil {
				return err
			}
			lines[i] = b
		}
		rec.add(lines...)
		return nil
	})
	mon := startMonitor(t, e, ds)
	p := runInProcess(t, e, sk)
	w := newWorkload(e)
	w.maxRows, w.pause = 5, 5*time.Millisecond
	wr := w.background(sd, 2, 0)
	for range cycles {
		time.Sleep(400 * time.Millisecond)
		cl.Close()
		writing.Lock() // a Write in flight ends
		//lint:ignore SA2001 waits for a Write in flight
		writing.Unlock()
		outage(t, "kafka stopped", rec, 700*time.Millisecond)
		cl = start()
	}
	time.Sleep(300 * time.Millisecond)
	if err := wr.stop(); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, e, ds, time.Minute, p.alive)
	p.close(t)
	r := compare(t, e, ds, mon, result{Fault: "F5", Name: "kafka broker stopped", Runs: cycles}, compareOpts{commitOrder: true})

	// Everything the sink acknowledged is in Kafka.
	acked, err := rec.read()
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string]bool)
	for _, d := range acked {
		want[d.key] = true
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(30*time.Second))
	defer cancel()
	got := make(map[string]bool)
	for len(got) < len(want) && ctx.Err() == nil {
		fs := client.PollFetches(ctx)
		for _, rec := range fs.Records() {
			d, err := parseDelivery(rec.Value)
			if err != nil {
				t.Fatal(err)
			}
			got[d.key] = true
		}
	}
	missing := 0
	for k := range want {
		if !got[k] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged changes are not in Kafka", missing, len(want))
	}
	t.Logf("F5 kafka: %d distinct changes read back from Kafka (%d committed)", len(got), r.Changes)
}
