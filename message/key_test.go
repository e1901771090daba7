package message_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strings"
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
		Record: map[string]any{"tenant": "acme", "id": int64(42), "name": "Ada"},
	}
	m.Metadata.SetPrimaryKey("tenant", "id")
	fmt.Printf("%s\n", m.AppendKey(nil))
	// Output: acme:42
}

func TestChangeKey(t *testing.T) {
	tests := []struct {
		lsn   message.LSN
		idx   int
		plain string
	}{
		{0, 0, "0:0"},
		{0x16B374D848, 3, "97500059720:3"},
		{message.LSN(math.MaxUint64), math.MaxInt, "18446744073709551615:9223372036854775807"},
	}
	for _, tc := range tests {
		got := message.ChangeKey(tc.lsn, tc.idx)
		want := base64.StdEncoding.EncodeToString([]byte(tc.plain))
		if got != want {
			t.Errorf("ChangeKey(%d, %d) = %q, want %q (base64 of %q)", tc.lsn, tc.idx, got, want, tc.plain)
		}
		if app := message.AppendChangeKey([]byte("prefix|"), tc.lsn, tc.idx); string(app) != "prefix|"+want {
			t.Errorf("AppendChangeKey(prefix, %d, %d) = %q, want %q", tc.lsn, tc.idx, app, "prefix|"+want)
		}
	}
}

type stringer struct{}

func (stringer) String() string { return "S" }

func TestReadKey(t *testing.T) {
	tests := []struct {
		id    string
		pk    []any
		plain string
	}{
		{"b", nil, "b"},
		{"b", []any{int64(-7)}, "b:-7"},
		{"b", []any{int32(5), int(6), "x:y"}, "b:5:6:x:y"},
		{"b", []any{[]byte{0xff, 0x00}}, `b:\xff00`}, // bytea hex text, as a stream decodes bytea
		{"b", []any{nil, stringer{}}, "b::S"},
		{"b", []any{json.Number("12.50"), 1.5, true}, "b:12.50:1.5:true"},
	}
	for _, tc := range tests {
		got := message.ReadKey(tc.id, tc.pk...)
		if want := base64.StdEncoding.EncodeToString([]byte(tc.plain)); got != want {
			t.Errorf("ReadKey(%q, %v) = %q, want base64 of %q", tc.id, tc.pk, got, tc.plain)
		}
		long := strings.Repeat("k", 200) // past AppendReadKey's stack buffer
		prefix := []byte("prefix|")
		app := message.AppendReadKey(prefix, tc.id+long, tc.pk...)
		if want := "prefix|" + message.ReadKey(tc.id+long, tc.pk...); string(app) != want {
			t.Errorf("AppendReadKey(%q…, %v) = %q, want %q", tc.id, tc.pk, app, want)
		}
	}
}

func BenchmarkChangeKey(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = message.ChangeKey(message.LSN(0x16B374D848+i), i&1023)
	}
}

func BenchmarkReadKey(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = message.ReadKey("backfill-1", int64(i), "eu")
	}
}
