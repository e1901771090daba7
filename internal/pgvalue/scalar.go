package pgvalue

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unsafe"

	"github.com/walrelay/walrelay/message"
)

var (
	errRange = errors.New("value out of range")
)

// parseInt parses a decimal integer as int2, int4, int8 and oid print it.
func parseInt(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, ErrSyntax
	}
	neg := false
	i := 0
	switch b[0] {
	case '-':
		neg, i = true, 1
	case '+':
		i = 1
	}
	if i == len(b) || len(b)-i > 19 {
		return 0, ErrSyntax
	}
	var u uint64
	for ; i < len(b); i++ {
		c := b[i] - '0'
		if c > 9 {
			return 0, ErrSyntax
		}
		u = u*10 + uint64(c) // at most 19 digits: no overflow of uint64
	}
	if neg {
		if u > 1<<63 {
			return 0, errRange
		}
		return -int64(u), nil
	}
	if u > math.MaxInt64 {
		return 0, errRange
	}
	return int64(u), nil
}

// Special float and numeric values, which JSON numbers cannot express.
const (
	nan    = "NaN"
	posInf = "Infinity"
	negInf = "-Infinity"
)

// special returns the string for NaN, Infinity and -Infinity.
func special(b []byte) (string, bool) {
	switch string(b) {
	case nan:
		return nan, true
	case posInf:
		return posInf, true
	case negInf:
		return negInf, true
	}
	return "", false
}

func decodeFloat(b []byte) (any, error) {
	if s, ok := special(b); ok {
		return s, nil
	}
	if len(b) == 0 || !isFloatSyntax(b) {
		return nil, ErrSyntax
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return nil, ErrSyntax
	}
	return f, nil
}

// isFloatSyntax accepts what float4out and float8out print for finite
// values: [-]digits[.digits][e[+-]digits]. It keeps strconv from accepting
// Go-only forms such as "inf", "0x1p3" or "1_000".
func isFloatSyntax(b []byte) bool {
	i := 0
	if b[0] == '-' {
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	digits := i - start
	if i < len(b) && b[i] == '.' {
		i++
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		digits += i - s
	}
	if digits == 0 {
		return false
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == s {
			return false
		}
	}
	return i == len(b)
}

// decodeNumeric keeps the exact text as a message.Numeric; it checks it
// against the JSON number grammar, which numeric_out's output always meets
// (NaN, Infinity and -Infinity aside).
func decodeNumeric(b []byte) (any, error) {
	if s, ok := special(b); ok {
		return message.Numeric(s), nil
	}
	if !isJSONNumber(b) {
		return nil, ErrSyntax
	}
	return message.Numeric(b), nil
}

// isJSONNumber reports whether b is a number in RFC 8259's grammar.
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i == len(b):
		return false
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == s {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == s {
			return false
		}
	}
	return i == len(b)
}

func decodeBool(b []byte) (any, error) {
	if len(b) == 1 {
		switch b[0] {
		case 't':
			return true, nil
		case 'f':
			return false, nil
		}
	}
	return nil, ErrSyntax
}

// decodeBytea returns bytea as Postgres's hex text (\x0aff…), the form
// Sequin delivers, from either bytea_output format: hex text is checked and
// kept as it is (digits lower-cased), escape text (printable bytes as
// themselves, \\ and \ooo octal) is converted.
func decodeBytea(b []byte) (any, error) {
	if len(b) >= 2 && b[0] == '\\' && b[1] == 'x' {
		if !isHexBytea(b) {
			return nil, ErrSyntax
		}
		out := []byte(string(b))
		for i := 2; i < len(out); i++ {
			if c := out[i]; 'A' <= c && c <= 'F' {
				out[i] = c + 'a' - 'A'
			}
		}
		return unsafe.String(unsafe.SliceData(out), len(out)), nil
	}
	n := 0
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' {
			switch {
			case i+1 < len(b) && b[i+1] == '\\':
				i++
			case i+3 < len(b) && isOctal(b[i+1]) && isOctal(b[i+2]) && isOctal(b[i+3]) && b[i+1] <= '3':
				i += 3
			default:
				return nil, ErrSyntax
			}
		}
		n++
	}
	out := make([]byte, 2, 2+2*n)
	out[0], out[1] = '\\', 'x'
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' {
			if b[i+1] == '\\' {
				i++
			} else {
				c = (b[i+1]-'0')<<6 | (b[i+2]-'0')<<3 | (b[i+3] - '0')
				i += 3
			}
		}
		out = append(out, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return unsafe.String(unsafe.SliceData(out), len(out)), nil
}

const hexDigits = "0123456789abcdef"

// isHexBytea reports whether b is "\x" and an even number of hex digits,
// and lower-case: the text byteaout prints in hex mode.
func isHexBytea(b []byte) bool {
	if len(b)%2 != 0 {
		return false
	}
	for _, c := range b[2:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// isLowerHexBytea reports whether b is exactly what byteaout prints in hex
// mode: "\\x" and an even number of lower-case hex digits.
func isLowerHexBytea(b []byte) bool {
	if len(b) < 2 || b[0] != '\\' || b[1] != 'x' || len(b)%2 != 0 {
		return false
	}
	for _, c := range b[2:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// decodeJSON copies json and jsonb text without validating it: Postgres
// stores only valid JSON, at nesting depths beyond what encoding/json
// accepts (10,000), and re-validating here would turn such a row into an
// error that stops the stream. The message encoder still checks raw JSON as
// it embeds it, at any depth.
func decodeJSON(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, ErrSyntax
	}
	return json.RawMessage(append([]byte(nil), b...)), nil
}
