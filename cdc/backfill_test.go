package cdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
)

// replica applies messages in delivery order, as a consumer would.
type replica struct {
	mu    sync.Mutex
	rows  map[int64]map[string]any
	reads int
	last  map[int64]string // last action per row, for order checks
}

func newReplica() *replica {
	return &replica{rows: map[int64]map[string]any{}, last: map[int64]string{}}
}

func (r *replica) apply(m message.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m.Metadata.TableName != "items" {
		return
	}
	switch m.Action {
	case message.ActionTruncate:
		clear(r.rows)
		return
	case message.ActionDelete:
		delete(r.rows, m.Record["id"].(int64))
	default:
		if m.Action == message.ActionRead {
			r.reads++
		}
		if old, ok := m.Changes["id"]; ok { // the primary key changed (FULL identity)
			delete(r.rows, old.(int64))
		}
		r.rows[m.Record["id"].(int64)] = m.Record
	}
}

// consume applies and acknowledges messages until ctx is done.
func consume(ctx context.Context, s *Stream, r *replica, markers chan<- int64) error {
	for {
		m, err := s.Next(ctx)
		if err != nil {
			return err
		}
		if m.Metadata.TableName == "marker" {
			markers <- m.Record["id"].(int64)
		}
		r.apply(m)
		s.Ack(m)
	}
}

// startReplica consumes s into a new replica until the test ends; it
// returns the test's context, the replica and the marker ids seen.
func startReplica(t *testing.T, s *Stream) (context.Context, *replica, <-chan int64) {
	r := newReplica()
	markers := make(chan int64, 16)
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	go consume(ctx, s, r, markers)
	return ctx, r, markers
}

// table reads the source table as the replica stores it.
func (e *env) table(t *testing.T) map[int64]map[string]any {
	t.Helper()
	rows, err := e.conn.Query(context.Background(), "select id, v, n from items")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]map[string]any{}
	for rows.Next() {
		var id, n int64
		var v string
		if err := rows.Scan(&id, &v, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = map[string]any{"id": id, "v": v, "n": n}
	}
	return out
}

// writer changes random rows until stop is closed.
func writer(ctx context.Context, t *testing.T, e *env, stop <-chan struct{}, maxID int) (int, error) {
	n := 0
	next := int64(maxID + 1)
	for {
		select {
		case <-stop:
			return n, nil
		default:
		}
		id := rand.IntN(maxID) + 1
		var sql string
		switch rand.IntN(4) {
		case 0:
			sql = fmt.Sprintf("insert into items values (%d, 'new', 0)", next)
			next++
		case 1:
			sql = fmt.Sprintf("delete from items where id = %d", id)
		case 2: // a primary-key change
			sql = fmt.Sprintf("update items set id = %d, n = n + 1 where id = %d", next, id)
			next++
		default:
			sql = fmt.Sprintf("update items set n = n + 1, v = 'upd' where id = %d", id)
		}
		if _, err := e.p.Exec(ctx, sql); err != nil {
			if ctx.Err() != nil {
				return n, nil
			}
			return n, err
		}
		n++
	}
}

// catchUp writes a marker row and waits until the consumer saw it.
func catchUp(t *testing.T, e *env, markers <-chan int64, id int64) {
	t.Helper()
	e.exec(fmt.Sprintf("insert into marker values (%d)", id))
	timeout := time.After(testtime.Bound(60 * time.Second))
	for {
		select {
		case got := <-markers:
			if got == id {
				return
			}
		case <-timeout:
			t.Fatal("consumer did not catch up")
		}
	}
}

func diff(t *testing.T, want, got map[int64]map[string]any) {
	t.Helper()
	var missing, stale, extra int
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			missing++
		case !reflect.DeepEqual(w, g):
			stale++
			if stale <= 3 {
				t.Logf("row %d: replica %v, table %v", id, g, w)
			}
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			extra++
		}
	}
	t.Logf("table %d rows, replica %d: missing %d, stale %d, extra %d", len(want), len(got), missing, stale, extra)
	if missing+stale+extra > 0 {
		t.Fatalf("replica differs from the table")
	}
}

