package pgoutput

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// capturedMessages reads the seed corpus of FuzzParse: pgoutput messages
// captured from a live server, keyed by file name ("captured-03-I").
func capturedMessages(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParse", "captured-*"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no captured messages: %v", err)
	}
	msgs := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		// "go test fuzz v1\n[]byte(\"…\")\n"
		_, lit, _ := strings.Cut(string(b), "\n")
		lit = strings.TrimSpace(lit)
		lit, ok := strings.CutPrefix(lit, "[]byte(")
		lit, ok2 := strings.CutSuffix(lit, ")")
		s, err := strconv.Unquote(lit)
		if !ok || !ok2 || err != nil {
			tb.Fatalf("%s: not a []byte corpus entry: %v", f, err)
		}
		msgs[filepath.Base(f)] = []byte(s)
	}
	return msgs
}

// BenchmarkParse decodes each captured message type; the insert, update and
// delete cases are the per-row hot path of the stream.
func BenchmarkParse(b *testing.B) {
	msgs := capturedMessages(b)
	// One representative per type byte: the first file of each.
	names := make([]string, 0, len(msgs))
	for n := range msgs {
		names = append(names, n)
	}
	sort.Strings(names)
	seen := map[byte]bool{}
	for _, n := range names {
		data := msgs[n]
		if seen[data[0]] {
			continue
		}
		seen[data[0]] = true
		b.Run(string(data[0])+"/"+n, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseCaptured decodes the whole captured session, every message
// in order, as one op.
func BenchmarkParseCaptured(b *testing.B) {
	msgs := capturedMessages(b)
	names := make([]string, 0, len(msgs))
	var n int64
	for name, m := range msgs {
		names = append(names, name)
		n += int64(len(m))
	}
	sort.Strings(names)
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		for _, name := range names {
			if _, err := Parse(msgs[name]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// insertMessage builds an INSERT of a typical six-column, 100-byte row.
func insertMessage() []byte {
	cols := []string{"1234567", "789", "1234.50", "shipped", "e10adc3949ba59abbe56e057f20f883e", "2024-10-28 21:37:01.12747+00"}
	b := []byte{'I', 0, 0, 0x40, 0x07, 'N', 0, byte(len(cols))}
	for _, c := range cols {
		b = append(b, 't', 0, 0, byte(len(c)>>8), byte(len(c)))
		b = append(b, c...)
	}
	return b
}

func BenchmarkParseInsert6(b *testing.B) {
	data := insertMessage()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParserInsert6(b *testing.B) {
	var p Parser
	data := insertMessage()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
