package faults

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// childEnv makes the test binary run a consumer instead of the tests.
const childEnv = "WALRELAY_FAULTS_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(consumerMain())
	}
	code := pgtest.Main(m)
	printSummary()
	os.Exit(code)
}

// consumerMain is the consumer process: cdc.Open and cdc.Run into a
// JSON-lines file sink that fsyncs before acknowledging. SIGTERM stops it
// in an orderly way; it then writes its peak memory figures to FAULTS_STATS.
func consumerMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	hb, _ := time.ParseDuration(os.Getenv("FAULTS_HEARTBEAT"))
	if hb == 0 {
		hb = -1
	}
	f, err := os.OpenFile(os.Getenv("FAULTS_OUT"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		return 2
	}
	defer f.Close()
	var peakHeap atomic.Uint64
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	s, err := cdc.Open(ctx, cdc.Config{
		ConnString:        os.Getenv("FAULTS_URL"),
		Slot:              os.Getenv("FAULTS_SLOT"),
		Publication:       os.Getenv("FAULTS_PUB"),
		WaitForSlot:       true,
		StatusInterval:    50 * time.Millisecond,
		HeartbeatInterval: hb,
		Backoff:           quickBackoff,
		Truncate:          cdc.TruncateEmit, // the audit counts truncates
	})
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		fmt.Fprintln(os.Stderr, "consumer: open:", err)
		return 3
	}
	fmt.Fprintln(os.Stderr, "consumer: streaming")
	if table := os.Getenv("FAULTS_BACKFILL_TABLE"); table != "" {
		go func() {
			err := s.Backfill(ctx, backfill.Config{Table: table, ID: os.Getenv("FAULTS_BACKFILL_ID"), ChunkSize: 500})
			switch {
			case err == nil:
				fmt.Fprintln(os.Stderr, "consumer: backfill done")
			case ctx.Err() == nil:
				fmt.Fprintln(os.Stderr, "consumer: backfill:", err)
			}
		}()
	}
	// FAULTS_WRITE_DELAY slows every sink write, so that a fast phase (a
	// backfill) lasts long enough for a test to interrupt it mid-way.
	delay, _ := time.ParseDuration(os.Getenv("FAULTS_WRITE_DELAY"))
	// FAULTS_READ_LIMIT names a file holding a number: once this process
	// has written that many backfill reads, its sink holds every write until
	// the number grows (or the file is removed), and says so on stderr
	// once. A test that must interrupt a backfill mid-way holds it there,
	// instead of hoping to be faster than it.
	limitFile := os.Getenv("FAULTS_READ_LIMIT")
	limit := func() int {
		b, err := os.ReadFile(limitFile)
		if err != nil {
			return math.MaxInt
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return math.MaxInt
		}
		return n
	}
	readsWritten, heldAt := 0, -1
	var buf []byte
	sk := sink.Func(func(ctx context.Context, msgs ...message.Message) error {
		for limitFile != "" && readsWritten >= limit() {
			if heldAt != readsWritten {
				heldAt = readsWritten
				fmt.Fprintf(os.Stderr, "consumer: held at %d reads\n", readsWritten)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		time.Sleep(delay)
		buf = buf[:0]
		reads := 0
		for _, m := range msgs {
			if buf, err = m.AppendJSON(buf); err != nil {
				return sink.Permanent(err)
			}
			buf = append(buf, '\n')
			if m.Action == message.ActionRead {
				reads++
			}
		}
		if _, err := f.Write(buf); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		readsWritten += reads
		return nil
	})
	err = cdc.Run(ctx, s, sk, cdc.RunOptions{Backoff: quickBackoff})
	cerr := s.Close()
	if ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "consumer: run:", err)
		return 4
	}
	if cerr != nil {
		fmt.Fprintln(os.Stderr, "consumer: close:", cerr)
	}
	if path := os.Getenv("FAULTS_STATS"); path != "" {
		status, _ := os.ReadFile("/proc/self/status")
		var hwm string
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				hwm = strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:"))
			}
		}
		os.WriteFile(path, fmt.Appendf(nil, "peak_heap_inuse=%dMiB peak_rss=%s", peakHeap.Load()>>20, hwm), 0o644)
	}
	return 0
}

func quickBackoff() backoff.BackOff {
	// Options, not fields set afterwards: NewExponentialBackOff starts the
	// first interval from InitialInterval as it is when it returns.
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(20*time.Millisecond),
		backoff.WithMaxInterval(500*time.Millisecond),
		backoff.WithMaxElapsedTime(0),
	)
}

// consumer is one run of the consumer process.
type consumer struct {
	cmd    *exec.Cmd
	stderr pgtest.Buffer
	done   chan struct{}
	err    error // Wait's result, set before done closes
}

// startConsumer starts a consumer process writing to a new file added to ds.
func startConsumer(t *testing.T, e *env, ds *deliveries, extraEnv ...string) *consumer {
	t.Helper()
	ds.mu.Lock()
	path := outPath(e, fmt.Sprintf("run-%03d.jsonl", len(ds.sources)))
	ds.sources = append(ds.sources, fileSource{path: path})
	ds.mu.Unlock()
	c := &consumer{done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childEnv+"=1",
		"FAULTS_URL="+e.url, "FAULTS_SLOT="+e.slot, "FAULTS_PUB="+e.pub, "FAULTS_OUT="+path)
	c.cmd.Env = append(c.cmd.Env, extraEnv...)
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.cmd.Process.Kill(); <-c.done })
	return c
}

// alive returns an error when the process has exited.
func (c *consumer) alive() error {
	select {
	case <-c.done:
		return fmt.Errorf("consumer exited: %v; stderr:\n%s", c.err, c.stderr.String())
	default:
		return nil
	}
}

