package cdc

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/walrelay/walrelay/internal/testtime"
)

// TestLargeTransactionFlatMemory streams one big transaction and samples
// the heap: messages are emitted as they are decoded, so the peak must not
// grow with the transaction. WALRELAY_LARGE_TX_ROWS sets the size (default
// 200,000; the figure in the README's notes is for 1,000,000).
func TestLargeTransactionFlatMemory(t *testing.T) {
	rows := 200_000
	if v := os.Getenv("WALRELAY_LARGE_TX_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		rows = n
	}
	if testing.Short() {
		rows = 20_000
	}
	e := newEnv(t, "create table big (id int primary key, payload text)")
	s := e.open(e.config())
	e.exec("insert into big select g, md5(g::text) || md5((g+1)::text) || md5((g+2)::text) from generate_series(1, " + strconv.Itoa(rows) + ") g")

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(5*time.Minute))
	defer cancel()
	start := time.Now()
	for i := 1; i <= rows; i++ {
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("after %d rows: %v", i-1, err)
		}
		if m.Record["id"] != int64(i) {
			t.Fatalf("row %d: got %v", i, m.Record["id"])
		}
		if i%1000 == 0 {
			s.Ack(m)
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	growth := int64(peak) - int64(base)
	t.Logf("%d rows in one transaction in %v; heap at start %d KiB, peak %d KiB", rows, time.Since(start).Round(time.Millisecond), base>>10, peak>>10)
	// The buffer holds at most BufferSize (1024) messages of ~300 bytes;
	// anything near the transaction's size (tens of MB) means accumulation.
	if growth > 48<<20 {
		t.Fatalf("heap grew by %d MiB while streaming: memory is not flat", growth>>20)
	}
}
