package message

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrTableName is wrapped by the errors of [ParseTable]: the text is not a
// table name.
var ErrTableName = errors.New("invalid table name")

// MaxIdentifierLength is the longest identifier Postgres keeps, in bytes
// (NAMEDATALEN-1 in a default build); it truncates longer ones.
const MaxIdentifierLength = 63

// ParseTable parses a table name written as in SQL — "table" or
// "schema.table" — into the names Postgres stores in its catalog, which are
// the names messages carry in [Metadata].TableSchema and TableName. Each
// part is either
//
//   - unquoted: ASCII letters, digits, _ and $, and any non-ASCII
//     character, not starting with a digit or $. ASCII upper case is
//     folded to lower case, as Postgres folds it: Orders is orders.
//   - in double quotes: any characters, kept exactly, "" standing for one
//     double quote. This is how to name a table whose name has upper case,
//     dots, spaces or quotes: "Orders", "my.schema"."line ""items""".
//
// Nothing else may appear: no spaces around the dot, no third part. A part
// must not be empty nor longer than [MaxIdentifierLength] bytes once
// unquoted (Postgres would truncate it, and it would match no table). schema
// is "" when s has no schema part; the caller chooses the default. Errors
// wrap [ErrTableName].
func ParseTable(s string) (schema, table string, err error) {
	var parts [2]string
	n := 0
	for rest := s; ; {
		if n == 2 {
			return "", "", tableErr(s, "more than two dot-separated parts (quote a name that contains a dot)")
		}
		part, tail, err := parseIdent(s, rest)
		if err != nil {
			return "", "", err
		}
		parts[n] = part
		n++
		if tail == "" {
			break
		}
		if tail[0] != '.' {
			return "", "", tableErr(s, fmt.Sprintf("unexpected %q after %q", tail[:1], s[:len(s)-len(tail)]))
		}
		rest = tail[1:]
	}
	if n == 1 {
		return "", parts[0], nil
	}
	return parts[0], parts[1], nil
}

// parseIdent parses the identifier at the start of rest, a suffix of the
// name s, and returns it with what follows it.
func parseIdent(s, rest string) (ident, tail string, err error) {
	if rest == "" {
		return "", "", tableErr(s, "empty name part")
	}
	if rest[0] == '"' {
		var b strings.Builder
		for i := 1; i < len(rest); i++ {
			if rest[i] != '"' {
				b.WriteByte(rest[i])
				continue
			}
			if i+1 < len(rest) && rest[i+1] == '"' {
				b.WriteByte('"')
				i++
				continue
			}
			ident, tail = b.String(), rest[i+1:]
			if ident == "" {
				return "", "", tableErr(s, "empty quoted name part")
			}
			if strings.IndexByte(ident, 0) >= 0 || !utf8.ValidString(ident) {
				return "", "", tableErr(s, "a name part is not valid UTF-8 text")
			}
			if len(ident) > MaxIdentifierLength {
				return "", "", tableErr(s, fmt.Sprintf("name part %q is longer than %d bytes", ident, MaxIdentifierLength))
			}
			return ident, tail, nil
		}
		return "", "", tableErr(s, "unterminated quoted name part")
	}
	var b strings.Builder
	i := 0
	for i < len(rest) {
		c := rest[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		case c >= 'a' && c <= 'z', c == '_':
			b.WriteByte(c)
		case c >= '0' && c <= '9', c == '$':
			if i == 0 {
				return "", "", tableErr(s, fmt.Sprintf("unquoted name part starts with %q (quote it)", c))
			}
			b.WriteByte(c)
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(rest[i:])
			if r == utf8.RuneError && size == 1 {
				return "", "", tableErr(s, "not valid UTF-8 text")
			}
			b.WriteString(rest[i : i+size])
			i += size
			continue
		case c == '.':
			if i == 0 {
				return "", "", tableErr(s, "empty name part")
			}
			return checkLen(s, b.String(), rest[i:])
		default:
			return "", "", tableErr(s, fmt.Sprintf("unquoted name part contains %q (quote the part to use it)", c))
		}
		i++
	}
	return checkLen(s, b.String(), "")
}

func checkLen(s, ident, tail string) (string, string, error) {
	if len(ident) > MaxIdentifierLength {
		return "", "", tableErr(s, fmt.Sprintf("name part %q is longer than %d bytes", ident, MaxIdentifierLength))
	}
	return ident, tail, nil
}

func tableErr(s, why string) error {
	return fmt.Errorf("%w %q: %s", ErrTableName, s, why)
}
