package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// F6: one transaction of many rows is delivered in full while the
// consumer's memory stays flat.
func TestF6LargeTransaction(t *testing.T) {
	rows := pick(50_000, 1_000_000)
	e := newEnv(t, []string{"items"})
	ds := &deliveries{}
	mon := startMonitor(t, e, ds)
	stats := outPath(e, "stats")
	c := startConsumer(t, e, ds, "FAULTS_STATS="+stats)
	c.streaming(t)
	pgtest.Exec(t, e.url, fmt.Sprintf("insert into items (id, pad) select g, md5(g::text) from generate_series(1, %d) g", rows))
	waitDelivered(t, e, ds, 5*time.Minute, c.alive)
	c.term(t)
	mem, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, e, ds, mon, result{Fault: "F6", Name: fmt.Sprintf("one transaction of %d rows", rows), Runs: 1,
		Note: "consumer memory: " + string(mem)}, compareOpts{commitOrder: true})
}

// F7: many concurrent writers; commit order and per-row order hold.
func TestF7ConcurrentWriters(t *testing.T) {
	writers := pick(8, 32)
	e := newEnv(t, []string{"items", "orders"})
	ds := &deliveries{}
	mon := startMonitor(t, e, ds)
	c := startConsumer(t, e, ds)
	c.streaming(t)
	w := newWorkload(e)
	w.maxRows = 5
	if err := w.background(seed(t), writers, int64(pick(20_000, 500_000))).wait(); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, e, ds, 2*time.Minute, c.alive)
	c.term(t)
	compare(t, e, ds, mon, result{Fault: "F7", Name: fmt.Sprintf("%d concurrent writers", writers), Runs: 1,
		Note: fmt.Sprintf("%d transactions committed, %d aborted (deadlocks between writers)", w.commits.Load(), w.failures.Load())},
		compareOpts{commitOrder: true})
}

