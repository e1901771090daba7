package cdc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// collector is an in-memory sink that can be told to fail.
type collector struct {
	mu    sync.Mutex
	got   []message.Message
	fail  func(n int) error // called with the attempt number; nil = succeed
	calls int
}

func (c *collector) Write(ctx context.Context, msgs ...message.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fail != nil {
		if err := c.fail(c.calls); err != nil {
			return err
		}
	}
	c.got = append(c.got, msgs...)
	return nil
}

func (c *collector) Close(context.Context) error { return nil }

func (c *collector) ids() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []int64
	for _, m := range c.got {
		ids = append(ids, m.Record["id"].(int64))
	}
	return ids
}

func fastBackoff() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }

func TestRunDeliversInOrderAndAcks(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	s := e.open(e.config())
	c := &collector{fail: func(n int) error {
		if n%3 == 1 {
			return errors.New("transient")
		}
		return nil
	}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, s, c, RunOptions{BatchSize: 7, Backoff: fastBackoff}) }()
	e.exec("insert into t select g from generate_series(1, 50) g")
	for i := 51; i <= 60; i++ {
		e.exec(fmt.Sprintf("insert into t values (%d)", i))
	}
	waitFor(t, "60 messages", func() bool { return len(c.ids()) >= 60 })
	c.mu.Lock()
	last := c.got[len(c.got)-1].Metadata.CommitLSN
	c.mu.Unlock()
	waitFor(t, "slot to advance past the last commit", func() bool {
		return s.Acked() > last && e.confirmedFlush() > last
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	ids := c.ids()
	for i, id := range ids {
		if id != int64(i+1) {
			t.Fatalf("delivery order broken at %d: %v", i, ids)
		}
	}
	if len(ids) != 60 {
		t.Fatalf("delivered %d, want 60", len(ids))
	}
}

func TestRunPermanentErrorStopsWithoutAck(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	s := e.open(e.config())
	before := e.confirmedFlush()
	rejected := errors.New("rejected")
	var writes atomic.Int32
	sk := sink.Func(func(ctx context.Context, msgs ...message.Message) error {
		writes.Add(1)
		return sink.Permanent(rejected)
	})
	e.exec("insert into t values (1)")
	err := Run(t.Context(), s, sk, RunOptions{Backoff: fastBackoff})
	if !errors.Is(err, rejected) || !sink.IsPermanent(err) {
		t.Fatalf("Run = %v, want the permanent error", err)
	}
	if writes.Load() != 1 {
		t.Errorf("permanent error retried: %d writes", writes.Load())
	}
	if s.Acked() != before {
		t.Errorf("acked %v after a rejected write (before %v)", s.Acked(), before)
	}
}

// cancelDuringWrite runs Run over s with opts, inserts a row into t and
// cancels Run's context while the sink's first Write is in progress. Each
// Write returns write's result once Run's context is cancelled. It fails
// the test unless Run returns context.Canceled, and returns what s had
// acknowledged when the context was cancelled.
func cancelDuringWrite(t *testing.T, e *env, s *Stream, opts RunOptions, write func(context.Context, []message.Message) error) message.LSN {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	entered := make(chan struct{})
	var once sync.Once
	sk := sink.Func(func(wctx context.Context, msgs ...message.Message) error {
		once.Do(func() { close(entered) })
		<-ctx.Done()
		return write(wctx, msgs)
	})
	done := make(chan error, 1)
	go func() { done <- Run(ctx, s, sk, opts) }()
	e.exec("insert into t values (1)")
	<-entered
	before := s.Acked()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(testtime.Bound(30 * time.Second)):
		t.Fatal("Run did not return after its context was cancelled")
	}
	return before
}

// hang is a Write that ends with its context.
func hang(wctx context.Context, _ []message.Message) error {
	<-wctx.Done()
	return wctx.Err()
}

func TestRunCancelDuringWriteDoesNotAck(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	s := e.open(e.config())
	before := cancelDuringWrite(t, e, s, RunOptions{}, hang)
	if s.Acked() != before {
		t.Errorf("acked an unfinished write")
	}
}

func TestRunRetryPolicyGivesUp(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	s := e.open(e.config())
	down := errors.New("down")
	c := &collector{fail: func(int) error { return down }}
	e.exec("insert into t values (1)")
	err := Run(t.Context(), s, c, RunOptions{Backoff: func() backoff.BackOff {
		return backoff.WithMaxRetries(backoff.NewConstantBackOff(time.Millisecond), 3)
	}})
	if !errors.Is(err, down) {
		t.Fatalf("Run = %v", err)
	}
	if c.calls != 4 {
		t.Errorf("%d attempts, want 4", c.calls)
	}
}

// TestRunCancelWhileFailingReturnsSinkError cancels Run while its sink keeps
// failing: the error names both the sink's failure and the cancellation.
func TestRunCancelWhileFailingReturnsSinkError(t *testing.T) {
	for _, during := range []string{"backoff", "write"} {
		t.Run(during, func(t *testing.T) {
			e := newEnv(t, "create table t (id int primary key)")
			s := e.open(e.config())
			before := s.Acked()
			down := errors.New("endpoint down")
			ctx, cancel := context.WithCancel(t.Context())
			failing := make(chan struct{})
			var calls atomic.Int32
			sk := sink.Func(func(wctx context.Context, msgs ...message.Message) error {
				if calls.Add(1) == 3 {
					close(failing)
					if during == "write" { // cancelled inside Write, after failures
						<-wctx.Done()
						return fmt.Errorf("write: %w", wctx.Err())
					}
				}
				return down
			})
			done := make(chan error, 1)
			go func() {
				done <- Run(ctx, s, sk, RunOptions{Backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(5 * time.Millisecond) }})
			}()
			e.exec("insert into t values (1)")
			<-failing
			cancel()
			err := <-done
			if !errors.Is(err, context.Canceled) || !errors.Is(err, down) {
				t.Fatalf("Run = %v, want both context.Canceled and the sink's failure", err)
			}
			if s.Acked() != before {
				t.Errorf("acked a batch that was never written")
			}
		})
	}
}

// TestRunDrainDeliversTheBatchInFlight cancels Run while its sink is
// writing a batch: with a Drain the write goes on, succeeds and is
// acknowledged before Run returns ctx's error.
func TestRunDrainDeliversTheBatchInFlight(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	s := e.open(e.config())
	var wrote atomic.Int32
	before := cancelDuringWrite(t, e, s, RunOptions{Drain: time.Minute}, func(wctx context.Context, msgs []message.Message) error {
		if err := wctx.Err(); err != nil {
			return err // the drain ended the write
		}
		wrote.Add(int32(len(msgs)))
		return nil
	})
	if wrote.Load() != 1 {
		t.Fatalf("the batch in flight was not written (%d messages)", wrote.Load())
	}
	if s.Acked() <= before {
		t.Errorf("the drained batch was not acknowledged: acked %v, before %v", s.Acked(), before)
	}
}

// TestRunDrainIsBounded cancels Run while its sink hangs: the write is
// given up after Drain, unacknowledged.
func TestRunDrainIsBounded(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	s := e.open(e.config())
	before := cancelDuringWrite(t, e, s, RunOptions{Drain: 50 * time.Millisecond}, hang)
	if s.Acked() != before {
		t.Errorf("acked a write the drain gave up")
	}
	if err := Run(t.Context(), s, sink.Func(func(context.Context, ...message.Message) error { return nil }), RunOptions{Drain: -time.Second}); err == nil {
		t.Error("a negative Drain was accepted")
	}
}
