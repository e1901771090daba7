package idempotency_test

import (
	"context"
	"errors"
	"testing"

	"github.com/walrelay/walrelay/idempotency"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/sinktest"
)

func memoryStore(t *testing.T) *idempotency.MemoryStore {
	t.Helper()
	s, err := idempotency.NewMemoryStore(1 << 12)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func dedupeHarness(newStore func(t *testing.T) idempotency.Store) sinktest.Harness {
	return sinktest.Harness{
		New: func(t *testing.T) (sink.Sink, func(context.Context) ([]message.Message, error)) {
			m := new(sinktest.Memory)
			return idempotency.Dedupe(newStore(t), m), m.Received
		},
		NewFaulty: func(t *testing.T) (sink.Sink, func(context.Context) ([]message.Message, error), func(bool)) {
			m := new(sinktest.Memory)
			return idempotency.Dedupe(newStore(t), m), m.Received, func(fail bool) {
				if fail {
					m.Fail(errors.New("destination down"))
				} else {
					m.Fail(nil)
				}
			}
		},
	}
}

func TestDedupeConformance(t *testing.T) {
	t.Run("Memory", func(t *testing.T) {
		sinktest.Run(t, dedupeHarness(func(t *testing.T) idempotency.Store { return memoryStore(t) }))
	})
	t.Run("Postgres", func(t *testing.T) {
		pool := newPool(t, pgtest.NewDatabase(t))
		sinktest.Run(t, dedupeHarness(func(t *testing.T) idempotency.Store {
			return newPostgresStore(t, pool, idempotency.PostgresConfig{})
		}))
	})
}

func keysOf(msgs []message.Message) []string {
	ks := make([]string, len(msgs))
	for i, m := range msgs {
		ks[i] = m.Metadata.IdempotencyKey
	}
	return ks
}

func sameKeys(t *testing.T, what string, got, want []message.Message) {
	t.Helper()
	g, w := keysOf(got), keysOf(want)
	if len(g) != len(w) {
		t.Fatalf("%s: got keys %q, want %q", what, g, w)
	}
	for i := range g {
		if g[i] != w[i] {
			t.Fatalf("%s: got keys %q, want %q", what, g, w)
		}
	}
}

func TestDedupeDropsClaimed(t *testing.T) {
	ctx := t.Context()
	store := memoryStore(t)
	next := new(sinktest.Memory)
	d := idempotency.Dedupe(store, next)
	msgs := sinktest.Messages(1, 6)

	// A key claimed elsewhere (for example by a transactional consumer) is
	// dropped too.
	if _, err := store.Claim(ctx, msgs[2].Metadata.IdempotencyKey); err != nil {
		t.Fatal(err)
	}
	// The batch repeats messages 0 and 4, as a redelivery inside one batch.
	batch := append(append([]message.Message{}, msgs[:5]...), msgs[0], msgs[4], msgs[5])
	if err := d.Write(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	want := []message.Message{msgs[0], msgs[1], msgs[3], msgs[4], msgs[5]}
	sameKeys(t, "first write", next.Messages(), want)

	if err := d.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	sameKeys(t, "redelivery", next.Messages(), want)
	if n := next.Writes(); n != 1 {
		t.Fatalf("a batch of only duplicates reached next: %d writes, want 1", n)
	}
}

func TestDedupeClaimsOnlyAfterSuccess(t *testing.T) {
	ctx := t.Context()
	store := memoryStore(t)
	next := new(sinktest.Memory)
	d := idempotency.Dedupe(store, next)
	msgs := sinktest.Messages(1, 3)

	down := sink.Permanent(errors.New("rejected"))
	next.Fail(down)
	err := d.Write(ctx, msgs...)
	if !errors.Is(err, down) || !sink.IsPermanent(err) {
		t.Fatalf("Write to a failing sink = %v, want its permanent error", err)
	}
	seen, err := store.Seen(ctx, keysOf(msgs)...)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range seen {
		if s {
			t.Fatalf("message %d claimed although next failed", i)
		}
	}
	next.Fail(nil)
	if err := d.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	sameKeys(t, "retry", next.Messages(), msgs)
	seen, err = store.Seen(ctx, keysOf(msgs)...)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range seen {
		if !s {
			t.Fatalf("message %d delivered but not claimed", i)
		}
	}
}

func TestDedupePassesKeylessMessages(t *testing.T) {
	ctx := t.Context()
	next := new(sinktest.Memory)
	d := idempotency.Dedupe(memoryStore(t), next)
	m := sinktest.Messages(1, 1)[0]
	m.Metadata.IdempotencyKey = ""
	for range 2 {
		if err := d.Write(ctx, m, m); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(next.Messages()); got != 4 {
		t.Fatalf("keyless messages delivered %d times, want 4", got)
	}
}

// failingClaims is a MemoryStore whose ClaimAll fails, to reach the window
// between delivery and claim.
type failingClaims struct{ *idempotency.MemoryStore }

var errClaim = errors.New("store unavailable")

func (failingClaims) ClaimAll(context.Context, ...string) ([]bool, error) { return nil, errClaim }

func TestDedupeReportsFailedClaim(t *testing.T) {
	ctx := t.Context()
	next := new(sinktest.Memory)
	d := idempotency.Dedupe(failingClaims{memoryStore(t)}, next)
	msgs := sinktest.Messages(1, 2)
	for range 2 {
		if err := d.Write(ctx, msgs...); !errors.Is(err, errClaim) {
			t.Fatalf("Write whose claim fails = %v, want %v", err, errClaim)
		}
	}
	// Unclaimed, the retried batch is delivered again: at-least-once.
	if got := len(next.Messages()); got != 4 {
		t.Fatalf("delivered %d messages over two attempts, want 4", got)
	}
}
