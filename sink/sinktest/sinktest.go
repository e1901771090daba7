package sinktest

//lint:file-ignore SA1019 Metadata.DatabaseName, deprecated, is still filled and checked

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// ReceivedFunc returns everything a destination has durably received so
// far, in arrival order.
type ReceivedFunc = func(ctx context.Context) ([]message.Message, error)

// Harness describes a sink under test to [Run].
type Harness struct {
	// New returns a fresh sink under test, with its own destination, and a
	// function that returns everything that destination has durably
	// received so far, in arrival order (decoded back into messages, for
	// example with message.Message.UnmarshalJSON, or as-is for in-memory
	// sinks). Run closes the sink when the subtest ends.
	New func(t *testing.T) (sink.Sink, func(ctx context.Context) ([]message.Message, error))

	// NewFaulty, when set, is like New but also returns a switch: fail(true)
	// makes the destination refuse every write (a 503, a broker error, …)
	// until fail(false). Without it the subtests that need a failing
	// destination are skipped.
	NewFaulty func(t *testing.T) (sink.Sink, func(ctx context.Context) ([]message.Message, error), func(fail bool))

	// OrderPerRow relaxes the order checks from one total order to the
	// order of each row (table and "id" column), for sinks that spread
	// messages over partitions, where only per-row order is promised.
	OrderPerRow bool

	// WriteTimeout bounds every Write the suite makes, so a sink that hangs
	// fails the test instead of stalling it. Zero means one minute. On a
	// slow machine WALRELAY_TEST_TIME_SCALE multiplies it.
	WriteTimeout time.Duration
}

// Run runs the conformance suite against the sink h describes, as subtests
// of t. Every sink in this module runs it; third-party sinks can too.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("sinktest: Harness.New is nil")
	}
	s := &suite{h: h}
	t.Run("Order", s.order)
	t.Run("Empty", s.empty)
	t.Run("Duplicates", s.duplicates)
	t.Run("AllOrNothing", s.allOrNothing)
	t.Run("Close", s.close)
	t.Run("WriteAfterClose", s.writeAfterClose)
	t.Run("CancelledContext", s.cancelled)
	t.Run("CancelWhileFailing", s.cancelWhileFailing)
}

type suite struct {
	h    Harness
	next atomic.Int64 // numbers the messages of a run, so each is unique
}

// messages returns n messages no other call of this run returned.
func (s *suite) messages(n int) []message.Message {
	last := s.next.Add(int64(n))
	return Messages(int(last)-n+1, n)
}

func (s *suite) newSink(t *testing.T) (sink.Sink, ReceivedFunc) {
	t.Helper()
	sk, recv := s.h.New(t)
	t.Cleanup(func() { _ = sk.Close(context.Background()) })
	return sk, recv
}

func (s *suite) newFaulty(t *testing.T) (sink.Sink, ReceivedFunc, func(bool)) {
	t.Helper()
	if s.h.NewFaulty == nil {
		t.Skip("sinktest: Harness.NewFaulty is not set")
	}
	sk, recv, fail := s.h.NewFaulty(t)
	t.Cleanup(func() { _ = sk.Close(context.Background()) })
	return sk, recv, fail
}

func (s *suite) writeCtx(t *testing.T) context.Context {
	d := s.h.WriteTimeout
	if d <= 0 {
		d = time.Minute
	}
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(d))
	t.Cleanup(cancel)
	return ctx
}

func (s *suite) order(t *testing.T) {
	sk, recv := s.newSink(t)
	a, b := s.messages(7), s.messages(5)
	ctx := s.writeCtx(t)
	if err := sk.Write(ctx, a...); err != nil {
		t.Fatalf("first Write: %v", err)
	}
	if err := sk.Write(ctx, b[:1]...); err != nil {
		t.Fatalf("second Write: %v", err)
	}
	if err := sk.Write(ctx, b[1:]...); err != nil {
		t.Fatalf("third Write: %v", err)
	}
	got := received(t, recv)
	want := append(append([]message.Message{}, a...), b...)
	if err := s.exact(want, got); err != nil {
		t.Fatal(err)
	}
}

