package faults

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
)

// tableState is a table's rows: primary key → stamp n.
func tableState(t *testing.T, e *env, table string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn, err := connect(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "select id::text, n::text from "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := make(map[string]string)
	for rows.Next() {
		var id, n string
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// replay applies the deliveries of table in order: reads, inserts and
// updates set a row, deletes remove it, truncates empty the table.
func replay(all []delivery, table string) map[string]string {
	state := make(map[string]string)
	for _, d := range all {
		if d.table != table {
			continue
		}
		switch d.action {
		case "read", "insert", "update":
			state[d.pk] = d.n
		case "delete":
			delete(state, d.pk)
		case "truncate":
			clear(state)
		}
	}
	return state
}

func diffStates(got, want map[string]string) (missing, extra, wrong int) {
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			missing++
		case g != v:
			wrong++
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra++
		}
	}
	return
}

// reads counts the backfill reads of ds per primary key, and checks each
// key has one idempotency key.
func reads(t *testing.T, all []delivery) (perPK map[string]int, keyMismatches int) {
	perPK = make(map[string]int)
	keyOf := make(map[string]string)
	for _, d := range all {
		if d.action != "read" {
			continue
		}
		perPK[d.pk]++
		if k, ok := keyOf[d.pk]; ok && k != d.key {
			keyMismatches++
		}
		keyOf[d.pk] = d.key
	}
	return perPK, keyMismatches
}

// seededItems is an env whose items table has rows rows (ids 1..rows), its
// deliveries and slot monitor, and a workload that inserts after them.
func seededItems(t *testing.T, rows int) (*env, *deliveries, *monitor, *workload) {
	t.Helper()
	e := newEnv(t, []string{"items"})
	pgtest.Exec(t, e.url, fmt.Sprintf("insert into items (id, pad) select g, md5(g::text) from generate_series(1, %d) g", rows))
	ds := &deliveries{}
	mon := startMonitor(t, e, ds)
	w := newWorkload(e)
	w.nextID.Store(int64(rows))
	return e, ds, mon, w
}

// checkReplay replays the reads and changes of the items table in delivery
// order and checks the result equals the table, and that each row's reads
// share one idempotency key. It returns the reads per primary key.
func checkReplay(t *testing.T, e *env, ds *deliveries) (perPK map[string]int, equal bool) {
	t.Helper()
	all, err := ds.all()
	if err != nil {
		t.Fatal(err)
	}
	missing, extra, wrong := diffStates(replay(all, "items"), tableState(t, e, "items"))
	perPK, km := reads(t, all)
	if missing+extra+wrong+km > 0 {
		t.Errorf("replay of reads and changes: %d rows missing, %d extra, %d with a stale version; %d read key mismatches", missing, extra, wrong, km)
	}
	return perPK, missing+extra+wrong == 0
}

// waitStderr waits until the consumer writes what to its stderr, failing
// when it exits, its backfill fails, or after timeout (scaled by testtime).
func waitStderr(t *testing.T, c *consumer, what string, timeout time.Duration) {
	t.Helper()
	waitStderrCount(t, c, what, 1, timeout)
}

// waitStderrCount is waitStderr for the nth time what is written.
func waitStderrCount(t *testing.T, c *consumer, what string, n int, timeout time.Duration) {
	t.Helper()
	timeout = testtime.Bound(timeout)
	deadline := time.Now().Add(timeout)
	for strings.Count(c.stderr.String(), what) < n {
		if err := c.alive(); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(c.stderr.String(), "consumer: backfill:") {
			t.Fatalf("backfill failed: %s", c.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q (%d times) after %v; stderr:\n%s", what, n, timeout, c.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// F11: a backfill under concurrent inserts, updates and deletes: replaying
// the reads and changes in delivery order reproduces the table exactly.
func TestF11BackfillUnderWrites(t *testing.T) {
	rows := pick(10_000, 500_000)
	e, ds, mon, w := seededItems(t, rows)
	wr := w.background(seed(t), 2, int64(pick(10_000, 500_000)))
	c := startConsumer(t, e, ds, "FAULTS_BACKFILL_TABLE=public.items", "FAULTS_BACKFILL_ID=f11")
	waitStderr(t, c, "consumer: backfill done", 3*time.Minute)
	if err := wr.stop(); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, e, ds, time.Minute, c.alive)
	c.term(t)
	r := compare(t, e, ds, mon, result{Fault: "F11", Name: "backfill under writes", Runs: 1}, compareOpts{commitOrder: true})
	perPK, equal := checkReplay(t, e, ds)
	t.Logf("F11: %d rows read, %d live changes during the backfill, replay equals the table: %v", len(perPK), r.Changes-rows, equal)
}

// F11, with Postgres restarted (fast, then immediate) while the backfill
// runs: the backfill rides through the restarts in the same process, and
// replaying the reads and changes still reproduces the table.
func TestF11BackfillAcrossPostgresRestarts(t *testing.T) {
	cl := pgtest.Shared()
	if cl == nil {
		t.Skip("needs the test binary's own cluster (WALRELAY_TEST_DATABASE_URL is set)")
	}
	rows := pick(20_000, 500_000)
	e, ds, mon, w := seededItems(t, rows)
	w.pause = 5 * time.Millisecond
	// Bounded in changes: the writers go on while the consumer holds, and a
	// slow machine holds it long.
	wr := w.background(seed(t), 2, int64(pick(20_000, 500_000)))
	// The consumer holds its sink at a third of the rows, then at two
	// thirds: however fast it runs, the backfill is mid-way at each restart.
	limit := outPath(e, "read-limit")
	hold := func(n int) {
		if err := os.WriteFile(limit, []byte(fmt.Sprint(n)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hold(rows / 3)
	c := startConsumer(t, e, ds, "FAULTS_BACKFILL_TABLE=public.items", "FAULTS_BACKFILL_ID=f11r", "FAULTS_WRITE_DELAY=50ms", "FAULTS_READ_LIMIT="+limit)
	readCount := func() int {
		all, err := ds.all()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range all {
			if d.action == "read" {
				n++
			}
		}
		return n
	}
	ctx := context.Background()
	// Restart fast at the first hold and immediately at the second. The
	// writers stop after the restarts, so that the consumer catches up.
	for i, mode := range []pgtest.ShutdownMode{pgtest.Fast, pgtest.Immediate} {
		waitStderrCount(t, c, "consumer: held at", i+1, 3*time.Minute)
		if strings.Contains(c.stderr.String(), "backfill done") {
			t.Fatalf("the backfill finished before restart %d", i+1)
		}
		mon.allowRegression()
		if mode == pgtest.Fast {
			// A fast shutdown waits until the walsender's client confirmed
			// all it was sent: the consumer goes on once it has begun.
			restarted := make(chan error, 1)
			go func() { restarted <- cl.Restart(ctx, mode) }()
			waitRefused(t, e.url)
			hold(2 * rows / 3)
			if err := <-restarted; err != nil {
				t.Fatal(err)
			}
		} else if err := cl.Restart(ctx, mode); err != nil {
			t.Fatal(err)
		}
		mon.allowRegression()
	}
	if err := os.Remove(limit); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := wr.stop(); err != nil {
		t.Fatal(err)
	}
	waitStderr(t, c, "consumer: backfill done", 3*time.Minute)
	waitDelivered(t, e, ds, time.Minute, c.alive)
	c.term(t)
	compare(t, e, ds, mon, result{Fault: "F11r", Name: "backfill across Postgres restarts", Runs: 2}, compareOpts{commitOrder: true})
	perPK, equal := checkReplay(t, e, ds)
	t.Logf("F11r: %d rows read (%d reads), replay equals the table: %v", len(perPK), readCount(), equal)
}

// waitRefused waits until the server at url refuses connections: it is
// shutting down.
func waitRefused(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(testtime.Bound(time.Minute))
	for {
		ctx, cancel := context.WithTimeout(context.Background(), testtime.Bound(10*time.Second))
		conn, err := pgx.Connect(ctx, url)
		cancel()
		if err != nil {
			return
		}
		conn.Close(context.Background())
		if time.Now().After(deadline) {
			t.Fatalf("the server still accepts connections after %v", testtime.Bound(time.Minute))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// F12: the consumer running a backfill is killed mid-way and restarted; the
// backfill resumes from its saved cursor and every row is read at least
// once.
func TestF12BackfillKilled(t *testing.T) {
	rows := pick(20_000, 500_000)
	kills := pick(3, 10)
	e := newEnv(t, []string{"items"})
	// The rows exist before the slot: a change still waiting in the slot
	// makes the stream drop its row from the chunk in flight (the change
	// carries the row), and here every row must be read.
	pgtest.Exec(t, e.url,
		fmt.Sprintf("insert into items (id, pad) select g, md5(g::text) from generate_series(1, %d) g", rows),
		"select pg_drop_replication_slot('"+e.slot+"')",
		"select pg_create_logical_replication_slot('"+e.slot+"', 'pgoutput')",
		"delete from faults_audit")
	ds := &deliveries{}
	mon := startMonitor(t, e, ds)
	// Each run but the last holds its sink once it has written its share
	// of reads, until it is killed: the backfill is mid-way at each kill,
	// however fast or slow the machine.
	share := rows / (kills + 2)
	limit := outPath(e, "read-limit")
	if err := os.WriteFile(limit, []byte(fmt.Sprint(share)), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"FAULTS_BACKFILL_TABLE=public.items", "FAULTS_BACKFILL_ID=f12", "FAULTS_READ_LIMIT=" + limit}
	readsIn := func(i int) int {
		all, err := ds.all()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range all {
			if d.source == i && d.action == "read" {
				n++
			}
		}
		return n
	}
	c := startConsumer(t, e, ds, env...)
	for k := range kills {
		waitStderr(t, c, "consumer: held at", 3*time.Minute)
		c.kill(t)
		if n := readsIn(k); n < share {
			t.Fatalf("run %d held after %d reads, want at least %d; its stderr:\n%s", k, n, share, c.stderr.String())
		}
		if k == kills-1 {
			if err := os.Remove(limit); err != nil {
				t.Fatal(err)
			}
		}
		c = startConsumer(t, e, ds, env...)
	}
	waitStderr(t, c, "consumer: backfill done", 3*time.Minute)
	c.term(t)
	compare(t, e, ds, mon, result{Fault: "F12", Name: "backfill killed mid-way", Runs: kills}, compareOpts{})
	all, err := ds.all()
	if err != nil {
		t.Fatal(err)
	}
	perPK, km := reads(t, all)
	total := 0
	for _, n := range perPK {
		total += n
	}
	if len(perPK) != rows || km > 0 {
		var unread []int
		for id := 1; id <= rows; id++ {
			if perPK[fmt.Sprint(id)] == 0 {
				unread = append(unread, id)
			}
		}
		var perRun []int
		for i := range kills + 1 {
			perRun = append(perRun, readsIn(i))
		}
		t.Errorf("%d of %d rows read, %d read key mismatches; reads per run %v; unread ids %s", len(perPK), rows, km, perRun, ranges(unread))
	}
	last := readsIn(kills)
	if last >= rows {
		t.Errorf("the last run read %d rows of %d: it did not resume from the saved cursor", last, rows)
	}
	var perRun []int
	for i := range kills + 1 {
		perRun = append(perRun, readsIn(i))
	}
	t.Logf("F12: %d rows, %d reads over %d runs %v (%d re-read after kills)", rows, total, kills+1, perRun, total-rows)
}

// ranges shows sorted ids as "a-b c-d".
func ranges(ids []int) string {
	var b strings.Builder
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		fmt.Fprintf(&b, "%d-%d ", ids[i], ids[j])
		i = j + 1
	}
	return strings.TrimSpace(b.String())
}
