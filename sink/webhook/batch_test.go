package webhook

import (
	"runtime"
	"strings"
	"testing"

	"github.com/walrelay/walrelay/sink/sinktest"
)

// TestBatchBodyAllocation: a batch body is sized from the running average
// with a capped reserve, so one 10 MiB message first in a batch of 100 does
// not reserve 10 MiB for each of the 99 small messages after it (about 1 GB,
// as sizing from the first message did).
func TestBatchBodyAllocation(t *testing.T) {
	msgs := sinktest.Messages(1, 100)
	msgs[0].Record["blob"] = strings.Repeat("x", 10<<20)
	for _, appendEnc := range []bool{true, false} {
		s, err := New(Config{URL: "http://x", Batch: true})
		if err != nil {
			t.Fatal(err)
		}
		s.appendEnc = appendEnc
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		body, _, err := s.batch(msgs)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("in-place encoding %v: body %d bytes, %d MiB allocated", appendEnc, len(body), allocated>>20)
		if allocated > 80<<20 {
			t.Errorf("in-place encoding %v: one batch allocated %d MiB for a %d MiB body", appendEnc, allocated>>20, len(body)>>20)
		}
	}
}

// BenchmarkBatchBody measures encoding a batch of 100 small rows.
func BenchmarkBatchBody(b *testing.B) {
	msgs := sinktest.Messages(1, 100)
	s, err := New(Config{URL: "http://x", Batch: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.batch(msgs); err != nil {
			b.Fatal(err)
		}
	}
}
