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
// depth is the nesting level raw sits at.
func appendRawJSON(b []byte, raw []byte, depth int) ([]byte, error) {
	p := rawParser{src: raw}
	p.skipSpace()
	out, err := p.value(b, depth)
	if err != nil {
		return b, err
	}
	p.skipSpace()
	if p.i != len(raw) {
		return b, p.fail("data after the top-level value")
	}
	return out, nil
}

// rawParser is a recursive-descent JSON validator that copies what it
// accepts, minus whitespace.
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

func (p *rawParser) value(b []byte, depth int) ([]byte, error) {
	if p.i >= len(p.src) {
		return b, p.fail("unexpected end")
	}
	switch c := p.src[p.i]; {
	case c == '{':
		return p.object(b, depth)
	case c == '[':
		return p.array(b, depth)
	case c == '"':
		return p.str(b)
	case c == '-' || '0' <= c && c <= '9':
		return p.number(b)
	case c == 't':
		return p.literal(b, "true")
	case c == 'f':
		return p.literal(b, "false")
	case c == 'n':
		return p.literal(b, "null")
	}
	return b, p.fail(fmt.Sprintf("unexpected character %q", p.src[p.i]))
}

func (p *rawParser) literal(b []byte, lit string) ([]byte, error) {
	if len(p.src)-p.i < len(lit) || string(p.src[p.i:p.i+len(lit)]) != lit {
		return b, p.fail("invalid literal")
	}
	p.i += len(lit)
	return append(b, lit...), nil
}

func (p *rawParser) object(b []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return b, errTooDeep
	}
	p.i++ // '{'
	b = append(b, '{')
	p.skipSpace()
	if p.i < len(p.src) && p.src[p.i] == '}' {
		p.i++
		return append(b, '}'), nil
	}
	for {
		if p.i >= len(p.src) || p.src[p.i] != '"' {
			return b, p.fail("want object key")
		}
		var err error
		if b, err = p.str(b); err != nil {
			return b, err
		}
		p.skipSpace()
		if p.i >= len(p.src) || p.src[p.i] != ':' {
			return b, p.fail("want ':' after object key")
		}
		p.i++
		b = append(b, ':')
		p.skipSpace()
		if b, err = p.value(b, depth+1); err != nil {
			return b, err
		}
		p.skipSpace()
		if p.i >= len(p.src) {
			return b, p.fail("unexpected end in object")
		}
		switch p.src[p.i] {
		case ',':
			p.i++
			b = append(b, ',')
			p.skipSpace()
		case '}':
			p.i++
			return append(b, '}'), nil
		default:
			return b, p.fail("want ',' or '}' in object")
		}
	}
}

func (p *rawParser) array(b []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return b, errTooDeep
	}
	p.i++ // '['
	b = append(b, '[')
	p.skipSpace()
	if p.i < len(p.src) && p.src[p.i] == ']' {
		p.i++
		return append(b, ']'), nil
	}
	for {
		var err error
		if b, err = p.value(b, depth+1); err != nil {
			return b, err
		}
		p.skipSpace()
		if p.i >= len(p.src) {
			return b, p.fail("unexpected end in array")
		}
		switch p.src[p.i] {
		case ',':
			p.i++
			b = append(b, ',')
			p.skipSpace()
		case ']':
			p.i++
			return append(b, ']'), nil
		default:
			return b, p.fail("want ',' or ']' in array")
		}
	}
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
