package message

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
)

// TestEncoderLines: the Encoder writes exactly MarshalJSON's bytes and a
// newline per message, one Write each, with the buffer reused across
// messages of different sizes; with options it writes what they give.
func TestEncoderLines(t *testing.T) {
	msgs := []Message{benchInsert(), {Record: map[string]any{"big": strings.Repeat("<&>", 5000)}}, {Record: map[string]any{"a": int64(1)}}}
	var out writes
	enc := NewEncoder(&out)
	var want bytes.Buffer
	for _, m := range msgs {
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
		b, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		want.Write(b)
		want.WriteByte('\n')
	}
	if got := bytes.Join(out, nil); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("Encoder wrote\n%s\nwant\n%s", got, want.Bytes())
	}
	if len(out) != len(msgs) {
		t.Errorf("%d Write calls for %d messages", len(out), len(msgs))
	}

	m := Message{Record: map[string]any{"n": Numeric("1.50")}, Metadata: Metadata{columns: []string{"n"}}}
	out = nil
	if err := (JSONOptions{NumericNumbers: true}).NewEncoder(&out).Encode(m); err != nil {
		t.Fatal(err)
	}
	b, err := JSONOptions{NumericNumbers: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(bytes.Join(out, nil)); got != string(b)+"\n" {
		t.Errorf("with options: %s, want %s", got, b)
	}
}

// writes records each Write call's bytes (copied: the Encoder reuses them).
type writes [][]byte

func (w *writes) Write(b []byte) (int, error) {
	*w = append(*w, bytes.Clone(b))
	return len(b), nil
}

// TestEncoderErrors: a message that cannot be encoded writes nothing and
// returns the encoding error; a writer's error is returned as it is.
func TestEncoderErrors(t *testing.T) {
	var out writes
	enc := NewEncoder(&out)
	if err := enc.Encode(Message{Record: map[string]any{"c": make(chan int)}}); err == nil {
		t.Fatal("no error for a channel value")
	}
	if len(out) != 0 {
		t.Fatalf("wrote %q for a message that failed to encode", out)
	}
	if err := NewEncoder(failWriter{}).Encode(benchInsert()); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("writer error: got %v, want io.ErrClosedPipe", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestEncoderAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	m := benchInsert()
	enc := NewEncoder(io.Discard)
	enc.Encode(m)
	if allocs := testing.AllocsPerRun(100, func() {
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("Encode allocates %v times per message, want 0", allocs)
	}
}

// BenchmarkEncodeWays compares the ways to turn a message into JSON bytes
// for a writer: json.Marshal(m) and json.NewEncoder re-compact what
// MarshalJSON returns.
//
// Each also reports cpu-ns/op, the process's CPU time (getrusage) per
// message: on a shared machine the wall time per op also counts the time
// the benchmark waited for a core.
func BenchmarkEncodeWays(b *testing.B) {
	m := benchInsert()
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Encoder", func(b *testing.B) {
		enc := json.NewEncoder(io.Discard)
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if err := enc.Encode(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("MarshalJSON", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := m.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Encoder", func(b *testing.B) {
		enc := NewEncoder(io.Discard)
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if err := enc.Encode(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			var err error
			if buf, err = m.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// reportCPU starts measuring the process's CPU time; the function it
// returns reports it per op as cpu-ns/op.
func reportCPU(b *testing.B) func() {
	start := processCPU()
	return func() {
		b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}

func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
