package sink_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/sinktest"
)

type recvFunc = func(ctx context.Context) ([]message.Message, error)

var errDown = errors.New("destination down")

func failSwitch(m *sinktest.Memory) func(bool) {
	return func(fail bool) {
		if fail {
			m.Fail(errDown)
		} else {
			m.Fail(nil)
		}
	}
}

func TestFanoutConformance(t *testing.T) {
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) (sink.Sink, recvFunc) {
			a, b := new(sinktest.Memory), new(sinktest.Memory)
			return sink.Fanout(a, b), func(ctx context.Context) ([]message.Message, error) {
				got, other := a.Messages(), b.Messages()
				if len(got) != len(other) {
					return nil, fmt.Errorf("fanout sinks hold %d and %d messages", len(got), len(other))
				}
				for i := range got {
					if err := sinktest.Same(got[i], other[i]); err != nil {
						return nil, fmt.Errorf("fanout sinks differ at %d: %w", i, err)
					}
				}
				return got, nil
			}
		},
		// Only the second sink fails: the first keeps what it accepted, and
		// the retry gives it duplicates.
		NewFaulty: func(t *testing.T) (sink.Sink, recvFunc, func(bool)) {
			a, b := new(sinktest.Memory), new(sinktest.Memory)
			return sink.Fanout(a, b), b.Received, failSwitch(b)
		},
	})
}

func TestFanoutConformanceFirstFails(t *testing.T) {
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) (sink.Sink, recvFunc) {
			a := new(sinktest.Memory)
			return sink.Fanout(a), a.Received
		},
		NewFaulty: func(t *testing.T) (sink.Sink, recvFunc, func(bool)) {
			a, b := new(sinktest.Memory), new(sinktest.Memory)
			return sink.Fanout(a, b), b.Received, failSwitch(a)
		},
	})
}

func TestFilterConformance(t *testing.T) {
	keepAll := sink.Any(sink.Tables("users", "public.orders"), sink.Actions(message.ActionInsert))
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) (sink.Sink, recvFunc) {
			m := new(sinktest.Memory)
			return sink.Filter(m, keepAll), m.Received
		},
		NewFaulty: func(t *testing.T) (sink.Sink, recvFunc, func(bool)) {
			m := new(sinktest.Memory)
			return sink.Filter(m, keepAll), m.Received, failSwitch(m)
		},
	})
}

func TestMapConformance(t *testing.T) {
	// Transforms that leave these messages as they are.
	fn := sink.Chain(sink.DropColumns("absent"), sink.MaskColumns("absent"), sink.RenameColumns(map[string]string{"absent": "x"}))
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) (sink.Sink, recvFunc) {
			m := new(sinktest.Memory)
			return sink.Map(m, fn), m.Received
		},
		NewFaulty: func(t *testing.T) (sink.Sink, recvFunc, func(bool)) {
			m := new(sinktest.Memory)
			return sink.Map(m, fn), m.Received, failSwitch(m)
		},
	})
}

func TestFanoutErrors(t *testing.T) {
	ok, down, rejected := new(sinktest.Memory), new(sinktest.Memory), new(sinktest.Memory)
	down.Fail(errDown)
	errRejected := errors.New("payload rejected")
	rejected.Fail(sink.Permanent(errRejected))
	msgs := sinktest.Messages(1, 2)

	err := sink.Fanout(ok, down).Write(t.Context(), msgs...)
	var fe *sink.FanoutError
	if !errors.As(err, &fe) || len(fe.Errs) != 1 || fe.Sinks != 2 {
		t.Fatalf("Write = %v, want a FanoutError with one of two sinks failed", err)
	}
	if !errors.Is(err, errDown) || sink.IsPermanent(err) {
		t.Fatalf("Write = %v: want it to wrap errDown and not be permanent", err)
	}
	if !strings.Contains(err.Error(), "sink 1") {
		t.Fatalf("error %q does not name the failing sink", err)
	}
	if got := len(ok.Messages()); got != 2 {
		t.Fatalf("healthy sink got %d messages, want 2", got)
	}

	err = sink.Fanout(ok, down, rejected).Write(t.Context(), msgs...)
	if !errors.Is(err, errDown) || !errors.Is(err, errRejected) || !sink.IsPermanent(err) {
		t.Fatalf("Write = %v: want both errors, permanent", err)
	}

	if err := sink.Fanout().Write(t.Context(), msgs...); err != nil {
		t.Fatalf("empty Fanout Write = %v", err)
	}
}

type closeErr struct {
	sinktest.Memory
	err error
}

func (c *closeErr) Close(ctx context.Context) error {
	_ = c.Memory.Close(ctx)
	return c.err
}

func TestFanoutClose(t *testing.T) {
	e1, e2 := errors.New("close 1"), errors.New("close 3")
	a, b, c := &closeErr{err: e1}, new(sinktest.Memory), &closeErr{err: e2}
	err := sink.Fanout(a, b, c).Close(t.Context())
	if !errors.Is(err, e1) || !errors.Is(err, e2) {
		t.Fatalf("Close = %v, want both close errors", err)
	}
	if err := b.Write(t.Context(), sinktest.Messages(1, 1)...); !errors.Is(err, sink.ErrClosed) {
		t.Fatalf("middle sink not closed: Write = %v", err)
	}
}

