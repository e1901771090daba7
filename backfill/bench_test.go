package backfill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/pgvalue"
	"github.com/walrelay/walrelay/message"
)

// BenchmarkIterator reads a 100k-row table with the Iterator and, in the same
// run, with COPY (select …) TO STDOUT, the fastest way Postgres hands out
// rows, and reports both rates and their ratio, the CPU per row this process
// used for the Iterator and, where /proc shows it (Linux, server on this
// machine), the CPU per row of the server backend for each.
func BenchmarkIterator(b *testing.B) {
	const rows = 100_000
	url := pgtest.NewDatabase(b)
	pgtest.Exec(b, url,
		`create table bench (id int8 primary key, name text, price numeric(10,2), qty int4,
			created_at timestamptz, tags text[], attrs jsonb)`,
		fmt.Sprintf(`insert into bench select i, 'customer ' || i, i * 1.25, i %% 100,
			'2024-01-01'::timestamptz + i * interval '1 second', array['a', 'b' || i],
			jsonb_build_object('i', i, 'ok', true)
			from generate_series(1, %d) i`, rows),
		"vacuum analyze bench",
	)
	conn := connect(b, url)
	ctx := context.Background()
	var pid int
	if err := conn.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		b.Fatal(err)
	}
	var iterDur, copyDur, iterCPU, iterSrv, copySrv time.Duration
	_, srvOK := backendCPU(pid)
	b.ReportAllocs()
	for b.Loop() {
		srv0, _ := backendCPU(pid)
		start, cpu0 := time.Now(), processCPU()
		it, err := New(ctx, conn, Config{Table: "bench", ID: "bench", ChunkSize: 1000})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			ms, err := it.NextChunk(ctx, conn)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += len(ms)
		}
		if n != rows {
			b.Fatalf("read %d rows", n)
		}
		iterDur += time.Since(start)
		iterCPU += processCPU() - cpu0
		srv1, _ := backendCPU(pid)
		iterSrv += srv1 - srv0

		start = time.Now()
		tag, err := conn.PgConn().CopyTo(ctx, io.Discard,
			"copy (select id, name, price, qty, created_at, tags, attrs from bench order by id) to stdout")
		if err != nil {
			b.Fatal(err)
		}
		if tag.RowsAffected() != rows {
			b.Fatalf("copied %d rows", tag.RowsAffected())
		}
		copyDur += time.Since(start)
		srv2, _ := backendCPU(pid)
		copySrv += srv2 - srv1
	}
	iterRate := float64(rows*b.N) / iterDur.Seconds()
	copyRate := float64(rows*b.N) / copyDur.Seconds()
	b.ReportMetric(iterRate, "iter-rows/s")
	b.ReportMetric(copyRate, "copy-rows/s")
	b.ReportMetric(iterRate/copyRate, "iter/copy")
	b.ReportMetric(float64(iterCPU.Nanoseconds())/float64(rows*b.N), "iter-cpu-ns/row")
	if srvOK {
		b.ReportMetric(float64(iterSrv.Nanoseconds())/float64(rows*b.N), "iter-server-cpu-ns/row")
		b.ReportMetric(float64(copySrv.Nanoseconds())/float64(rows*b.N), "copy-server-cpu-ns/row")
	}
}

// backendCPU is the CPU time (user and system) the server process pid used
// so far, from /proc/<pid>/stat (in clock ticks of 10 ms); false when it
// cannot be read, as for a server on another machine.
func backendCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, false
	}
	f := strings.Fields(s[i+2:]) // from field 3, the state
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

// processCPU is the CPU time this process used so far: the Iterator's own
// cost, apart from the server's.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecodeRow measures the client's CPU per row of a page, with no
// server: rows of the bench program's order table (int8, int4, numeric, two
// texts, timestamptz), as they come off the wire in text format, decoded
// into read messages (values, record, key, cursor).
func BenchmarkDecodeRow(b *testing.B) {
	const rows = 1000
	it := &Iterator{
		mapper:   pgvalue.NewMapper(),
		id:       "bench",
		limit:    rows,
		schema:   "public",
		table:    "orders",
		columns:  []string{"id", "account", "amount", "status", "note", "created_at"},
		key:      []string{"id"},
		keyIdx:   []int{0},
		orderIdx: []int{0},
	}
	oids := []uint32{20, 23, 1700, 25, 25, 1184}
	raw := make([][][]byte, rows)
	for i := range raw {
		id := 1_000_000 + i
		for _, v := range []string{
			strconv.Itoa(id), strconv.Itoa(id % 1000), fmt.Sprintf("%d.%02d", id%1000, id%100),
			"shipped", fmt.Sprintf("%032x", id*7919), "2024-10-28 21:37:01.12747+00",
		} {
			raw[i] = append(raw[i], []byte(v))
		}
	}
	msgs := make([]message.Message, rows)
	keys := make([]string, 0, rows)
	read := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := i % rows
		if r == 0 {
			keys = keys[:0]
		}
		msgs[r] = message.Message{}
		var err error
		if keys, err = it.decodeRow(&msgs[r], keys, raw[r], oids, read); err != nil {
			b.Fatal(err)
		}
	}
}
