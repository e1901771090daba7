package pgvalue

import (
	"math"

	"github.com/walrelay/walrelay/message"
)

// decodeInterval parses interval_out's text in IntervalStyle postgres (the
// default, which walrelay's connections set): "1 year 2 mons -3 days
// +04:05:06.789", each part optional, "00:00:00" for zero, hours of any
// width. It returns a message.Interval, or the string infinity or -infinity
// (PostgreSQL 17 and later).
func decodeInterval(b []byte) (any, error) {
	if s, ok := infinity(b); ok {
		return s, nil
	}
	var (
		months, days int64
		usec         int64
		i            int
		seenTime     bool
		seenAny      bool
	)
	for i < len(b) {
		if seenAny {
			if b[i] != ' ' {
				return nil, ErrSyntax
			}
			i++
		}
		seenAny = true
		neg := false
		switch {
		case i < len(b) && b[i] == '-':
			neg = true
			i++
		case i < len(b) && b[i] == '+':
			i++
		}
		n, j, ok := intervalNumber(b, i)
		if !ok {
			return nil, ErrSyntax
		}
		i = j
		if i < len(b) && b[i] == ':' {
			if seenTime {
				return nil, ErrSyntax
			}
			seenTime = true
			t, j, err := intervalTime(b, i, n)
			if err != nil {
				return nil, err
			}
			i = j
			switch {
			case neg && t <= 1<<63:
				usec = int64(-t) // two's complement: -(1<<63) included
			case !neg && t <= math.MaxInt64:
				usec = int64(t)
			default:
				return nil, errRange
			}
			continue
		}
		if seenTime || i >= len(b) || b[i] != ' ' {
			return nil, ErrSyntax // a number needs a unit, and units come before the time
		}
		i++
		start := i
		for i < len(b) && 'a' <= b[i] && b[i] <= 'z' {
			i++
		}
		if neg {
			n = -n
		}
		switch string(b[start:i]) {
		case "year", "years":
			if n > math.MaxInt32/12+1 || n < math.MinInt32/12-1 {
				return nil, errRange
			}
			months += n * 12
		case "mon", "mons":
			months += n
		case "day", "days":
			days += n
		default:
			return nil, ErrSyntax
		}
		if months > math.MaxInt32 || months < math.MinInt32 || days > math.MaxInt32 || days < math.MinInt32 {
			return nil, errRange
		}
	}
	if !seenAny {
		return nil, ErrSyntax
	}
	return message.Interval{Months: int32(months), Days: int32(days), Microseconds: usec}, nil
}

// intervalNumber parses the digits at b[i:] (at least one, at most 19).
func intervalNumber(b []byte, i int) (int64, int, bool) {
	start := i
	var n int64
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		if i-start == 19 {
			return 0, i, false
		}
		n = n*10 + int64(b[i]-'0')
		i++
	}
	return n, i, i > start && n >= 0
}

// intervalTime parses ":MM:SS[.ffffff]" at b[i:] after hours h and returns
// the whole time in microseconds, unsigned.
func intervalTime(b []byte, i int, h int64) (uint64, int, error) {
	two := func() (int64, bool) {
		if i+3 > len(b) || b[i] != ':' || b[i+1] < '0' || b[i+1] > '9' || b[i+2] < '0' || b[i+2] > '9' {
			return 0, false
		}
		v := int64(b[i+1]-'0')*10 + int64(b[i+2]-'0')
		i += 3
		return v, v < 60
	}
	m, ok := two()
	if !ok {
		return 0, i, ErrSyntax
	}
	s, ok := two()
	if !ok {
		return 0, i, ErrSyntax
	}
	var frac int64
	if i < len(b) && b[i] == '.' {
		i++
		digits := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			if digits == 6 {
				return 0, i, ErrSyntax
			}
			frac = frac*10 + int64(b[i]-'0')
			digits++
			i++
		}
		if digits == 0 {
			return 0, i, ErrSyntax
		}
		for ; digits < 6; digits++ {
			frac *= 10
		}
	}
	const hourUsec = 3600 * 1000000
	if uint64(h) > (math.MaxUint64-(59*60+59)*1000000-999999)/hourUsec {
		return 0, i, errRange
	}
	return uint64(h)*hourUsec + uint64((m*60+s)*1000000+frac), i, nil
}