func TestFilter(t *testing.T) {
	msgs := sinktest.Messages(1, 8) // tables: users except every third (orders)
	tests := []struct {
		name string
		keep sink.Predicate
		want func(m message.Message) bool
	}{
		{"tables", sink.Tables("orders"), func(m message.Message) bool { return m.Metadata.TableName == "orders" }},
		{"qualified", sink.Tables("public.users"), func(m message.Message) bool { return m.Metadata.TableName == "users" }},
		{"other schema", sink.Tables("audit.users"), func(message.Message) bool { return false }},
		{"actions", sink.Actions(message.ActionInsert, message.ActionDelete), func(m message.Message) bool {
			return m.Action == message.ActionInsert || m.Action == message.ActionDelete
		}},
		{"all", sink.All(sink.Tables("users"), sink.Actions(message.ActionUpdate)), func(m message.Message) bool {
			return m.Metadata.TableName == "users" && m.Action == message.ActionUpdate
		}},
		{"any", sink.Any(sink.Tables("orders"), sink.Actions(message.ActionRead)), func(m message.Message) bool {
			return m.Metadata.TableName == "orders" || m.Action == message.ActionRead
		}},
		{"not", sink.Not(sink.Tables("orders")), func(m message.Message) bool { return m.Metadata.TableName != "orders" }},
		{"all of none", sink.All(), func(message.Message) bool { return true }},
		{"any of none", sink.Any(), func(message.Message) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := new(sinktest.Memory)
			if err := sink.Filter(m, tt.keep).Write(t.Context(), msgs...); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, msg := range msgs {
				if tt.want(msg) {
					want = append(want, msg.Metadata.IdempotencyKey)
				}
			}
			var got []string
			for _, msg := range m.Messages() {
				got = append(got, msg.Metadata.IdempotencyKey)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("kept %v, want %v", got, want)
			}
			if m.Writes() != 1 {
				t.Fatalf("next got %d writes, want 1 (even when all are dropped)", m.Writes())
			}
		})
	}
}

func TestNilArguments(t *testing.T) {
	m := new(sinktest.Memory)
	for name, s := range map[string]sink.Sink{
		"filter nil predicate": sink.Filter(m, nil),
		"filter nil sink":      sink.Filter(nil, sink.All()),
		"map nil transform":    sink.Map(m, nil),
		"map nil sink":         sink.Map(nil, sink.DropColumns()),
	} {
		if err := s.Write(t.Context(), sinktest.Messages(1, 1)...); !sink.IsPermanent(err) {
			t.Errorf("%s: Write = %v, want a permanent error", name, err)
		}
	}
}

