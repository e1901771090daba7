// Package idempotency turns walrelay's at-least-once delivery into effects
// that happen exactly once.
//
// # Keys
//
// Every message carries an idempotency key in Metadata.IdempotencyKey, and a
// redelivered message carries the same key. [message.ChangeKey] derives it
// for a change from the transaction's commit LSN and the change's index in
// that transaction; [message.ReadKey] derives it for a backfill read from
// the backfill ID and the row's primary key. Both are the standard padded
// base64 of a decimal, colon-joined string ("97500059720:3",
// "backfill-7:42"), exactly as Sequin computes them, so consumers written
// for Sequin deduplicate walrelay's messages unchanged. The stream and
// backfills use these functions; nothing else in walrelay derives keys.
//
// # Why duplicates happen
//
// A stream acknowledges a position to Postgres only after the sink has
// taken every message before it. A crash between delivery and
// acknowledgement makes Postgres send those messages again. Nothing is
// lost, but some messages arrive twice; a consumer removes them by
// remembering which keys it has handled.
//
// # Stores
//
// A [Store] remembers claimed keys: [Store.Claim] reports first = true
// exactly once per key, even under concurrent claims. [MemoryStore] keeps a
// bounded number of recent keys in one process; [PostgresStore] keeps them
// in a table (created if missing) shared by processes and surviving
// restarts, pruned by age with [PostgresConfig.Retention] or
// [PostgresStore.Prune]. A store's retention must outlast the time a message
// can take to be redelivered. The package storetest is the conformance
// suite every store passes.
//
// # Deduplicating a sink
//
// [Dedupe] wraps a sink: it drops messages whose keys are claimed, writes
// the rest and then claims them. That removes almost all duplicates, but
// it is still at-least-once: a crash after the sink wrote a batch and
// before its keys were claimed lets the batch through again.
//
// # Exactly-once effects in Postgres
//
// When the effect of a message is a write to a Postgres database, claim the
// key in the same transaction as the write with [PostgresStore.ClaimTx].
// The write and the claim then commit together or not at all: a crash
// before the commit leaves neither (the redelivery applies it), a crash
// after leaves both (the redelivery finds the key claimed and is skipped).
// Acknowledge the message to the stream only after the commit:
//
//	store, err := idempotency.NewPostgresStore(ctx, pool, idempotency.PostgresConfig{})
//	…
//	for {
//		m, err := stream.Next(ctx)
//		if err != nil {
//			return err
//		}
//		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
//			first, err := store.ClaimTx(ctx, tx, m.Metadata.IdempotencyKey)
//			if err != nil || !first {
//				return err // a duplicate: already applied
//			}
//			return apply(ctx, tx, m) // upsert or delete the row
//		})
//		if err != nil {
//			return err
//		}
//		stream.Ack(m)
//	}
//
// The program in examples/exactly-once replicates a table this way and
// stays identical to its source however often it is killed.
package idempotency
