// Package pgoutput decodes the messages of Postgres's pgoutput logical
// replication plugin without ever panicking.
//
// It wraps pglogrepl's decoders: it rejects empty and truncated buffers,
// checks that row messages fit the relation they name, recovers from any
// decoder panic at the boundary and returns a typed [*Error] instead.
package pgoutput

import (
	"encoding/binary"
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
	return parse(nil, data)
}

// Parser decodes like [Parse], but reuses its INSERT, UPDATE and DELETE
// messages and their column lists from one call to the next: such a message
// is valid only until the next call. Column values are never reused: unless
// Borrow is set, each tuple's bytes are a fresh copy nothing else writes to,
// which the caller may keep. The zero value is ready; a Parser is for one
// goroutine.
type Parser struct {
	// Borrow makes column values subslices of the data passed to Parse
	// instead of a copy: they are valid only as long as that data is, and
	// a caller that reuses its receive buffer must decode or copy every
	// value it keeps before the next receive. It saves a copy and an
	// allocation per row.
	Borrow bool

	ins      pglogrepl.InsertMessage
	upd      pglogrepl.UpdateMessage
	del      pglogrepl.DeleteMessage
	old, new tupleScratch
}

// tupleScratch is a reused tuple and its columns.
type tupleScratch struct {
	td   pglogrepl.TupleData
	cols []pglogrepl.TupleDataColumn
	ptrs []*pglogrepl.TupleDataColumn
}

// Parse decodes one pgoutput message; see [Parser].
func (p *Parser) Parse(data []byte) (pglogrepl.Message, error) {
	return parse(p, data)
}

