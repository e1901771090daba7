package sink_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

func fast() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }

func TestRetry(t *testing.T) {
	transient := errors.New("503")
	rejected := errors.New("400")
	cases := []struct {
		name     string
		results  []error // per attempt; nil = success
		policy   func() backoff.BackOff
		want     error
		attempts int
	}{
		{"succeeds after transient errors", []error{transient, transient, nil}, fast, nil, 3},
		{"permanent is not retried", []error{sink.Permanent(rejected)}, fast, rejected, 1},
		{"policy gives up", []error{transient, transient, transient}, func() backoff.BackOff { return backoff.WithMaxRetries(fast(), 2) }, transient, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			var retried []int
			s := sink.Retry(sink.Func(func(ctx context.Context, msgs ...message.Message) error {
				calls++
				return tc.results[calls-1]
			}), sink.RetryOptions{Backoff: tc.policy, OnRetry: func(a int, _ time.Duration, _ error) { retried = append(retried, a) }})
			err := s.Write(t.Context(), message.Message{})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Write = %v, want %v", err, tc.want)
			}
			if calls != tc.attempts || len(retried) != tc.attempts-1 && tc.want != rejected {
				t.Fatalf("%d attempts (%v retried), want %d", calls, retried, tc.attempts)
			}
			var re *sink.RetryError
			if tc.name == "policy gives up" && (!errors.As(err, &re) || re.Attempts != 3) {
				t.Fatalf("want a RetryError after 3 attempts, got %v", err)
			}
		})
	}
}

func TestRetryCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s := sink.Retry(sink.Func(func(context.Context, ...message.Message) error {
		cancel()
		return errors.New("down")
	}), sink.RetryOptions{Backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) }})
	done := make(chan error, 1)
	go func() { done <- s.Write(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Write = %v", err)
		}
	case <-time.After(testtime.Bound(30 * time.Second)):
		t.Fatal("Write did not return after cancel")
	}
}

// TestRetryDefaultsToDefaultBackoff: Retry without a Backoff waits as
// DefaultBackoff does, from 100 ms (±50%), not backoff's own 500 ms.
func TestRetryDefaultsToDefaultBackoff(t *testing.T) {
	var waits []time.Duration
	calls := 0
	s := sink.Retry(sink.Func(func(context.Context, ...message.Message) error {
		if calls++; calls < 3 {
			return errors.New("down")
		}
		return nil
	}), sink.RetryOptions{OnRetry: func(_ int, wait time.Duration, _ error) { waits = append(waits, wait) }})
	if err := s.Write(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(waits) != 2 || waits[0] < 50*time.Millisecond || waits[0] > 150*time.Millisecond {
		t.Errorf("waits %v, want two, the first 100 ms ±50%%", waits)
	}
}
