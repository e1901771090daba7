package cdc

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrelay/walrelay/message"
)

// Stats is a snapshot of a [Stream], from [Stream.Stats].
type Stats struct {
	// Slot is the replication slot's name.
	Slot string

	// ReceivedLSN is the end of the last transaction received in full.
	ReceivedLSN message.LSN
	// AckedLSN is the position reported to Postgres as flushed: the slot's
	// confirmed_flush_lsn once the next status update is sent.
	AckedLSN message.LSN
	// ServerWALEnd is the server's WAL end as it last told the stream (in a
	// keepalive or with the last data); 0 before it did.
	ServerWALEnd message.LSN
	// LagBytes is ServerWALEnd minus AckedLSN: the WAL the slot still holds
	// for this stream, as far as the stream knows. [Stream.SlotStatus] asks
	// Postgres.
	LagBytes uint64
	// Lag is how long ago the oldest transaction with a message not yet
	// acknowledged committed (its commit timestamp, on the server's clock),
	// 0 when every message received is acknowledged. It grows while the
	// consumer or the sink is stuck and drops back when it catches up.
	Lag time.Duration

	// MessagesIn counts the messages decoded into the buffer (changes,
	// backfill reads, logical messages); BytesIn the WAL data received,
	// the pgoutput bytes of every change and transaction boundary.
	MessagesIn, BytesIn uint64
	// MessagesOut counts the messages Next (or Run) took from the buffer;
	// BytesOut their size as counted against Config.BufferBytes.
	MessagesOut, BytesOut uint64
	// MessagesAcked is the sequence number of the last acknowledged message:
	// how many of MessagesIn are acknowledged.
	MessagesAcked uint64
	// Transactions counts the commits received.
	Transactions uint64
	// Reconnects counts the replication connections made after a lost one.
	Reconnects uint64
	// LastMessageAt is when the server last sent something: a keepalive, a
	// commit, or data (sampled every 128 messages within a transaction).
	// LastAckAt is when an Ack last advanced the acknowledged position.
	LastMessageAt, LastAckAt time.Time

	// Connected reports that the replication connection is up; it is false
	// while the stream reconnects and after it stopped. DisconnectedAt is
	// when it went down, zero while it is up.
	Connected      bool
	DisconnectedAt time.Time
	// Stopped reports that the stream has stopped (closed, or failed with
	// Err).
	Stopped bool
	// Err is why the stream stopped, nil while it runs or after Close.
	Err error
	// Standby reports that the server is a standby (in recovery) decoding
	// its own copy of the slot.
	Standby bool

	// Buffer is the messages waiting for Next.
	Buffer BufferStats
	// Delivery is what Run did with the messages, zero without Run.
	Delivery DeliveryStats
	// Backfills are the backfills this stream ran or runs, by start.
	Backfills []BackfillStats
	// SlotStatus is the slot as Postgres last described it (see
	// [Stream.SlotStatus], which the stream calls every minute), nil before
	// the first answer.
	SlotStatus *SlotState
}

// DeliveryStats are the counters of [Run] on a stream.
type DeliveryStats struct {
	Writes   uint64 // batches written (Write returned nil)
	Messages uint64 // messages in them
	Failures uint64 // failed Write calls
	Retries  uint64 // writes that repeated a failed one
	// LastError is the last failed Write's error and LastErrorAt when it
	// failed; FailingSince is when the current run of failures began, zero
	// once a Write succeeds again.
	LastError                 error
	LastErrorAt, FailingSince time.Time
}

// BackfillStats is one [Stream.Backfill] of this stream.
type BackfillStats struct {
	ID    string
	Table string
	// RowsRead counts the rows read from the table and handed to the
	// stream by this call (a resumed backfill counts from the resume).
	RowsRead uint64
	// RowsEstimated is Postgres' estimate of the table's rows (pg_class
	// reltuples) when the backfill started, -1 when it has none (the table
	// was never analyzed).
	RowsEstimated int64
	// Done reports that the backfill finished: every read acknowledged.
	Done      bool
	StartedAt time.Time
}

// streamStats are the counters behind Stats. Fields written only by the
// reader goroutine are stored without a read-modify-write (Store of
// Load+n), which costs no more than a plain write; the rest are atomics or
// guarded by Stream.mu where noted.
type streamStats struct {
	bytesIn    atomic.Uint64 // reader only
	walEnd     atomic.Uint64 // reader only
	lastMsg    atomic.Int64  // unix nanoseconds; reader only
	xlog       uint64        // reader-private count of data messages, to sample the clock
	msgsOut    atomic.Uint64 // the consumer only
	bytesOut   atomic.Uint64 // the consumer only
	reconnects atomic.Uint64
	down       atomic.Bool  // the replication connection was lost (false from Open on)
	downAt     atomic.Int64 // unix nanoseconds when it was lost

	// Guarded by Stream.mu.
	transactions uint64
	lastAck      time.Time
	txTime       time.Time // commit timestamp of the transaction being received

	delivery deliveryCounters
	slot     atomic.Pointer[SlotState]

	bfMu      sync.Mutex
	backfills []*backfillCounters
}

type deliveryCounters struct {
	writes, messages, failures, retries atomic.Uint64
	failing                             atomic.Bool // FailingSince is set: the fast path skips the lock
	mu                                  sync.Mutex
	lastErr                             error
	lastErrAt, since                    time.Time
}

func (d *deliveryCounters) ok(n int) {
	d.writes.Add(1)
	d.messages.Add(uint64(n))
	if d.failing.Load() {
		d.mu.Lock()
		d.since = time.Time{}
		d.failing.Store(false)
		d.mu.Unlock()
	}
}

