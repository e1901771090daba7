package message

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// Action says what happened to a row.
type Action string

// The actions a [Message] can carry.
const (
	ActionInsert Action = "insert"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
	// ActionRead is a row read by a backfill, not a change.
	ActionRead Action = "read"
	// ActionTruncate reports a TRUNCATE of a table. Its Record and Changes
	// are nil. Sequin has no such action; streams emit it only when their
	// configuration asks for it (see cdc.Config.Truncate).
	ActionTruncate Action = "truncate"
)

// Valid reports whether a is one of the defined actions.
func (a Action) Valid() bool {
	switch a {
	case ActionInsert, ActionUpdate, ActionDelete, ActionRead, ActionTruncate:
		return true
	}
	return false
}

// Message is one change (or backfill read) of one row.
//
// Record and Changes hold JSON-ready values: nil, bool, int64, float64,
// string, [Numeric] (Postgres numeric), [Interval], json.RawMessage (json
// and jsonb), []any (arrays), map[string]any, time.Time (encoded as RFC 3339
// UTC with six fractional digits), json.Number, []byte (encoded as Postgres
// bytea hex text) and [UnchangedToast]. Other values are encoded with
// encoding/json. A stream decodes bytea columns to their Postgres hex text,
// a string such as `\x00ff` (in JSON "\\x00ff").
type Message struct {
	// Record is the row after the change; for a delete, the old row: every
	// column, with null for the columns Postgres did not send (all but the
	// key columns, unless the table has REPLICA IDENTITY FULL).
	Record map[string]any
	// Changes holds, for an update, the prior values of the columns whose
	// value changed. It is empty (not nil) when the old row is unknown, and
	// nil for every other action.
	Changes  map[string]any
	Action   Action
	Metadata Metadata
}

// Metadata describes where a change came from and identifies it.
type Metadata struct {
	TableSchema     string
	TableName       string
	IdempotencyKey  string
	CommitTimestamp time.Time
	// CommitLSN is the commit LSN of the transaction (pgoutput Begin's final
	// LSN). A read has none: its JSON commit_lsn is null.
	CommitLSN LSN
	// CommitIdx is the position of the change in its transaction, from 0,
	// counted as Sequin counts: every insert, update, delete, truncate and
	// logical message of the transaction takes one, delivered or not. A read
	// has none: its JSON commit_idx is null.
	CommitIdx int
	// DatabaseName mirrors Database.Name for Sequin's metadata.database_name:
	// when set it is written there, else Database.Name is; UnmarshalJSON
	// sets it from that field. Streams and backfills set it.
	//
	// Deprecated: Use Database.Name.
	DatabaseName           string
	Consumer               Consumer
	Database               Database
	TransactionAnnotations map[string]any
	// RawTransactionAnnotations holds transaction annotations that are
	// valid JSON but not an object (an array, a string, a number), as they
	// were set. It is written as transaction_annotations when
	// TransactionAnnotations is nil.
	RawTransactionAnnotations json.RawMessage
	// RecordPKs, when not nil, is written as metadata.record_pks as it is;
	// when nil (as streams and backfills leave it), record_pks is derived
	// from Record and PrimaryKey (see the package doc). UnmarshalJSON sets
	// it.
	RecordPKs []string
	// Enrichment is Sequin's metadata.enrichment: null when nil. walrelay
	// never sets it; a transform may.
	Enrichment map[string]any

	// primaryKey and columns are read with PrimaryKey and Columns, which
	// return copies: a stream shares these slices with its relation cache
	// and every message of the table, so nothing outside this package may
	// write into them.
	primaryKey []string
	columns    []string

	// Position is where the message sits in the stream that produced it. It
	// is not part of the JSON; Stream.Ack uses it.
	Position Position
}

// Position is where a message sits in the stream that produced it: which
// stream, and the message's number in it. It is opaque: streams set it and
// read it back in Ack, and it is comparable with == (and usable as a map
// key). The zero value means "not from a stream".
type Position struct {
	stream uint64 // identifies the stream
	seq    uint64 // numbers the messages a stream returned, from 1
}

// NewPosition returns the position of the seq-th message (from 1) of the
// stream identified by stream. It is for code that produces messages for a
// stream's Ack, such as a stream itself.
func NewPosition(stream, seq uint64) Position { return Position{stream: stream, seq: seq} }

// Stream identifies the stream that produced the message; 0 for none.
func (p Position) Stream() uint64 { return p.stream }

// Seq is the message's number in its stream, from 1; 0 for none.
func (p Position) Seq() uint64 { return p.seq }

