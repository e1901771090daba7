package pgvalue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// Querier runs a query. *pgx.Conn, *pgxpool.Pool and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// kind is how a type's text form decodes.
type kind uint8

const (
	kindText kind = iota // the text itself, as a string
	kindInt
	kindFloat
	kindNumeric
	kindBool
	kindBytea
	kindJSON
	kindTimestamptz
	kindTimestamp
	kindArray
	kindInterval
)

var kindNames = [...]string{
	kindText:        "text",
	kindInt:         "integer",
	kindFloat:       "float",
	kindNumeric:     "numeric",
	kindBool:        "bool",
	kindBytea:       "bytea",
	kindJSON:        "json",
	kindTimestamptz: "timestamptz",
	kindTimestamp:   "timestamp",
	kindArray:       "array",
	kindInterval:    "interval",
}

func (k kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// typeInfo is what decoding needs to know about a type. For arrays, elem is
// the element type and delim the element separator.
type typeInfo struct {
	kind  kind
	delim byte
	elem  uint32
}

// Mapper decodes Postgres text-format values into JSON-ready Go values. It
// knows the built-in types; [Mapper.Resolve] teaches it user-defined ones.
// A Mapper is safe for concurrent use.
type Mapper struct {
	mu    sync.Mutex                          // serialises writers of types
	types atomic.Pointer[map[uint32]typeInfo] // copy-on-write; never mutated once stored
}

// NewMapper returns a Mapper that knows the built-in types.
func NewMapper() *Mapper { return &Mapper{} }

// info returns how oid decodes; types nobody resolved decode as text.
func (m *Mapper) info(oid uint32) typeInfo {
	if k, ok := builtinScalar(oid); ok {
		return typeInfo{kind: k}
	}
	if elem, delim, ok := builtinArray(oid); ok {
		return typeInfo{kind: kindArray, elem: elem, delim: delim}
	}
	if p := m.types.Load(); p != nil {
		if ti, ok := (*p)[oid]; ok {
			return ti
		}
	}
	return typeInfo{kind: kindText}
}

// known reports whether oid decodes without a lookup.
func (m *Mapper) known(oid uint32) bool {
	if _, ok := builtinScalar(oid); ok {
		return true
	}
	if _, _, ok := builtinArray(oid); ok {
		return true
	}
	if p := m.types.Load(); p != nil {
		_, ok := (*p)[oid]
		return ok
	}
	return false
}

// resolveQuery finds the given types and, transitively, the types they are
// built on (a domain's base type, an array's element type).
const resolveQuery = `with recursive t(oid) as (
	select unnest(%s::pg_catalog.oid[])
	union
	select x.oid
	from pg_catalog.pg_type p
	join t on p.oid = t.oid
	cross join lateral (values (p.typbasetype), (p.typelem)) x(oid)
	where x.oid <> 0
)
select p.oid, p.typtype::text, p.typcategory::text, p.typelem, p.typbasetype,
	e.typdelim::text, p.typlen
from pg_catalog.pg_type p
join t on p.oid = t.oid
left join pg_catalog.pg_type e on e.oid = p.typelem`

type catalogType struct {
	typtype, category string
	elem, base        uint32
	elemDelim         string
	length            int16
}

// Resolve learns how to decode the types among oids that the Mapper does not
// know yet (domains decode as their base type; enums, composites, ranges and
// extension types as their text; arrays of any of them element by element),
// with one catalog query. It queries nothing when every oid is known. Types
// that are not in the catalog decode as text.
func (m *Mapper) Resolve(ctx context.Context, q Querier, oids ...uint32) error {
	var missing []uint32
	for _, oid := range oids {
		if !m.known(oid) {
			missing = append(missing, oid)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	// The OIDs are numbers, so the literal is safe to inline; no parameters
	// means it runs on any connection, whatever its query exec mode.
	lit := make([]byte, 0, 2+len(missing)*6)
	lit = append(lit, "'{"...)
	for i, oid := range missing {
		if i > 0 {
			lit = append(lit, ',')
		}
		lit = strconv.AppendUint(lit, uint64(oid), 10)
	}
	lit = append(lit, "}'"...)
	rows, err := q.Query(ctx, fmt.Sprintf(resolveQuery, lit))
	if err != nil {
		return fmt.Errorf("pgvalue: resolve types: %w", err)
	}
	found := make(map[uint32]catalogType)
	for rows.Next() {
		var (
			oid uint32
			ct  catalogType
			dl  *string
		)
		if err := rows.Scan(&oid, &ct.typtype, &ct.category, &ct.elem, &ct.base, &dl, &ct.length); err != nil {
			rows.Close()
			return fmt.Errorf("pgvalue: resolve types: %w", err)
		}
		if dl != nil {
			ct.elemDelim = *dl
		}
		found[oid] = ct
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pgvalue: resolve types: %w", err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	next := make(map[uint32]typeInfo)
	if p := m.types.Load(); p != nil {
		for k, v := range *p {
			next[k] = v
		}
	}
	for oid := range found {
		next[oid] = m.classify(oid, found, next, 0)
	}
	for _, oid := range missing {
		if _, ok := next[oid]; !ok {
			next[oid] = typeInfo{kind: kindText}
		}
	}
	m.types.Store(&next)
	return nil
}

// maxTypeDepth bounds chains of domains over domains.
const maxTypeDepth = 32

// classify works out how oid decodes from the catalog rows in found.
func (m *Mapper) classify(oid uint32, found map[uint32]catalogType, done map[uint32]typeInfo, depth int) typeInfo {
	if k, ok := builtinScalar(oid); ok {
		return typeInfo{kind: k}
	}
	if elem, delim, ok := builtinArray(oid); ok {
		return typeInfo{kind: kindArray, elem: elem, delim: delim}
	}
	if ti, ok := done[oid]; ok {
		return ti
	}
	ct, ok := found[oid]
	if !ok || depth > maxTypeDepth {
		return typeInfo{kind: kindText}
	}
	switch {
	case ct.typtype == "d" && ct.base != 0:
		return m.classify(ct.base, found, done, depth+1)
	case ct.category == "A" && ct.elem != 0 && ct.length == -1:
		delim := byte(',')
		if len(ct.elemDelim) == 1 {
			delim = ct.elemDelim[0]
		}
		return typeInfo{kind: kindArray, elem: ct.elem, delim: delim}
	}
	return typeInfo{kind: kindText}
}

// DecodeError reports a value that is not valid text for its type. It does
// not carry the value itself, which may be large or sensitive.
type DecodeError struct {
	OID  uint32 // the column's type
	Kind string // how the type decodes: "integer", "timestamptz", "array", …
	Err  error
}

func (e *DecodeError) Error() string {
	return "pgvalue: decode " + e.Kind + " (type oid " + strconv.FormatUint(uint64(e.OID), 10) + "): " + e.Err.Error()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ErrSyntax is the cause of a [DecodeError] for text that is not in the
// type's Postgres output format.
var ErrSyntax = errors.New("invalid syntax")

// Decode maps the text form of one non-NULL value of type oid to a
// JSON-ready value (see the package doc for the mapping). It does not retain
// text. Malformed text is a *[DecodeError].
func (m *Mapper) Decode(oid uint32, text []byte) (any, error) {
	return m.decode(oid, m.info(oid), text, 0)
}

func (m *Mapper) decode(oid uint32, ti typeInfo, text []byte, depth int) (any, error) {
	var (
		v   any
		err error
	)
	switch ti.kind {
	case kindText:
		return string(text), nil
	case kindInt:
		var n int64
		n, err = parseInt(text)
		v = n
	case kindFloat:
		v, err = decodeFloat(text)
	case kindNumeric:
		v, err = decodeNumeric(text)
	case kindBool:
		v, err = decodeBool(text)
	case kindBytea:
		v, err = decodeBytea(text)
	case kindJSON:
		v, err = decodeJSON(text)
	case kindTimestamptz:
		v, err = decodeTimestamp(text, true)
	case kindTimestamp:
		v, err = decodeTimestamp(text, false)
	case kindInterval:
		v, err = decodeInterval(text)
	case kindArray:
		v, err = m.decodeArray(ti, text, depth)
		if err != nil {
			var de *DecodeError
			if errors.As(err, &de) {
				return nil, err // an element's error names the element's type
			}
		}
	default:
		return string(text), nil
	}
	if err != nil {
		return nil, &DecodeError{OID: oid, Kind: ti.kind.String(), Err: err}
	}
	return v, nil
}
