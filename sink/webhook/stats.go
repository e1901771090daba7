package webhook

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a [Sink]'s counters, from [Sink.Stats]. A failure
// the sink is retrying shows as Failures and Retries growing while Writes
// and Messages stand still; LastError says why.
type Stats struct {
	Writes   uint64 // Write calls that returned nil
	Messages uint64 // messages in requests the endpoint accepted
	Failures uint64 // failed attempts, whatever the cause
	Retries  uint64 // attempts that repeated a failed one
	// LastError is the error of the last failed attempt (nil if none), and
	// LastErrorAt when it failed.
	LastError   error
	LastErrorAt time.Time
}

type stats struct {
	writes, messages, failures, retries atomic.Uint64
	last                                atomic.Pointer[failure]
}

type failure struct {
	err error
	at  time.Time
}

func (s *stats) failed(err error, at time.Time) {
	s.failures.Add(1)
	s.last.Store(&failure{err, at})
}

// Stats returns the sink's counters since New. It is cheap and safe to call
// from any goroutine, for metrics or health checks.
func (s *Sink) Stats() Stats {
	st := Stats{
		Writes:   s.stats.writes.Load(),
		Messages: s.stats.messages.Load(),
		Failures: s.stats.failures.Load(),
		Retries:  s.stats.retries.Load(),
	}
	if f := s.stats.last.Load(); f != nil {
		st.LastError, st.LastErrorAt = f.err, f.at
	}
	return st
}
