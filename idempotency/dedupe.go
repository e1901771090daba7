package idempotency

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// Dedupe returns a [sink.Sink] that drops the messages whose idempotency key
// store has already claimed and passes the others to next, in order.
//
// For each batch it asks store which keys are claimed, drops those messages
// and any later repeat of a key within the batch, writes the rest to next
// and, only after next succeeded, claims their keys. If next fails nothing
// is claimed and its error is returned, so the caller's retry delivers the
// batch again. Messages without a key pass through and are never claimed.
//
// This is at-least-once, not exactly-once: a crash (or a failed claim)
// after next succeeded and before the claim committed lets the batch be
// delivered again. Where the effect lives in Postgres, claim with
// [PostgresStore.ClaimTx] inside the transaction that applies it instead —
// effect and claim then commit together.
//
// Writes that run at the same time may both pass a key neither has claimed
// yet; callers such as cdc.Run write one batch at a time. Close closes next,
// not store; a Write after Close returns [sink.ErrClosed].
func Dedupe(store Store, next sink.Sink) sink.Sink {
	return &dedupe{store: store, next: next}
}

type dedupe struct {
	store  Store
	next   sink.Sink
	closed atomic.Bool
}

func (d *dedupe) Write(ctx context.Context, msgs ...message.Message) error {
	if d.closed.Load() {
		return sink.ErrClosed
	}
	keyed := make([]string, 0, len(msgs)) // keys of msgs that have one
	for _, m := range msgs {
		if k := m.Metadata.IdempotencyKey; k != "" {
			keyed = append(keyed, k)
		}
	}
	seen, err := d.store.Seen(ctx, keyed...)
	if err != nil {
		return fmt.Errorf("idempotency: dedupe: %w", err)
	}
	skip := make(map[string]bool, len(keyed))
	for i, k := range keyed {
		if seen[i] {
			skip[k] = true
		}
	}
	fresh := make([]message.Message, 0, len(msgs))
	claim := make([]string, 0, len(keyed))
	for _, m := range msgs {
		k := m.Metadata.IdempotencyKey
		if k == "" {
			fresh = append(fresh, m)
			continue
		}
		if skip[k] {
			continue
		}
		skip[k] = true // a later repeat in this batch is a duplicate
		fresh = append(fresh, m)
		claim = append(claim, k)
	}
	if len(fresh) == 0 {
		return nil
	}
	if err := d.next.Write(ctx, fresh...); err != nil {
		return err
	}
	if len(claim) == 0 {
		return nil
	}
	if _, err := d.store.ClaimAll(ctx, claim...); err != nil {
		return fmt.Errorf("idempotency: dedupe: delivered but not claimed: %w", err)
	}
	return nil
}

func (d *dedupe) Close(ctx context.Context) error {
	d.closed.Store(true)
	return d.next.Close(ctx)
}
