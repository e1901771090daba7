package pgvalue

import (
	"strings"
	"testing"
)

func benchDecode(b *testing.B, oid uint32, text string) {
	m := NewMapper()
	buf := []byte(text)
	if _, err := m.Decode(oid, buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Decode(oid, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeInt8(b *testing.B) { benchDecode(b, oidInt8, "1234567890123") }
func BenchmarkDecodeText(b *testing.B) {
	benchDecode(b, oidText, "a customer's display name, about forty bytes")
}
func BenchmarkDecodeNumeric(b *testing.B) { benchDecode(b, oidNumeric, "12345.6789") }
func BenchmarkDecodeTimestamptz(b *testing.B) {
	benchDecode(b, oidTimestamptz, "2024-10-28 21:37:01.12747+00")
}
func BenchmarkDecodeTimestamptzOffset(b *testing.B) {
	benchDecode(b, oidTimestamptz, "2024-10-28 23:37:01.12747+02")
}
func BenchmarkDecodeJSONB(b *testing.B) {
	benchDecode(b, oidJSONB, `{"id": 42, "tags": ["a", "b"], "name": "widget", "price": 9.99, "active": true}`)
}
func BenchmarkDecodeInt4Array(b *testing.B) {
	benchDecode(b, oidInt4Arr, "{"+strings.TrimSuffix(strings.Repeat("1234,", 16), ",")+"}")
}
func BenchmarkDecodeTextArray(b *testing.B) {
	benchDecode(b, oidTextArr, `{alpha,"beta gamma","with \"quotes\"",NULL}`)
}
