// Package sink defines where messages go: the [Sink] contract, ways to
// compose sinks, and the encoders byte-oriented sinks use.
//
// # The contract
//
// A [Sink] has two methods. Write(ctx, msgs...) delivers a batch and is
// all-or-nothing: it returns nil only when every message is durable at the
// destination. On any error the caller (cdc.Run, or your own loop) retries
// the whole batch, so:
//
//   - Duplicates are normal. A sink must accept a batch it has already
//     partly or wholly delivered; receivers deduplicate with each message's
//     Metadata.IdempotencyKey, which is the same on every delivery.
//   - Order matters. Messages arrive in stream order, and a sink must keep
//     at least the order of each row (the same table and primary key).
//   - Some failures will not heal. Wrap them with [Permanent] (a rejected
//     payload, a missing topic) so the delivery loop stops instead of
//     retrying forever; [IsPermanent] tests for the mark. Everything else is
//     retried. An error that aggregates others implements Unwrap() []error.
//   - A cancelled ctx makes Write return promptly with an error wrapping
//     ctx.Err(). After Close, Write returns an error such as [ErrClosed].
//
// Package sink/sinktest checks all of this for any sink.
//
// # Composing sinks
//
// [Fanout] writes each batch to several sinks and succeeds when all do.
// [Filter] keeps the messages a [Predicate] accepts; [Tables], [Actions],
// [All], [Any] and [Not] build predicates like Sequin's table and action
// filters. [Map] rewrites or drops messages with a [Transform]; [DropColumns],
// [RenameColumns] and [MaskColumns] are ready-made, and [Chain] runs several
// in order. A failing transform is permanent unless marked [Retryable].
// Transforms never change the caller's messages: Map hands them copies.
// [Retry] retries a sink's transient errors with backoff (cdc.Run does this
// for the sink it is given; use Retry inside a [Fanout] to retry one flaky
// destination without rewriting the others). Every retry policy in walrelay
// is a field named Backoff, a func() backoff.BackOff; nil means
// [DefaultBackoff] (exponential from 100 ms to 10 s, with jitter, without
// end), except in sink/webhook, which documents its own.
//
//	s := sink.Filter(
//		sink.Map(webhookSink, sink.MaskColumns("email")),
//		sink.All(sink.Tables("public.users"), sink.Not(sink.Actions(message.ActionRead))),
//	)
//
// # Encoders
//
// An [Encoder] turns a message into bytes. [JSON] (the default of every sink)
// writes Sequin's message shape; [RecordOnly] writes just the record, like
// Sequin's record_only format; [Event] writes the legacy event format of the
// older Sequin product. Any func(message.Message) ([]byte, error) will do.
//
// # Stats
//
// A sink that counts what it does implements [StatsReporter]: Stats returns
// a [Stats] (writes, messages, failed attempts, retries, the last error and
// when). sink/kafka and sink/webhook do; package metrics/prom exports them.
// The wrappers here do not pass their inner sink's counters through: keep
// the inner sink to read them.
//
// # Writing your own sink
//
// For a destination reached by a function call, adapt the function with
// [Func]:
//
//	s := sink.Func(func(ctx context.Context, msgs ...message.Message) error {
//		tx, err := db.Begin(ctx)
//		if err != nil {
//			return err // retried
//		}
//		defer tx.Rollback(ctx)
//		for _, m := range msgs {
//			// Upsert keyed by m.Metadata.IdempotencyKey, so a redelivery is harmless.
//			if err := upsert(ctx, tx, m); err != nil {
//				return err
//			}
//		}
//		return tx.Commit(ctx) // all or nothing
//	})
//
// A sink with resources to release implements [Sink] itself: Write as
// above, honouring ctx, and a Close that is safe to call twice and makes
// later Writes fail. Run sinktest.Run against it.
package sink
