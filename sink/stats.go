package sink

import "time"

// Stats is a snapshot of a sink's counters. A failure the sink is retrying
// shows as Failures and Retries growing while Writes and Messages stand
// still; LastError says why.
type Stats struct {
	Writes   uint64 // Write calls that returned nil
	Messages uint64 // messages the destination accepted
	Failures uint64 // failed attempts, whatever the cause
	Retries  uint64 // attempts that repeated a failed one
	// LastError is the error of the last failed attempt (nil if none), and
	// LastErrorAt when it failed.
	LastError   error
	LastErrorAt time.Time
}

// StatsReporter is a sink that counts what it does: sink/kafka and
// sink/webhook are. Stats is cheap and safe to call from any goroutine, for
// metrics or health checks. The wrappers of this package (Retry, Fanout,
// Filter, …) do not report their inner sinks' counters: keep the inner sink
// to read them.
type StatsReporter interface {
	Stats() Stats
}