func parse(p *Parser, data []byte) (msg pglogrepl.Message, err error) {
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
	switch typ {
	case 'T':
		// pglogrepl allocates the announced relation count before reading:
		// a garbage count would allocate gigabytes.
		if n := uint64(binary.BigEndian.Uint32(data[1:])); n > uint64(len(data)-6)/4 {
			return nil, &Error{Type: typ, Err: fmt.Errorf("%d relations announced, room for %d", n, (len(data)-6)/4)}
		}
	case 'I', 'U', 'D':
		msg, err := parseRow(p, typ, data[1:])
		if err != nil {
			return nil, &Error{Type: typ, Err: err}
		}
		return msg, nil
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

// parseRow decodes the body of an INSERT, UPDATE or DELETE message, the
// per-row hot path, into pglogrepl's types. pglogrepl allocates twice per
// column and copies values a byte at a time; this validates the tuples
// first, then copies each tuple's bytes at once. Without a Parser it makes
// four allocations per tuple whatever its width; with one, one.
func parseRow(p *Parser, typ byte, b []byte) (pglogrepl.Message, error) {
	rel := binary.BigEndian.Uint32(b) // Parse checked the minimum length
	b = b[4:]
	var (
		oldS, newS *tupleScratch
		borrow     bool
	)
	if p != nil {
		oldS, newS, borrow = &p.old, &p.new, p.Borrow
	}
	switch typ {
	case 'I':
		if b[0] != 'N' {
			return nil, fmt.Errorf("tuple type %q, want 'N'", b[0])
		}
		t, _, err := parseTuple(newS, b[1:], borrow)
		if err != nil {
			return nil, err
		}
		var m *pglogrepl.InsertMessage
		if p != nil {
			m = &p.ins
		} else {
			m = new(pglogrepl.InsertMessage)
		}
		*m = pglogrepl.InsertMessage{RelationID: rel, Tuple: t}
		m.SetType(pglogrepl.MessageTypeInsert)
		return m, nil
	case 'U':
		var m *pglogrepl.UpdateMessage
		if p != nil {
			m = &p.upd
		} else {
			m = new(pglogrepl.UpdateMessage)
		}
		*m = pglogrepl.UpdateMessage{RelationID: rel}
		m.SetType(pglogrepl.MessageTypeUpdate)
		if k := b[0]; k == 'K' || k == 'O' {
			t, n, err := parseTuple(oldS, b[1:], borrow)
			if err != nil {
				return nil, fmt.Errorf("old %w", err)
			}
			m.OldTupleType, m.OldTuple = k, t
			b = b[1+n:]
			if len(b) == 0 {
				return nil, errors.New("update without a new tuple")
			}
		}
		if b[0] != 'N' {
			return nil, fmt.Errorf("tuple type %q, want 'K', 'O' or 'N'", b[0])
		}
		t, _, err := parseTuple(newS, b[1:], borrow)
		if err != nil {
			return nil, fmt.Errorf("new %w", err)
		}
		m.NewTuple = t
		return m, nil
	default: // 'D'
		k := b[0]
		if k != 'K' && k != 'O' {
			return nil, fmt.Errorf("old tuple type %q, want 'K' or 'O'", k)
		}
		t, _, err := parseTuple(oldS, b[1:], borrow)
		if err != nil {
			return nil, fmt.Errorf("old %w", err)
		}
		var m *pglogrepl.DeleteMessage
		if p != nil {
			m = &p.del
		} else {
			m = new(pglogrepl.DeleteMessage)
		}
		*m = pglogrepl.DeleteMessage{RelationID: rel, OldTupleType: k, OldTuple: t}
		m.SetType(pglogrepl.MessageTypeDelete)
		return m, nil
	}
}

// parseTuple decodes a TupleData at the start of b and returns it with the
// number of bytes it took. Column values are subslices of one fresh copy of
// those bytes, so the tuple does not alias b; with borrow, subslices of b.
// With scratch, the tuple and its column lists are scratch's, reused.
func parseTuple(scratch *tupleScratch, b []byte, borrow bool) (*pglogrepl.TupleData, int, error) {
	if len(b) < 2 {
		return nil, 0, errors.New("tuple: truncated column count")
	}
	n := int(binary.BigEndian.Uint16(b))
	off := 2
	for i := range n {
		if off >= len(b) {
			return nil, 0, fmt.Errorf("tuple column %d: truncated", i)
		}
		switch b[off] {
		case pglogrepl.TupleDataTypeNull, pglogrepl.TupleDataTypeToast:
			off++
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			if len(b)-off < 5 {
				return nil, 0, fmt.Errorf("tuple column %d: truncated length", i)
			}
			l := uint64(binary.BigEndian.Uint32(b[off+1:]))
			off += 5
			if l > uint64(len(b)-off) {
				return nil, 0, fmt.Errorf("tuple column %d: length %d, %d bytes left", i, l, len(b)-off)
			}
			off += int(l)
		default:
			return nil, 0, fmt.Errorf("tuple column %d: unknown kind %q", i, b[off])
		}
	}
	buf := b[:off:off]
	if !borrow {
		buf = make([]byte, off)
		copy(buf, b)
	}
	var (
		td   *pglogrepl.TupleData
		cols []pglogrepl.TupleDataColumn
		ptrs []*pglogrepl.TupleDataColumn
	)
	if scratch != nil {
		if cap(scratch.cols) < n {
			scratch.cols = make([]pglogrepl.TupleDataColumn, n)
			scratch.ptrs = make([]*pglogrepl.TupleDataColumn, n)
		}
		td, cols, ptrs = &scratch.td, scratch.cols[:n], scratch.ptrs[:n]
	} else {
		td, cols, ptrs = new(pglogrepl.TupleData), make([]pglogrepl.TupleDataColumn, n), make([]*pglogrepl.TupleDataColumn, n)
	}
	off = 2
	for i := range cols {
		c := &cols[i]
		*c = pglogrepl.TupleDataColumn{DataType: buf[off]}
		off++
		if c.DataType == pglogrepl.TupleDataTypeText || c.DataType == pglogrepl.TupleDataTypeBinary {
			c.Length = binary.BigEndian.Uint32(buf[off:])
			off += 4
			end := off + int(c.Length)
			c.Data = buf[off:end:end]
			off = end
		}
		ptrs[i] = c
	}
	*td = pglogrepl.TupleData{ColumnNum: uint16(n), Columns: ptrs}
	return td, off, nil
}