// streaming waits until the consumer holds the slot.
func (c *consumer) streaming(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(testtime.Bound(60 * time.Second))
	for !strings.Contains(c.stderr.String(), "consumer: streaming") {
		if err := c.alive(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer did not start streaming; stderr:\n%s", c.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *consumer) kill(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// term stops the consumer in an orderly way and checks it exited cleanly.
func (c *consumer) term(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(testtime.Bound(30 * time.Second)):
		t.Fatalf("consumer did not stop after SIGTERM; stderr:\n%s", c.stderr.String())
	}
	if c.err != nil {
		t.Errorf("consumer after SIGTERM: %v; stderr:\n%s", c.err, c.stderr.String())
	}
}

// workload writes random transactions of inserts, updates and deletes to
// audited tables. Errors (a restarting server, deadlocks between writers)
// roll a transaction back, which the audit reflects; the writer reconnects
// and goes on.
type workload struct {
	url       string
	tables    []string
	nextID    atomic.Int64
	changes   atomic.Int64 // rows touched by committed transactions
	commits   atomic.Int64
	rollbacks atomic.Int64 // deliberate rollbacks
	failures  atomic.Int64
	maxRows   int           // most rows one statement touches
	extras    bool          // also roll back, use savepoints and emit logical messages
	padSize   int           // md5 blocks in pad (32 chars each)
	pause     time.Duration // between transactions, to bound the volume of long faults
}

func newWorkload(e *env, tables ...string) *workload {
	if len(tables) == 0 {
		for name := range e.tables {
			tables = append(tables, name)
		}
	}
	return &workload{url: e.url, tables: tables, maxRows: 20, padSize: 1}
}

// run writes until ctx is done or about target changes are committed.
func (w *workload) run(ctx context.Context, seed uint64, target int64) error {
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for ctx.Err() == nil && (target <= 0 || w.changes.Load() < target) {
		if conn == nil || conn.IsClosed() {
			c, err := connect(ctx, w.url)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			conn = c
		}
		n, err := w.tx(ctx, conn, rng)
		if err != nil {
			w.failures.Add(1)
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code != "40P01" && pe.Code != "40001" && !strings.HasPrefix(pe.Code, "57") && !strings.HasPrefix(pe.Code, "08") {
				return fmt.Errorf("workload: %w", err)
			}
			conn.Close(context.Background())
			conn = nil
			continue
		}
		w.changes.Add(n)
		w.commits.Add(1)
		if w.pause > 0 {
			time.Sleep(w.pause)
		}
	}
	return nil
}

func (w *workload) tx(ctx context.Context, conn *pgx.Conn, rng *rand.Rand) (int64, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.Background())
	var n int64
	rollback := w.extras && rng.IntN(10) == 0
	for range 1 + rng.IntN(4) {
		tbl := pgx.Identifier{w.tables[rng.IntN(len(w.tables))]}.Sanitize()
		k := 1 + rng.IntN(w.maxRows)
		pad := "(select string_agg(md5(random()::text), '') from generate_series(1, " + strconv.Itoa(w.padSize) + "))"
		savepoint := w.extras && rng.IntN(5) == 0
		if savepoint {
			if _, err := tx.Exec(ctx, "savepoint s"); err != nil {
				return 0, err
			}
		}
		var tag pgconn.CommandTag
		hi := w.nextID.Load()
		switch op := rng.IntN(10); {
		case op < 5 || hi < 100:
			first := w.nextID.Add(int64(k)) - int64(k) + 1
			tag, err = tx.Exec(ctx, "insert into "+tbl+" (id, pad) select g, "+pad+" from generate_series($1::bigint, $2::bigint) g", first, first+int64(k)-1)
		case op < 9:
			lo := 1 + rng.Int64N(hi)
			tag, err = tx.Exec(ctx, "update "+tbl+" set v = v + 1 where id between $1 and $2", lo, lo+int64(k))
		default:
			lo := 1 + rng.Int64N(hi)
			tag, err = tx.Exec(ctx, "delete from "+tbl+" where id between $1 and $2", lo, lo+int64(k)/4)
		}
		if err != nil {
			return 0, err
		}
		if w.extras && rng.IntN(4) == 0 {
			if _, err := tx.Exec(ctx, "select pg_logical_emit_message($1, 'faults', 'noise')", rng.IntN(2) == 0); err != nil {
				return 0, err
			}
		}
		if savepoint && rng.IntN(2) == 0 {
			if _, err := tx.Exec(ctx, "rollback to savepoint s"); err != nil {
				return 0, err
			}
			continue
		}
		n += tag.RowsAffected()
	}
	if rollback {
		w.rollbacks.Add(1)
		return 0, tx.Rollback(ctx)
	}
	return n, tx.Commit(ctx)
}

// running is a workload in background writers.
type running struct {
	cancel context.CancelFunc
	errs   chan error
	n      int
}

// background runs the workload in writers goroutines until about target
// changes are committed (0: until stopped).
func (w *workload) background(seed uint64, writers int, target int64) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, errs: make(chan error, writers), n: writers}
	for i := range writers {
		go func() { r.errs <- w.run(ctx, seed+uint64(i)*7919, target) }()
	}
	return r
}

// wait waits for the writers to finish and returns the first error.
func (r *running) wait() error {
	var first error
	for range r.n {
		if err := <-r.errs; err != nil && first == nil {
			first = err
			r.cancel()
		}
	}
	r.n = 0
	r.cancel()
	return first
}

// stop ends the writers and returns the first error.
func (r *running) stop() error {
	r.cancel()
	return r.wait()
}
