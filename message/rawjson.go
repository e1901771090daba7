package message

import (
	"fmt"
	"unicode/utf8"
)

// RawJSONError reports a json.RawMessage value (or the output of a type's
// own MarshalJSON) that is not valid JSON.
type RawJSONError struct {
	Offset int    // byte offset of the problem in the raw value
	Reason string // what was wrong there
}

func (e *RawJSONError) Error() string {
	return fmt.Sprintf("invalid raw JSON at offset %d: %s", e.Offset, e.Reason)
}

// appendRawJSON validates raw and appends it compacted (insignificant
// whitespace removed, invalid UTF-8 inside strings replaced by U+FFFD).
// Raw JSON, unlike Go maps and slices, cannot contain itself: it is
// accepted at any nesting depth (Postgres stores jsonb nested deeper than
// encoding/json's 10000 levels), at a cost of one byte per level.
func appendRawJSON(b []byte, raw []byte) ([]byte, error) {
	p := rawParser{src: raw}
	p.skipSpace()
	out, err := p.value(b)
	if err != nil {
		return b, err
	}
	p.skipSpace()
	if p.i != len(raw) {
		return b, p.fail("data after the top-level value")
	}
	return out, nil
}

// rawParser is a JSON validator that copies what it accepts, minus
// whitespace. Containers are tracked on an explicit stack, not by
// recursion, so depth never grows the goroutine's stack.
type rawParser struct {
	src []byte
	i   int
}

func (p *rawParser) fail(reason string) error {
	return &RawJSONError{Offset: p.i, Reason: reason}
}

func (p *rawParser) skipSpace() {
	for p.i < len(p.src) {
		switch p.src[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value copies one JSON value starting at p.i.
func (p *rawParser) value(b []byte) ([]byte, error) {
	var stack [64]byte
	open := stack[:0] // '{' or '[' for each container being copied
	for {
		// A value starts at p.i.
		if p.i >= len(p.src) {
			return b, p.fail("unexpected end")
		}
		var err error
		switch c := p.src[p.i]; {
		case c == '{' || c == '[':
			end := byte('}')
			if c == '[' {
				end = ']'
			}
			p.i++
			b = append(b, c)
			p.skipSpace()
			if p.i < len(p.src) && p.src[p.i] == end {
				p.i++
				b = append(b, end)
				break // an empty container is a complete value
			}
			open = append(open, c)
			if c == '{' {
				if b, err = p.key(b); err != nil {
					return b, err
				}
			}
			continue
		case c == '"':
			b, err = p.str(b)
		case c == '-' || '0' <= c && c <= '9':
			b, err = p.number(b)
		case c == 't':
			b, err = p.literal(b, "true")
		case c == 'f':
			b, err = p.literal(b, "false")
		case c == 'n':
			b, err = p.literal(b, "null")
		default:
			return b, p.fail(fmt.Sprintf("unexpected character %q", c))
		}
		if err != nil {
			return b, err
		}
		// A value is complete: close the containers it completes, up to the
		// next element.
		for next := false; !next; {
			if len(open) == 0 {
				return b, nil
			}
			p.skipSpace()
			top := open[len(open)-1]
			kind, end := "array", byte(']')
			if top == '{' {
				kind, end = "object", '}'
			}
			if p.i >= len(p.src) {
				return b, p.fail("unexpected end in " + kind)
			}
			switch p.src[p.i] {
			case ',':
				p.i++
				b = append(b, ',')
				p.skipSpace()
				if top == '{' {
					if b, err = p.key(b); err != nil {
						return b, err
					}
				}
				next = true
			case end:
				p.i++
				b = append(b, end)
				open = open[:len(open)-1]
			default:
				return b, p.fail(fmt.Sprintf("want ',' or '%c' in %s", end, kind))
			}
		}
	}
}

func (p *rawParser) literal(b []byte, lit string) ([]byte, error) {
	if len(p.src)-p.i < len(lit) || string(p.src[p.i:p.i+len(lit)]) != lit {
		return b, p.fail("invalid literal")
	}
	p.i += len(lit)
	return append(b, lit...), nil
}

// key copies an object key and its colon, leaving p.i at the value.
func (p *rawParser) key(b []byte) ([]byte, error) {
	if p.i >= len(p.src) || p.src[p.i] != '"' {
		return b, p.fail("want object key")
	}
	b, err := p.str(b)
	if err != nil {
		return b, err
	}
	p.skipSpace()
	if p.i >= len(p.src) || p.src[p.i] != ':' {
		return b, p.fail("want ':' after object key")
	}
	p.i++
	b = append(b, ':')
	p.skipSpace()
	return b, nil
}

func (p *rawParser) number(b []byte) ([]byte, error) {
	start := p.i
	for p.i < len(p.src) {
		c := p.src[p.i]
		if '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.i++
			continue
		}
		break
	}
	if !isNumber(p.src[start:p.i]) {
		p.i = start
		return b, p.fail("invalid number")
	}
	return append(b, p.src[start:p.i]...), nil
}

// str copies a string, checking its escapes and repairing invalid UTF-8.
func (p *rawParser) str(b []byte) ([]byte, error) {
	p.i++ // opening quote
	b = append(b, '"')
	start := p.i
	for p.i < len(p.src) {
		for p.i < len(p.src) && plainByte[p.src[p.i]] {
			p.i++
		}
		if p.i >= len(p.src) {
			break
		}
		c := p.src[p.i]
		switch {
		case c == '"':
			b = append(b, p.src[start:p.i]...)
			p.i++
			return append(b, '"'), nil
		case c == '\\':
			if err := p.escape(); err != nil {
				return b, err
			}
		case c < 0x20:
			return b, p.fail("control character in string")
		case c < utf8.RuneSelf:
			p.i++
		default:
			r, size := utf8.DecodeRune(p.src[p.i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, p.src[start:p.i]...)
				b = append(b, "\uFFFD"...)
				p.i++
				start = p.i
				continue
			}
			p.i += size
		}
	}
	return b, p.fail("unterminated string")
}

// escape checks the escape sequence at p.i and steps over it.
func (p *rawParser) escape() error {
	if p.i+1 >= len(p.src) {
		return p.fail("unterminated escape")
	}
	switch p.src[p.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		p.i += 2
		return nil
	case 'u':
		if p.i+6 > len(p.src) {
			return p.fail(`short \u escape`)
		}
		for _, h := range p.src[p.i+2 : p.i+6] {
			if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
				return p.fail(`invalid \u escape`)
			}
		}
		p.i += 6
		return nil
	}
	return p.fail("invalid escape")
}
