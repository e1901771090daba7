package message_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/walrelay/walrelay/message"
)

func TestAppendKeyText(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{nil, ""},
		{"a:b", "a:b"},
		{int64(-42), "-42"},
		{7, "7"},
		{int32(8), "8"},
		{[]byte{0xde, 0xad}, `\xdead`},
		{message.Numeric("1.50"), "1.50"},
		{json.Number("12.50"), "12.50"},
		{1.5, "1.5"},
		{true, "true"},
		{time.Date(2024, 10, 28, 23, 37, 1, 127470000, time.FixedZone("", 7200)), "2024-10-28T21:37:01.127470Z"},
	}
	for _, c := range cases {
		if got := string(message.AppendKeyText(nil, c.v)); got != c.want {
			t.Errorf("AppendKeyText(%#v) = %q, want %q", c.v, got, c.want)
		}
	}
}

func ExampleMessage_AppendKey() {
	m := message.Message{
		Record:   map[string]any{"tenant": "acme", "id": int64(42), "name": "Ada"},
		Metadata: message.Metadata{PrimaryKey: []string{"tenant", "id"}},
	}
	fmt.Printf("%s\n", m.AppendKey(nil))
	// Output: acme:42
}
