package prom

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/sink"
)

// Options tune [New]. The zero value exports the stream's metrics alone.
type Options struct {
	// Sinks are the sinks whose own counters to export, by name (the
	// "sink" label), e.g. {"kafka": kafkaSink}.
	Sinks map[string]sink.StatsReporter
}

// Collector is a [prometheus.Collector] of one stream's metrics, and of its
// sinks'. Every metric carries the label slot="<slot name>", so the
// collectors of several streams can share a registry. Collect reads
// [cdc.Stream.Stats] and the sinks' Stats: it never queries Postgres.
type Collector struct {
	s     *cdc.Stream
	sinks map[string]sink.StatsReporter
	d     descs
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns the collector of s. Register it with
//
//	prometheus.MustRegister(prom.New(stream, prom.Options{}))
func New(s *cdc.Stream, opts Options) *Collector {
	return &Collector{s: s, sinks: opts.Sinks, d: newDescs(s.Stats().Slot)}
}

// Handler serves the metrics of s (and opts.Sinks) alone, in Prometheus'
// text format, from a registry of its own:
//
//	http.Handle("/metrics", prom.Handler(stream, prom.Options{}))
func Handler(s *cdc.Stream, opts Options) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(s, opts))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

type descs struct {
	receivedLSN, ackedLSN, walEndLSN, lagBytes, lagSeconds                          *prometheus.Desc
	msgsIn, bytesIn, msgsOut, bytesOut, msgsAcked, transactions, reconnects         *prometheus.Desc
	lastMessage, lastAck, connected, standby                                        *prometheus.Desc
	bufMsgs, bufBytes, bufBlocked                                                   *prometheus.Desc
	dWrites, dMessages, dFailures, dRetries, dFailing, dLastError                   *prometheus.Desc
	bfRows, bfEstimate, bfDone                                                      *prometheus.Desc
	slotExists, slotActive, slotStatus, slotRetained, slotSafe, slotKeep, slotAsked *prometheus.Desc
	sWrites, sMessages, sFailures, sRetries, sLastError                             *prometheus.Desc
}

