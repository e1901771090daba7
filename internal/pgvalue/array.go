package pgvalue

import (
	"errors"
)

// maxArrayDepth bounds nesting: Postgres arrays have at most 6 dimensions,
// and arrays of domains over arrays add a level each.
const maxArrayDepth = 32

var errArrayDepth = errors.New("array nested too deeply")

// decodeArray parses array_out's text: an optional dimension decoration
// ("[0:2]="), then "{…}" with elements separated by the element type's
// delimiter, sub-arrays in braces, NULL, and elements in double quotes with
// backslash escapes. Each element is decoded by the element type. Lower
// bounds are not kept: a JSON array starts at 0.
func (m *Mapper) decodeArray(ti typeInfo, text []byte, depth int) (any, error) {
	if depth >= maxArrayDepth {
		return nil, errArrayDepth
	}
	p := arrayParser{
		m:      m,
		text:   text,
		delim:  ti.delim,
		elem:   ti.elem,
		elemTI: m.info(ti.elem),
		depth:  depth,
	}
	if p.delim == 0 {
		p.delim = ','
	}
	if err := p.skipDims(); err != nil {
		return nil, err
	}
	p.skipSpace()
	v, err := p.parseArray(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.text) {
		return nil, ErrSyntax
	}
	return v, nil
}

type arrayParser struct {
	m       *Mapper
	text    []byte
	pos     int
	delim   byte
	elem    uint32
	elemTI  typeInfo
	depth   int    // nesting of array types (element types that are arrays)
	scratch []byte // unescaped element text, reused
}

func isArraySpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func (p *arrayParser) skipSpace() {
	for p.pos < len(p.text) && isArraySpace(p.text[p.pos]) {
		p.pos++
	}
}

// skipDims skips "[lo:hi]…=" when present.
func (p *arrayParser) skipDims() error {
	if p.pos >= len(p.text) || p.text[p.pos] != '[' {
		return nil
	}
	for p.pos < len(p.text) && p.text[p.pos] == '[' {
		p.pos++
		for p.pos < len(p.text) && p.text[p.pos] != ']' {
			c := p.text[p.pos]
			if (c < '0' || c > '9') && c != ':' && c != '-' && c != '+' {
				return ErrSyntax
			}
			p.pos++
		}
		if p.pos == len(p.text) {
			return ErrSyntax
		}
		p.pos++ // ']'
	}
	if p.pos == len(p.text) || p.text[p.pos] != '=' {
		return ErrSyntax
	}
	p.pos++
	return nil
}

// parseArray parses "{…}" at p.pos. level counts the braces around it.
func (p *arrayParser) parseArray(level int) ([]any, error) {
	if level >= maxArrayDepth {
		return nil, errArrayDepth
	}
	if p.pos >= len(p.text) || p.text[p.pos] != '{' {
		return nil, ErrSyntax
	}
	p.pos++
	n, err := p.countElements()
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, n)
	p.skipSpace()
	if p.pos < len(p.text) && p.text[p.pos] == '}' {
		if level > 0 {
			return nil, ErrSyntax // Postgres has no empty sub-arrays
		}
		p.pos++
		return out, nil
	}
	nested := p.pos < len(p.text) && p.text[p.pos] == '{'
	for {
		p.skipSpace()
		if p.pos >= len(p.text) {
			return nil, ErrSyntax
		}
		if (p.text[p.pos] == '{') != nested {
			return nil, ErrSyntax // mixes sub-arrays and scalars
		}
		if nested {
			sub, err := p.parseArray(level + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, sub)
		} else {
			v, err := p.parseElement()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		p.skipSpace()
		if p.pos >= len(p.text) {
			return nil, ErrSyntax
		}
		switch p.text[p.pos] {
		case p.delim:
			p.pos++
		case '}':
			p.pos++
			return out, nil
		default:
			return nil, ErrSyntax
		}
	}
}

// countElements counts the elements of the array whose "{" was just
// consumed, without moving, so the result is allocated once.
func (p *arrayParser) countElements() (int, error) {
	n, depth, quoted, seen := 0, 0, false, false
	for i := p.pos; i < len(p.text); i++ {
		c := p.text[i]
		switch {
		case c == '\\':
			i++
			seen = true
		case quoted:
			if c == '"' {
				quoted = false
			}
		case c == '"':
			quoted, seen = true, true
		case c == '{':
			depth++
			seen = true
		case c == '}':
			if depth == 0 {
				if seen {
					n++
				}
				return n, nil
			}
			depth--
		case depth == 0 && c == p.delim:
			n++
		case !isArraySpace(c):
			seen = true
		}
	}
	return 0, ErrSyntax
}

// parseElement parses one scalar element and decodes it.
func (p *arrayParser) parseElement() (any, error) {
	t := p.text
	if t[p.pos] == '"' {
		p.pos++
		start := p.pos
		for p.pos < len(t) && t[p.pos] != '"' && t[p.pos] != '\\' {
			p.pos++
		}
		if p.pos >= len(t) {
			return nil, ErrSyntax
		}
		if t[p.pos] == '"' { // no escapes: decode in place
			v := t[start:p.pos]
			p.pos++
			return p.decodeElement(v)
		}
		buf := append(p.scratch[:0], t[start:p.pos]...)
		for {
			if p.pos >= len(t) {
				return nil, ErrSyntax
			}
			c := t[p.pos]
			p.pos++
			switch c {
			case '"':
				p.scratch = buf
				return p.decodeElement(buf)
			case '\\':
				if p.pos >= len(t) {
					return nil, ErrSyntax
				}
				buf = append(buf, t[p.pos])
				p.pos++
			default:
				buf = append(buf, c)
			}
		}
	}
	// Unquoted: up to the delimiter or "}", with backslash escapes; spaces
	// around it are not part of it.
	start := p.pos
	end := p.pos // past the last byte that is not unescaped space
	escaped := false
	for p.pos < len(t) {
		c := t[p.pos]
		if c == p.delim || c == '}' {
			break
		}
		switch {
		case c == '\\':
			escaped = true
			p.pos += 2
			end = min(p.pos, len(t))
			continue
		case c == '{' || c == '"':
			return nil, ErrSyntax
		case !isArraySpace(c):
			end = p.pos + 1
		}
		p.pos++
	}
	if p.pos > len(t) {
		return nil, ErrSyntax
	}
	v := t[start:end]
	if len(v) == 0 {
		return nil, ErrSyntax
	}
	if !escaped {
		if len(v) == 4 && (v[0]|0x20) == 'n' && (v[1]|0x20) == 'u' && (v[2]|0x20) == 'l' && (v[3]|0x20) == 'l' {
			return nil, nil
		}
		return p.decodeElement(v)
	}
	buf := p.scratch[:0]
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' {
			i++
			if i == len(v) {
				return nil, ErrSyntax
			}
		}
		buf = append(buf, v[i])
	}
	p.scratch = buf
	return p.decodeElement(buf)
}

func (p *arrayParser) decodeElement(text []byte) (any, error) {
	return p.m.decode(p.elem, p.elemTI, text, p.depth+1)
}