func (d *deliveryCounters) failed(err error) {
	d.failures.Add(1)
	now := time.Now()
	d.mu.Lock()
	d.lastErr, d.lastErrAt = err, now
	if d.since.IsZero() {
		d.since = now
		d.failing.Store(true)
	}
	d.mu.Unlock()
}

// RecordWrite reports one write of n messages by a delivery loop of the
// caller's own, as [Run] does for each of its writes: err is nil when the
// write succeeded, else its error. It feeds [Stats].Delivery and so the
// ready check of [NewHealth] (HealthOptions.SinkFailure). Do not report
// a write that failed because the loop is stopping (its context ended):
// that is no failure of the destination.
func (s *Stream) RecordWrite(n int, err error) {
	if err == nil {
		s.st.delivery.ok(n)
	} else {
		s.st.delivery.failed(err)
	}
}

// RecordRetry reports that a delivery loop of the caller's own is about to
// repeat a write that failed (Stats.Delivery.Retries).
func (s *Stream) RecordRetry() { s.st.delivery.retries.Add(1) }

type backfillCounters struct {
	id, table string
	estimate  int64
	started   time.Time
	rows      atomic.Uint64
	done      atomic.Bool
}

// setConnected records that the replication connection is up or down.
func (st *streamStats) setConnected(up bool) {
	if !up && !st.down.Load() {
		st.downAt.Store(time.Now().UnixNano())
	}
	st.down.Store(!up)
}

// newBackfill records a backfill of table (estimate rows) for Stats.
func (st *streamStats) newBackfill(id, table string, estimate int64) *backfillCounters {
	b := &backfillCounters{id: id, table: table, estimate: estimate, started: time.Now()}
	st.bfMu.Lock()
	st.backfills = append(st.backfills, b)
	st.bfMu.Unlock()
	return b
}

// received counts a data message of n bytes from the server whose WAL end
// was walEnd; it reads the clock for one message in 128.
func (st *streamStats) received(n int, walEnd uint64) {
	st.bytesIn.Store(st.bytesIn.Load() + uint64(n))
	if walEnd > st.walEnd.Load() {
		st.walEnd.Store(walEnd)
	}
	st.xlog++
	if st.xlog&127 == 1 {
		st.lastMsg.Store(time.Now().UnixNano())
	}
}

// took counts a message of size bytes taken from the buffer. Next (and
// Run, through it) is for one goroutine, so its counters have one writer.
func (st *streamStats) took(size int64) {
	st.msgsOut.Store(st.msgsOut.Load() + 1)
	st.bytesOut.Store(st.bytesOut.Load() + uint64(size))
}

// keepalive records a keepalive with the server's WAL end.
func (st *streamStats) keepalive(walEnd uint64) {
	if walEnd > st.walEnd.Load() {
		st.walEnd.Store(walEnd)
	}
	st.lastMsg.Store(time.Now().UnixNano())
}

// Stats returns a snapshot of the stream's counters and positions. It is
// cheap (one short lock and a few atomic loads) and safe to call from any
// goroutine, as often as metrics need.
func (s *Stream) Stats() Stats {
	now := time.Now()
	st := &s.st
	out := Stats{
		Slot:         s.cfg.Slot,
		ServerWALEnd: message.LSN(st.walEnd.Load()),
		BytesIn:      st.bytesIn.Load(),
		MessagesOut:  st.msgsOut.Load(),
		BytesOut:     st.bytesOut.Load(),
		Reconnects:   st.reconnects.Load(),
		Connected:    !st.down.Load(),
		Standby:      s.fo.standby,
		Buffer:       s.Buffered(),
		SlotStatus:   st.slot.Load(),
	}
	if ns := st.downAt.Load(); ns != 0 && !out.Connected {
		out.DisconnectedAt = time.Unix(0, ns)
	}
	if ns := st.lastMsg.Load(); ns != 0 {
		out.LastMessageAt = time.Unix(0, ns)
	}
	s.mu.Lock()
	out.ReceivedLSN = s.received
	out.AckedLSN = s.flushed
	out.MessagesIn = s.emitted
	out.MessagesAcked = s.acked
	out.Transactions = st.transactions
	out.LastAckAt = st.lastAck
	var oldest time.Time
	switch {
	case len(s.pending) > 0:
		oldest = s.pending[0].commitTime
	case s.inTx && s.emitted > s.acked:
		oldest = st.txTime
	}
	s.mu.Unlock()
	if !oldest.IsZero() && now.After(oldest) {
		out.Lag = now.Sub(oldest)
	}
	if out.ServerWALEnd > out.AckedLSN {
		out.LagBytes = uint64(out.ServerWALEnd - out.AckedLSN)
	}
	select {
	case <-s.done:
		out.Stopped = true
		out.Connected = false
		if s.err != nil && !errors.Is(s.err, ErrClosed) {
			out.Err = s.err
		}
	default:
	}

	d := &st.delivery
	out.Delivery = DeliveryStats{Writes: d.writes.Load(), Messages: d.messages.Load(), Failures: d.failures.Load(), Retries: d.retries.Load()}
	d.mu.Lock()
	out.Delivery.LastError, out.Delivery.LastErrorAt, out.Delivery.FailingSince = d.lastErr, d.lastErrAt, d.since
	d.mu.Unlock()

	st.bfMu.Lock()
	if len(st.backfills) > 0 {
		out.Backfills = make([]BackfillStats, len(st.backfills))
		for i, b := range st.backfills {
			out.Backfills[i] = BackfillStats{ID: b.id, Table: b.table, RowsRead: b.rows.Load(), RowsEstimated: b.estimate, Done: b.done.Load(), StartedAt: b.started}
		}
	}
	st.bfMu.Unlock()
	return out
}