// F8: an idle database, then one whose changes all go to an unpublished
// table: the slot keeps up (heartbeats, keepalive acknowledgements).
func TestF8IdleAndFiltered(t *testing.T) {
	phase := pick(3*time.Second, 3*time.Minute)
	e := newEnv(t, []string{"items"})
	pgtest.Exec(t, e.url, "create table unpublished (id bigserial primary key, pad text)")
	ds := &deliveries{}
	mon := startMonitor(t, e, ds)
	c := startConsumer(t, e, ds, "FAULTS_HEARTBEAT=200ms")
	c.streaming(t)
	pgtest.Exec(t, e.url, "insert into items (id, pad) select g, 'x' from generate_series(1, 100) g")
	waitDelivered(t, e, ds, time.Minute, c.alive)

	ctx := context.Background()
	conn, err := connect(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	lag := func() (behind, flushed int64) {
		t.Helper()
		var l *int64
		if err := conn.QueryRow(ctx, `select pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint,
			pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint from pg_replication_slots where slot_name = $1`, e.slot).Scan(&l, &flushed); err != nil {
			t.Fatal(err)
		}
		return *l, flushed
	}
	// Each phase: the slot advances past where WAL was when it started, and
	// ends at most this far behind.
	const bound = 1 << 20
	var notes []string
	for _, filtered := range []bool{false, true} {
		var start int64
		if err := conn.QueryRow(ctx, "select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").Scan(&start); err != nil {
			t.Fatal(err)
		}
		end := time.Now().Add(phase)
		maxLag := int64(0)
		for time.Now().Before(end) {
			if filtered {
				if _, err := conn.Exec(ctx, "insert into unpublished (pad) select md5(g::text) from generate_series(1, 200) g"); err != nil {
					t.Fatal(err)
				}
			} else {
				time.Sleep(50 * time.Millisecond)
			}
			l, _ := lag()
			maxLag = max(maxLag, l)
		}
		if filtered {
			conn.Exec(ctx, "select pg_switch_wal()")
		}
		name := map[bool]string{false: "idle", true: "filtered"}[filtered]
		deadline := time.Now().Add(testtime.Bound(30 * time.Second))
		l, flushed := lag()
		for (l > bound || flushed <= start) && time.Now().Before(deadline) {
			if err := c.alive(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			l, flushed = lag()
		}
		if flushed <= start {
			t.Errorf("%s: the slot did not advance past %d (it is at %d)", name, start, flushed)
		}
		if l > bound {
			t.Errorf("%s: the slot stays %d bytes behind", name, l)
		}
		notes = append(notes, fmt.Sprintf("%s %v: max lag %d bytes, final lag %d bytes", name, phase, maxLag, l))
	}
	c.term(t)
	compare(t, e, ds, mon, result{Fault: "F8", Name: "idle and filtered databases", Runs: 2,
		Note: strings.Join(notes, "; ")}, compareOpts{commitOrder: true})
}

// F10: two consumer processes on one slot; the active one is killed and
// the standby takes over, repeatedly.
func TestF10StandbyTakeover(t *testing.T) {
	kills := pick(3, 10)
	e := newEnv(t, []string{"items"})
	ds := &deliveries{}
	mon := startMonitor(t, e, ds)
	active := startConsumer(t, e, ds)
	active.streaming(t)
	w := newWorkload(e)
	wr := w.background(seed(t), 2, 0)
	for range kills {
		standby := startConsumer(t, e, ds)
		time.Sleep(300 * time.Millisecond)
		if strings.Contains(standby.stderr.String(), "consumer: streaming") {
			t.Fatalf("a second consumer streams from a slot held by another")
		}
		active.kill(t)
		standby.streaming(t)
		active = standby
	}
	time.Sleep(200 * time.Millisecond)
	if err := wr.stop(); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, e, ds, time.Minute, active.alive)
	active.term(t)
	compare(t, e, ds, mon, result{Fault: "F10", Name: "standby takeover after kill", Runs: kills}, compareOpts{commitOrder: true})
}

// F13: updates that leave a TOASTed column unchanged, with FULL and
// DEFAULT replica identity, across consumer kills: the column is never
// NULL or a wrong value; with DEFAULT identity it may be the documented
// unchanged-TOAST marker.
func TestF13Toast(t *testing.T) {
	e := newEnv(t, []string{"toast_full", "toast_default"}, "toast_default")
	ds := &deliveries{}
	mon := startMonitor(t, e, ds)
	c := startConsumer(t, e, ds)
	c.streaming(t)
	rows := pick(200, 2000)
	// Random hex, 6400 characters: stored out of line even after compression.
	big := "(select string_agg(md5(random()::text), '') from generate_series(1, 200 + g % 2))"
	pgtest.Exec(t, e.url,
		fmt.Sprintf("insert into toast_full (id, pad) select g, %s from generate_series(1, %d) g", big, rows),
		fmt.Sprintf("insert into toast_default (id, pad) select g, %s from generate_series(1, %d) g", big, rows))
	ctx := context.Background()
	conn, err := connect(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rounds := pick(20, 200)
	for i := range rounds {
		lo := i * rows / rounds
		for _, tbl := range []string{"toast_full", "toast_default"} {
			// Unchanged TOAST, a changed TOAST value, and a NULL.
			for _, set := range []string{"v = v + 1", "pad = pad || 'y'", "pad = null", "pad = md5(id::text)"} {
				if _, err := conn.Exec(ctx, "update "+tbl+" set "+set+" where id between $1 and $2", lo, lo+rows/rounds); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := conn.Exec(ctx, "update "+tbl+" set pad = "+strings.ReplaceAll(big, "g %", "id %")+" where id between $1 and $2", lo, lo+rows/rounds); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "update "+tbl+" set v = v + 1 where id between $1 and $2", lo, lo+rows/rounds); err != nil {
				t.Fatal(err)
			}
		}
		if i == rounds/3 || i == 2*rounds/3 {
			c.kill(t)
			c = startConsumer(t, e, ds)
		}
	}
	if _, err := conn.Exec(ctx, "delete from toast_full where id % 3 = 0"); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, e, ds, 2*time.Minute, c.alive)
	c.term(t)
	r := compare(t, e, ds, mon, result{Fault: "F13", Name: "TOAST, full and default identity", Runs: 2}, compareOpts{commitOrder: true})
	if r.ToastSentinels == 0 {
		t.Errorf("no unchanged-TOAST marker seen: the default-identity case was not exercised")
	}
}

// F14: DDL mid-stream: a column added, renamed and dropped, and a new table
// published, while writers run; later messages have the new shape.
func TestF14DDL(t *testing.T) {
	e := newEnv(t, []string{"items"})
	ds := &deliveries{}
	mon := startMonitor(t, e, ds)
	c := startConsumer(t, e, ds)
	c.streaming(t)
	w := newWorkload(e)
	w.pause = 2 * time.Millisecond
	wr := w.background(seed(t), 2, 0)
	// The steps run while the writers update the same rows: a deadlock
	// (Postgres ends one side) is retried, as the writers do.
	step := func(sql ...string) {
		time.Sleep(300 * time.Millisecond)
		for _, q := range sql {
			for try := 1; ; try++ {
				err := pgtest.ExecURL(context.Background(), e.url, q)
				var pe *pgconn.PgError
				if err == nil {
					break
				}
				if !errors.As(err, &pe) || pe.Code != "40P01" || try == 5 {
					t.Fatalf("%s: %v", q, err)
				}
			}
		}
	}
	step("alter table items add column extra text default 'x'")
	step("alter table items rename column extra to extra2")
	step("alter table items add column num numeric", "update items set num = id where id % 7 = 0")
	step("alter table items drop column extra2")
	step("alter table items alter column num type text")
	e.addTable("later")
	w2 := newWorkload(e, "later")
	wr2 := w2.background(seed(t), 1, 0)
	step("alter table later add column extra int")
	time.Sleep(300 * time.Millisecond)
	if err := errors.Join(wr.stop(), wr2.stop()); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, e, ds, time.Minute, c.alive)
	c.term(t)
	compare(t, e, ds, mon, result{Fault: "F14", Name: "DDL mid-stream", Runs: 6}, compareOpts{commitOrder: true})
}

