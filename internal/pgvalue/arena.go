package pgvalue

import (
	"encoding/json"
	"strconv"
	"unsafe"

	"github.com/walrelay/walrelay/message"
)

// Arena holds the values [Mapper.DecodeIn] decodes in a few large blocks,
// so that decoding a row's scalars allocates nothing most of the time: a
// reader decoding many rows (a backfill page) trades one allocation per
// value, and the collector's work for each, for one per block.
//
// Values handed out are never written again: a new block is started when
// one is full, and the old one lives as long as any value in it. A caller
// that keeps one value keeps its block (64 KiB of text, or 512 values of
// one type) alive. The zero value is ready to use. An Arena is not safe for
// concurrent use; give each goroutine its own.
type Arena struct {
	text   []byte // copies of value text, formatted timestamps, keys
	strs   []string
	ints   []int64
	floats []float64
	raws   []json.RawMessage
	nums   []message.Numeric
}

const (
	// arenaTextBlock is the size of a text block; longer values get a block
	// of their own.
	arenaTextBlock = 64 << 10
	// arenaSlab is the number of values of one type per block.
	arenaSlab = 512
)

// eface is the layout of an interface value with no methods: a pointer to
// the dynamic type and a pointer to the value. The runtime stores every
// value that is not pointer-shaped (strings, slices, int64s, …) behind
// such a pointer, so an interface may point into a slab as well as at a
// fresh allocation.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func typeOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	typeString  = typeOf("")
	typeInt64   = typeOf(int64(0))
	typeFloat64 = typeOf(float64(0))
	typeRaw     = typeOf(json.RawMessage(nil))
	typeNumber  = typeOf(message.Numeric(""))
)

// box returns an interface of dynamic type typ whose value is *p. p must
// point to a value of that type that is never written again.
func box(typ, p unsafe.Pointer) (v any) {
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, p
	return v
}

// String returns a string holding b's bytes, stored in the arena.
func (a *Arena) String(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	c := a.copy(b)
	return unsafe.String(unsafe.SliceData(c), len(c))
}

// copy returns a copy of b in a text block.
func (a *Arena) copy(b []byte) []byte {
	if len(b) > arenaTextBlock/4 {
		return append([]byte(nil), b...)
	}
	if cap(a.text)-len(a.text) < len(b) {
		a.text = make([]byte, 0, arenaTextBlock)
	}
	start := len(a.text)
	a.text = append(a.text, b...)
	return a.text[start:len(a.text):len(a.text)]
}

// formatted returns the bytes append writes, stored in a text block.
func (a *Arena) formatted(max int, append func([]byte) []byte) []byte {
	if cap(a.text)-len(a.text) < max {
		a.text = make([]byte, 0, arenaTextBlock)
	}
	start := len(a.text)
	a.text = append(a.text)
	return a.text[start:len(a.text):len(a.text)]
}

func (a *Arena) boxString(s string) any {
	if len(a.strs) == cap(a.strs) {
		a.strs = make([]string, 0, arenaSlab)
	}
	a.strs = append(a.strs, s)
	return box(typeString, unsafe.Pointer(&a.strs[len(a.strs)-1]))
}

func (a *Arena) boxInt(n int64) any {
	if len(a.ints) == cap(a.ints) {
		a.ints = make([]int64, 0, arenaSlab)
	}
	a.ints = append(a.ints, n)
	return box(typeInt64, unsafe.Pointer(&a.ints[len(a.ints)-1]))
}

func (a *Arena) boxFloat(f float64) any {
	if len(a.floats) == cap(a.floats) {
		a.floats = make([]float64, 0, arenaSlab)
	}
	a.floats = append(a.floats, f)
	return box(typeFloat64, unsafe.Pointer(&a.floats[len(a.floats)-1]))
}

func (a *Arena) boxRaw(r json.RawMessage) any {
	if len(a.raws) == cap(a.raws) {
		a.raws = make([]json.RawMessage, 0, arenaSlab)
	}
	a.raws = append(a.raws, r)
	return box(typeRaw, unsafe.Pointer(&a.raws[len(a.raws)-1]))
}

func (a *Arena) boxNumber(n message.Numeric) any {
	if len(a.nums) == cap(a.nums) {
		a.nums = make([]message.Numeric, 0, arenaSlab)
	}
	a.nums = append(a.nums, n)
	return box(typeNumber, unsafe.Pointer(&a.nums[len(a.nums)-1]))
}

// DecodeIn is [Mapper.Decode] with the result stored in a: text, integer,
// float, numeric, json and timestamp values (the common columns) take no
// allocation of their own; other kinds decode as Decode does. It does not
// keep text, so callers may reuse its buffer. The result is the same value
// Decode returns for the same input, and a *[DecodeError] likewise.
func (m *Mapper) DecodeIn(a *Arena, oid uint32, text []byte) (any, error) {
	ti := m.info(oid)
	switch ti.kind {
	case kindText:
		return a.boxString(a.String(text)), nil
	case kindInt:
		if n, err := parseInt(text); err == nil {
			return a.boxInt(n), nil
		}
	case kindFloat:
		if _, ok := special(text); !ok && len(text) > 0 && isFloatSyntax(text) {
			if f, err := strconv.ParseFloat(string(text), 64); err == nil {
				return a.boxFloat(f), nil
			}
		}
	case kindNumeric:
		if _, ok := special(text); !ok && isJSONNumber(text) {
			return a.boxNumber(message.Numeric(a.String(text))), nil
		}
	case kindBytea:
		if isLowerHexBytea(text) {
			return a.boxString(a.String(text)), nil
		}
	case kindJSON:
		if len(text) > 0 {
			return a.boxRaw(json.RawMessage(a.copy(text))), nil
		}
	case kindTimestamptz, kindTimestamp:
		zoned := ti.kind == kindTimestamptz
		if _, inf := infinity(text); !inf {
			if c, err := civilTime(text, zoned); err == nil {
				b := a.formatted(maxTimestampLen, func(b []byte) []byte { return appendTimestamp(b, c, zoned) })
				return a.boxString(unsafe.String(unsafe.SliceData(b), len(b))), nil
			}
		}
	}
	return m.decode(oid, ti, text, 0)
}
