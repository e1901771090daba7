// Package backfill reads the rows already in a table as read messages, so a
// consumer can start from a full copy of the table and then follow its
// changes.
//
// # Reads
//
// A read is a row as it is now, not a change: its message has Action
// message.ActionRead, Record the row, and Changes nil. Values are decoded
// exactly as the replication stream decodes them, so a read and a later
// insert or update of the same row look alike. The metadata holds the
// table's schema and name, Columns (the columns read, in table order),
// PrimaryKey (the key column names), CommitTimestamp (the time the page was
// read, UTC) and the Consumer and Database identity from [Config]. A read is
// not part of a transaction: CommitLSN and CommitIdx are 0, and the JSON
// has "commit_lsn":null,"commit_idx":null, as Sequin's reads do; its
// metadata.record_pks lists the row's key values.
//
// # Reading a table
//
// Create an [Iterator] with [New], which looks the table up through a
// [Querier] (a *pgx.Conn, a *pgxpool.Pool or a pgx.Tx), then call
// [Iterator.Next] until it returns io.EOF, or [Iterator.NextChunk] for a
// page of rows at a time. The iterator holds no connection: each call that
// reads is given the Querier to read through, so one page can be read in a
// transaction of the caller's and the next on a pool:
//
//	it, err := backfill.New(ctx, conn, backfill.Config{Table: "public.orders", ID: "orders-2024-10"})
//	if err != nil { … }
//	for {
//		m, err := it.Next(ctx, conn)
//		if errors.Is(err, io.EOF) { break }
//		if err != nil { … }
//		… deliver m …
//	}
//
// [Config.Table] is written as in SQL: Orders is the table orders, and a
// name with upper case, dots or quotes is double-quoted, as in
// `"my.schema"."Orders"` (see message.ParseTable).
//
// # Keys and ordering
//
// The iterator pages by keyset: each query asks for the rows strictly after
// the last row it returned, in key order, at most [Config.ChunkSize] rows
// (by default sized adaptively, see [DefaultChunkSize]).
// Every page is one short index scan, however far into the table it is, and
// nothing holds a snapshot or locks between pages. The key is the primary key
// (any column types, composite keys included); a table without one needs
// [Config.OrderBy], columns that are NOT NULL and unique together. A table
// with neither is [ErrNoPrimaryKey]; an unknown table is [ErrTableNotFound];
// an unknown column in Columns or OrderBy is [ErrUnknownColumn].
//
// Pages are read at different moments: rows inserted, updated or deleted
// while a backfill runs may or may not be seen, and a row whose key changes
// can be missed or read twice. Each page is consistent on its own. Read
// every page through one REPEATABLE READ transaction (pass the pgx.Tx) to
// read the whole table as of one snapshot, at the cost of holding that
// snapshot. The
// watermark-consistent variant, in which reads are interleaved with the live
// change stream so that a read never overtakes a newer change of its row, is
// cdc.Stream.Backfill; it is built on [Iterator.NextChunk].
//
// # Idempotency keys
//
// Each read's idempotency key is [message.ReadKey] of [Config.ID] and the
// row's key values (the decoded Record values of the PrimaryKey columns, in
// key order; these are canonical — timestamps in UTC — so they do not depend
// on session settings). Reading the table again with the same ID yields the
// same keys for the same rows; use a new ID for a new backfill whose reads
// must not be deduplicated against an earlier one.
//
// # Cursors and resuming
//
// [Iterator.Cursor] is the position after the last row returned: the text
// form of that row's ordering-key values. It is a []string, so it can be
// stored as JSON next to whatever the consumer has durably processed. After
// a crash, pass the stored cursor in [Config.Cursor] to a new iterator: it
// reads strictly after that row. Rows delivered after the cursor was saved
// are read again — at-least-once — with the same idempotency keys.
//
// A [ProgressStore] keeps cursors in a Postgres table (by default
// [DefaultProgressTable]), one [Progress] per backfill ID: [ProgressStore.Create]
// makes the table, [ProgressStore.Save] records a cursor — in the
// transaction that stores the rows, when they go to the same database —
// and [ProgressStore.Load] returns it, creating nothing. cdc's
// Stream.Backfill keeps its progress in one.
//
// # Limits
//
// Each page is held in memory until it is returned. Adaptive pages stay near
// [MaxChunkBytes] of values (and at most [MaxChunkSize] rows); a fixed
// ChunkSize should be chosen with the row width in mind. Decoded values of
// many rows share blocks of memory, so a caller that keeps one message of a
// page keeps up to a block (64 KiB of text) alive with it. [Config.Where] is
// SQL written by the caller and is trusted. Timestamps require DateStyle ISO,
// the Postgres default. Array lower bounds are not kept. A value the mapping
// cannot decode stops the iterator with an error naming the table and
// column, unless [Config.Undecodable] supplies a value in its place.
//
// # Speed and the collector
//
// Every read is a Message with its own Record map, as the message format
// requires, and the Go runtime's work for them is the largest part of the
// iterator's cost: the collector marking them, and the kernel faulting
// memory back in when the heap grows again after the runtime returned the
// last page's memory. On a 2-core machine, reading 100-byte rows, the
// iterator runs at about half the rate of COPY … TO STDOUT of the same rows
// with the default settings, at about two thirds with GOGC=400, and at about
// 0.85 with GOGC=off and a GOMEMLIMIT 256 MiB above the process's memory
// (BENCHMARKS.md has the figures and the command). A process whose main work
// is a large backfill can trade memory for speed with a higher GOGC, or with
// GOGC=off and a GOMEMLIMIT (keep a limit: with GOGC=off alone the heap
// grows without end and every page is fresh memory, which is slower still);
// on Linux, GODEBUG=madvdontneed=0 also removes most of the faults, since
// freed memory then stays with the process until the kernel needs it. The
// iterator itself never changes these settings.
package backfill