func newDescs(slot string) descs {
	l := prometheus.Labels{"slot": slot}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("walrelay_"+name, help, labels, l)
	}
	return descs{
		receivedLSN: d("received_lsn_bytes", "WAL position (LSN as a byte offset) of the end of the last transaction received in full."),
		ackedLSN:    d("acknowledged_lsn_bytes", "WAL position reported to Postgres as flushed: the slot's confirmed_flush_lsn after the next status update."),
		walEndLSN:   d("server_wal_end_lsn_bytes", "The server's WAL end as it last told the stream."),
		lagBytes:    d("lag_bytes", "WAL between the server's end and the acknowledged position: what the slot holds for this stream."),
		lagSeconds:  d("lag_seconds", "Age (from its commit timestamp) of the oldest transaction with a message not yet acknowledged; 0 when all are."),

		msgsIn:       d("received_messages_total", "Messages decoded into the stream's buffer (changes, backfill reads, logical messages)."),
		bytesIn:      d("received_bytes_total", "WAL data received from the server (pgoutput bytes)."),
		msgsOut:      d("consumed_messages_total", "Messages taken from the buffer by the consumer (Next or Run)."),
		bytesOut:     d("consumed_bytes_total", "Size of the consumed messages, as counted against the buffer's byte budget."),
		msgsAcked:    d("acknowledged_messages_total", "Messages acknowledged."),
		transactions: d("transactions_total", "Transactions (commits) received."),
		reconnects:   d("reconnects_total", "Replication connections made after a lost one."),

		lastMessage: d("last_message_timestamp_seconds", "Unix time the server last sent something (keepalive, commit or data)."),
		lastAck:     d("last_ack_timestamp_seconds", "Unix time an acknowledgement last advanced the position."),
		connected:   d("connected", "1 while the replication connection is up, 0 while reconnecting or stopped."),
		standby:     d("standby", "1 when the server is a standby decoding its own copy of the slot."),

		bufMsgs:    d("buffered_messages", "Messages decoded and waiting for the consumer."),
		bufBytes:   d("buffered_bytes", "Size of the waiting messages, against Config.BufferBytes."),
		bufBlocked: d("buffer_blocked", "1 while the buffer is full and the stream reads nothing from the server."),

		dWrites:    d("delivery_writes_total", "Batches cdc.Run wrote to its sink (Write returned nil)."),
		dMessages:  d("delivery_messages_total", "Messages in the batches cdc.Run wrote."),
		dFailures:  d("delivery_failures_total", "Failed Write calls of cdc.Run."),
		dRetries:   d("delivery_retries_total", "Writes cdc.Run repeated after a failure."),
		dFailing:   d("delivery_failing_seconds", "How long cdc.Run's writes have been failing in a row; 0 when the last one succeeded."),
		dLastError: d("delivery_last_error_timestamp_seconds", "Unix time of cdc.Run's last failed Write (absent if none)."),

		bfRows:     d("backfill_rows_read_total", "Rows a backfill read from its table and handed to the stream.", "backfill", "table"),
		bfEstimate: d("backfill_rows_estimated", "Postgres' estimate (pg_class.reltuples) of the table's rows when the backfill started; -1 when unknown.", "backfill", "table"),
		bfDone:     d("backfill_done", "1 once the backfill finished and every read is acknowledged.", "backfill", "table"),

		slotExists:   d("slot_exists", "1 while the replication slot exists (as of the last slot query)."),
		slotActive:   d("slot_active", "1 when a process streams from the slot."),
		slotStatus:   d("slot_wal_status", "The slot's wal_status: 1 for the current one of reserved, extended, unreserved, lost.", "status"),
		slotRetained: d("slot_retained_wal_bytes", "WAL the slot holds back: from its restart_lsn to the server's current position."),
		slotSafe:     d("slot_safe_wal_size_bytes", "WAL that can still be written before the slot risks invalidation (safe_wal_size; absent when max_slot_wal_keep_size is unlimited)."),
		slotKeep:     d("slot_max_wal_keep_size_bytes", "The server's max_slot_wal_keep_size (absent when unlimited)."),
		slotAsked:    d("slot_query_timestamp_seconds", "Unix time of the last slot query (the stream makes one a minute)."),

		sWrites:    d("sink_writes_total", "Write calls of the sink that returned nil.", "sink"),
		sMessages:  d("sink_messages_total", "Messages the sink's destination accepted.", "sink"),
		sFailures:  d("sink_failures_total", "Failed attempts of the sink, whatever the cause.", "sink"),
		sRetries:   d("sink_retries_total", "Attempts of the sink that repeated a failed one.", "sink"),
		sLastError: d("sink_last_error_timestamp_seconds", "Unix time of the sink's last failed attempt (absent if none).", "sink"),
	}
}

// Describe sends the descriptions of every metric.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.d.receivedLSN, c.d.ackedLSN, c.d.walEndLSN, c.d.lagBytes, c.d.lagSeconds,
		c.d.msgsIn, c.d.bytesIn, c.d.msgsOut, c.d.bytesOut, c.d.msgsAcked, c.d.transactions, c.d.reconnects,
		c.d.lastMessage, c.d.lastAck, c.d.connected, c.d.standby,
		c.d.bufMsgs, c.d.bufBytes, c.d.bufBlocked,
		c.d.dWrites, c.d.dMessages, c.d.dFailures, c.d.dRetries, c.d.dFailing, c.d.dLastError,
		c.d.bfRows, c.d.bfEstimate, c.d.bfDone,
		c.d.slotExists, c.d.slotActive, c.d.slotStatus, c.d.slotRetained, c.d.slotSafe, c.d.slotKeep, c.d.slotAsked,
		c.d.sWrites, c.d.sMessages, c.d.sFailures, c.d.sRetries, c.d.sLastError,
	} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Collect sends the current values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	e := emitter{d: &c.d, ch: ch}
	e.stream(st)
	e.delivery(st.Delivery, time.Now())
	e.backfills(st.Backfills)
	if st.SlotStatus != nil {
		e.slot(st.SlotStatus)
	}
	for name, sk := range c.sinks {
		e.sink(name, sk.Stats())
	}
}

// emitter sends one scrape's metrics.
type emitter struct {
	d  *descs
	ch chan<- prometheus.Metric
}

