package idempotency_test

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/walrelay/walrelay/idempotency"
	"github.com/walrelay/walrelay/message"
)

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
		got := idempotency.ChangeKey(tc.lsn, tc.idx)
		if want := base64.StdEncoding.EncodeToString([]byte(tc.plain)); got != want {
			t.Errorf("ChangeKey(%d, %d) = %q, want %q (base64 of %q)", tc.lsn, tc.idx, got, want, tc.plain)
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
		got := idempotency.ReadKey(tc.id, tc.pk...)
		if want := base64.StdEncoding.EncodeToString([]byte(tc.plain)); got != want {
			t.Errorf("ReadKey(%q, %v) = %q, want base64 of %q", tc.id, tc.pk, got, tc.plain)
		}
		long := strings.Repeat("k", 200) // past AppendReadKey's stack buffer
		prefix := []byte("prefix|")
		app := idempotency.AppendReadKey(prefix, tc.id+long, tc.pk...)
		if want := "prefix|" + idempotency.ReadKey(tc.id+long, tc.pk...); string(app) != want {
			t.Errorf("AppendReadKey(%q…, %v) = %q, want %q", tc.id, tc.pk, app, want)
		}
	}
}

func BenchmarkChangeKey(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = idempotency.ChangeKey(message.LSN(0x16B374D848+i), i&1023)
	}
}

func BenchmarkReadKey(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = idempotency.ReadKey("backfill-1", int64(i), "eu")
	}
}

func BenchmarkMemoryStoreClaim(b *testing.B) {
	s, err := idempotency.NewMemoryStore(1 << 16)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Claim(ctx, idempotency.ChangeKey(message.LSN(i), 0)); err != nil {
			b.Fatal(err)
		}
	}
}