func (s *suite) empty(t *testing.T) {
	sk, recv := s.newSink(t)
	ctx := s.writeCtx(t)
	if err := sk.Write(ctx); err != nil {
		t.Fatalf("empty Write: %v", err)
	}
	if got := received(t, recv); len(got) != 0 {
		t.Fatalf("empty Write delivered %d messages", len(got))
	}
	// The sink still works afterwards.
	msgs := s.messages(2)
	if err := sk.Write(ctx, msgs...); err != nil {
		t.Fatalf("Write after an empty Write: %v", err)
	}
	if err := s.exact(msgs, received(t, recv)); err != nil {
		t.Fatal(err)
	}
}

func (s *suite) duplicates(t *testing.T) {
	sk, recv := s.newSink(t)
	msgs := s.messages(4)
	ctx := s.writeCtx(t)
	for i := range 2 {
		if err := sk.Write(ctx, msgs...); err != nil {
			t.Fatalf("Write %d of the same batch: %v", i+1, err)
		}
	}
	if err := s.endsWith(msgs, received(t, recv)); err != nil {
		t.Fatal(err)
	}
}

func (s *suite) allOrNothing(t *testing.T) {
	sk, recv, fail := s.newFaulty(t)
	ctx := s.writeCtx(t)
	before := s.messages(2)
	if err := sk.Write(ctx, before...); err != nil {
		t.Fatalf("Write to a healthy destination: %v", err)
	}
	msgs := s.messages(5)
	fail(true)
	if err := sk.Write(ctx, msgs...); err == nil {
		t.Fatal("Write to a failing destination returned nil")
	}
	fail(false)
	if err := sk.Write(ctx, msgs...); err != nil {
		t.Fatalf("retried Write after the destination recovered: %v", err)
	}
	got := received(t, recv)
	// The failed attempt may have left part of the batch (or all of it, at
	// some destinations) behind; the retry must then deliver all of it.
	gotBefore, gotAfter := split(got, before)
	if err := s.exact(before, gotBefore); err != nil {
		t.Fatalf("messages of the Write before the failure: %v", err)
	}
	if err := s.endsWith(msgs, gotAfter); err != nil {
		t.Fatal(err)
	}
}

// split separates got into the messages with a key of first and the rest.
func split(got, first []message.Message) (inFirst, rest []message.Message) {
	keys := make(map[string]bool, len(first))
	for _, m := range first {
		keys[m.Metadata.IdempotencyKey] = true
	}
	for _, m := range got {
		if keys[m.Metadata.IdempotencyKey] {
			inFirst = append(inFirst, m)
		} else {
			rest = append(rest, m)
		}
	}
	return inFirst, rest
}

func (s *suite) close(t *testing.T) {
	sk, recv := s.newSink(t)
	msgs := s.messages(3)
	if err := sk.Write(s.writeCtx(t), msgs...); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := sk.Close(t.Context()); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	err2 := sk.Close(t.Context())
	err3 := sk.Close(t.Context())
	if (err2 == nil) != (err3 == nil) {
		t.Fatalf("repeated Close is not stable: second %v, third %v", err2, err3)
	}
	if err := s.exact(msgs, received(t, recv)); err != nil {
		t.Fatalf("after Close: %v", err)
	}
}

func (s *suite) writeAfterClose(t *testing.T) {
	sk, recv := s.newSink(t)
	if err := sk.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := sk.Write(s.writeCtx(t), s.messages(2)...); err == nil {
		t.Fatal("Write after Close returned nil")
	}
	if got := received(t, recv); len(got) != 0 {
		t.Fatalf("Write after Close delivered %d messages", len(got))
	}
}

