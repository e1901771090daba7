// Package message defines the change messages walrelay delivers — [Message],
// [Metadata], [Action], [LSN] — and their JSON encoding, byte for byte the
// shape Sequin delivers, so that consumers written for Sequin work
// unchanged. SEQUIN.md, next to this package's source, compares walrelay's
// JSON with Sequin's for every Postgres type and message rule, with the
// Sequin source that decides each, and lists the few deliberate
// differences (where Sequin loses data).
//
// # The shape
//
// [Message.MarshalJSON] writes, with no whitespace and keys in exactly this
// order:
//
//	{"record":{…},"changes":{…}|null,"action":"insert",
//	 "metadata":{"table_schema":"public","table_name":"orders",
//	  "idempotency_key":"MTIzNDU2Nzg5OjA=",
//	  "commit_timestamp":"2024-10-28T21:37:01.127470Z",
//	  "commit_lsn":123456789,"commit_idx":0,"record_pks":["1234"],
//	  "database_name":"myapp-prod",
//	  "consumer":{"id":"…","name":"…","annotations":{}},
//	  "database":{"id":"…","name":"myapp-prod","annotations":{},
//	   "database":"myapp","hostname":"db.example.com"},
//	  "transaction_annotations":null,"enrichment":null}}
//
// In it:
//
//   - action is one of the [Action] values: insert, update, delete, read
//     (backfill rows), and truncate when a stream is configured to emit it.
//   - commit_timestamp is RFC 3339 in UTC with exactly six fractional digits
//     (microseconds, truncated) and Z.
//   - commit_lsn is the transaction's commit LSN as a JSON integer (not the
//     "16/B374D848" text of [LSN.String]); commit_idx is the change's
//     position in the transaction, from 0, counting (as Sequin does) every
//     insert, update, delete, truncate and logical message of it, delivered
//     or not. Together they identify a change. A read (action read) is in
//     no transaction: both are null.
//   - record_pks is Sequin's list of the primary-key values as strings
//     ([AppendKeyText] form), in table column order when
//     [Metadata.Columns] lists the key columns (Sequin sorts them by
//     column number), else in [Metadata.PrimaryKey] order; [] without a
//     key. [Metadata.RecordPKs], when set, is written instead.
//   - enrichment is [Metadata.Enrichment], null when nil.
//   - database_name is deprecated; it repeats database.name unless
//     [Metadata.DatabaseName] is set.
//   - Metadata.PrimaryKey, Metadata.Columns and Metadata.Position are not
//     part of the JSON.
//
// # null or {}
//
//   - record: an object; null only when [Message.Record] is nil (a truncate).
//   - changes: null when [Message.Changes] is nil (insert, delete, read); {}
//     when it is empty but not nil — an update whose old row Postgres did not
//     send (the table lacks REPLICA IDENTITY FULL).
//   - consumer.annotations and database.annotations: always an object, {}
//     when nil. Sequin stores these annotations with an empty map as the
//     default, and its published examples always show an object, so
//     consumers may index into them without a null check.
//   - transaction_annotations: null when none were set in the transaction,
//     as in Sequin; an object otherwise, or, when the annotations set were
//     JSON but not an object, [Metadata.RawTransactionAnnotations] as it is.
//
// # Key order
//
// Record and Changes keys follow [Metadata.Columns] (table column order)
// when every key of the map is listed there; Changes, a subset of the
// columns, is written in the same relative order. Otherwise, and in every
// nested object and annotation map, keys are sorted. Encoding is therefore
// deterministic: the same message always gives the same bytes.
//
// # Values
//
// Values in Record, Changes and the annotation maps are written as:
//
//   - nil: null; bool: true or false.
//   - int, int8…int64, uint, uint8…uint64: JSON integers.
//   - float32, float64: the shortest representation that reads back to the
//     same float, as encoding/json writes it (1e-7, 1e+21 in exponent form);
//     NaN, +Inf and -Inf as the strings "NaN", "Infinity" and "-Infinity".
//   - [Numeric] (Postgres numeric): a JSON string of its exact text,
//     "1.5000", as Sequin writes numerics, so a 1000-digit numeric survives
//     and keeps its scale; NaN, Infinity and -Infinity likewise. With
//     [JSONOptions].NumericNumbers, finite numerics are JSON numbers with the
//     same digits instead (1.5000).
//   - json.Number: its digits as they are, never through float64; one that
//     is not a JSON number is written as a string.
//   - [Interval] (Postgres interval): {"days":3,"microseconds":14706789000,
//     "months":14}, as Sequin writes it.
//   - json.RawMessage (json, jsonb): embedded, compacted; it must be valid
//     JSON or encoding fails with a [*RawJSONError]. A nil RawMessage is null.
//   - string: escaped as encoding/json escapes, except that <, > and & are
//     left alone (no HTML escaping); U+2028 and U+2029 are escaped; invalid
//     UTF-8 becomes U+FFFD, written as the character itself.
//   - []byte: Postgres's bytea hex text, "\\x00ff"; nil is null. (Streams
//     and backfills decode bytea columns to that text as a string, so it is
//     written the same way.)
//   - []any (arrays): a JSON array; map[string]any: an object, keys sorted.
//   - time.Time: a string in UTC with six fractional digits and Z, like
//     commit_timestamp; years outside 0–9999 are an error.
//   - [UnchangedToast]: the string [UnchangedToastJSON], "unchanged_toast".
//   - anything else: encoding/json's encoding, without HTML escaping; its
//     errors (and a panic in a MarshalJSON method) are returned as errors.
//
// Go maps and slices nested more than 10000 levels deep (a map that
// contains itself, say) are an error, never a crash. Raw JSON
// (json.RawMessage, such as json and jsonb columns) is accepted at any
// depth: it cannot contain itself, and Postgres stores jsonb nested deeper
// than 10000 levels.
//
// # Unchanged TOAST columns
//
// Postgres does not resend a large (TOASTed) column that an update left
// unchanged. When no old row is available to fill it in, the Record carries
// [UnchangedToast]{} for that column (test with [IsUnchangedToast]),
// written as the string "unchanged_toast", as Sequin writes it: never null,
// never a stale value. Compare with [UnchangedToastJSON] when consuming
// JSON.
//
// # Idempotency keys
//
// metadata.idempotency_key is the standard padded base64 of
// "<commit_lsn>:<commit_idx>" in decimal for changes, and of
// "<backfill_id>:<pk1>[:<pk2>…]" for backfill reads: [ChangeKey] and
// [ReadKey] compute them, for streams and backfills alike. A redelivered
// message carries the same key, so consumers can drop duplicates with it
// (package idempotency turns that into effects that happen once).
//
// # Speed
//
// Write messages with an [Encoder] (one JSON line per message to an
// io.Writer) or [Message.AppendJSON] (to a caller's buffer). Both reuse
// their buffer across messages, allocate nothing, and avoid reflection and
// fmt for the value types listed above:
//
//	enc := message.NewEncoder(w)
//	for … {
//		if err := enc.Encode(m); err != nil { … }
//	}
//
//	var buf []byte
//	for _, m := range msgs {
//		buf, err = m.AppendJSON(buf[:0])
//		…
//	}
//
// [Message.MarshalJSON] gives the same bytes and allocates only the slice
// it returns. json.Marshal(m) and json.NewEncoder(w).Encode(m) also give the
// same JSON, but encoding/json scans again and copies every byte that
// MarshalJSON returns, which no Marshaler can avoid: for a typical
// 10-column row that is several times the CPU of AppendJSON (see
// BenchmarkEncodeWays). They also HTML-escape <, > and & as \u003c, \u003e
// and \u0026, unless the json.Encoder has SetEscapeHTML(false). A program
// built with GOEXPERIMENT=jsonv2 (Go's encoding/json v2) gets a
// MarshalJSONTo method on Message, which encoding/json then uses: the same
// bytes for about half to two thirds of the CPU of json.Marshal in a
// default build, still several times AppendJSON's.
//
// # Other shapes
//
// [Message.RecordJSON] writes the record alone, exactly as in the seed
// shape. [Message.EventJSON] (and [Message.AppendEventJSON]) write the
// legacy "event" format of the older Sequin product, with the same value
// encodings.
//
// # Table names
//
// Everywhere walrelay takes a table name from its user — backfill.Config,
// cdc.Config's PublicationTables and BackfillTable, sink.Tables,
// idempotency.PostgresConfig — it is written as in SQL and read by
// [ParseTable]: "schema.table" or "table", unquoted names folded to lower
// case (Orders is orders), and double quotes around a name that keeps its
// case or has dots or quotes in it ("my.schema"."Orders"). Metadata carries
// the names as the catalog stores them, unquoted: my.schema and Orders.
//
// # Column lists
//
// [Metadata.PrimaryKey] and [Metadata.Columns] name the table's key columns
// and its columns. A stream gives every message of a table the same two
// lists, the ones its table cache holds, without copying them; so
// Metadata never hands them out: both methods return copies, which a
// caller may change freely, and [Metadata.SetPrimaryKey] and
// [Metadata.SetColumns] replace a message's lists (transforms such as
// sink.DropColumns do). [Metadata.HasPrimaryKey] asks without copying.
// [Position] is opaque in the same way: streams set it, Ack reads it.
//
// # Decoding
//
// [Message.UnmarshalJSON] reads the shape back: integers that fit an int64
// become int64, every other number a json.Number (exact), strings stay
// strings (timestamps included), objects become map[string]any and arrays
// []any. It records the record's key order in [Metadata.Columns]. For
// messages whose values are in these decoded forms, encoding, decoding and
// encoding again gives identical bytes; for any other message the result is
// equal as JSON (a jsonb object's keys come back sorted). Unknown fields
// are ignored; record_pks goes to Metadata.RecordPKs, enrichment to
// Metadata.Enrichment, a non-object transaction_annotations to
// Metadata.RawTransactionAnnotations, and a null commit_lsn or commit_idx
// decodes as 0; commit_lsn may also be given as Postgres LSN text. Numerics
// written as strings decode as strings. It decodes with encoding/json, which
// refuses values nested more than 10000 levels deep: a message carrying such
// a jsonb value encodes, but does not decode back.
package message
