package message

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzUnmarshalJSON checks that decoding never panics, and that whatever it
// accepts encodes to valid JSON that decodes and encodes to the same bytes.
func FuzzUnmarshalJSON(f *testing.F) {
	golden, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range golden {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(sequinExample))
	f.Fuzz(func(t *testing.T, in []byte) {
		var m Message
		if err := m.UnmarshalJSON(in); err != nil {
			return
		}
		b1, err := m.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of a decoded message: %v\ninput: %q", err, in)
		}
		if !json.Valid(b1) || !utf8.Valid(b1) {
			t.Fatalf("MarshalJSON output is not valid UTF-8 JSON: %q", b1)
		}
		var m2 Message
		if err := m2.UnmarshalJSON(b1); err != nil {
			t.Fatalf("UnmarshalJSON of our own output: %v\n%s", err, b1)
		}
		b2, err := m2.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON after a round trip: %v", err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("round trip changed the bytes\nfirst:  %s\nsecond: %s", b1, b2)
		}
	})
}

// FuzzParseLSN checks that ParseLSN never panics and that String and
// ParseLSN invert each other.
func FuzzParseLSN(f *testing.F) {
	f.Add("16/B374D848", uint64(0))
	f.Add("0/0", uint64(1))
	f.Add("FFFFFFFF/FFFFFFFF", uint64(1<<63))
	f.Fuzz(func(t *testing.T, s string, n uint64) {
		if l, err := ParseLSN(s); err == nil {
			back, err := ParseLSN(l.String())
			if err != nil || back != l {
				t.Fatalf("ParseLSN(%q) = %v, but ParseLSN(%q) = %v, %v", s, l, l.String(), back, err)
			}
			hi, lo, _ := strings.Cut(s, "/")
			if want := strings.ToUpper(trimZeros(hi) + "/" + trimZeros(lo)); l.String() != want {
				t.Fatalf("ParseLSN(%q).String() = %q, want %q", s, l.String(), want)
			}
		}
		l := LSN(n)
		back, err := ParseLSN(l.String())
		if err != nil || back != l {
			t.Fatalf("ParseLSN(%q) = %v, %v; want %v", l.String(), back, err, l)
		}
	})
}

func trimZeros(s string) string {
	if t := strings.TrimLeft(s, "0"); t != "" {
		return t
	}
	return "0"
}

// FuzzAppendString compares string escaping with encoding/json.
func FuzzAppendString(f *testing.F) {
	f.Add("plain ascii text")
	f.Add("<html> & \"quotes\" \\ \n\t\x00\x1f")
	f.Add("\u2028\u2029 日本 🌍")
	f.Add("bad \xff\xfe utf8 \xc3")
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		if !json.Valid(got) || !utf8.Valid(got) {
			t.Fatalf("appendString(%q) = %q: not valid UTF-8 JSON", s, got)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		// Converting to runes turns each invalid byte into U+FFFD.
		if want := string([]rune(s)); back != want {
			t.Fatalf("appendString(%q) decodes to %q, want %q", s, back, want)
		}
		if !utf8.ValidString(s) {
			return
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if want := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, encoding/json gives %s", s, got, want)
		}
	})
}

// FuzzRawJSON checks raw JSON validation against json.Valid and compaction
// against json.Compact.
func FuzzRawJSON(f *testing.F) {
	f.Add([]byte(`{"a": [1, 2.5e3, "x"], "b": null}`))
	f.Add([]byte(` [ true , false ] `))
	f.Add([]byte(`{"a":}`))
	f.Add([]byte("\"\xff\""))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := appendRawJSON(nil, raw)
		// json.Valid also rejects nesting deeper than 10000 levels, which
		// raw JSON from Postgres may have.
		if valid := json.Valid(raw) || err == nil && bytes.Count(raw, []byte("["))+bytes.Count(raw, []byte("{")) > 10000; valid != (err == nil) {
			t.Fatalf("appendRawJSON(%q) error = %v, but json.Valid = %v", raw, err, valid)
		}
		if err != nil {
			return
		}
		if !json.Valid(got) || !utf8.Valid(got) {
			t.Fatalf("appendRawJSON(%q) = %q: not valid UTF-8 JSON", raw, got)
		}
		if utf8.Valid(raw) {
			var want bytes.Buffer
			if err := json.Compact(&want, raw); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("appendRawJSON(%q) = %s, json.Compact gives %s", raw, got, want.Bytes())
			}
		}
	})
}
