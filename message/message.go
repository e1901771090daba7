package message

import (
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
// string, json.Number (exact numerics), json.RawMessage (json and jsonb),
// []byte (bytea; encoded as base64), []any (arrays), map[string]any,
// time.Time (encoded as RFC 3339 UTC with six fractional digits) and
// [UnchangedToast]. Other values are encoded with encoding/json.
type Message struct {
	// Record is the row after the change; for a delete, the old row
	// (only its key columns unless the table has REPLICA IDENTITY FULL).
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
	// CommitLSN is the commit LSN of the transaction (pgoutput Begin's final LSN).
	CommitLSN LSN
	// CommitIdx counts the changes of a transaction from 0.
	CommitIdx int
	// DatabaseName mirrors Database.Name. Deprecated: use Database.Name; it
	// is still emitted in JSON for compatibility.
	DatabaseName           string
	Consumer               Consumer
	Database               Database
	TransactionAnnotations map[string]any

	// PrimaryKey names the table's primary-key (or replica identity)
	// columns in key order. It is not part of the JSON.
	PrimaryKey []string

	// Columns names the table's columns in table order; when set, the JSON
	// encoding writes Record's keys in this order. It is not part of the JSON.
	Columns []string

	// Position is where the message sits in the stream that produced it. It
	// is opaque to users and not part of the JSON; Stream.Ack uses it.
	Position Position
}

// Position is a stream's bookkeeping for acknowledgement. The zero value
// means "not from a stream".
type Position struct {
	// Seq numbers the messages a stream returned, from 1.
	Seq uint64
	// Stream identifies the stream that produced the message.
	Stream uint64
}

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

// unchangedToast is the type of [UnchangedToast].
type unchangedToast struct{}

// UnchangedToast marks, in a Record, a TOASTed column whose value an update
// left unchanged and that Postgres did not send (pgoutput's 'u'), when no old
// row was available to fill it in. It is never a NULL and never a real value.
// In JSON it is the string [UnchangedToastJSON].
var UnchangedToast any = unchangedToast{}

// UnchangedToastJSON is how [UnchangedToast] appears in JSON.
const UnchangedToastJSON = "__walrelay_unchanged_toast__"

// PrimaryKeyValues returns the record's primary-key values in key order.
func (m Message) PrimaryKeyValues() []any {
	vals := make([]any, len(m.Metadata.PrimaryKey))
	for i, k := range m.Metadata.PrimaryKey {
		vals[i] = m.Record[k]
	}
	return vals
}
