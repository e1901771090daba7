package kafka

import "github.com/walrelay/walrelay/sink"

var _ sink.StatsReporter = (*Sink)(nil)

// Stats is a snapshot of a [Sink]'s counters, from [Sink.Stats]. Failures
// counts every produce request that failed (a retry inside Write included)
// and every Write refused before sending; Retries the produce requests that
// repeated a failed one.
type Stats = sink.Stats

// Stats returns the sink's counters since New. It is cheap and safe to call
// from any goroutine, for metrics or health checks.
func (s *Sink) Stats() Stats { return s.stats.Stats() }
