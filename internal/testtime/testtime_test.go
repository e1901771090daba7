package testtime

import "testing"

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
