package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink/webhook"
	"github.com/walrelay/walrelay/throwaway"
)

const table = "public.webhook_example_orders"

// changes are the statements the example makes; each changes one row.
var changes = []string{
	"insert into " + table + " (id, item, qty) values (1, 'espresso', 2)",
	"insert into " + table + " (id, item, qty) values (2, 'croissant', 1)",
	"insert into " + table + " (id, item, qty) values (3, 'tea', 4)",
	"update " + table + " set qty = 3 where id = 1",
	"delete from " + table + " where id = 2",
}

// deliveryWait bounds the wait for the changes (the example's test scales
// it on a slow machine).
var deliveryWait = time.Minute

func run(ctx context.Context) error {
	return runTo(ctx, os.Stdout)
}

// runTo is run, printing to out.
func runTo(ctx context.Context, out io.Writer) error {
	slot := os.Getenv("SLOT")
	if slot == "" {
		slot = "walrelay_webhook_example"
	}
	dbURL, stopPostgres, err := throwaway.FromEnv(ctx, os.Stderr)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	defer stopPostgres()
	if err := throwaway.Exec(ctx, dbURL, "create table if not exists "+table+" (id bigint primary key, item text not null, qty int not null)"); err != nil {
		return err
	}

	// The receiving end: verify, deduplicate, print.
	secret, err := newSecret()
	if err != nil {
		return err
	}
	received := make(chan message.Message)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	handler, err := receiver(secret, received)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Fprintf(out, "receiver listening on http://%s/hooks\n", ln.Addr())

	// The sending end: a stream and a webhook sink, joined by cdc.Run.
	stream, err := cdc.Open(ctx, cdc.Config{
		ConnString:        dbURL,
		Slot:              slot,
		Publication:       slot,
		CreateSlot:        true,
		CreatePublication: true,
		PublicationTables: []string{table},
	})
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	defer cleanup(dbURL, slot, out)
	defer stream.Close()
	sk, err := webhook.New(webhook.Config{URL: "http://" + ln.Addr().String() + "/hooks", Secret: secret})
	if err != nil {
		return err
	}
	defer sk.Close(context.Background())

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- cdc.Run(runCtx, stream, sk, cdc.RunOptions{}) }()

	if err := throwaway.Exec(ctx, dbURL, changes...); err != nil {
		return err
	}
	seen := map[string]bool{}
	timeout := time.NewTimer(deliveryWait)
	defer timeout.Stop()
	for len(seen) < len(changes) {
		select {
		case m := <-received:
			seen[m.Metadata.IdempotencyKey] = true
			rec, _ := m.RecordJSON()
			fmt.Fprintf(out, "received %s %s.%s %s\n", m.Action, m.Metadata.TableSchema, m.Metadata.TableName, rec)
		case err := <-done:
			return fmt.Errorf("delivery stopped: %w", err)
		case <-timeout.C:
			return fmt.Errorf("received %d of %d changes within %v", len(seen), len(changes), deliveryWait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("delivery: %w", err)
	}
	fmt.Fprintf(out, "all %d changes received\n", len(changes))
	return nil
}

// receiver verifies each request's signature and timestamp, skips
// redeliveries and hands new messages to received. It answers 2xx only once
// the messages are handed over, so the sender retries anything not taken.
func receiver(secret string, received chan<- message.Message) (http.Handler, error) {
	// Requests signed more than five minutes away from this clock are
	// refused, so a captured request cannot be replayed later. Every
	// retry is signed afresh, so a long outage does not trip this.
	verifier, err := webhook.NewVerifier(webhook.VerifierConfig{Secrets: []string{secret}, Tolerance: 5 * time.Minute})
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex // one request at a time, in order
	seen := map[string]bool{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		if err := verifier.Verify(r.Header, body); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var batch struct{ Data []message.Message }
		if err := json.Unmarshal(body, &batch); err != nil {
			http.Error(w, "not a batch of messages", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, m := range batch.Data {
			if seen[m.Metadata.IdempotencyKey] {
				continue // a redelivery: already processed
			}
			select {
			case received <- m:
				seen[m.Metadata.IdempotencyKey] = true
			case <-r.Context().Done():
				http.Error(w, "not taken", http.StatusServiceUnavailable)
				return
			}
		}
	}), nil
}

// newSecret returns a random Standard Webhooks secret.
func newSecret() (string, error) {
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("secret: %w", err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key), nil
}

// cleanup drops the example's slot and publication, so that the slot does
// not keep WAL after the example ends.
func cleanup(url, slot string, out io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := throwaway.DropStream(ctx, url, slot, slot); err != nil {
		fmt.Fprintln(out, "cleanup:", err)
	}
}
