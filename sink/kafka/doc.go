// Package kafka is a [sink.Sink] that produces walrelay messages to Apache
// Kafka (or any broker speaking its protocol), using segmentio/kafka-go.
//
// # Producing changes
//
// Create a sink with [New] and hand it to cdc.Run:
//
//	sk, err := kafka.New(kafka.Config{Brokers: []string{"broker-1:9092", "broker-2:9092"}})
//	if err != nil { … }
//	defer sk.Close(context.Background())
//	err = cdc.Run(ctx, stream, sk, cdc.RunOptions{})
//
// [New] validates the [Config] and does not contact the brokers; the first
// [Sink.Write] does.
//
// # Topics
//
// By default every table has its own topic, "<prefix>.<schema>.<table>"
// with the prefix "sequin" (Sequin's convention, so existing consumers keep
// working): changes to public.users go to "sequin.public.users". Set
// [Config.Prefix] to change the prefix, [Config.Topic] to send everything
// to one topic, or [Config.TopicFunc] to choose per message ([Sink.Topic]
// reports the choice). Topics must exist: a missing topic is a permanent
// error naming it, unless [Config.AllowAutoTopicCreation] is set and the
// broker allows it.
//
// # Keys and ordering
//
// The record key is the row's primary-key values joined with ":" ([Key]),
// and the partition is chosen by the Java client's murmur2 hash of the key,
// so every change of one row lands on one partition, in order, and a Java,
// librdkafka or franz-go producer would pick the same partition. Messages
// without primary-key columns (truncates, tables without a key) have no key
// and all go to one partition of their topic. Consumers that need per-row
// order read each partition in order — which consumer groups do.
//
// # Record contents
//
// The value is the message encoded by [Config.Encoder] — by default
// [sink.JSON], the exact JSON shape Sequin delivers. Each record carries
// three headers:
//
//   - "idempotency-key" ([HeaderIdempotencyKey]): Metadata.IdempotencyKey,
//     the same on every redelivery; consumers deduplicate on it.
//   - "action" ([HeaderAction]): insert, update, delete, read (or truncate).
//   - "table" ([HeaderTable]): "<schema>.<table>".
//
// # Batching
//
// A [Sink.Write] groups its records by topic and partition, keeping their
// order, and sends each partition's records at once in produce requests of
// at most [Config.BatchSize] records and [Config.MaxMessageBytes] bytes —
// a partition's next request only after the previous one was acknowledged,
// different partitions concurrently. Records are not held back to be
// batched with those of later Writes, so there is no batch timeout. A
// topic's partition count is asked of the brokers on its first Write and
// cached for a minute (so partitions added to a topic are used
// soon after, and keys then hash over the new count, as in the Java
// client), and asked again at once after a produce request fails because a
// partition or its leader moved. Failures a retry may fix (a network
// error, a timeout, a leader election) are retried up to
// [Config.MaxAttempts] tries per request.
//
// A Write's records, encoded bytes and requests are kept for the next Write
// once every request was answered at its first try, so a steady stream of
// Writes allocates little; the memory of a Write with an unanswered try is
// left to the collector instead, since that request may still be sending.
//
// Batches may be compressed with [Config.Compression] (gzip, snappy, lz4,
// zstd). [Config.TLS] and [Config.SASL] (PLAIN, SCRAM-SHA-256,
// SCRAM-SHA-512) secure the connection. The SCRAM client refuses a server
// that asks for fewer than 4096 iterations (RFC 7677) or for a mandatory
// extension ("m=", RFC 5802) it does not know. A [Config] or [SASL]
// printed with fmt (%v, %+v, %#v) or logged with slog shows the password
// masked, and of [Config.TLS] only whether it is set.
//
// # Delivery guarantees
//
// Write is synchronous and all-or-nothing: it returns nil only when the
// brokers acknowledged every record with acks=all. If any record fails,
// Write returns an error and the caller (cdc.Run) retries the whole batch,
// so records that did get written are written again: delivery is
// at-least-once, and consumers deduplicate on the idempotency-key header.
// A retried batch is sent after what was sent before, so per-row order
// holds for the latest version of each row. The ctx given to Write bounds
// the wait; a cancelled Write may still complete in the background.
//
// One case escapes that order: a produce request that timed out
// ([Config.WriteTimeout]) or whose Write was cancelled has an unknown fate,
// and a broker that had already read it may append it after the retry, and
// after later records of the partition. Kafka's idempotent producer rules
// this out; kafka-go does not offer it. Keep WriteTimeout well above the
// brokers' slowest produce time, and where a stale version must never win,
// have consumers keep the version with the highest (commit_lsn,
// commit_idx) of each row (see package message) rather than the last
// received.
//
// # Stats
//
// [Sink.Stats] counts successful Writes and their messages, every failed
// produce request (each try of a retried one) and every Write refused
// before sending, the retries, and the last error with its time; it is a
// [sink.StatsReporter] for metrics and health checks.
//
// # Errors
//
// Errors that retrying cannot fix are marked with [sink.Permanent], so
// cdc.Run stops instead of retrying forever:
//
//   - a record larger than [Config.MaxMessageBytes] (the error names the
//     topic, the size and the limit), or rejected by the broker as too large;
//   - an unknown topic (when auto-creation is off), named in the error;
//   - an encoder failure, or a TopicFunc returning "";
//   - a broker certificate that fails verification against [Config.TLS]
//     (an unknown authority, another host name, expired): errors.As finds
//     Go's *tls.CertificateVerificationError in the error.
//   - SASL refused: credentials or a mechanism the broker rejects
//     (kafka-go's SASLAuthenticationFailed, UnsupportedSASLMechanism), or
//     SCRAM parameters this client refuses (see above). A broker that
//     just closes the connection on bad credentials gives an ordinary
//     network error instead.
//
// Everything else — an unreachable broker, a leader election, a timeout —
// is an ordinary error that a retry may fix. After [Sink.Close], Write
// returns [sink.ErrClosed]; Close is idempotent.
package kafka
