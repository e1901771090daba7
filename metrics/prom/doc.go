// Package prom exports a stream's statistics ([cdc.Stream.Stats]) and its
// sinks' ([sink.StatsReporter]) as Prometheus metrics. It is a package of
// its own so that programs that do not import it do not link the
// Prometheus client.
//
// # Plugging it in
//
// Serve the metrics of one stream on their own endpoint:
//
//	http.Handle("/metrics", prom.Handler(stream, prom.Options{
//		Sinks: map[string]sink.StatsReporter{"kafka": kafkaSink},
//	}))
//
// or register the collector in the application's registry, beside its
// other metrics:
//
//	prometheus.MustRegister(prom.New(stream, prom.Options{}))
//
// A scrape reads counters only (Stats is a few atomic loads and one short
// lock); it never queries Postgres. The slot metrics come from the query the
// stream makes once a minute ([cdc.Stream.SlotStatus]).
//
// # Metrics
//
// Every metric has the label slot="<slot name>". Positions are LSNs as byte
// offsets into the WAL; timestamps are Unix seconds.
//
// Stream:
//
//	walrelay_received_lsn_bytes              gauge    end of the last transaction received in full
//	walrelay_acknowledged_lsn_bytes          gauge    position reported to Postgres as flushed
//	walrelay_server_wal_end_lsn_bytes        gauge    the server's WAL end, as it last said
//	walrelay_lag_bytes                       gauge    server WAL end minus the acknowledged position
//	walrelay_lag_seconds                     gauge    age (by commit timestamp) of the oldest unacknowledged transaction; 0 when caught up
//	walrelay_received_messages_total         counter  messages decoded into the buffer
//	walrelay_received_bytes_total            counter  WAL data (pgoutput bytes) received
//	walrelay_consumed_messages_total         counter  messages taken from the buffer (Next, Run)
//	walrelay_consumed_bytes_total            counter  their size against Config.BufferBytes
//	walrelay_acknowledged_messages_total     counter  messages acknowledged
//	walrelay_transactions_total              counter  commits received
//	walrelay_reconnects_total                counter  replication connections made after a lost one
//	walrelay_last_message_timestamp_seconds  gauge    when the server last sent something
//	walrelay_last_ack_timestamp_seconds      gauge    when an acknowledgement last advanced the position
//	walrelay_connected                       gauge    1 while the replication connection is up
//	walrelay_standby                         gauge    1 when decoding on a standby
//	walrelay_buffered_messages               gauge    messages waiting for the consumer
//	walrelay_buffered_bytes                  gauge    their size
//	walrelay_buffer_blocked                  gauge    1 while the buffer is full (the stream reads nothing)
//
// Delivery by cdc.Run:
//
//	walrelay_delivery_writes_total                  counter  batches written
//	walrelay_delivery_messages_total                counter  messages in them
//	walrelay_delivery_failures_total                counter  failed Write calls
//	walrelay_delivery_retries_total                 counter  writes repeated after a failure
//	walrelay_delivery_failing_seconds               gauge    how long writes have failed in a row (0 = the last succeeded)
//	walrelay_delivery_last_error_timestamp_seconds  gauge    last failed Write
//
// Backfills (labels backfill="<ID>", table="<schema.table>"):
//
//	walrelay_backfill_rows_read_total  counter  rows read and handed to the stream
//	walrelay_backfill_rows_estimated   gauge    pg_class.reltuples at the start (-1 unknown)
//	walrelay_backfill_done             gauge    1 once finished and acknowledged
//
// Slot, as Postgres describes it (pg_replication_slots):
//
//	walrelay_slot_exists                  gauge  1 while the slot exists
//	walrelay_slot_active                  gauge  1 when a process streams from it
//	walrelay_slot_wal_status              gauge  1 for the current status (label status: reserved, extended, unreserved, lost)
//	walrelay_slot_retained_wal_bytes      gauge  WAL held back, restart_lsn to the current position
//	walrelay_slot_safe_wal_size_bytes     gauge  WAL that may still be written before invalidation (only with a max_slot_wal_keep_size)
//	walrelay_slot_max_wal_keep_size_bytes gauge  max_slot_wal_keep_size (only when set)
//	walrelay_slot_query_timestamp_seconds gauge  when the slot was last asked about
//
// Sinks given in Options.Sinks (label sink="<name>"), from their own
// counters:
//
//	walrelay_sink_writes_total                  counter  Write calls that succeeded
//	walrelay_sink_messages_total                counter  messages the destination accepted
//	walrelay_sink_failures_total                counter  failed attempts
//	walrelay_sink_retries_total                 counter  attempts repeating a failed one
//	walrelay_sink_last_error_timestamp_seconds  gauge    last failed attempt
//
// # What to alert on
//
//   - walrelay_lag_seconds above what the application tolerates (minutes),
//     for a few minutes: the consumer or the sink is stuck or too slow.
//   - walrelay_slot_safe_wal_size_bytes below a quarter of
//     walrelay_slot_max_wal_keep_size_bytes, or walrelay_slot_wal_status
//     {status="unreserved"} == 1: Postgres is about to invalidate the slot.
//     walrelay_slot_wal_status{status="lost"} == 1 or walrelay_slot_exists
//     == 0: it did; a new slot and a backfill are needed.
//   - walrelay_slot_retained_wal_bytes growing toward the free disk space
//     (without max_slot_wal_keep_size a stuck slot fills the disk).
//   - walrelay_delivery_failing_seconds above a minute: the sink is down.
//   - walrelay_connected == 0 for more than a few minutes, or
//     rate(walrelay_reconnects_total[15m]) well above zero.
//   - time() - walrelay_last_message_timestamp_seconds above a few status
//     intervals: the server stopped talking to the stream.
package prom