// IsZero reports whether p is the zero Position: the message did not come
// from a stream.
func (p Position) IsZero() bool { return p == Position{} }

// Compare orders positions by stream, then by number within the stream:
// -1 if p is before q, 0 if they are equal, +1 if p is after q. Only the
// order within one stream says which message came first.
func (p Position) Compare(q Position) int {
	if c := cmp.Compare(p.stream, q.stream); c != 0 {
		return c
	}
	return cmp.Compare(p.seq, q.seq)
}

// String returns "<stream>/<seq>", or "none" for the zero Position.
func (p Position) String() string {
	if p.IsZero() {
		return "none"
	}
	return strconv.FormatUint(p.stream, 10) + "/" + strconv.FormatUint(p.seq, 10)
}

// PrimaryKey returns the names of the table's primary-key (or replica
// identity) columns in key order, or nil when the table has none or they
// are unknown (as after decoding JSON). The slice is a copy: changing it
// changes no message; use [Metadata.SetPrimaryKey] for that. The names are
// not part of the JSON.
func (md Metadata) PrimaryKey() []string { return slices.Clone(md.primaryKey) }

// HasPrimaryKey reports whether PrimaryKey names any column, without
// copying the names.
func (md Metadata) HasPrimaryKey() bool { return len(md.primaryKey) > 0 }

// SetPrimaryKey sets the names PrimaryKey returns. md keeps cols as it is,
// without copying it (streams set the same names on every message of a
// table): do not change the slice afterwards.
func (md *Metadata) SetPrimaryKey(cols ...string) { md.primaryKey = cols }

// Columns returns the names of the table's columns in table order, or nil
// when unknown; when set, the JSON encoding writes Record's and Changes'
// keys in this order. The slice is a copy: changing it changes no message;
// use [Metadata.SetColumns] for that. The names are not part of the JSON.
func (md Metadata) Columns() []string { return slices.Clone(md.columns) }

// SetColumns sets the names Columns returns. md keeps cols as it is,
// without copying it: do not change the slice afterwards.
func (md *Metadata) SetColumns(cols ...string) { md.columns = cols }

// Consumer identifies the consumer (the process reading the stream).
type Consumer struct {
	ID          string
	Name        string
	Annotations map[string]any
}

// Database identifies the source database.
type Database struct {
	ID          string
	Name        string
	Annotations map[string]any
	Database    string
	Hostname    string
}

// UnchangedToast is the value a Record holds for a TOASTed column whose
// value an update left unchanged and that Postgres did not send (pgoutput's
// 'u'), when no old row was available to fill it in. It is never a NULL and
// never a real value. In JSON it is the string [UnchangedToastJSON], as in
// Sequin. Test for it with [IsUnchangedToast].
type UnchangedToast struct{}

// UnchangedToastJSON is how [UnchangedToast] appears in JSON (Sequin's
// marker).
const UnchangedToastJSON = "unchanged_toast"

// IsUnchangedToast reports whether v is the [UnchangedToast] marker.
func IsUnchangedToast(v any) bool {
	_, ok := v.(UnchangedToast)
	return ok
}

// MarshalJSON writes [UnchangedToastJSON] as a JSON string.
func (UnchangedToast) MarshalJSON() ([]byte, error) {
	return []byte(`"` + UnchangedToastJSON + `"`), nil
}

// Numeric is a Postgres numeric value: its exact text as Postgres prints it
// ("12345678901234567890.123456789", "1.5000", "NaN", "Infinity"). In JSON
// it is a string of that text, as Sequin writes numerics; [JSONOptions]
// can write the finite ones as JSON numbers instead, every digit kept.
type Numeric string

// MarshalJSON writes the numeric as a JSON string of its text.
func (n Numeric) MarshalJSON() ([]byte, error) { return appendString(nil, string(n)), nil }

// Interval is a Postgres interval: months, days and microseconds, the
// three fields Postgres keeps (a year is 12 months). In JSON it is
// {"days":3,"microseconds":14706789000,"months":14}, as Sequin writes it.
type Interval struct {
	Months       int32
	Days         int32
	Microseconds int64
}

// MarshalJSON writes the interval as a JSON object with sorted keys.
func (iv Interval) MarshalJSON() ([]byte, error) { return appendInterval(nil, iv), nil }

// PrimaryKeyValues returns the record's primary-key values in key order.
func (m Message) PrimaryKeyValues() []any {
	vals := make([]any, len(m.Metadata.primaryKey))
	for i, k := range m.Metadata.primaryKey {
		vals[i] = m.Record[k]
	}
	return vals
}
