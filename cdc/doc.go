// Package cdc streams every insert, update and delete of a Postgres
// database — and backfill reads of the rows already there — as
// [message.Message] values in the shape Sequin delivers, at least once.
//
// # Prerequisites
//
// The server needs wal_level = logical (and max_replication_slots,
// max_wal_senders above zero; a restart after changing them). The role in
// Config.ConnString needs the REPLICATION attribute (or superuser) and, to
// let the stream create them, the right to create publications (CREATE on
// the database and ownership of the tables; superuser for FOR ALL TABLES)
// and slots. [Check] reports what is missing, with the SQL to fix it.
// Tables without a primary key need a REPLICA IDENTITY for updates and
// deletes to be published. For updates to carry the prior values of every
// changed column in Changes, and deletes the whole old row, set
// ALTER TABLE … REPLICA IDENTITY FULL; otherwise Changes is empty ({}, also
// when the primary key changed) and a delete's Record has the key columns'
// values and null for the others, as in Sequin.
//
// Config.ConnString is a libpq URL or keyword/value string, parsed by pgx,
// and is used for the replication connection and the stream's queries
// alike. Over a network, verify the server: sslmode=verify-full with
// sslrootcert naming the CA file (postgres://app@db/app?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.crt)
// checks both the certificate chain and the host name; verify-ca checks
// only the chain, as require does when sslrootcert is set (without it,
// require encrypts but checks nothing).
//
// # Checking the database first
//
// [Check] looks at the database as Open would use it, changes nothing, and
// returns [Finding] values, each with a [Severity] (blocking or warning), a
// [FindingCode], a message and the SQL that fixes it (JSON-ready, for a
// command-line tool or a deploy step): wal_level; the server's version for
// what Config asks; a role without REPLICATION (the fix is the ALTER ROLE
// to run; on Amazon RDS, membership of rds_replication counts); a missing
// publication; tables of Config.PublicationTables that do not exist, or
// that an existing publication lacks (a warning; Config.AlterPublication
// adds them); published tables without a primary key and with REPLICA
// IDENTITY DEFAULT or NOTHING; and the slot (missing, unusable, in use).
//
//	findings, err := cdc.Check(ctx, cfg)
//	for _, f := range findings {
//		fmt.Println(f) // "blocking: table "public"."events" has no primary key … (fix: ALTER TABLE …)"
//	}
//
// [Config.Validate] checks a Config alone, without connecting (names,
// sizes, conflicting options): a linter for configuration files.
//
// Once a table without a primary key and with REPLICA IDENTITY DEFAULT is
// in a publication that publishes updates and deletes, Postgres refuses the
// application's own UPDATEs and DELETEs of it. So Open never publishes such
// a table (in a publication it creates, or adds tables to): that finding is
// blocking there; for a publication that exists already, it is a warning.
// For the same reason a publication FOR ALL TABLES is never implied:
// CreatePublication needs PublicationTables, or PublicationAllTables set
// explicitly.
//
// Open runs the same checks before it creates anything, and returns a
// [*CheckError] (wrapping [ErrWALLevel], [ErrPrivilege],
// [ErrReplicaIdentity], [ErrPublicationNotFound], a [*SlotError], … for
// errors.Is and errors.As) when one is blocking; it logs the warnings. If
// Open fails after it created the publication or the slot, or added tables
// to the publication, it drops them again: a failed Open leaves nothing
// behind. [Stream.Backfill] refuses a table the publication does not
// include ([ErrTableNotPublished]).
//
// # Connections
//
// Open uses two kinds of connections: a small pool for queries (checks,
// heartbeats, backfills; four connections unless the connection string's
// pool_max_conns says otherwise — every pool_* setting of pgxpool is
// honoured) and the replication connection, which gets the connection
// string without its pool_* settings. Each connection attempt is bounded
// by Config.ConnectTimeout, the connection string's connect_timeout, or
// [DefaultConnectTimeout] (10s); the error names the host and port.
//
// # Teardown and status
//
// [Drop] removes what walrelay created for a Config: the slot (freeing the
// WAL it retains; changes not yet delivered are lost), the publication,
// the backfill progress table, and the idempotency tables [DropOptions]
// names; [DropOptions] keeps any of them, and DropOptions.DryRun only
// reports what Drop would drop. [SlotStatus] reads a slot without streaming
// from it: active, confirmed_flush_lsn, the lag and the WAL retained in
// bytes, the walsender's flush lag, wal_status and safe_wal_size.
// [ListSlots] does so for every pgoutput slot of the database,
// [ListPublications] lists the publications and their tables,
// [ListTables] the tables a publication could hold (with whether each has
// the replica identity its UPDATEs need, and whether the role may publish
// it), and [ListBackfills] the backfills saved in a progress table (done or
// not, and the cursor they resume from). None of them needs a stream or the
// REPLICATION attribute.
//
// # A look that leaves nothing behind
//
// Config.TemporarySlot creates the slot as a temporary one, on the
// replication connection: Postgres drops it when that connection ends,
// however it ends, so nothing retains WAL afterwards. The stream starts at
// the present; it cannot be resumed, and a lost connection ends it with
// [ErrSlotNotFound] (the slot is gone, and the changes in between with it).
// The walrelay command's tail uses it.
//
// # Logging
//
// With Config.Logger (and RunOptions.Logger, and the sinks' Logger) set,
// walrelay logs at Info when a stream starts ("stream started": slot,
// publication, tables, start_lsn), reconnects ("replication reconnected")
// and when a backfill finishes ("backfill finished": backfill_id, table,
// elapsed); at Warn each retried sink write, each failed reconnect and each
// preflight warning. Every package logs with the same keys: slot,
// publication, table, tables, lsn, commit_lsn, start_lsn, backfill_id, err,
// attempt, retry_in, batch, topic, partition, url, webhook_id, and a few
// more of the same style. Without a Logger nothing is logged, and [Run]
// still reports a failing sink: when ctx ends during retries it returns
// ctx's error joined with the sink's last error.
//
// # Streaming
//
// [Open] checks the server and the publication and slot in [Config], creates
// them when asked (CreatePublication, CreateSlot) and starts streaming.
// [Stream.Next] returns messages in commit order; [Stream.Ack] marks a
// message, and everything returned before it, as durable; [Stream.Close]
// reports what was acknowledged and stops, and returns the error that
// stopped the stream if it stopped on its own (a permanent failure):
//
//	s, err := cdc.Open(ctx, cdc.Config{
//		ConnString:  "postgres://app@db/app",
//		Slot:        "orders_cdc",
//		Publication: "orders_pub",
//		CreateSlot:  true,
//	})
//	if err != nil { … }
//	defer s.Close()
//	for {
//		m, err := s.Next(ctx)
//		if err != nil { … }
//		… make m durable somewhere …
//		s.Ack(m)
//	}
//
// [Run] is that loop done safely for a [sink.Sink]: it batches, retries
// failed writes with backoff, stops on errors marked [sink.Permanent], and
// acknowledges a batch only after the sink wrote it.
//
// To stop gracefully (on SIGTERM, say), set [RunOptions].Drain, cancel
// Run's context, wait for Run to return, then Close the stream: Run stops
// reading at once, but writes and acknowledges the batch it already took
// (for at most Drain), and Close reports that position to Postgres, so a
// restart sends again at most the rest of the last transaction the batch
// ended in. Without Drain the batch in flight is abandoned and sent again
// after the restart — nothing is lost either way.
//
// # Batching
//
// A loop of its own batches as Run does: [Stream.Next] waits for a first
// message, [Stream.TakeBuffered] adds what is already decoded without
// waiting, and one Ack of the batch's last message acknowledges it all.
// Messages taken together with an error belong to the batch: write them
// before handling the error.
//
//	batch := make([]message.Message, 0, 500)
//	for {
//		m, err := s.Next(ctx)
//		if err != nil { … }
//		batch, err = s.TakeBuffered(append(batch[:0], m), cap(batch)-1)
//		if werr := store(ctx, batch); werr != nil { … } // durable, or retried
//		s.Ack(batch[len(batch)-1])
//		if err != nil { … } // the stream stopped after these messages
//	}
//
// A loop that reports its writes with [Stream.RecordWrite] (and its retries
// with [Stream.RecordRetry]) has them counted in [Stats].Delivery and judged
// by the ready check of [NewHealth], as Run's are.
//
// # Guarantees
//
// Delivery is at least once. The slot's confirmed position advances only to
// the end of a transaction whose every message was acknowledged — never past
// an unacknowledged message, never backwards. After a crash Postgres sends
// again from that position; a redelivered change carries the same
// idempotency key (base64 of "commit_lsn:commit_idx", [message.ChangeKey]),
// so consumers can drop duplicates (package idempotency helps). After Ack
// and Close, a restart delivers nothing that was acknowledged.
//
// A stream reads in its own goroutine, into a buffer bounded by count
// (Config.BufferSize) and by bytes (Config.BufferBytes, see Memory below);
// while the caller is slow it stops reading but keeps the connection alive
// with status updates. Once the buffer is full, the reader waits until the
// caller has taken a quarter of it (all of it, when the message it holds is
// that large) and then refills it in one run: a caller
// slower than the decoding wakes the reader once per quarter buffer, not
// once per message. Transactions are emitted as they
// are decoded, so memory stays flat whatever their size. When nothing is in
// flight the stream acknowledges the server's WAL position, and it writes a
// heartbeat logical message on an interval (Config.HeartbeatInterval), so an
// idle database, or one whose changes are all to unpublished tables, does not
// make Postgres keep WAL. A dropped connection (a terminated walsender, a
// server restart) is re-established with backoff and streaming resumes with
// nothing lost.
//
// # Messages
//
// Every message has the table, action, record, commit timestamp, commit LSN
// and index, idempotency key, the consumer and database identity from Config
// (defaults: the slot name, the database name, host and system identifier),
// and the transaction's annotations. Values are mapped as package message
// documents, in the JSON Sequin writes (message/SEQUIN.md compares the two
// for every type and rule). Unchanged TOASTed columns that Postgres does not
// send are filled from the old row when there is one (REPLICA IDENTITY
// FULL), and are otherwise [message.UnchangedToast] ("unchanged_toast" in
// JSON) — never NULL.
//
// The index (commit_idx) counts, within the transaction, every insert,
// update, delete, truncate and logical message Postgres sent, delivered or
// not, as Sequin counts them; the same WAL therefore gives the idempotency
// keys Sequin gives, and a consumer deduplicating across a move between the
// two sees equal keys for equal changes.
//
// Changes to a partition are reported under the root partitioned table's
// schema and name: a publication the stream creates uses
// publish_via_partition_root = true, and a partition an existing publication
// sends is mapped to its root (pg_partition_root).
//
// A TRUNCATE is not delivered by default, as in Sequin: the stream logs a
// warning naming the tables (Config.Logger), and backfills in flight drop
// the rows they read from them. Config.Truncate = [TruncateEmit] delivers one
// [message.ActionTruncate] message per table instead, and [TruncateFail]
// stops the stream with a [*TruncateError].
//
// Transaction annotations are set from inside the transaction with
//
//	select pg_logical_emit_message(true, 'sequin:transaction_annotations.set', '{"user": "ann"}');
//
// (or the prefix walrelay:transaction_annotations.set) and apply to the
// changes after it in that transaction; …clear clears them. Annotations
// that are JSON but not an object (an array, a string) pass through as they
// are, in Metadata.RawTransactionAnnotations, as Sequin passes them; text
// that is not JSON is logged and dropped (null).
//
// # Memory
//
// The messages waiting for [Stream.Next] are bounded by Config.BufferSize
// (count, default 1024) and Config.BufferBytes (default 64 MiB), counted as
// the size of the text Postgres sent for them. A message larger than the
// whole budget is not refused: it waits for an empty buffer and passes
// alone. [Stream.Buffered] reports the count, the bytes and whether the
// reader is waiting for room, for metrics.
//
// The budget counts text; memory holds more. Text, numeric, json, jsonb and
// timestamp values and the idempotency keys are stored in blocks that many
// rows share (about 1× their text; a value over 16 KiB gets a block of its
// own), so decoding a row costs its record map and few other allocations;
// a message kept long after it was delivered keeps its blocks alive with it
// (up to 64 KiB of text and slabs of 512 values). Other values are Go
// values built from the text: measured on this package's mapping, an int4[] of
// one-digit elements takes about 8× its text, numeric[] 5×, text[] of short
// strings 4.4×, int4[] of seven digits 3×, timestamptz[] 2×. On top of the
// buffer come the message the reader holds while it waits for room, the
// receive buffer of the message in progress (its text again), and the JSON
// a sink encodes (about the text's size, more for strings that need escaping
// and bytea). So plan for several times BufferBytes in the worst case: with
// eight 64 MiB text rows, a stalled consumer and a 100 MiB budget, the live
// heap stayed at about 190 MB (one row buffered, one held, one receive
// buffer), where an unbounded buffer held all eight (512 MB). Lower
// BufferBytes on a small machine, or for tables with large arrays.
//
// # Stats, slot status and health
//
// [Stream.Stats] is a snapshot of the stream, cheap enough to call on every
// scrape: the received, acknowledged and server WAL-end positions; the lag
// in bytes (server WAL end minus acknowledged) and in time (how long ago the
// oldest transaction with an unacknowledged message committed, 0 when
// caught up); messages and bytes in and out; transactions; reconnects; when
// the server last sent something and when an Ack last advanced the
// position; whether the connection is up and the server a standby; the
// buffer; what [Run] wrote and how long its writes have been failing
// (Delivery); and each backfill's rows read against Postgres' estimate.
// Counters are atomics updated on the hot path.
//
// [Stream.SlotStatus] asks Postgres about the slot: wal_status, the WAL it
// retains, safe_wal_size and max_slot_wal_keep_size. The stream asks once a
// minute and keeps the answer in Stats (SlotStatus); with less than a
// quarter of max_slot_wal_keep_size left, or wal_status "unreserved", it
// logs a warning to Config.Logger, and an error once the slot is lost.
//
// [NewHealth] answers probes: Live fails once the stream stopped for good;
// Ready also fails while the replication connection is down (after
// HealthOptions.Disconnected), when the last slot query found the slot lost
// or gone, and when Run's writes have failed for longer than
// HealthOptions.SinkFailure (1 minute by default). LiveHandler and
// ReadyHandler serve them over HTTP (200, or 503 with the problems in a
// JSON body). Package metrics/prom exports Stats as Prometheus metrics.
//
// # Hostile input
//
// Nothing a database user can write should stop a stream or exhaust its
// memory:
//
//   - Any value Postgres stores streams. json and jsonb are embedded as
//     Postgres sent them (validated and compacted by the encoder, at any
//     nesting depth — Postgres accepts jsonb deeper than encoding/json's
//     10,000 levels).
//   - A database's or role's output settings (DateStyle, IntervalStyle,
//     TimeZone, extra_float_digits) do not change what is decoded: the
//     stream's connections, its backfill reads included, set them.
//   - A value the mapping cannot decode (an output format a setting or an
//     extension changed, say) follows Config.Undecodable: by default the
//     stream stops with a [*DecodeError] naming the table, column and LSN —
//     never skipping it, since reopening stops at the same change until the
//     policy is changed; with [UndecodableText] the value is delivered as
//     its Postgres text, logged, and handed to Config.DeadLetter, and the
//     stream goes on. Backfill reads follow the same policy.
//   - pg_logical_emit_message is executable by PUBLIC: any role that can log
//     in can write transaction annotations, of any size. A
//     transaction-annotations message larger than Config.MaxAnnotationBytes
//     (default 64 KiB) is not decoded: the transaction's annotations are
//     cleared and a warning is logged. Logical messages of other prefixes
//     are skipped without decoding or copying their content. Postgres still
//     sends each message whole, so the stream's receive buffer briefly holds
//     it (a 40 MB message: a 40 MB heap peak).
//   - Rows of any size pass, one at a time, within the byte budget above.
//
// To keep other roles from writing logical messages at all, revoke
// pg_logical_emit_message from PUBLIC and grant it to the roles that
// annotate and to the stream's role (for its heartbeats and backfill
// watermarks), in each database. This covers every signature the function
// has (Postgres 17 added a flush argument):
//
//	DO $$
//	DECLARE f regprocedure;
//	BEGIN
//		FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE proname = 'pg_logical_emit_message' LOOP
//			EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
//			EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO walrelay, app', f);
//		END LOOP;
//	END $$;
//
// A [Config] prints (String, GoString, LogValue) with the passwords in
// ConnString masked.
//
// # Backfills
//
// [Stream.Backfill] delivers the rows already in a table as read messages
// through the same stream, interleaved with live changes so that a read
// never overtakes a newer change of its row, and resumable after a restart.
// It pages by the primary key or by backfill.Config.OrderBy; the table's
// replica identity must carry the columns that identify its rows (the
// primary key by default, REPLICA IDENTITY FULL for a table without one),
// else Backfill returns [ErrReplicaIdentity]. Progress is kept in a
// [backfill.ProgressStore] in Config.BackfillTable; [Stream.BackfillStatus]
// reports a backfill's saved progress without creating anything.
//
// # Errors and standbys
//
// Problems with the setup are typed: [ErrWALLevel], [ErrPublicationNotFound]
// (also when the publication was created after the slot),
// [ErrSlotNotFound] (a slot is never re-created behind the user's back),
// [ErrSlotInUse], [ErrSlotInvalidated] (wal_status = lost),
// [ErrSlotMismatch] (another plugin or database), all wrapped in a
// [*SlotError] naming the slot; [IsAuthError] reports authentication and
// privilege failures, which are never retried. Nor is a server certificate
// that fails verification with sslmode=verify-full or verify-ca (an unknown
// authority, another host name, an expired certificate), at Open, on a
// reconnect or in a backfill: errors.As finds Go's
// *tls.CertificateVerificationError (verify-full) or x509 error in it. A
// malformed replication message is a [*DecodeError]. [IsRetryable] is the
// one retry policy: the stream reconnects, and a backfill reads its chunk
// again, after the errors it accepts (lost connections, a server restarting
// or failing over, conflicts, a busy slot), and stops with any other; call
// it on errors in loops of your own. Postgres lets one process stream from a slot
// at a time: with Config.WaitForSlot, Open waits as a standby while another
// process holds the slot and takes over when it goes away.
//
// # Failover (PostgreSQL 17+)
//
// A logical slot lives on one server: when the primary fails and a standby
// is promoted, a slot that only the old primary had is gone, and the
// changes since cannot be streamed. PostgreSQL 17 synchronises slots to
// standbys. To use it:
//
//   - set Config.Failover, so the slot is created with failover = true (an
//     existing slot is altered to have it; [ErrServerVersion] before 17);
//   - on the standby: sync_replication_slots = on, hot_standby_feedback =
//     on, primary_slot_name set (a physical slot on the primary), and a
//     dbname in primary_conninfo;
//   - on the primary: synchronized_standby_slots = '<that physical slot>', so
//     that logical walsenders send nothing the standby has not received. A
//     stream must never deliver a transaction that the promotion undoes;
//   - point Config.ConnString at every server, the primary first, with
//     target_session_attrs=primary, for example
//     "host=db1,db2 dbname=app target_session_attrs=primary" or
//     "postgres://app@db1:5432,db2:5432/app?target_session_attrs=primary".
//     The stream's reconnects, like its other connections, then go to
//     whichever server is the primary.
//
// Before relying on a failover, check on the standby that the copy is ready:
//
//	select synced and not temporary and invalidation_reason is null
//	from pg_replication_slots where slot_name = 'orders_cdc';
//
// After the promotion the stream goes on from the copy's position: changes
// after it are delivered again (same idempotency keys), none are skipped.
// The stream checks the new server's timeline history against what it
// received: positions past the point where the new timeline forked are
// brought back to it (the new primary reuses those WAL positions), and a
// transaction received past it is [ErrHistoryDiverged] (the primary lacked
// synchronized_standby_slots). So is a server on an older timeline than the
// stream already read, such as a former primary that came back.
//
// Errors: the copy on a standby that is not yet promoted is [ErrSlotSyncing]
// (Open returns it; a running stream that reconnects to such a standby keeps
// retrying until the promotion); a promoted server without the slot —
// promoted before the copy was synchronised — is [ErrSlotNotSynced]: create a
// new slot and backfill. Do not rely on Config.CreateSlot to get going again
// after a failover: it would create a new slot at the current position,
// without the changes in between.
//
// # Streaming from a standby (PostgreSQL 16+)
//
// To keep decoding load off the primary, a stream can read from a hot
// standby: point Config.ConnString at the standby. The slot lives on the
// standby (create it there, or let Config.CreateSlot do it: creation waits
// until the primary logs its running transactions, which it does every 15
// seconds, or at once with select pg_log_standby_snapshot() on the primary).
// The publication is created on the primary and reaches the standby through
// replication. Set hot_standby_feedback = on on the standby (and use a
// physical slot for it on the primary), or the primary may remove rows the
// slot still needs and Postgres invalidates it ([ErrSlotInvalidated]).
//
// A standby takes no writes, so the stream writes no heartbeat messages
// there: when nothing is in flight, the slot advances by the stream
// acknowledging the WAL position of the standby's keepalives, which follows
// the primary's WAL as the standby replays it. Backfills write watermarks
// and progress, so [Stream.Backfill] needs the primary. Changes reach the
// stream once the standby has replayed them. Restarts of the standby or the
// primary are ridden through like any dropped connection. Before 16, Open on
// a standby is [ErrServerVersion].
//
// # Server versions
//
// PostgreSQL 14 to 18 are supported and tested. Differences the stream
// handles or exposes:
//
//   - A publication created after the slot: before 18 pgoutput fails; 18
//     warns and skips it, dropping the changes before it. Both are
//     [ErrPublicationNotFound].
//   - Generated columns are never sent before 18. From 18, a publication
//     created WITH (publish_generated_columns = stored) sends stored
//     generated columns, which then appear in Record; virtual ones never do.
//   - Failover slots (Config.Failover) need 17; streaming from a standby
//     needs 16.
//   - A slot's invalidation (wal_status = lost, 17's invalidation_reason,
//     16's conflicting on a standby) is [ErrSlotInvalidated].
package cdc
