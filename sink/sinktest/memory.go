package sinktest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// Memory is an in-memory [sink.Sink] for tests: it keeps every message it
// accepts, in order, can be told to fail, and refuses writes after Close.
// The zero value is ready to use; it is safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	msgs   []message.Message
	writes int
	fail   error
	closed bool
}

// Write appends msgs, or returns the error set with [Memory.Fail] without
// keeping any of them. It returns an error wrapping ctx.Err() when ctx is
// done and [sink.ErrClosed] after Close.
func (m *Memory) Write(ctx context.Context, msgs ...message.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory sink: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return sink.ErrClosed
	}
	if m.fail != nil {
		return m.fail
	}
	m.writes++
	m.msgs = append(m.msgs, msgs...)
	return nil
}

// Close marks the sink closed; later Writes fail. Closing twice is fine.
func (m *Memory) Close(context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}

// Fail makes every later Write return err (wrap it with [sink.Permanent] to
// test permanent failures); Fail(nil) makes the sink healthy again.
func (m *Memory) Fail(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}

// Messages returns a copy of the messages accepted so far, in order.
func (m *Memory) Messages() []message.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.msgs)
}

// Writes returns how many Writes succeeded.
func (m *Memory) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}

// Received has the shape of [Harness.New]'s second result: it returns
// [Memory.Messages].
func (m *Memory) Received(context.Context) ([]message.Message, error) {
	return m.Messages(), nil
}
