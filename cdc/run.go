package cdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// RunOptions tune [Run]. The zero value is a safe default.
type RunOptions struct {
	// BatchSize is the most messages passed to one Write. 0 = 500.
	BatchSize int
	// BatchTimeout is how long a batch waits for more messages after its
	// first one before it is written. 0 = 10ms; negative writes whatever is
	// already buffered without waiting.
	BatchTimeout time.Duration
	// Backoff makes the retry policy for a failed Write. nil =
	// [sink.DefaultBackoff], retrying until ctx is done. When the policy
	// gives up, Run returns the last error. See [sink.Retry].
	Backoff func() backoff.BackOff
	// Logger receives a warning for each failed Write that is retried.
	// nil = silent.
	Logger *slog.Logger
	// Drain is how long a write in flight when ctx ends may go on, so that
	// a graceful shutdown delivers and acknowledges the batch Run holds
	// instead of abandoning it: Run stops reading at once, writes what it
	// took (retrying as usual) for at most Drain, acknowledges it if the
	// write succeeded, and returns ctx's error. 0 = no drain: the write is
	// cancelled with ctx, nothing of it is acknowledged, and a restart
	// delivers it again. Negative is an error.
	Drain time.Duration
}

// Run is the safe delivery loop: it reads messages from s, writes them to
// sk in batches, retrying failed writes with backoff, and acknowledges a
// batch only after Write returned nil — so nothing is acknowledged before it
// is durable and order is preserved end to end.
//
// Run returns when ctx is done (ctx's error, joined with the sink's last
// error when a write was failing, so that errors.Is and errors.As find
// both), when sk returns an error marked with [sink.Permanent] (that error;
// the batch is not acknowledged), when the retry policy gives up, or when
// the stream fails or is closed. It closes neither s nor sk. With
// RunOptions.Drain, a ctx that ends stops the reading at once but lets the
// batch already taken be written and acknowledged first: a graceful
// shutdown (cancel ctx, wait for Run, then Close the stream) leaves nothing
// taken and delivered unacknowledged.
func Run(ctx context.Context, s *Stream, sk sink.Sink, opts RunOptions) error {
	if s == nil || sk == nil {
		return errors.New("cdc: Run needs a stream and a sink")
	}
	if opts.BatchSize < 0 {
		return fmt.Errorf("cdc: RunOptions.BatchSize %d is negative", opts.BatchSize)
	}
	if opts.Drain < 0 {
		return fmt.Errorf("cdc: RunOptions.Drain %v is negative", opts.Drain)
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = 500
	}
	if opts.BatchTimeout == 0 {
		opts.BatchTimeout = 10 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	batch := make([]message.Message, 0, opts.BatchSize)
	for {
		batch = batch[:0]
		m, err := s.Next(ctx)
		if err != nil {
			return err
		}
		batch = append(batch, m)
		batch, err = fill(ctx, s, batch, opts)
		if len(batch) > 0 {
			wctx, release := drainContext(ctx, opts.Drain)
			werr := write(wctx, s, sk, batch, opts)
			release()
			if werr != nil {
				if ctx.Err() != nil && !errors.Is(werr, ctx.Err()) {
					werr = errors.Join(werr, ctx.Err())
				}
				return werr
			}
			s.Ack(batch[len(batch)-1])
		}
		if err != nil {
			return err
		}
	}
}

// drainContext is the context of one batch's write: ctx itself, or, with a
// drain, a context that ends drain after ctx does (or when release is
// called), so that the write in flight at shutdown can finish.
func drainContext(ctx context.Context, drain time.Duration) (wctx context.Context, release func()) {
	if drain == 0 {
		return ctx, func() {}
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(drain)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-wctx.Done():
		}
	})
	return wctx, func() {
		stop()
		cancel()
	}
}

// fill adds messages to batch until it is full or BatchTimeout passes.
// An error (with the messages read so far) means the loop must stop after
// writing them.
func fill(ctx context.Context, s *Stream, batch []message.Message, opts RunOptions) ([]message.Message, error) {
	batch, err := s.TakeBuffered(batch, opts.BatchSize-len(batch))
	if err != nil {
		return batch, err
	}
	if len(batch) >= opts.BatchSize || opts.BatchTimeout < 0 {
		return batch, nil
	}
	wctx, cancel := context.WithTimeout(ctx, opts.BatchTimeout)
	defer cancel()
	for len(batch) < opts.BatchSize {
		m, err := s.Next(wctx)
		if err != nil {
			if wctx.Err() != nil && ctx.Err() == nil {
				return batch, nil // batch timeout
			}
			return batch, err
		}
		batch = append(batch, m)
	}
	return batch, nil
}

// write calls sk.Write until it succeeds, retrying transient errors. When
// ctx ends while the batch is failing, the error joins the sink's last
// errors with ctx's, so that errors.Is and errors.As find both.
func write(ctx context.Context, s *Stream, sk sink.Sink, batch []message.Message, opts RunOptions) error {
	// The last error of sk.Write, and when ctx caused that one, the failure
	// before it.
	var last, before error
	rec := sink.Func(func(ctx context.Context, msgs ...message.Message) error {
		err := sk.Write(ctx, msgs...)
		if err == nil {
			s.RecordWrite(len(msgs), nil)
		} else {
			if ctx.Err() == nil { // not a sink failure: Run is stopping
				s.RecordWrite(len(msgs), err)
			}
			if ctx.Err() != nil && last != nil {
				before = last
			}
			last = err
		}
		return err
	})
	err := sink.Retry(rec, sink.RetryOptions{
		Backoff: opts.Backoff,
		OnRetry: func(attempt int, wait time.Duration, err error) {
			s.RecordRetry()
			opts.Logger.Warn("sink write failed; retrying", "attempt", attempt, "retry_in", wait, "batch", len(batch), "err", err)
		},
	}).Write(ctx, batch...)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return cancelled(ctx, last, before)
	case sink.IsPermanent(err):
		return fmt.Errorf("cdc: sink rejected a batch of %d: %w", len(batch), err)
	default:
		return fmt.Errorf("cdc: %w", err)
	}
}

// cancelled is Run's error when ctx ended during a write: ctx's error,
// joined with the sink's last error (which may carry ctx's error and the
// failure before it) and the failure before that one, if ctx caused the
// last.
func cancelled(ctx context.Context, last, before error) error {
	errs := make([]error, 0, 3)
	if last != nil {
		errs = append(errs, fmt.Errorf("cdc: sink: %w", last))
	}
	if before != nil {
		errs = append(errs, fmt.Errorf("cdc: sink, attempt before: %w", before))
	}
	if last == nil || !errors.Is(last, ctx.Err()) {
		errs = append(errs, ctx.Err())
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
