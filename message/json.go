package message

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// maxDepth bounds how deeply values may nest. It matches the limit of
// encoding/json's decoder, so anything [Message.UnmarshalJSON] accepts can be
// encoded again; it also turns a map that contains itself into an error
// instead of a stack overflow.
const maxDepth = 10000

// errTooDeep reports a value nested more than maxDepth levels.
var errTooDeep = errors.New("value nested too deeply")

// bufPool holds scratch buffers for MarshalJSON, so that it allocates only
// the returned slice.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// maxPooledBuf keeps one huge message from pinning a huge buffer.
const maxPooledBuf = 64 << 10

// MarshalJSON encodes the message in the seed shape (see the package doc).
// It allocates only the returned slice; use [Message.AppendJSON] with a
// reused buffer to allocate nothing.
func (m Message) MarshalJSON() ([]byte, error) {
	var out []byte
	err := m.pooledJSON(func(b []byte) error {
		// Appending to nil copies without first zeroing the new slice.
		out = append([]byte(nil), b...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// pooledJSON encodes m into a pooled buffer and passes the bytes to use,
// which must not keep them.
func (m Message) pooledJSON(use func([]byte) error) error {
	bp := bufPool.Get().(*[]byte)
	b, err := m.AppendJSON((*bp)[:0])
	if err == nil {
		err = use(b)
	}
	if cap(b) <= maxPooledBuf {
		*bp = b[:0]
		bufPool.Put(bp)
	}
	return err
}

// AppendJSON appends the JSON of the message (the same bytes as
// [Message.MarshalJSON]) to dst and returns the extended slice. With a
// buffer reused across calls it does not allocate for messages whose values
// are of the types listed on [Message] (sorting the keys of a map of more
// than 32 entries, where column order does not apply, allocates once). On
// error it returns dst with its original length.
func (m Message) AppendJSON(dst []byte) ([]byte, error) {
	return JSONOptions{}.Append(dst, m)
}

// JSONOptions are choices in the JSON encoding of a [Message]. The zero
// value writes the default shape, the bytes of [Message.MarshalJSON]. Its
// methods fit where an encoder function is wanted, such as a sink's
// Encoder:
//
//	enc := message.JSONOptions{NumericNumbers: true}.Marshal
type JSONOptions struct {
	// NumericNumbers writes Postgres numerics ([Numeric]) as JSON numbers
	// with their exact digits ("price":12.50) instead of JSON strings
	// ("price":"12.50", Sequin's form), in Record, Changes and arrays.
	// NaN, Infinity and -Infinity stay strings. A JSON decoder that reads
	// numbers into float64 rounds such numbers; decode them exactly
	// (json.Decoder.UseNumber) or keep the default.
	NumericNumbers bool
}

// Marshal is [Message.MarshalJSON] with the options applied.
func (o JSONOptions) Marshal(m Message) ([]byte, error) {
	b, err := o.Append(make([]byte, 0, 512), m)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Append is [Message.AppendJSON] with the options applied: it appends the
// JSON of m to dst and returns the extended slice, or dst with its original
// length on error.
func (o JSONOptions) Append(dst []byte, m Message) ([]byte, error) {
	b, err := m.appendJSON(dst, o)
	if err != nil {
		return dst, err
	}
	return b, nil
}

func (m Message) appendJSON(b []byte, o JSONOptions) ([]byte, error) {
	md := &m.Metadata
	var err error

	b = append(b, `{"record":`...)
	if b, err = appendRow(b, m.Record, md.columns, o); err != nil {
		return b, fmt.Errorf("message: record: %w", err)
	}
	b = append(b, `,"changes":`...)
	if b, err = appendRow(b, m.Changes, md.columns, o); err != nil {
		return b, fmt.Errorf("message: changes: %w", err)
	}
	b = append(b, `,"action":`...)
	b = appendString(b, string(m.Action))

	b = append(b, `,"metadata":{"table_schema":`...)
	b = appendString(b, md.TableSchema)
	b = append(b, `,"table_name":`...)
	b = appendString(b, md.TableName)
	b = append(b, `,"idempotency_key":`...)
	b = appendString(b, md.IdempotencyKey)
	b = append(b, `,"commit_timestamp":"`...)
	if b, err = appendTime(b, md.CommitTimestamp); err != nil {
		return b, fmt.Errorf("message: commit_timestamp: %w", err)
	}
	if m.Action == ActionRead {
		// A read is in no transaction: Sequin writes both as null.
		b = append(b, `","commit_lsn":null,"commit_idx":null`...)
	} else {
		b = append(b, `","commit_lsn":`...)
		b = strconv.AppendUint(b, uint64(md.CommitLSN), 10)
		b = append(b, `,"commit_idx":`...)
		b = strconv.AppendInt(b, int64(md.CommitIdx), 10)
	}
	b = append(b, `,"record_pks":`...)
	b = m.appendRecordPKs(b)
	b = append(b, `,"database_name":`...)
	dbName := md.DatabaseName
	if dbName == "" {
		dbName = md.Database.Name
	}
	b = appendString(b, dbName)

	b = append(b, `,"consumer":{"id":`...)
	b = appendString(b, md.Consumer.ID)
	b = append(b, `,"name":`...)
	b = appendString(b, md.Consumer.Name)
	b = append(b, `,"annotations":`...)
	if b, err = appendAnnotations(b, md.Consumer.Annotations, o); err != nil {
		return b, fmt.Errorf("message: consumer annotations: %w", err)
	}

	b = append(b, `},"database":{"id":`...)
	b = appendString(b, md.Database.ID)
	b = append(b, `,"name":`...)
	b = appendString(b, md.Database.Name)
	b = append(b, `,"annotations":`...)
	if b, err = appendAnnotations(b, md.Database.Annotations, o); err != nil {
		return b, fmt.Errorf("message: database annotations: %w", err)
	}
	b = append(b, `,"database":`...)
	b = appendString(b, md.Database.Database)
	b = append(b, `,"hostname":`...)
	b = appendString(b, md.Database.Hostname)

	b = append(b, `},"transaction_annotations":`...)
	if md.TransactionAnnotations == nil && md.RawTransactionAnnotations != nil {
		b, err = appendRawJSON(b, md.RawTransactionAnnotations)
	} else {
		b, err = appendMap(b, md.TransactionAnnotations, 1, o)
	}
	if err != nil {
		return b, fmt.Errorf("message: transaction_annotations: %w", err)
	}
	b = append(b, `,"enrichment":`...)
	if b, err = appendMap(b, md.Enrichment, 1, o); err != nil {
		return b, fmt.Errorf("message: enrichment: %w", err)
	}
	return append(b, "}}"...), nil
}

// appendRecordPKs writes metadata.record_pks: Metadata.RecordPKs when set,
// else the primary-key values as strings in their key text
// ([AppendKeyText]), in the order Sequin gives them, which is table column
// order (Metadata.Columns) when it lists every key column, and key order
// otherwise; [] when there is no key.
func (m Message) appendRecordPKs(b []byte) []byte {
	pk, cols := m.Metadata.primaryKey, m.Metadata.columns
	b = append(b, '[')
	if m.Metadata.RecordPKs != nil {
		for i, v := range m.Metadata.RecordPKs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, v)
		}
		return append(b, ']')
	}
	n := 0
	if len(pk) > 1 && columnsCover(cols, pk) {
		for _, c := range cols {
			if slices.Contains(pk, c) {
				if n > 0 {
					b = append(b, ',')
				}
				b = appendKeyString(b, m.Record[c])
				n++
			}
		}
		return append(b, ']')
	}
	for i, c := range pk {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendKeyString(b, m.Record[c])
	}
	return append(b, ']')
}

// columnsCover reports whether every name of pk is in cols exactly once.
func columnsCover(cols, pk []string) bool {
	n := 0
	for _, c := range cols {
		if slices.Contains(pk, c) {
			n++
		}
	}
	return n == len(pk)
}

// appendKeyString writes a key value's text ([AppendKeyText]) as a JSON
// string.
func appendKeyString(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendString(b, v)
	case int64:
		b = append(b, '"')
		b = strconv.AppendInt(b, v, 10)
		return append(b, '"')
	}
	var buf [64]byte
	return appendString(b, string(AppendKeyText(buf[:0], v)))
}

// appendBytea writes bytes as Postgres's bytea hex text, "\\x00ff" in JSON.
func appendBytea(b []byte, v []byte) []byte {
	b = append(b, `"\\x`...)
	b = hex.AppendEncode(b, v)
	return append(b, '"')
}

// appendInterval writes {"days":…,"microseconds":…,"months":…}.
func appendInterval(b []byte, iv Interval) []byte {
	b = append(b, `{"days":`...)
	b = strconv.AppendInt(b, int64(iv.Days), 10)
	b = append(b, `,"microseconds":`...)
	b = strconv.AppendInt(b, iv.Microseconds, 10)
	b = append(b, `,"months":`...)
	b = strconv.AppendInt(b, int64(iv.Months), 10)
	return append(b, '}')
}

// appendAnnotations writes consumer and database annotations: an object,
// and {} when there are none (Sequin's default is an empty map).
func appendAnnotations(b []byte, a map[string]any, o JSONOptions) ([]byte, error) {
	if a == nil {
		return append(b, "{}"...), nil
	}
	return appendMap(b, a, 1, o)
}

// appendRow writes a Record or Changes map: null when nil, keys in column
// order when cols covers them, sorted otherwise.
func appendRow(b []byte, row map[string]any, cols []string, o JSONOptions) ([]byte, error) {
	if row == nil {
		return append(b, "null"...), nil
	}
	if len(row) > 0 && len(cols) >= len(row) {
		start := len(b)
		out, ok, err := appendInColumnOrder(b, row, cols, o)
		if err != nil || ok {
			return out, err
		}
		b = out[:start]
	}
	return appendMap(b, row, 1, o)
}

// appendInColumnOrder writes row with its keys in the order of cols. It
// reports false, having written a partial object, when some key of row is
// not in cols or a column is listed twice; the caller then falls back to
// sorted keys.
func appendInColumnOrder(b []byte, row map[string]any, cols []string, o JSONOptions) ([]byte, bool, error) {
	b = append(b, '{')
	n := 0
	// seen is a 64-bit filter over the columns written so far: a repeated
	// column is searched for only when its bit is already set.
	var seen uint64
	for i, c := range cols {
		v, ok := row[c]
		if !ok {
			continue
		}
		bit := uint64(1) << (columnHash(c) & 63)
		if seen&bit != 0 && slices.Contains(cols[:i], c) {
			return b, false, nil
		}
		seen |= bit
		if n > 0 {
			b = append(b, ',')
		}
		b = appendString(b, c)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, v, 1, o); err != nil {
			return b, false, atPath(err, "column", c)
		}
		n++
		if n == len(row) {
			return append(b, '}'), true, nil
		}
	}
	return b, false, nil
}

func columnHash(s string) uint {
	if s == "" {
		return 0
	}
	return uint(len(s))*7 + uint(s[0])*31 + uint(s[len(s)-1])
}

// sortKeysStack is how many keys appendMap sorts without allocating.
const sortKeysStack = 32

// appendMap writes m as an object with sorted keys; nil is null.
func appendMap(b []byte, m map[string]any, depth int, o JSONOptions) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	if depth > maxDepth {
		return b, errTooDeep
	}
	var stack [sortKeysStack]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, m[k], depth+1, o); err != nil {
			return b, atPath(err, "key", k)
		}
	}
	return append(b, '}'), nil
}