func TestMapDoesNotMutate(t *testing.T) {
	msgs := sinktest.Messages(1, 4)
	orig := sinktest.Messages(1, 4)
	m := new(sinktest.Memory)
	fn := sink.Chain(
		sink.DropColumns("note"),
		sink.MaskColumns("name"),
		sink.RenameColumns(map[string]string{"seq": "sequence", "id": "key"}),
	)
	msgs[0].Metadata.SetColumns("id", "name", "seq", "active", "note", "price", "tags")
	if err := sink.Map(m, fn).Write(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	for i := range msgs {
		if err := sinktest.Same(orig[i], msgs[i]); err != nil {
			t.Fatalf("caller's message %d changed: %v", i, err)
		}
	}
	if got := msgs[0].Metadata.Columns(); !reflect.DeepEqual(got, []string{"id", "name", "seq", "active", "note", "price", "tags"}) {
		t.Fatalf("caller's Columns changed: %v", got)
	}
	got := m.Messages()
	if len(got) != 4 {
		t.Fatalf("got %d messages", len(got))
	}
	r := got[0].Record
	if _, ok := r["note"]; ok {
		t.Error("note not dropped")
	}
	if r["name"] != sink.Masked {
		t.Errorf("name = %v, want masked", r["name"])
	}
	if r["sequence"] != int64(1) || r["key"] != int64(1) || r["seq"] != nil {
		t.Errorf("rename failed: %v", r)
	}
	if got[0].Changes["name"] != sink.Masked || got[0].Changes["sequence"] != int64(0) {
		t.Errorf("changes not transformed: %v", got[0].Changes)
	}
	if !reflect.DeepEqual(got[0].Metadata.Columns(), []string{"key", "name", "sequence", "active", "price", "tags"}) {
		t.Errorf("Columns = %v", got[0].Metadata.Columns())
	}
	if !reflect.DeepEqual(got[0].Metadata.PrimaryKey(), []string{"key"}) || !reflect.DeepEqual(msgs[0].Metadata.PrimaryKey(), []string{"id"}) {
		t.Errorf("PrimaryKey = %v, caller's %v", got[0].Metadata.PrimaryKey(), msgs[0].Metadata.PrimaryKey())
	}
}

func TestMapErrorsAndDrops(t *testing.T) {
	msgs := sinktest.Messages(1, 4)
	m := new(sinktest.Memory)
	dropReads := func(msg message.Message) (message.Message, bool, error) {
		return msg, msg.Action != message.ActionRead, nil
	}
	if err := sink.Map(m, dropReads).Write(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	if got := len(m.Messages()); got != 3 {
		t.Fatalf("kept %d, want 3 (one read dropped)", got)
	}

	errBad := errors.New("bad row")
	failing := func(msg message.Message) (message.Message, bool, error) { return message.Message{}, false, errBad }
	m2 := new(sinktest.Memory)
	err := sink.Map(m2, failing).Write(t.Context(), msgs...)
	if !errors.Is(err, errBad) || !sink.IsPermanent(err) || !strings.Contains(err.Error(), "public.users") {
		t.Fatalf("Write = %v, want a permanent error naming the table", err)
	}
	if len(m2.Messages()) != 0 {
		t.Fatal("a failed transform still wrote")
	}
	retry := func(msg message.Message) (message.Message, bool, error) {
		return msg, false, sink.Retryable(errBad)
	}
	if err := sink.Map(m2, retry).Write(t.Context(), msgs...); !errors.Is(err, errBad) || sink.IsPermanent(err) {
		t.Fatalf("Write = %v, want a non-permanent error", err)
	}
	if sink.Retryable(nil) != nil {
		t.Fatal("Retryable(nil) != nil")
	}

	clash := sink.RenameColumns(map[string]string{"seq": "id"})
	if err := sink.Map(m2, clash).Write(t.Context(), msgs...); !sink.IsPermanent(err) || !strings.Contains(err.Error(), `"id"`) {
		t.Fatalf("renaming onto an existing column: Write = %v", err)
	}
}

func TestEncoders(t *testing.T) {
	m := sinktest.Messages(1, 1)[0]
	for name, tt := range map[string]struct {
		enc  sink.Encoder
		want func() ([]byte, error)
	}{
		"JSON":       {sink.JSON, m.MarshalJSON},
		"RecordOnly": {sink.RecordOnly, m.RecordJSON},
		"Event":      {sink.Event, m.EventJSON},
	} {
		got, err := tt.enc(m)
		want, werr := tt.want()
		if err != nil || werr != nil || string(got) != string(want) {
			t.Errorf("%s = %s, %v; want %s, %v", name, got, err, want, werr)
		}
	}
}

// TestRetryConformance runs the suite on a sink that retries inside Write:
// with the destination failing, Write keeps trying (every 10 ms, for up to
// 500 ms) until it gives up or its context is cancelled.
func TestRetryConformance(t *testing.T) {
	retrying := func(m *sinktest.Memory) sink.Sink {
		return sink.Retry(m, sink.RetryOptions{Backoff: func() backoff.BackOff {
			return backoff.WithMaxRetries(backoff.NewConstantBackOff(10*time.Millisecond), 50)
		}})
	}
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) (sink.Sink, recvFunc) {
			m := new(sinktest.Memory)
			return retrying(m), m.Received
		},
		NewFaulty: func(t *testing.T) (sink.Sink, recvFunc, func(bool)) {
			m := new(sinktest.Memory)
			return retrying(m), m.Received, failSwitch(m)
		},
	})
}

// TestTablesNames checks that Tables reads names as SQL does: unquoted
// names fold to lower case, quoted ones keep case, dots and quotes.
func TestTablesNames(t *testing.T) {
	table := func(schema, name string) message.Message {
		return message.Message{Metadata: message.Metadata{TableSchema: schema, TableName: name}}
	}
	msgs := []message.Message{
		table("public", "orders"),
		table("public", "Orders"),
		table("my.schema", "orders"),
		table("my", `schema".orders`),
		table("Sales", `line "items"`),
	}
	for _, tc := range []struct {
		names []string
		want  []int // indexes of msgs kept
	}{
		{[]string{"orders"}, []int{0}},
		{[]string{"ORDERS"}, []int{0}},
		{[]string{"Public.Orders"}, []int{0}},
		{[]string{`"Orders"`}, []int{1}},
		{[]string{`public."Orders"`}, []int{1}},
		{[]string{`"my.schema".orders`}, []int{2}},
		{[]string{`"my.schema".Orders`}, []int{2}},
		{[]string{`"Sales"."line ""items"""`}, []int{4}},
		{[]string{`sales."line ""items"""`}, nil},
		{[]string{"orders", `"Orders"`}, []int{0, 1}},
	} {
		keep := sink.Tables(tc.names...)
		var got []int
		for i, m := range msgs {
			if keep(m) {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Tables(%q) kept %v, want %v", tc.names, got, tc.want)
		}
	}
	for _, bad := range []string{"", "a.b.c", `"unterminated`, "my-table", `"my.schema.orders`} {
		func() {
			defer func() {
				r := recover()
				if r == nil {
					t.Errorf("Tables(%q) did not panic", bad)
				}
			}()
			sink.Tables(bad)
		}()
	}
}