func (s *suite) cancelled(t *testing.T) {
	sk, _ := s.newSink(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := sk.Write(ctx, s.messages(2)...)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a cancelled context: got %v, want an error wrapping %v", err, context.Canceled)
	}
}

// cancelWhileFailing checks that a Write still trying a failing destination
// (a sink that retries inside Write) stops when its context is cancelled
// and says so. A sink that reports the failure at once, before the cancel,
// has nothing to stop: its error must then be the failure.
func (s *suite) cancelWhileFailing(t *testing.T) {
	sk, _, fail := s.newFaulty(t)
	fail(true)
	ctx, cancel := context.WithCancel(s.writeCtx(t))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sk.Write(ctx, s.messages(3)...) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Write to a failing destination returned nil")
		}
		return
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write cancelled while the destination fails: got %v, want an error wrapping %v", err, context.Canceled)
	}
}

func received(t *testing.T, recv ReceivedFunc) []message.Message {
	t.Helper()
	got, err := recv(t.Context())
	if err != nil {
		t.Fatalf("reading what the destination received: %v", err)
	}
	return got
}

// Messages returns n test messages numbered from first: they cover two
// tables and every change action plus reads, carry idempotency keys (equal
// numbers give equal keys), a primary key ("id", cycling over three rows so
// that per-row order matters) and JSON-ready records. It is exported for
// sinks' own tests.
func Messages(first, n int) []message.Message {
	msgs := make([]message.Message, n)
	for i := range msgs {
		seq := uint64(first + i)
		lsn := message.LSN(0x16_0000_0000 + seq*0x100)
		table := "users"
		if seq%3 == 0 {
			table = "orders"
		}
		// Rows repeat so that per-row order is exercised: ids cycle over 3.
		id := int64(seq % 3)
		m := message.Message{
			Record: map[string]any{
				"id":     id,
				"name":   fmt.Sprintf("row %d \"quoted\" é", seq),
				"seq":    int64(seq),
				"active": seq%2 == 0,
				"note":   nil,
				"price":  json.Number("12.50"),
				"tags":   []any{"a", "b"},
			},
			Metadata: message.Metadata{
				TableSchema:     "public",
				TableName:       table,
				IdempotencyKey:  message.ChangeKey(lsn, 0),
				CommitTimestamp: time.Date(2024, 10, 28, 21, 37, 1, int(seq)*1000, time.UTC),
				CommitLSN:       lsn,
				CommitIdx:       0,
				DatabaseName:    "app",
				Database:        message.Database{Name: "app", Database: "app", Hostname: "localhost"},
			},
		}
		m.Metadata.SetPrimaryKey("id")
		switch seq % 4 {
		case 0:
			m.Action = message.ActionInsert
		case 1:
			m.Action = message.ActionUpdate
			m.Changes = map[string]any{"name": "before", "seq": int64(seq - 1)}
		case 2:
			m.Action = message.ActionDelete
		case 3:
			m.Action = message.ActionRead
			m.Metadata.IdempotencyKey = message.ReadKey("backfill-1", id, int64(seq))
		}
		msgs[i] = m
	}
	return msgs
}

// groups splits msgs into the sequences whose order the sink must keep:
// one sequence, or one per row when OrderPerRow is set.
func (s *suite) groups(msgs []message.Message) (keys []string, groups map[string][]message.Message) {
	groups = map[string][]message.Message{}
	for _, m := range msgs {
		k := ""
		if s.h.OrderPerRow {
			id, _ := json.Marshal(m.Record["id"])
			k = m.Metadata.TableSchema + "." + m.Metadata.TableName + ":" + string(id)
		}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], m)
	}
	return keys, groups
}

