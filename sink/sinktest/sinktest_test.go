package sinktest

import (
	"context"
	"errors"
	"testing"

	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

func memoryHarness() Harness {
	return Harness{
		New: func(t *testing.T) (sink.Sink, func(ctx context.Context) ([]message.Message, error)) {
			m := new(Memory)
			return m, m.Received
		},
		NewFaulty: func(t *testing.T) (sink.Sink, func(ctx context.Context) ([]message.Message, error), func(bool)) {
			m := new(Memory)
			return m, m.Received, func(fail bool) {
				if fail {
					m.Fail(errors.New("destination down"))
				} else {
					m.Fail(nil)
				}
			}
		},
	}
}

func TestMemory(t *testing.T) { Run(t, memoryHarness()) }

func TestMemoryPerRow(t *testing.T) {
	h := memoryHarness()
	h.OrderPerRow = true
	Run(t, h)
}

func TestSame(t *testing.T) {
	base := Messages(1, 1)[0]
	edit := func(f func(m *message.Message)) message.Message {
		m := base
		m.Record = map[string]any{}
		for k, v := range base.Record {
			m.Record[k] = v
		}
		f(&m)
		return m
	}
	tests := []struct {
		name string
		got  message.Message
		ok   bool
	}{
		{"identical", base, true},
		{"float for integer", edit(func(m *message.Message) { m.Record["id"] = float64(1) }), true},
		{"number spelled differently", edit(func(m *message.Message) { m.Record["price"] = 12.5 }), true},
		{"other action", edit(func(m *message.Message) { m.Action = message.ActionInsert }), false},
		{"other table", edit(func(m *message.Message) { m.Metadata.TableName = "x" }), false},
		{"other key", edit(func(m *message.Message) { m.Metadata.IdempotencyKey = "x" }), false},
		{"other value", edit(func(m *message.Message) { m.Record["name"] = "x" }), false},
		{"missing column", edit(func(m *message.Message) { delete(m.Record, "note") }), false},
		{"changes lost", edit(func(m *message.Message) { m.Changes = nil }), false},
		{"empty changes for null", edit(func(m *message.Message) { m.Changes = map[string]any{} }), false},
	}
	if base.Changes == nil {
		t.Fatal("message 1 should be an update with changes")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Same(base, tt.got)
			if (err == nil) != tt.ok {
				t.Fatalf("Same = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestChecks(t *testing.T) {
	a := Messages(1, 4)
	reordered := []message.Message{a[1], a[0], a[2], a[3]}
	total := &suite{}
	perRow := &suite{h: Harness{OrderPerRow: true}}

	if err := total.exact(a, a); err != nil {
		t.Errorf("exact(a, a) = %v", err)
	}
	if err := total.exact(a, reordered); err == nil {
		t.Error("exact accepted reordered messages")
	}
	if err := total.exact(a, a[:3]); err == nil {
		t.Error("exact accepted a lost message")
	}
	// Messages 1 and 2 are different rows, so per-row order allows swapping them.
	if err := perRow.exact(a, reordered); err != nil {
		t.Errorf("per-row exact rejected a reordering across rows: %v", err)
	}
	dup := append(append([]message.Message{}, a[:2]...), a...)
	if err := total.endsWith(a, dup); err != nil {
		t.Errorf("endsWith rejected a redelivered prefix: %v", err)
	}
	if err := total.endsWith(a, append(append([]message.Message{}, a...), a[0])); err == nil {
		t.Error("endsWith accepted a batch whose last delivery is out of order")
	}
	if err := total.endsWith(a, append(append([]message.Message{}, a...), Messages(9, 1)...)); err == nil {
		t.Error("endsWith accepted a message that was never written")
	}
}