const backfillSetup = "create table items (id bigint primary key, v text not null, n bigint not null)"

func TestBackfillConvergesUnderWrites(t *testing.T) {
	// FULL: the replica learns a changed key's old value from changes.
	e := newEnv(t, backfillSetup, "alter table items replica identity full", "create table marker (id bigint primary key)",
		"insert into items select g, 'seed', 0 from generate_series(1, 5000) g")
	s := e.open(e.config())
	ctx, r, markers := startReplica(t, s)

	stop := make(chan struct{})
	wrote := make(chan int, 1)
	go func() {
		n, err := writer(ctx, t, e, stop, 5000)
		if err != nil {
			t.Error(err)
		}
		wrote <- n
	}()
	if err := s.Backfill(ctx, backfill.Config{Table: "public.items", ID: "bf1", ChunkSize: 250}); err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	close(stop)
	writes := <-wrote
	catchUp(t, e, markers, 1)
	t.Logf("concurrent writes: %d, reads delivered: %d", writes, r.reads)
	if writes == 0 {
		t.Fatal("the writer made no changes during the backfill")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	diff(t, e.table(t), r.rows)

	p, err := s.BackfillStatus(ctx, "bf1")
	if err != nil || p == nil || !p.Done {
		t.Fatalf("progress = %+v, %v; want done", p, err)
	}
	// Done backfills are not run again.
	before := r.reads
	if err := s.Backfill(ctx, backfill.Config{Table: "public.items", ID: "bf1"}); err != nil {
		t.Fatal(err)
	}
	if r.reads != before {
		t.Fatal("a finished backfill ran again")
	}
}

// A transaction can be decoded before new snapshots see it: its backend
// writes the commit record first and leaves the set of running transactions
// after. Here each writer's backend waits in between for the stream, a
// synchronous standby, to confirm the commit, so the stream delivers changes
// that a chunk read at the same moment does not see. The chunk must not
// deliver those rows' older versions after the changes.
func TestBackfillCommitDecodedBeforeVisible(t *testing.T) {
	c := pgtest.NewCluster(t, pgtest.Options{Settings: []string{
		"synchronous_standby_names = 'walrelay_sync'",
		"synchronous_commit = local", // only the writers wait for the stream
	}})
	const rows = 3000
	e := newEnvAt(t, c.URL, backfillSetup, "create table marker (id bigint primary key)",
		fmt.Sprintf("insert into items select g, 'seed', 0 from generate_series(1, %d) g", rows))
	cfg := e.config()
	cfg.ConnString = c.URL + "&application_name=walrelay_sync"
	cfg.StatusInterval = 5 * time.Millisecond
	var log pgtest.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
	defer func(d time.Duration) { backfillWaitWarning = d }(backfillWaitWarning)
	backfillWaitWarning = 0 // every wait is logged
	s := e.open(cfg)
	ctx, r, markers := startReplica(t, s)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	for range 6 {
		conn, err := pgx.Connect(ctx, e.url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := conn.Exec(ctx, "set synchronous_commit = on"); err != nil {
				t.Error(err)
				return
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := conn.Exec(ctx, "update items set n = n + 1, v = 'upd' where id = $1", rand.IntN(rows)+1); err != nil {
					t.Error(err)
					return
				}
				writes.Add(1)
			}
		}()
	}
	err := s.Backfill(ctx, backfill.Config{Table: "public.items", ID: "bf-sync", ChunkSize: 100})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	catchUp(t, e, markers, 1)
	waits := strings.Count(log.String(), "backfill waiting")
	t.Logf("concurrent synchronous commits: %d, reads delivered: %d, chunks that waited: %d", writes.Load(), r.reads, waits)
	if writes.Load() == 0 {
		t.Fatal("the writers made no changes during the backfill")
	}
	if waits == 0 {
		t.Error("no chunk waited for a delivered transaction to become visible: the test did not reach the case it is for")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	diff(t, e.table(t), r.rows)
}

func TestBackfillResumesAfterRestart(t *testing.T) {
	e := newEnv(t, backfillSetup, "create table marker (id bigint primary key)",
		"insert into items select g, 'seed', 0 from generate_series(1, 3000) g")
	cfg := e.config()
	r := newReplica()
	markers := make(chan int64, 16)
	cfgB := backfill.Config{Table: "public.items", ID: "bf-resume", ChunkSize: 100}

	// First process: reads about a third, then dies (its context ends).
	s := e.open(cfg)
	ctx1, cancel1 := context.WithCancel(t.Context())
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		consume(ctx1, s, r, markers)
	}()
	errc := make(chan error, 1)
	go func() { errc <- s.Backfill(ctx1, cfgB) }()
	waitFor(t, "a third of the table", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.reads >= 1000
	})
	cancel1()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Backfill = %v", err)
	}
	s.Close()
	<-consumed // the first process's consumer applies nothing more
	firstReads := r.reads

	// Changes while no process runs.
	e.exec("update items set n = 7 where id % 10 = 0", "delete from items where id % 33 = 0")

	// Second process resumes from the saved cursor.
	s2 := e.open(cfg)
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	go consume(ctx2, s2, r, markers)
	p, err := s2.BackfillStatus(ctx2, "bf-resume")
	if err != nil || p == nil || p.Done || len(p.Cursor) != 1 {
		t.Fatalf("saved progress = %+v, %v", p, err)
	}
	if err := s2.Backfill(ctx2, cfgB); err != nil {
		t.Fatal(err)
	}
	catchUp(t, e, markers, 1)
	t.Logf("reads before the restart %d, after %d (cursor was %v)", firstReads, r.reads-firstReads, p.Cursor)
	if r.reads-firstReads >= 3000 {
		t.Errorf("the second run read the whole table again")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	diff(t, e.table(t), r.rows)
}