// pathError tells where inside a value encoding failed. Each level of
// nesting adds one element, so a deep failure costs linear, not quadratic,
// work.
type pathError struct {
	path []string // innermost first: "key \"a\"", "index 3"
	err  error
}

func (e *pathError) Error() string {
	var sb strings.Builder
	for i := len(e.path) - 1; i >= 0; i-- {
		sb.WriteString(e.path[i])
		sb.WriteString(": ")
	}
	sb.WriteString(e.err.Error())
	return sb.String()
}

func (e *pathError) Unwrap() error { return e.err }

// atPath records that err happened at the named element of a row, map or
// array. A too-deep value gets no path: it would be maxDepth long.
func atPath(err error, kind, name string) error {
	if err == errTooDeep {
		return err
	}
	elem := kind + " " + name
	if kind != "index" {
		elem = kind + " " + strconv.Quote(name)
	}
	if pe, ok := err.(*pathError); ok {
		pe.path = append(pe.path, elem)
		return pe
	}
	return &pathError{path: []string{elem}, err: err}
}

// appendValue writes one value; see the package doc for each type's form.
func appendValue(b []byte, v any, depth int, o JSONOptions) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case bool:
		if v {
			return append(b, "true"...), nil
		}
		return append(b, "false"...), nil
	case float64:
		return appendFloat(b, v, 64), nil
	case float32:
		return appendFloat(b, float64(v), 32), nil
	case Numeric:
		if isNumber(string(v)) {
			if o.NumericNumbers {
				return append(b, v...), nil
			}
			// A JSON number needs no escaping inside a string.
			b = append(b, '"')
			b = append(b, v...)
			return append(b, '"'), nil
		}
		return appendString(b, string(v)), nil
	case json.Number:
		if isNumber(string(v)) {
			return append(b, v...), nil
		}
		return appendString(b, string(v)), nil
	case json.RawMessage:
		if v == nil {
			return append(b, "null"...), nil
		}
		return appendRawJSON(b, v)
	case []byte:
		if v == nil {
			return append(b, "null"...), nil
		}
		return appendBytea(b, v), nil
	case time.Time:
		b = append(b, '"')
		b, err := appendTime(b, v)
		if err != nil {
			return b, err
		}
		return append(b, '"'), nil
	case []any:
		return appendArray(b, v, depth, o)
	case map[string]any:
		return appendMap(b, v, depth, o)
	case Interval:
		return appendInterval(b, v), nil
	case UnchangedToast:
		return append(b, `"`+UnchangedToastJSON+`"`...), nil
	}
	return appendOther(b, v, depth)
}

