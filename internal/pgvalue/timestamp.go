package pgvalue

import (
	"time"
)

// civil is a timestamp's fields, with astronomical year numbering
// (1 BC is year 0, 2 BC is year -1).
type civil struct {
	year                       int
	month, day, hour, min, sec int
	usec                       int
}

// decodeTimestamp turns timestamptz and timestamp text in DateStyle ISO
// ("2024-10-28 21:37:01.12747+05:30", "0044-03-15 12:00:00 BC") into
// "2024-10-28T16:07:01.127470Z": UTC (for timestamptz) with exactly six
// fractional digits. infinity and -infinity stay as they are.
func decodeTimestamp(b []byte, zoned bool) (any, error) {
	if s, ok := infinity(b); ok {
		return s, nil
	}
	c, err := civilTime(b, zoned)
	if err != nil {
		return nil, err
	}
	var buf [maxTimestampLen]byte
	return string(appendTimestamp(buf[:0], c, zoned)), nil
}

// maxTimestampLen bounds what appendTimestamp writes: a sign, an
// eight-digit year, the rest of the fields and "Z" take 32 bytes.
const maxTimestampLen = 40

// infinity reports whether b is infinity or -infinity, and which.
func infinity(b []byte) (string, bool) {
	switch string(b) {
	case "infinity":
		return "infinity", true
	case "-infinity":
		return "-infinity", true
	}
	return "", false
}

// civilTime parses b and, for an offset other than UTC, converts it to UTC.
func civilTime(b []byte, zoned bool) (civil, error) {
	c, offset, err := parseTimestamp(b, zoned)
	if err != nil {
		return civil{}, err
	}
	if offset != 0 {
		t := time.Date(c.year, time.Month(c.month), c.day, c.hour, c.min, c.sec, c.usec*1000, time.UTC)
		t = t.Add(-time.Duration(offset) * time.Second)
		y, mo, d := t.Date()
		h, mi, s := t.Clock()
		c = civil{year: y, month: int(mo), day: d, hour: h, min: mi, sec: s, usec: t.Nanosecond() / 1000}
	}
	return c, nil
}

// parseTimestamp parses ISO output: a year of four or more digits, then
// -MM-DD HH:MM:SS, up to six fractional digits, for timestamptz an offset
// ±HH[:MM[:SS]], and an optional " BC". offset is in seconds east of UTC.
func parseTimestamp(b []byte, zoned bool) (c civil, offset int, err error) {
	p := 0
	num := func(min, max int) (int, bool) {
		s := p
		n := 0
		for p < len(b) && p-s < max && b[p] >= '0' && b[p] <= '9' {
			n = n*10 + int(b[p]-'0')
			p++
		}
		return n, p-s >= min
	}
	lit := func(ch byte) bool {
		if p < len(b) && b[p] == ch {
			p++
			return true
		}
		return false
	}
	var ok bool
	if c.year, ok = num(4, 7); !ok || !lit('-') {
		return c, 0, ErrSyntax
	}
	if c.month, ok = num(2, 2); !ok || !lit('-') {
		return c, 0, ErrSyntax
	}
	if c.day, ok = num(2, 2); !ok || !lit(' ') {
		return c, 0, ErrSyntax
	}
	if c.hour, ok = num(2, 2); !ok || !lit(':') {
		return c, 0, ErrSyntax
	}
	if c.min, ok = num(2, 2); !ok || !lit(':') {
		return c, 0, ErrSyntax
	}
	if c.sec, ok = num(2, 2); !ok {
		return c, 0, ErrSyntax
	}
	if lit('.') {
		s := p
		if c.usec, ok = num(1, 6); !ok {
			return c, 0, ErrSyntax
		}
		for i := p - s; i < 6; i++ {
			c.usec *= 10
		}
	}
	if zoned {
		var sign int
		switch {
		case lit('+'):
			sign = 1
		case lit('-'):
			sign = -1
		default:
			return c, 0, ErrSyntax
		}
		h, ok := num(2, 2)
		if !ok {
			return c, 0, ErrSyntax
		}
		var m, s int
		if lit(':') {
			if m, ok = num(2, 2); !ok {
				return c, 0, ErrSyntax
			}
			if lit(':') {
				if s, ok = num(2, 2); !ok {
					return c, 0, ErrSyntax
				}
			}
		}
		if h > 15 || m > 59 || s > 59 {
			return c, 0, errRange
		}
		offset = sign * (h*3600 + m*60 + s)
	}
	if p < len(b) {
		if string(b[p:]) != " BC" || c.year == 0 {
			return c, 0, ErrSyntax
		}
		c.year = 1 - c.year
	}
	if c.month < 1 || c.month > 12 || c.day < 1 || c.day > daysIn(c.year, c.month) ||
		c.hour > 23 || c.min > 59 || c.sec > 59 {
		return c, 0, errRange
	}
	return c, offset, nil
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// appendTimestamp writes c as YYYY-MM-DDTHH:MM:SS.ffffff, then Z when zoned.
// Years before 1 AD are negative in astronomical numbering ("-0043" is
// 44 BC, "0000" is 1 BC); years past 9999 have as many digits as they need.
func appendTimestamp(b []byte, c civil, zoned bool) []byte {
	y := c.year
	if y < 0 {
		b = append(b, '-')
		y = -y
	}
	if y > 9999 {
		var d [8]byte
		i := len(d)
		for y > 0 {
			i--
			d[i] = byte('0' + y%10)
			y /= 10
		}
		b = append(b, d[i:]...)
	} else {
		b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
	}
	b = append(b, '-')
	b = append2(b, c.month)
	b = append(b, '-')
	b = append2(b, c.day)
	b = append(b, 'T')
	b = append2(b, c.hour)
	b = append(b, ':')
	b = append2(b, c.min)
	b = append(b, ':')
	b = append2(b, c.sec)
	u := c.usec
	b = append(b, '.',
		byte('0'+u/100000), byte('0'+u/10000%10), byte('0'+u/1000%10),
		byte('0'+u/100%10), byte('0'+u/10%10), byte('0'+u%10))
	if zoned {
		b = append(b, 'Z')
	}
	return b
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }
