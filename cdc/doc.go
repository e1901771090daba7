// Package cdc streams every insert, update and delete of a Postgres
// database — and backfill reads of the rows already there — as
// [message.Message] values in the shape Sequin delivers, at least once.
//
// # Prerequisites
//
// The server needs wal_level = logical (and max_replication_slots,
// max_wal_senders above zero; a restart after changing them). The role in
// Config.ConnString needs the REPLICATION attribute (or superuser) and, to
// let the stream create them, the right to create publications and slots.
// Tables without a primary key need a REPLICA IDENTITY for updates and
// deletes to be published. For updates to carry the prior values of every
// changed column in Changes, and deletes the whole old row, set
// ALTER TABLE … REPLICA IDENTITY FULL; otherwise Changes holds only a changed
// primary key (or is empty) and a delete's Record only the key columns.
//
// # Streaming
//
// [Open] checks the server and the publication and slot in [Config], creates
// them when asked (CreatePublication, CreateSlot) and starts streaming.
// [Stream.Next] returns messages in commit order; [Stream.Ack] marks a
// message, and everything returned before it, as durable; [Stream.Close]
// reports what was acknowledged and stops:
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
// # Guarantees
//
// Delivery is at least once. The slot's confirmed position advances only to
// the end of a transaction whose every message was acknowledged — never past
// an unacknowledged message, never backwards. After a crash Postgres sends
// again from that position; a redelivered change carries the same
// idempotency key (base64 of "commit_lsn:commit_idx", see package
// idempotency), so consumers can drop duplicates. After Ack and Close, a
// restart delivers nothing that was acknowledged.
//
// A stream reads in its own goroutine, into a bounded buffer
// (Config.BufferSize); while the caller is slow it stops reading but keeps
// the connection alive with status updates. Transactions are emitted as they
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
// documents. Unchanged TOASTed columns that Postgres does not send are
// filled from the old row when there is one (REPLICA IDENTITY FULL), and are
// otherwise [message.UnchangedToast] — never NULL. A TRUNCATE becomes one
// [message.ActionTruncate] message per table by default (Config.Truncate).
//
// Transaction annotations are set from inside the transaction with
//
//	select pg_logical_emit_message(true, 'sequin:transaction_annotations.set', '{"user": "ann"}');
//
// (or the prefix walrelay:transaction_annotations.set) and apply to the
// changes after it in that transaction; …clear clears them. Annotations that
// are not a JSON object are logged and dropped (null); nothing else is lost.
//
// # Backfills
//
// [Stream.Backfill] delivers the rows already in a table as read messages
// through the same stream, interleaved with live changes so that a read
// never overtakes a newer change of its row, and resumable after a restart.
// It pages by the primary key or by backfill.Config.OrderBy; the table's
// replica identity must carry the columns that identify its rows (the
// primary key by default, REPLICA IDENTITY FULL for a table without one),
// else Backfill returns [ErrReplicaIdentity]. [Stream.BackfillStatus]
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
// privilege failures, which are never retried; a malformed replication
// message is a [*DecodeError]. Postgres lets one process stream from a slot
// at a time: with Config.WaitForSlot, Open waits as a standby while another
// process holds the slot and takes over when it goes away.
package cdc