func appendArray(b []byte, a []any, depth int, o JSONOptions) ([]byte, error) {
	if a == nil {
		return append(b, "null"...), nil
	}
	if depth > maxDepth {
		return b, errTooDeep
	}
	b = append(b, '[')
	for i, v := range a {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendValue(b, v, depth+1, o); err != nil {
			return b, atPath(err, "index", strconv.Itoa(i))
		}
	}
	return append(b, ']'), nil
}

// appendOther encodes a value of any other type with encoding/json (without
// HTML escaping). A panic inside a user type's MarshalJSON becomes an error.
func appendOther(b []byte, v any, depth int) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = b, fmt.Errorf("encode %T: panic: %v", v, r)
		}
	}()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return b, fmt.Errorf("encode %T: %w", v, err)
	}
	// Re-validating repairs invalid UTF-8 that a MarshalJSON method may
	// have produced.
	return appendRawJSON(b, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}))
}

// appendFloat writes f as encoding/json does (shortest representation,
// exponent form outside [1e-6, 1e21)), but writes the non-finite values as
// the strings "NaN", "Infinity" and "-Infinity".
func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// Shorten a two-digit negative exponent: 1e-07 becomes 1e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// isNumber reports whether s is a number in JSON's grammar.
func isNumber[T string | []byte](s T) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i >= len(s):
		return false
	case s[i] == '0':
		i++
	case '1' <= s[i] && s[i] <= '9':
		i = skipDigits(s, i+1)
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		j := skipDigits(s, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := skipDigits(s, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(s)
}

func skipDigits[T string | []byte](s T, i int) int {
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

const hexDigits = "0123456789abcdef"

// plainByte tells which bytes a JSON string holds as they are: ASCII other
// than control characters, '"' and '\\'. It is read-only.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainWord reports whether all eight bytes packed in x are plain (see
// plainByte). (v-ones)&^v&highs is non-zero exactly when some byte of v is
// zero, and (x-ones*n)&^x&highs when some byte of x is below n (n <= 0x80);
// x&highs catches non-ASCII bytes.
func plainWord(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	return ((x-ones*0x20)&^x|(quote-ones)&^quote|(backslash-ones)&^backslash|x)&highs == 0
}

// appendString writes s as a JSON string the way encoding/json does, except
// that <, > and & are not escaped. Invalid UTF-8 becomes the character U+FFFD
// (unescaped, so that decoding and encoding again gives the same bytes).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Skip plain bytes eight at a time, then one at a time.
		for i+8 <= len(s) {
			w := s[i : i+8]
			x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
			if !plainWord(x) {
				break
			}
			i += 8
		}
		for i < len(s) && plainByte[s[i]] {
			i++
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but not valid inside JavaScript string literals.
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// errTimeRange reports a time whose UTC year has no RFC 3339 form.
var errTimeRange = errors.New("year outside [0,9999]")

// appendTime writes t in UTC as 2006-01-02T15:04:05.000000Z (microseconds,
// truncated), without quotes.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return b, fmt.Errorf("time %s: %w", t.Format(time.RFC3339Nano), errTimeRange)
	}
	hour, minute, sec := t.Clock()
	micro := t.Nanosecond() / 1000
	b = append(b,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+micro/100000), byte('0'+micro/10000%10), byte('0'+micro/1000%10),
		byte('0'+micro/100%10), byte('0'+micro/10%10), byte('0'+micro%10), 'Z')
	return b, nil
}
