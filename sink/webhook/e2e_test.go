package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"

	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink/webhook"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestEndToEndRedirectsNeverAcknowledged runs cdc.Run from a real Postgres
// into a webhook sink whose endpoint first answers every request with a
// redirect (301, 302, 303, 307, 308, to another server or another path of
// its own, both of which would answer 200), then accepts. Every change
// must arrive at the configured URL, none anywhere else, and the slot's
// confirmed_flush_lsn — sampled throughout — must never pass a change not
// yet accepted there. Then, with the endpoint failing, cancelling Run
// returns the cancellation and the endpoint's last answer.
func TestEndToEndRedirectsNeverAcknowledged(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	pgtest.Exec(t, dbURL, "create table orders (id int primary key, item text not null)")
	slot := pgtest.Name(t, "slot")
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })

	codes := []int{301, 302, 303, 307, 308}
	var (
		redirecting, failing atomic.Bool
		elsewhere            atomic.Int32 // requests anywhere but the configured URL
		mu                   sync.Mutex
		redirects            = map[int]int{}
		delivered            = map[string]time.Time{} // idempotency key → first accepted
		lsns                 = map[string]message.LSN{}
		bad                  []string // requests at the configured URL that were not signed POSTs
	)
	redirecting.Store(true)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hook" {
			elsewhere.Add(1) // a naive server would take it
			return
		}
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || webhook.Verify(secret, r.Header, body) != nil {
			mu.Lock()
			bad = append(bad, r.Method)
			mu.Unlock()
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if redirecting.Load() {
			mu.Lock()
			n := 0
			for _, c := range redirects {
				n += c
			}
			code := codes[n%len(codes)]
			redirects[code]++
			mu.Unlock()
			loc := other.URL + "/moved"
			if n%2 == 1 {
				loc = "/moved"
			}
			http.Redirect(w, r, loc, code)
			return
		}
		if failing.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		var b struct{ Data []message.Message }
		if err := json.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, m := range b.Data {
			if _, ok := delivered[m.Metadata.IdempotencyKey]; !ok {
				delivered[m.Metadata.IdempotencyKey] = time.Now()
				lsns[m.Metadata.IdempotencyKey] = m.Metadata.CommitLSN
			}
		}
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)

	stream, err := cdc.Open(ctx, cdc.Config{
		ConnString: dbURL, Slot: slot, Publication: slot, CreateSlot: true, CreatePublication: true,
		PublicationTables: []string{"public.orders"}, StatusInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stream.Close() })
	sk, err := webhook.New(webhook.Config{
		URL: srv.URL + "/hook", Secret: secret,
		Backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(5 * time.Millisecond) },
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cdc.Run(runCtx, stream, sk, cdc.RunOptions{}) }()

	// Sample the slot from another connection until told to stop.
	type sample struct {
		lsn message.LSN
		at  time.Time // after the query returned
	}
	var samples []sample
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		sc, err := pgx.Connect(context.Background(), dbURL)
		if err != nil {
			t.Error(err)
			return
		}
		defer sc.Close(context.Background())
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(10 * time.Millisecond):
			}
			var s string
			if err := sc.QueryRow(context.Background(), "select coalesce(confirmed_flush_lsn, '0/0')::text from pg_replication_slots where slot_name = $1", slot).Scan(&s); err != nil {
				t.Error(err)
				return
			}
			l, err := message.ParseLSN(s)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			samples = append(samples, sample{l, time.Now()})
			mu.Unlock()
		}
	}()
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	const rows = 12
	for i := 1; i <= rows; i++ {
		if _, err := conn.Exec(ctx, "insert into orders values ($1, $2)", i, fmt.Sprint("item ", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, "update orders set item = 'changed' where id = 1"); err != nil {
		t.Fatal(err)
	}
	inRedirectPhase := 0
	waitUntil("every redirect status, twice, and slot samples while redirecting", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if inRedirectPhase == 0 {
			inRedirectPhase = len(samples)
		}
		for _, c := range codes {
			if redirects[c] < 2 {
				return false
			}
		}
		return len(samples) >= inRedirectPhase+25
	})
	mu.Lock()
	if len(delivered) != 0 {
		t.Fatalf("%d changes delivered while the endpoint redirected", len(delivered))
	}
	mu.Unlock()
	redirecting.Store(false)
	waitUntil("every change delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) == rows+1
	})
	var last message.LSN
	mu.Lock()
	for _, l := range lsns {
		last = max(last, l)
	}
	mu.Unlock()
	waitUntil("the slot to confirm the last change", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(samples) > 0 && samples[len(samples)-1].lsn > last
	})
	close(stopSampling)
	<-sampled

	mu.Lock()
	for _, s := range samples {
		for key, c := range lsns {
			if s.lsn > c && !delivered[key].Before(s.at) {
				t.Errorf("confirmed_flush_lsn %s at %s passed change %s (commit %s), accepted only at %s",
					s.lsn, s.at.Format(time.StampMicro), key, c, delivered[key].Format(time.StampMicro))
			}
		}
	}
	t.Logf("%d redirects answered %v, %d slot samples, %d changes delivered", sumValues(redirects), redirects, len(samples), len(delivered))
	if len(bad) > 0 {
		t.Errorf("requests at the configured URL that were not signed POSTs: %v", bad)
	}
	mu.Unlock()
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("%d requests went to a redirect target", n)
	}

	// With the endpoint failing, cancelling Run returns both causes.
	failing.Store(true)
	before := sk.Stats().Failures
	if _, err := conn.Exec(ctx, "insert into orders values (100, 'late')"); err != nil {
		t.Fatal(err)
	}
	waitUntil("failed attempts", func() bool { return sk.Stats().Failures >= before+3 })
	cancel()
	err = <-done
	var se *webhook.StatusError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("Run = %v, want context.Canceled joined with the endpoint's 503", err)
	}
}

func sumValues(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
