package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/walrelay/walrelay/message"
)

// RetryOptions tune [Retry].
type RetryOptions struct {
	// Backoff makes the policy for one Write's retries (a new one per Write:
	// backoff.BackOff values are not safe to share). nil = [DefaultBackoff],
	// which retries until ctx is done.
	Backoff func() backoff.BackOff
	// OnRetry, when set, is called before each wait with the attempt that
	// failed (from 1), the wait and the error — for logging.
	OnRetry func(attempt int, wait time.Duration, err error)
}

// RetryError is returned when the retry policy gives up.
type RetryError struct {
	Attempts int
	Err      error // the last attempt's error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("sink: write failed after %d attempts: %v", e.Attempts, e.Err)
}
func (e *RetryError) Unwrap() error { return e.Err }

// Retry makes next's Write retry transient errors with backoff. Write
// returns nil once next succeeds; an error marked [Permanent] at once,
// without retrying; ctx's error when ctx is done (never acknowledging an
// unfinished write); a [*RetryError] wrapping the last error when the policy
// gives up. Every retry writes the whole batch again, as the [Sink] contract
// allows.
func Retry(next Sink, opts RetryOptions) Sink {
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	return &retry{next: next, opts: opts}
}

type retry struct {
	next Sink
	opts RetryOptions
}

func (r *retry) Write(ctx context.Context, msgs ...message.Message) error {
	var b backoff.BackOff
	for attempt := 1; ; attempt++ {
		err := r.next.Write(ctx, msgs...)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if IsPermanent(err) {
			return err
		}
		if b == nil {
			b = r.opts.Backoff()
		}
		d := b.NextBackOff()
		if d == backoff.Stop {
			return &RetryError{Attempts: attempt, Err: err}
		}
		if r.opts.OnRetry != nil {
			r.opts.OnRetry(attempt, d, err)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (r *retry) Close(ctx context.Context) error { return r.next.Close(ctx) }