// F15: truncates, rolled-back transactions, savepoint rollbacks and logical
// messages mixed into the workload: exactly what committed is delivered.
func TestF15TruncateRollbackSavepointMessages(t *testing.T) {
	e := newEnv(t, []string{"items", "orders"})
	ds := &deliveries{}
	mon := startMonitor(t, e, ds)
	c := startConsumer(t, e, ds)
	c.streaming(t)
	w := newWorkload(e)
	w.extras = true
	wr := w.background(seed(t), 2, 0)
	truncates := pick(5, 50)
	for i := range truncates {
		time.Sleep(200 * time.Millisecond)
		tbl := []string{"items", "orders"}[i%2]
		pgtest.Exec(t, e.url, "truncate "+tbl)
	}
	pgtest.Exec(t, e.url, "begin", "insert into items (id, pad) values (-1, 'gone')", "truncate orders", "rollback")
	if err := wr.stop(); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, e, ds, time.Minute, c.alive)
	c.term(t)
	compare(t, e, ds, mon, result{Fault: "F15", Name: "truncate/rollback/savepoint/messages", Runs: truncates,
		Note: fmt.Sprintf("%d transactions ended, %d of them rolled back", w.commits.Load(), w.rollbacks.Load())},
		compareOpts{commitOrder: true})
}

// F9: the slot is invalidated while its consumer is stopped
// (max_slot_wal_keep_size): Open fails with a typed error naming the slot
// and no new slot appears. Runs on a cluster of its own.
func TestF9SlotInvalidated(t *testing.T) {
	if pgtest.Shared() == nil {
		pgtest.URL(t) // skips or fails without Postgres
		t.Skip("needs local PostgreSQL binaries to start a cluster with max_slot_wal_keep_size")
	}
	ctx := t.Context()
	cl, err := pgtest.Start(ctx, pgtest.Options{Settings: []string{"max_slot_wal_keep_size = '1MB'"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	url := cl.URL
	pgtest.Exec(t, url, "create table t (id int primary key, v text)", "create publication p for table t")
	cfg := cdc.Config{ConnString: url, Slot: "faults_f9", Publication: "p", CreateSlot: true, HeartbeatInterval: -1}
	s, err := cdc.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, url, "insert into t values (1, 'a')")
	got := make(chan message.Message, 1)
	rctx, cancel := context.WithCancel(ctx)
	go cdc.Run(rctx, s, sink.Func(func(_ context.Context, msgs ...message.Message) error {
		got <- msgs[0]
		cancel()
		return nil
	}), cdc.RunOptions{})
	select {
	case <-got:
	case <-time.After(testtime.Bound(30 * time.Second)):
		t.Fatal("no message before invalidation")
	}
	s.Close()

	conn, err := connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(testtime.Bound(60 * time.Second))
	for {
		for _, q := range []string{"insert into t select g, repeat('x', 1000) from generate_series(2, 3000) g", "delete from t where id > 1", "select pg_switch_wal()", "checkpoint"} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		var status *string
		if err := conn.QueryRow(ctx, "select wal_status from pg_replication_slots where slot_name = 'faults_f9'").Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status != nil && *status == "lost" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not invalidated (wal_status %v)", status)
		}
	}
	for _, create := range []bool{false, true} {
		cfg.CreateSlot = create
		s, err = cdc.Open(ctx, cfg)
		if err == nil {
			s.Close()
			t.Fatalf("Open (CreateSlot=%v) of an invalidated slot succeeded", create)
		}
		var se *cdc.SlotError
		if !errors.Is(err, cdc.ErrSlotInvalidated) || !errors.As(err, &se) || se.Slot != "faults_f9" || !strings.Contains(err.Error(), "faults_f9") {
			t.Errorf("Open (CreateSlot=%v): got %v, want ErrSlotInvalidated naming the slot", create, err)
		}
	}
	var slots int
	var status string
	if err := conn.QueryRow(ctx, "select count(*), min(wal_status) from pg_replication_slots").Scan(&slots, &status); err != nil {
		t.Fatal(err)
	}
	if slots != 1 || status != "lost" {
		t.Errorf("after Open: %d slots, wal_status %q; want the one lost slot, none created", slots, status)
	}
	record(t, result{Fault: "F9", Name: "slot invalidated while stopped", Runs: 2, Changes: 1, Delivered: 1,
		Note: "Open returned: " + err.Error()})
}
