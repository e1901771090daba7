package cdc

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/internal/pgoutput"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/pgvalue"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// Column types of the benchmark table: the row of cmd/walrelay-bench.
const (
	oidInt8        = 20
	oidInt4        = 23
	oidText        = 25
	oidNumeric     = 1700
	oidTimestamptz = 1184
)

// benchStream is a stream without a connection: handle decodes into its
// buffer, which the benchmark drains.
func benchStream() (*Stream, *relation) {
	rel := &relation{
		schema: "public", name: "orders",
		columns:    []string{"id", "account", "amount", "status", "note", "created_at"},
		oids:       []uint32{oidInt8, oidInt4, oidNumeric, oidText, oidText, oidTimestamptz},
		key:        []bool{true, false, false, false, false, false},
		primaryKey: []string{"id"},
	}
	s := &Stream{
		id:       1,
		mapper:   pgvalue.NewMapper(),
		parser:   pgoutput.Parser{Borrow: true},
		out:      make(chan queued, 1),
		space:    make(chan struct{}, 1),
		closing:  make(chan struct{}),
		rels:     map[uint32]*relation{16391: rel},
		cfg:      Config{StatusInterval: time.Second, BufferBytes: DefaultBufferBytes},
		database: message.Database{Name: "app", Database: "app", Hostname: "localhost", ID: "7321"},
		consumer: message.Consumer{ID: "bench", Name: "bench"},
		tx: txState{active: true, commitLSN: 0x16B374D848,
			commitTime: time.Date(2024, 10, 28, 21, 37, 1, 127470000, time.UTC)},
	}
	return s, rel
}

// tuple appends a pgoutput tuple of text columns ('n' for nil).
func tuple(b []byte, cols []*string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(cols)))
	for _, c := range cols {
		if c == nil {
			b = append(b, 'n')
			continue
		}
		b = append(b, 't')
		b = binary.BigEndian.AppendUint32(b, uint32(len(*c)))
		b = append(b, *c...)
	}
	return b
}

func ptrs(ss ...string) []*string {
	p := make([]*string, len(ss))
	for i := range ss {
		p[i] = &ss[i]
	}
	return p
}

var benchRow = ptrs("1234567", "789", "1234.50", "shipped", "e10adc3949ba59abbe56e057f20f883e", "2024-10-28 21:37:01.12747+00")

// BenchmarkHandleInsert is the stream's per-row path for an insert: parse
// the pgoutput message, map the values, build the message, hand it to Next.
func BenchmarkHandleInsert(b *testing.B) {
	s, _ := benchStream()
	data := tuple([]byte{'I', 0, 0, 0x40, 0x07, 'N'}, benchRow)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.handle(1, data); err != nil {
			b.Fatal(err)
		}
		s.took(<-s.out)
	}
}

// BenchmarkHandleUpdateFull is an update with REPLICA IDENTITY FULL: new and
// old rows, and the changes between them.
func BenchmarkHandleUpdateFull(b *testing.B) {
	s, _ := benchStream()
	old := ptrs("1234567", "789", "1234.50", "paid", "e10adc3949ba59abbe56e057f20f883e", "2024-10-28 21:37:01.12747+00")
	// 'O' old tuple, then 'N' new tuple.
	data := tuple(append(tuple([]byte{'U', 0, 0, 0x40, 0x07, 'O'}, old), 'N'), benchRow)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.handle(1, data); err != nil {
			b.Fatal(err)
		}
		s.took(<-s.out)
	}
}

// BenchmarkRowToJSON is the whole per-row cost walrelay adds: decode an
// insert into a message and encode that to the seed JSON.
func BenchmarkRowToJSON(b *testing.B) {
	s, _ := benchStream()
	data := tuple([]byte{'I', 0, 0, 0x40, 0x07, 'N'}, benchRow)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.handle(1, data); err != nil {
			b.Fatal(err)
		}
		q := <-s.out
		s.took(q)
		var err error
		if buf, err = q.m.AppendJSON(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunBatching measures Run's loop alone: messages already decoded,
// batched, written to a sink that drops them, and acknowledged.
func BenchmarkRunBatching(b *testing.B) {
	s, _ := benchStream()
	s.out = make(chan queued, 1024)
	s.done = make(chan struct{})
	s.space = make(chan struct{}, 1)
	m := message.Message{Action: message.ActionInsert, Record: map[string]any{"id": int64(1)}}
	var written atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := int64(b.N)
	sk := sink.Func(func(_ context.Context, msgs ...message.Message) error {
		if written.Add(int64(len(msgs))) >= n {
			cancel()
		}
		return nil
	})
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := range n {
			m.Metadata.Position = message.NewPosition(s.id, uint64(i+1))
			select {
			case s.out <- queued{m: m}:
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := Run(ctx, s, sk, RunOptions{}); err != context.Canceled {
		b.Fatal(err)
	}
	if written.Load() != n {
		b.Fatalf("wrote %d of %d", written.Load(), n)
	}
	if s.acked != uint64(n) {
		b.Fatalf("acknowledged %d of %d", s.acked, n)
	}
}

// BenchmarkStreamBackfill backfills a 20,000-row table through a Stream in
// chunks of 500 on an otherwise idle database, with a consumer acknowledging
// every message: it reports rows/s and the time per chunk, which is mostly
// the round trip of the chunk's watermark through the WAL.
func BenchmarkStreamBackfill(b *testing.B) {
	const rows, chunk = 20_000, 500
	e := newEnvAt(b, pgtest.NewDatabase(b), backfillSetup,
		fmt.Sprintf("insert into items select g, 'seed', 0 from generate_series(1, %d) g", rows))
	s := e.open(e.config())
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	ackAll(ctx, s)
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		if err := s.Backfill(ctx, backfill.Config{Table: "public.items", ID: fmt.Sprintf("bench-%d", i), ChunkSize: chunk}); err != nil {
			b.Fatal(err)
		}
	}
	d := time.Since(start)
	b.ReportMetric(float64(rows*b.N)/d.Seconds(), "rows/s")
	b.ReportMetric(float64(d.Milliseconds())/float64(b.N*rows/chunk), "ms/chunk")
}
