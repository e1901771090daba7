package pgoutput

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/jackc/pglogrepl"
)

// normalize makes tuples from both decoders comparable: pglogrepl leaves a
// column without a value with nil Data and a tuple of no columns with nil
// Columns.
func normalize(t *pglogrepl.TupleData) {
	if t == nil {
		return
	}
	if len(t.Columns) == 0 {
		t.Columns = nil
	}
	for _, c := range t.Columns {
		if len(c.Data) == 0 {
			c.Data = nil
		}
	}
}

func normalizeMsg(m pglogrepl.Message) pglogrepl.Message {
	switch m := m.(type) {
	case *pglogrepl.InsertMessage:
		normalize(m.Tuple)
	case *pglogrepl.UpdateMessage:
		normalize(m.OldTuple)
		normalize(m.NewTuple)
	case *pglogrepl.DeleteMessage:
		normalize(m.OldTuple)
	}
	return m
}

// TestParseRowMatchesPglogrepl checks the row decoder against pglogrepl's on
// every captured insert, update and delete, and on those messages cut short.
func TestParseRowMatchesPglogrepl(t *testing.T) {
	for name, data := range capturedMessages(t) {
		switch data[0] {
		case 'I', 'U', 'D':
		default:
			continue
		}
		got, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := pglogrepl.Parse(data)
		if err != nil {
			t.Fatalf("%s: pglogrepl: %v", name, err)
		}
		if !reflect.DeepEqual(normalizeMsg(got), normalizeMsg(want)) {
			t.Errorf("%s: decoded %#v, pglogrepl %#v", name, got, want)
		}
		if got.Type() != want.Type() {
			t.Errorf("%s: type %v, want %v", name, got.Type(), want.Type())
		}
		for n := 1; n < len(data); n++ {
			if _, err := Parse(data[:n]); err == nil {
				t.Errorf("%s cut to %d bytes: no error", name, n)
			}
		}
	}
}

// TestParseRowOwnsData checks that decoded values do not alias the
// receive buffer, which the connection reuses.
func TestParseRowOwnsData(t *testing.T) {
	data := []byte{'I', 0, 0, 0, 1, 'N', 0, 2, 't', 0, 0, 0, 2, 'h', 'i', 'n'}
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	data[13], data[14] = 'x', 'x'
	cols := m.(*pglogrepl.InsertMessage).Tuple.Columns
	if string(cols[0].Data) != "hi" || cols[1].DataType != 'n' {
		t.Fatalf("columns %q %q after the buffer changed", cols[0].Data, cols[1].DataType)
	}
}

func TestParseRowRejects(t *testing.T) {
	for name, data := range map[string][]byte{
		"insert without N":       {'I', 0, 0, 0, 1, 'X', 0, 0},
		"update bad tuple type":  {'U', 0, 0, 0, 1, 'X', 0, 0},
		"update old without new": {'U', 0, 0, 0, 1, 'O', 0, 1, 'n'},
		"update old then not N":  {'U', 0, 0, 0, 1, 'O', 0, 1, 'n', 'Q', 0, 0},
		"delete bad tuple type":  {'D', 0, 0, 0, 1, 'N', 0, 0},
		"unknown column kind":    {'I', 0, 0, 0, 1, 'N', 0, 1, 'z'},
		"length past the end":    {'I', 0, 0, 0, 1, 'N', 0, 1, 't', 0xff, 0xff, 0xff, 0xff},
		"columns past the end":   {'I', 0, 0, 0, 1, 'N', 0, 3, 'n'},
	} {
		if _, err := Parse(data); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestParserMatchesParse decodes every captured message twice in a row with
// one Parser and checks each against Parse, and that a row's values survive
// the next call (only the message and column lists are reused).
// A borrowing Parser must decode the same.
func TestParserMatchesParse(t *testing.T) {
	var p Parser
	msgs := capturedMessages(t)
	for _, pp := range []*Parser{&p, {Borrow: true}} {
		for name, data := range msgs {
			want, werr := Parse(data)
			for range 2 {
				got, err := pp.Parse(data)
				if (err != nil) != (werr != nil) {
					t.Fatalf("%s: error %v, Parse's %v (Borrow %v)", name, err, werr, pp.Borrow)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: Parser{Borrow: %v} decoded %#v, Parse %#v", name, pp.Borrow, got, want)
				}
			}
		}
	}
	ins := insertMessage()
	first, err := p.Parse(ins)
	if err != nil {
		t.Fatal(err)
	}
	data := first.(*pglogrepl.InsertMessage).Tuple.Columns[0].Data
	kept := string(data)
	for _, m := range msgs {
		p.Parse(m)
	}
	if string(data) != kept {
		t.Errorf("a later Parse changed an earlier tuple's value: %q, then %q", kept, data)
	}
}

// TestParserBorrow checks that a borrowing Parser does not copy: its values
// are the bytes of the buffer it was given, capped at their length.
func TestParserBorrow(t *testing.T) {
	p := Parser{Borrow: true}
	data := insertMessage()
	m, err := p.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	v := m.(*pglogrepl.InsertMessage).Tuple.Columns[3].Data
	if string(v) != "shipped" {
		t.Fatalf("column 3 = %q, want shipped", v)
	}
	if cap(v) != len(v) {
		t.Errorf("column 3 has capacity %d past its %d bytes: an append would write into the buffer", cap(v), len(v))
	}
	i := bytes.Index(data, []byte("shipped"))
	data[i] = 'S'
	if string(v) != "Shipped" {
		t.Errorf("column 3 = %q after the buffer changed: not borrowed", v)
	}
}
