package kafka

import (
	"sync/atomic"
	"time"

	"github.com/walrelay/walrelay/sink"
)

var _ sink.StatsReporter = (*Sink)(nil)

// Stats is a snapshot of a [Sink]'s counters, from [Sink.Stats]. Failures
// counts every produce request that failed (a retry inside Write included)
// and every Write refused before sending; Retries the produce requests that
// repeated a failed one.
type Stats = sink.Stats

type stats struct {
	writes, messages, failures, retries atomic.Uint64
	last                                atomic.Pointer[lastFailure]
}

type lastFailure struct {
	err error
	at  time.Time
}

func (s *stats) failed(err error) {
	s.failures.Add(1)
	s.last.Store(&lastFailure{err, time.Now()})
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