// exact checks that got is want, in order (per row with OrderPerRow).
func (s *suite) exact(want, got []message.Message) error {
	if len(got) != len(want) {
		return fmt.Errorf("received %d messages, want %d", len(got), len(want))
	}
	keys, wantGroups := s.groups(want)
	_, gotGroups := s.groups(got)
	for _, k := range keys {
		w, g := wantGroups[k], gotGroups[k]
		if len(w) != len(g) {
			return fmt.Errorf("row %q: received %d messages, want %d", k, len(g), len(w))
		}
		for i := range w {
			if err := Same(w[i], g[i]); err != nil {
				return fmt.Errorf("row %q, message %d: %w", k, i, err)
			}
		}
	}
	return nil
}

// endsWith checks that got is want delivered at least once: every received
// message is one of want, unchanged and with its idempotency key, and the
// last delivery of each order group is want's, in order.
func (s *suite) endsWith(want, got []message.Message) error {
	byKey := make(map[string]message.Message, len(want))
	for _, m := range want {
		byKey[m.Metadata.IdempotencyKey] = m
	}
	for i, g := range got {
		w, ok := byKey[g.Metadata.IdempotencyKey]
		if !ok {
			return fmt.Errorf("received message %d has idempotency key %q, which was never written", i, g.Metadata.IdempotencyKey)
		}
		if err := Same(w, g); err != nil {
			return fmt.Errorf("received message %d: %w", i, err)
		}
	}
	keys, wantGroups := s.groups(want)
	_, gotGroups := s.groups(got)
	for _, k := range keys {
		w, g := wantGroups[k], gotGroups[k]
		if len(g) < len(w) {
			return fmt.Errorf("row %q: received %d messages, want at least %d", k, len(g), len(w))
		}
		tail := g[len(g)-len(w):]
		for i := range w {
			if tail[i].Metadata.IdempotencyKey != w[i].Metadata.IdempotencyKey {
				return fmt.Errorf("row %q: the last %d messages received are not the batch in order (position %d has key %q, want %q)",
					k, len(w), i, tail[i].Metadata.IdempotencyKey, w[i].Metadata.IdempotencyKey)
			}
		}
	}
	return nil
}

// Same reports how got differs from want in what a sink must carry
// through: action, schema, table, idempotency key, and record and changes
// compared as JSON. It returns nil when they agree.
func Same(want, got message.Message) error {
	switch {
	case got.Action != want.Action:
		return fmt.Errorf("action %q, want %q", got.Action, want.Action)
	case got.Metadata.TableSchema != want.Metadata.TableSchema || got.Metadata.TableName != want.Metadata.TableName:
		return fmt.Errorf("table %s.%s, want %s.%s", got.Metadata.TableSchema, got.Metadata.TableName,
			want.Metadata.TableSchema, want.Metadata.TableName)
	case got.Metadata.IdempotencyKey != want.Metadata.IdempotencyKey:
		return fmt.Errorf("idempotency key %q, want %q", got.Metadata.IdempotencyKey, want.Metadata.IdempotencyKey)
	}
	if err := jsonEqual("record", want.Record, got.Record); err != nil {
		return err
	}
	return jsonEqual("changes", want.Changes, got.Changes)
}

func jsonEqual(what string, want, got map[string]any) error {
	w, err := normalize(want)
	if err != nil {
		return fmt.Errorf("%s: encoding the expected value: %w", what, err)
	}
	g, err := normalize(got)
	if err != nil {
		return fmt.Errorf("%s: encoding the received value: %w", what, err)
	}
	if !reflect.DeepEqual(w, g) {
		wb, _ := json.Marshal(w)
		gb, _ := json.Marshal(g)
		return fmt.Errorf("%s %s, want %s", what, gb, wb)
	}
	return nil
}

// normalize round-trips v through encoding/json so that equal JSON compares
// equal whatever Go types carried it.
func normalize(v map[string]any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	// Numbers compare by value: 12.5 and 12.50 are the same JSON number.
	return canonNumbers(out), nil
}

func canonNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return v
	case map[string]any:
		for k, e := range v {
			v[k] = canonNumbers(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = canonNumbers(e)
		}
		return v
	}
	return v
}
