package sink

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// DefaultBackoff is walrelay's retry policy wherever a Backoff field is nil:
// [RetryOptions].Backoff (and so cdc.RunOptions.Backoff, for failed sink
// writes) and cdc.Config.Backoff (reconnecting a stream, waiting for a busy
// slot, retrying a backfill read). It waits 100 ms after the first failure,
// then half as long again after each further one, up to 10 s between
// attempts, each wait randomised by ±50% so that many processes do not
// retry in step; it never gives up (a context ends the retries). Only the
// webhook sink, which waits on receivers it does not own, has a slower
// default of its own (webhook.DefaultBackoff).
//
// Each call returns a new policy: a backoff.BackOff holds state and is not
// safe to share, which is why every Backoff field is a function.
func DefaultBackoff() backoff.BackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(100*time.Millisecond),
		backoff.WithMultiplier(1.5),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxInterval(10*time.Second),
		backoff.WithMaxElapsedTime(0),
	)
}
