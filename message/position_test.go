package message_test

import (
	"testing"

	"github.com/walrelay/walrelay/message"
)

func TestPosition(t *testing.T) {
	var zero message.Position
	a1, a2, b1 := message.NewPosition(1, 1), message.NewPosition(1, 2), message.NewPosition(2, 1)
	if !zero.IsZero() || a1.IsZero() || zero.String() != "none" {
		t.Errorf("zero: IsZero %v, a1.IsZero %v, String %q", zero.IsZero(), a1.IsZero(), zero.String())
	}
	if a2.Stream() != 1 || a2.Seq() != 2 || a2.String() != "1/2" {
		t.Errorf("NewPosition(1, 2) = stream %d seq %d %q", a2.Stream(), a2.Seq(), a2)
	}
	for _, c := range []struct {
		p, q message.Position
		want int
	}{{a1, a2, -1}, {a2, a1, 1}, {a1, a1, 0}, {a2, b1, -1}, {zero, a1, -1}} {
		if got := c.p.Compare(c.q); got != c.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", c.p, c.q, got, c.want)
		}
	}
	seen := map[message.Position]bool{a1: true}
	if !seen[message.NewPosition(1, 1)] || seen[a2] {
		t.Error("Position is not usable as a map key")
	}
}