func (e emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (e emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func (e emitter) stream(st cdc.Stats) {
	e.gauge(e.d.receivedLSN, float64(st.ReceivedLSN))
	e.gauge(e.d.ackedLSN, float64(st.AckedLSN))
	e.gauge(e.d.walEndLSN, float64(st.ServerWALEnd))
	e.gauge(e.d.lagBytes, float64(st.LagBytes))
	e.gauge(e.d.lagSeconds, st.Lag.Seconds())
	e.counter(e.d.msgsIn, st.MessagesIn)
	e.counter(e.d.bytesIn, st.BytesIn)
	e.counter(e.d.msgsOut, st.MessagesOut)
	e.counter(e.d.bytesOut, st.BytesOut)
	e.counter(e.d.msgsAcked, st.MessagesAcked)
	e.counter(e.d.transactions, st.Transactions)
	e.counter(e.d.reconnects, st.Reconnects)
	if !st.LastMessageAt.IsZero() {
		e.gauge(e.d.lastMessage, unix(st.LastMessageAt))
	}
	if !st.LastAckAt.IsZero() {
		e.gauge(e.d.lastAck, unix(st.LastAckAt))
	}
	e.gauge(e.d.connected, b2f(st.Connected))
	e.gauge(e.d.standby, b2f(st.Standby))
	e.gauge(e.d.bufMsgs, float64(st.Buffer.Messages))
	e.gauge(e.d.bufBytes, float64(st.Buffer.Bytes))
	e.gauge(e.d.bufBlocked, b2f(st.Buffer.Blocked))
}

func (e emitter) delivery(d cdc.DeliveryStats, now time.Time) {
	e.counter(e.d.dWrites, d.Writes)
	e.counter(e.d.dMessages, d.Messages)
	e.counter(e.d.dFailures, d.Failures)
	e.counter(e.d.dRetries, d.Retries)
	failing := 0.0
	if !d.FailingSince.IsZero() {
		failing = now.Sub(d.FailingSince).Seconds()
	}
	e.gauge(e.d.dFailing, failing)
	if !d.LastErrorAt.IsZero() {
		e.gauge(e.d.dLastError, unix(d.LastErrorAt))
	}
}

// backfills emits one series per backfill ID: an ID run more than once
// (resumed) has its rows added up, and the latest run gives the estimate
// and whether it is done.
func (e emitter) backfills(runs []cdc.BackfillStats) {
	type bf struct {
		table    string
		rows     uint64
		estimate int64
		done     bool
	}
	var order []string
	bfs := make(map[string]*bf)
	for _, b := range runs {
		x := bfs[b.ID]
		if x == nil {
			x = &bf{}
			bfs[b.ID] = x
			order = append(order, b.ID)
		}
		x.table, x.estimate, x.done = b.Table, b.RowsEstimated, b.Done
		x.rows += b.RowsRead
	}
	for _, id := range order {
		x := bfs[id]
		e.counter(e.d.bfRows, x.rows, id, x.table)
		e.gauge(e.d.bfEstimate, float64(x.estimate), id, x.table)
		e.gauge(e.d.bfDone, b2f(x.done), id, x.table)
	}
}

func (e emitter) slot(sl *cdc.SlotState) {
	e.gauge(e.d.slotExists, b2f(sl.Exists))
	e.gauge(e.d.slotAsked, unix(sl.At))
	if !sl.Exists {
		return
	}
	e.gauge(e.d.slotActive, b2f(sl.Active))
	for _, s := range []string{"reserved", "extended", "unreserved", "lost"} {
		e.gauge(e.d.slotStatus, b2f(sl.WALStatus == s), s)
	}
	e.gauge(e.d.slotRetained, float64(sl.RetainedBytes))
	if sl.MaxSlotWALKeepSize >= 0 {
		e.gauge(e.d.slotKeep, float64(sl.MaxSlotWALKeepSize))
		if sl.SafeWALSize >= 0 {
			e.gauge(e.d.slotSafe, float64(sl.SafeWALSize))
		}
	}
}

func (e emitter) sink(name string, ss sink.Stats) {
	e.counter(e.d.sWrites, ss.Writes, name)
	e.counter(e.d.sMessages, ss.Messages, name)
	e.counter(e.d.sFailures, ss.Failures, name)
	e.counter(e.d.sRetries, ss.Retries, name)
	if !ss.LastErrorAt.IsZero() {
		e.gauge(e.d.sLastError, unix(ss.LastErrorAt), name)
	}
}
