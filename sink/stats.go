package sink

import (
	"sync/atomic"
	"time"
)

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

// Counters keeps a sink's [Stats]; a sink embeds one (the zero value is
// ready) and reports it from its Stats method. Every method is safe to call
// from any goroutine.
type Counters struct {
	writes, messages, failures, retries atomic.Uint64
	last                                atomic.Pointer[failure]
}

type failure struct {
	err error
	at  time.Time
}

// Wrote counts a Write that returned nil.
func (c *Counters) Wrote() { c.writes.Add(1) }

// Delivered counts n messages the destination accepted.
func (c *Counters) Delivered(n int) { c.messages.Add(uint64(n)) }

// Retried counts an attempt that repeats a failed one.
func (c *Counters) Retried() { c.retries.Add(1) }

// Failed counts a failed attempt and keeps err as the last error, at now.
func (c *Counters) Failed(err error) {
	c.failures.Add(1)
	c.last.Store(&failure{err, time.Now()})
}

// Stats returns the counters.
func (c *Counters) Stats() Stats {
	st := Stats{
		Writes:   c.writes.Load(),
		Messages: c.messages.Load(),
		Failures: c.failures.Load(),
		Retries:  c.retries.Load(),
	}
	if f := c.last.Load(); f != nil {
		st.LastError, st.LastErrorAt = f.err, f.at
	}
	return st
}
