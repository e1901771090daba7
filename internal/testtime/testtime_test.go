package testtime

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		v    string
		want float64
		ok   bool
	}{
		{"", 1, true},
		{"1", 1, true},
		{"2.5", 2.5, true},
		{"0.5", 0.5, true},
		{"0", 0, false},
		{"-1", 0, false},
		{"NaN", 0, false},
		{"+Inf", 0, false},
		{"3x", 0, false},
	} {
		got, err := parse(c.v)
		if (err == nil) != c.ok || c.ok && got != c.want {
			t.Errorf("parse(%q) = %v, %v; want %v (ok %v)", c.v, got, err, c.want, c.ok)
		}
	}
}

func TestPoll(t *testing.T) {
	calls := 0
	if !Poll(time.Minute, func() bool { calls++; return calls == 3 }) || calls != 3 {
		t.Errorf("Poll of a condition true on the third call: %d calls", calls)
	}
	if Poll(time.Millisecond, func() bool { return false }) {
		t.Error("Poll of a condition never true reported true")
	}
}
