package message

import (
	"fmt"
)

// Legacy event names written by [Message.EventJSON].
const (
	EventInserted = "inserted"
	EventUpdated  = "updated"
	EventDeleted  = "deleted"
)

// EventName returns the legacy event name of the message's action (see
// [Message.EventJSON]); reads are [EventInserted]. It reports false for
// actions the legacy format cannot express.
func (m Message) EventName() (string, bool) {
	switch m.Action {
	case ActionInsert, ActionRead:
		return EventInserted, true
	case ActionUpdate:
		return EventUpdated, true
	case ActionDelete:
		return EventDeleted, true
	}
	return "", false
}

// EventJSON encodes the message in the legacy "event" format of the older
// Sequin product, for consumers written against it.
//
// The older product published an event per inserted, updated or deleted
// record of a synced API collection:
//
//	{"collection":"task","created_at":"…","data":{…},"event":"inserted","id":"…","task":"task"}
//
// where collection named the kind of record, created_at was when the event
// was created, data held every field of the record (the whole record for a
// delete too), event was one of inserted, updated and deleted, id was the
// record's own ID, and task named the table the collection was stored in;
// updated events also carried changes, the prior values of the fields that
// changed. EventJSON maps a message onto that shape as follows:
//
//   - collection: the table name (Metadata.TableName), the kind of record.
//   - created_at: the commit timestamp, in the same form as the seed's
//     commit_timestamp: the change was created when its transaction
//     committed, and a redelivery carries the same value.
//   - data: the record, encoded exactly as the seed's record.
//   - event: "inserted", "updated" or "deleted". A backfill read is
//     "inserted": the legacy format has no event for a row that already
//     existed, and consumers written for it handle only these three. A
//     truncate has no event form and is an error.
//   - id: the row's primary key as a string: the value's text for a
//     single-column key (a number's digits, a string as is), and the texts
//     joined with ":" for a composite key. It is null when the message does
//     not name its key columns (Metadata.PrimaryKey), as after decoding JSON.
//   - task: the schema-qualified table, "schema.table": the table the rows
//     live in.
//   - changes: as the seed's changes: the prior values of the changed
//     columns for an update ({} when the old row is unknown), null otherwise.
func (m Message) EventJSON() ([]byte, error) {
	return m.AppendEventJSON(make([]byte, 0, 256))
}

// AppendEventJSON appends the [Message.EventJSON] encoding of the message to
// dst and returns the extended slice. On error it returns dst with its
// original length.
func (m Message) AppendEventJSON(dst []byte) ([]byte, error) {
	event, ok := m.EventName()
	if !ok {
		return dst, fmt.Errorf("message: event: action %q has no legacy event form", m.Action)
	}
	md := &m.Metadata
	b := append(dst, `{"collection":`...)
	b = appendString(b, md.TableName)
	b = append(b, `,"created_at":"`...)
	b, err := appendTime(b, md.CommitTimestamp)
	if err != nil {
		return dst, fmt.Errorf("message: event: created_at: %w", err)
	}
	b = append(b, `","data":`...)
	if b, err = appendRow(b, m.Record, md.columns, JSONOptions{}); err != nil {
		return dst, fmt.Errorf("message: event: data: %w", err)
	}
	b = append(b, `,"event":`...)
	b = appendString(b, event)
	b = append(b, `,"id":`...)
	if b, err = m.appendEventID(b); err != nil {
		return dst, fmt.Errorf("message: event: id: %w", err)
	}
	b = append(b, `,"task":`...)
	b = appendString(b, md.TableSchema+"."+md.TableName)
	b = append(b, `,"changes":`...)
	if b, err = appendRow(b, m.Changes, md.columns, JSONOptions{}); err != nil {
		return dst, fmt.Errorf("message: event: changes: %w", err)
	}
	return append(b, '}'), nil
}

// appendEventID writes the primary key as a JSON string, or null.
func (m Message) appendEventID(b []byte) ([]byte, error) {
	pk := m.Metadata.primaryKey
	if len(pk) == 0 {
		return append(b, "null"...), nil
	}
	id := make([]byte, 0, 32)
	for i, col := range pk {
		if i > 0 {
			id = append(id, ':')
		}
		v, ok := m.Record[col]
		if !ok {
			return b, fmt.Errorf("primary-key column %q is not in the record", col)
		}
		id = AppendKeyText(id, v)
	}
	return appendString(b, string(id)), nil
}

// RecordJSON encodes the record alone, exactly as the seed's "record" field
// (Sequin's record_only shape): an object, or null for a message without a
// record (a truncate).
func (m Message) RecordJSON() ([]byte, error) {
	b, err := appendRow(make([]byte, 0, 128), m.Record, m.Metadata.columns, JSONOptions{})
	if err != nil {
		return nil, fmt.Errorf("message: record: %w", err)
	}
	return b, nil
}