func TestBackfillTruncateDropsChunk(t *testing.T) {
	e := newEnv(t, backfillSetup, "create table marker (id bigint primary key)",
		"insert into items select g, 'seed', 0 from generate_series(1, 2000) g")
	cfg := e.config()
	cfg.Truncate = TruncateEmit
	s := e.open(cfg)
	ctx, r, markers := startReplica(t, s)
	errc := make(chan error, 1)
	go func() { errc <- s.Backfill(ctx, backfill.Config{Table: "items", ID: "bf-trunc", ChunkSize: 50}) }()
	waitFor(t, "some reads", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.reads > 100
	})
	e.exec("truncate items", "insert into items values (1, 'after', 1)")
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	catchUp(t, e, markers, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	diff(t, e.table(t), r.rows)
}

func TestBackfillProgressTableNotDelivered(t *testing.T) {
	e := newEnv(t, backfillSetup, "insert into items select g, 'seed', 0 from generate_series(1, 10) g")
	s := e.open(e.config())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var mu sync.Mutex
	var tables []string
	go func() {
		for {
			m, err := s.Next(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			tables = append(tables, m.Metadata.TableName)
			mu.Unlock()
			s.Ack(m)
		}
	}()
	if err := s.Backfill(ctx, backfill.Config{Table: "items", ID: "x"}); err != nil {
		t.Fatal(err)
	}
	e.exec("insert into items values (11, 'x', 0)")
	waitFor(t, "11 messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(tables) >= 11 })
	mu.Lock()
	defer mu.Unlock()
	for _, tb := range tables {
		if tb != "items" {
			t.Fatalf("delivered a change of %q", tb)
		}
	}
}

// TestBackfillReadsEveryRowWhenStreamIsBehind starts a backfill while the
// stream still has old changes to the table to deliver: those changes are
// older than the reads and must not drop rows from them.
func TestBackfillReadsEveryRowWhenStreamIsBehind(t *testing.T) {
	e := newEnv(t, backfillSetup, "create table marker (id bigint primary key)",
		"insert into items select g, 'seed', 0 from generate_series(1, 2000) g")
	s := e.open(e.config())
	for range 5 {
		e.exec("update items set n = n + 1")
	}
	r := newReplica()
	markers := make(chan int64, 16)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The backfill starts while 10,000 old changes wait: the consumer comes
	// only later, so the stream's buffer fills and its reader stalls.
	errc := make(chan error, 1)
	go func() { errc <- s.Backfill(ctx, backfill.Config{Table: "items", ID: "behind", ChunkSize: 100}) }()
	waitFor(t, "the stream's buffer to fill", func() bool { return len(s.out) == cap(s.out) })
	go consume(ctx, s, r, markers)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	catchUp(t, e, markers, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reads != 2000 {
		t.Errorf("read %d rows, want all 2000: old changes evicted rows from reads", r.reads)
	}
	diff(t, e.table(t), r.rows)
}

func TestSnapshotSees(t *testing.T) {
	sn, err := parseSnapshot("100:110:103,105")
	if err != nil {
		t.Fatal(err)
	}
	for xid, want := range map[uint32]bool{99: true, 100: true, 103: false, 104: true, 105: false, 109: true, 110: false, 4000000000: true} {
		if got := sn.sees(xid); got != want {
			t.Errorf("sees(%d) = %v, want %v", xid, got, want)
		}
	}
	// Ids wrap around at 2^32; a 64-bit snapshot is reduced to 32 bits.
	wrapped, err := parseSnapshot("8589934590:8589934600:5")
	if err != nil {
		t.Fatal(err)
	}
	// xmin 2^32-2, xmax 8 after wrapping; 5 in progress.
	if !wrapped.sees(4294967284) || !wrapped.sees(4294967295) || !wrapped.sees(3) || wrapped.sees(5) || wrapped.sees(8) || wrapped.sees(100) {
		t.Errorf("wraparound comparison wrong: %+v", wrapped)
	}
	for _, bad := range []string{"", "1:2", "a:2:", "1:2:x"} {
		if _, err := parseSnapshot(bad); err == nil {
			t.Errorf("parseSnapshot(%q) succeeded", bad)
		}
	}
}

func TestXidLogUnseen(t *testing.T) {
	sn, err := parseSnapshot("1000:1010:1003")
	if err != nil {
		t.Fatal(err)
	}
	var l xidLog
	for x := range uint32(900) { // old, seen transactions
		l.add(x)
	}
	l.add(1003) // the 900th: decoded, not yet visible
	l.add(1001)
	l.add(1012) // the 902nd: decoded after the snapshot was taken
	for _, c := range []struct {
		from, to uint64
		want     uint32
		unseen   bool
	}{
		{0, 900, 0, false},
		{0, 901, 1003, true},
		{900, 901, 1003, true},
		{901, 902, 0, false},
		{901, 903, 1012, true},
		{902, 902, 0, false},
	} {
		x, ok := l.unseen(c.from, c.to, sn)
		if x != c.want || ok != c.unseen {
			t.Errorf("unseen(%d, %d) = %d, %v; want %d, %v", c.from, c.to, x, ok, c.want, c.unseen)
		}
	}
	// Only the last xidLogSize transactions are kept: older ones count as
	// seen, even when the range asks for them.
	for range xidLogSize - 1 {
		l.add(1)
	}
	if x, ok := l.unseen(0, l.count(), sn); !ok || x != 1012 {
		t.Errorf("after %d more: unseen = %d, %v; want 1012 (1003 is out of the log)", xidLogSize-1, x, ok)
	}
	l.add(1)
	if x, ok := l.unseen(0, l.count(), sn); ok {
		t.Errorf("after the log wrapped: unseen = %d, want none", x)
	}
}

// A chunk's watermark is flushed when writeWatermark returns: the stream
// receives only flushed WAL, and a message left to the WAL writer would make
// every chunk of a backfill on an idle database wait for it (BenchmarkStreamBackfill:
// about 200ms per chunk before, 1ms after).
func TestWatermarkFlushed(t *testing.T) {
	e := newEnv(t, backfillSetup)
	s := e.open(e.config())
	for i := range 5 {
		lsn, err := s.writeWatermark(t.Context(), fmt.Sprintf("flush-test-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		var flushed bool
		if err := e.conn.QueryRow(t.Context(), "select pg_current_wal_flush_lsn() > $1::pg_lsn", lsn).Scan(&flushed); err != nil {
			t.Fatal(err)
		}
		if !flushed {
			t.Fatalf("watermark at %s not flushed when writeWatermark returned", lsn)
		}
	}
}

// Backfill retries what a retry may fix and returns the rest at once.
func TestBackfillErrorsNotRetried(t *testing.T) {
	e := newEnv(t, backfillSetup)
	s := e.open(e.config())
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(10*time.Second))
	defer cancel()
	err := s.Backfill(ctx, backfill.Config{Table: "public.no_such_table", ID: "missing"})
	if !errors.Is(err, backfill.ErrTableNotFound) {
		t.Fatalf("Backfill of a missing table = %v; want ErrTableNotFound, not a retry until the deadline", err)
	}
}

// An Ack that raises the acknowledged position wakes what waits for it;
// one that does not raise it wakes nothing.
func TestAckWakesWaiters(t *testing.T) {
	e := newEnv(t, "create table items (id bigint primary key)")
	s := e.open(e.config())
	e.exec("insert into items values (1)", "insert into items values (2)")
	msgs := next(t, s, 2)

	acked, wake := s.acks()
	woke := make(chan uint64)
	go func() {
		<-wake
		a, _ := s.acks()
		woke <- a
	}()
	select {
	case <-wake:
		t.Fatal("woken before any Ack")
	default:
	}
	s.Ack(msgs[1])
	select {
	case a := <-woke:
		if a <= acked {
			t.Fatalf("woken with acknowledged %d, not past %d", a, acked)
		}
	case <-time.After(testtime.Bound(10 * time.Second)):
		t.Fatal("Ack did not wake the waiter")
	}

	_, wake = s.acks()
	s.Ack(msgs[0]) // older than the last Ack: ignored
	s.Ack(msgs[1]) // the same again
	select {
	case <-wake:
		t.Fatal("an Ack that acknowledged nothing new woke the waiter")
	default:
	}
}

// Backfill waits for its reads to be acknowledged before it marks itself
// done: the Ack of the last read releases it, and closing the stream
// releases a Backfill whose reads are never acknowledged.
func TestBackfillWaitsForAcks(t *testing.T) {
	e := newEnv(t,
		"create table items (id bigint primary key)",
		"insert into items select generate_series(1, 3)",
		"create table other (id bigint primary key)",
		"insert into other select generate_series(1, 3)")
	s := e.open(e.config())
	ctx := t.Context()
	reads := func() message.Message {
		t.Helper()
		var last message.Message
		for n := 0; n < 3; {
			m := next(t, s, 1)[0]
			if m.Action == message.ActionRead {
				last = m
				n++
			}
		}
		return last
	}
	within := func(errc <-chan error, what string) error {
		t.Helper()
		select {
		case err := <-errc:
			return err
		case <-time.After(testtime.Bound(30 * time.Second)):
			t.Fatalf("Backfill did not return after %s", what)
			return nil
		}
	}

	errc := make(chan error, 1)
	go func() { errc <- s.Backfill(ctx, backfill.Config{Table: "items", ID: "acked"}) }()
	last := reads()
	select {
	case err := <-errc:
		t.Fatalf("Backfill returned %v before its reads were acknowledged", err)
	default:
	}
	s.Ack(last)
	if err := within(errc, "the last read was acknowledged"); err != nil {
		t.Fatal(err)
	}
	if p, err := s.BackfillStatus(ctx, "acked"); err != nil || p == nil || !p.Done {
		t.Fatalf("BackfillStatus = %+v, %v; want it done", p, err)
	}

	go func() { errc <- s.Backfill(ctx, backfill.Config{Table: "other", ID: "never-acked"}) }()
	reads()
	s.Close()
	if err := within(errc, "the stream closed"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Backfill after Close = %v, want ErrClosed", err)
	}
}
