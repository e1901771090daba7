// Package pgoutput decodes the messages of Postgres's pgoutput logical
// replication plugin without ever panicking.
//
// It wraps pglogrepl's decoders: it rejects empty and truncated buffers,
// checks that row messages fit the relation they name, recovers from any
// decoder panic at the boundary and returns a typed [*Error] instead.
package pgoutput

import (
	"errors"
	"fmt"

	"github.com/jackc/pglogrepl"
)

// Error is a pgoutput message that could not be decoded.
type Error struct {
	// Type is the message's type byte (0 for an empty buffer).
	Type byte
	Err  error
}

func (e *Error) Error() string {
	if e.Type == 0 {
		return "pgoutput: " + e.Err.Error()
	}
	return fmt.Sprintf("pgoutput: decode %q message: %v", e.Type, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrUnknownType is wrapped by an [*Error] for a message type this package
// does not know.
var ErrUnknownType = errors.New("unknown message type")

// minLen is the smallest body (after the type byte) of each message type,
// so that no decoder reads past the end of a truncated buffer.
var minLen = map[byte]int{
	'B': 20, 'C': 25, 'O': 9, 'R': 7, 'Y': 6,
	'I': 7, 'U': 7, 'D': 7, 'T': 9, 'M': 14,
}

// Parse decodes one pgoutput message (the WAL data of an XLogData message).
// The returned message may reference data (a logical message's content);
// callers that keep it beyond the next receive must copy.
func Parse(data []byte) (msg pglogrepl.Message, err error) {
	if len(data) == 0 {
		return nil, &Error{Err: errors.New("empty message")}
	}
	typ := data[0]
	n, ok := minLen[typ]
	if !ok {
		return nil, &Error{Type: typ, Err: ErrUnknownType}
	}
	if len(data)-1 < n {
		return nil, &Error{Type: typ, Err: fmt.Errorf("%d bytes, want at least %d", len(data)-1, n)}
	}
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, &Error{Type: typ, Err: fmt.Errorf("malformed message: %v", r)}
		}
	}()
	msg, err = pglogrepl.Parse(data)
	if err != nil {
		return nil, &Error{Type: typ, Err: err}
	}
	if err := check(msg, data); err != nil {
		return nil, &Error{Type: typ, Err: err}
	}
	return msg, nil
}

// check validates what pglogrepl does not: lengths that would otherwise
// make later code index out of range.
func check(msg pglogrepl.Message, data []byte) error {
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		if int(m.ColumnNum) != len(m.Columns) {
			return fmt.Errorf("relation %d: %d columns announced, %d decoded", m.RelationID, m.ColumnNum, len(m.Columns))
		}
	case *pglogrepl.InsertMessage:
		if m.Tuple == nil {
			return errors.New("insert without a tuple")
		}
		return checkTuple(m.Tuple)
	case *pglogrepl.UpdateMessage:
		if m.NewTuple == nil {
			return errors.New("update without a new tuple")
		}
		if m.OldTuple != nil {
			if err := checkTuple(m.OldTuple); err != nil {
				return err
			}
		}
		return checkTuple(m.NewTuple)
	case *pglogrepl.DeleteMessage:
		if m.OldTuple == nil {
			return errors.New("delete without an old tuple")
		}
		return checkTuple(m.OldTuple)
	case *pglogrepl.TruncateMessage:
		if int(m.RelationNum) != len(m.RelationIDs) {
			return errors.New("truncate: relation count mismatch")
		}
	case *pglogrepl.LogicalDecodingMessage:
		// pglogrepl slices the content without checking its length.
		if len(m.Content) > len(data) {
			return errors.New("logical message content overruns the buffer")
		}
	}
	return nil
}

func checkTuple(t *pglogrepl.TupleData) error {
	if int(t.ColumnNum) != len(t.Columns) {
		return fmt.Errorf("tuple: %d columns announced, %d decoded", t.ColumnNum, len(t.Columns))
	}
	for i, c := range t.Columns {
		switch c.DataType {
		case pglogrepl.TupleDataTypeNull, pglogrepl.TupleDataTypeToast:
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			if int(c.Length) != len(c.Data) {
				return fmt.Errorf("tuple column %d: length %d, %d bytes", i, c.Length, len(c.Data))
			}
		default:
			return fmt.Errorf("tuple column %d: unknown kind %q", i, c.DataType)
		}
	}
	return nil
}
