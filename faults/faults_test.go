package faults

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/walrelay/walrelay/internal/pgtest"
)

func seed(t *testing.T) uint64 {
	s := uint64(time.Now().UnixNano())
	t.Logf("seed %d", s)
	return s
}

// F1: the consumer process is killed with SIGKILL at random moments during
// a mixed workload, and restarted each time.
func TestF1KillConsumer(t *testing.T) {
	kills := pick(10, 40)
	rows := int64(pick(50_000, 300_000))
	sd := seed(t)
	rng := rand.New(rand.NewPCG(sd, 1))
	e := newEnv(t, []string{"items", "orders"})
	ds := &deliveries{}
	mon := startMonitor(t, e, ds)
	c := startConsumer(t, e, ds)
	c.streaming(t)
	w := newWorkload(e)
	w.maxRows = 50
	wr := w.background(sd, 2, rows)
	for range kills {
		select {
		case <-time.After(time.Duration(50+rng.IntN(400)) * time.Millisecond):
		case <-c.done:
			t.Fatal(c.alive())
		}
		c.kill(t)
		c = startConsumer(t, e, ds)
	}
	if err := wr.wait(); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, e, ds, 2*time.Minute, c.alive)
	c.term(t)
	compare(t, e, ds, mon, result{Fault: "F1", Name: "kill -9 consumer", Runs: kills}, compareOpts{commitOrder: true})
}

// F2: the walsender is terminated repeatedly during a workload; the stream
// reconnects by itself.
func TestF2TerminateWalsender(t *testing.T) {
	terms := pick(10, 50)
	sd := seed(t)
	rng := rand.New(rand.NewPCG(sd, 1))
	e := newEnv(t, []string{"items"})
	ds := &deliveries{}
	mon := startMonitor(t, e, ds)
	c := startConsumer(t, e, ds)
	c.streaming(t)
	w := newWorkload(e)
	wr := w.background(sd, 2, 0)
	ctx := context.Background()
	conn, err := connect(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	done := 0
	for done < terms {
		time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
		if err := c.alive(); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.QueryRow(ctx, "select count(pg_terminate_backend(active_pid)) from pg_replication_slots where slot_name = $1 and active_pid is not null", e.slot).Scan(&n); err != nil {
			t.Fatal(err)
		}
		done += n
	}
	if err := wr.stop(); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, e, ds, time.Minute, c.alive)
	c.term(t)
	compare(t, e, ds, mon, result{Fault: "F2", Name: "terminate walsender", Runs: terms}, compareOpts{commitOrder: true})
}

// F3: Postgres is restarted, fast and immediate, mid-stream.
func TestF3RestartPostgres(t *testing.T) {
	cl := pgtest.Shared()
	if cl == nil {
		t.Skip("needs the test binary's own cluster (WALRELAY_TEST_DATABASE_URL is set)")
	}
	restarts := pick(2, 6) // of each mode
	sd := seed(t)
	e := newEnv(t, []string{"items"})
	ds := &deliveries{}
	mon := startMonitor(t, e, ds)
	c := startConsumer(t, e, ds)
	c.streaming(t)
	w := newWorkload(e)
	wr := w.background(sd, 2, 0)
	ctx := context.Background()
	for i := range 2 * restarts {
		time.Sleep(300 * time.Millisecond)
		mode := pgtest.Fast
		if i%2 == 1 {
			mode = pgtest.Immediate
		}
		// Postgres before 17 saves a logical slot's confirmed_flush_lsn only
		// when other slot state changes (PG 17 also saves it at the
		// shutdown checkpoint), so after either kind of restart the slot can
		// come back at an older position: the server, not the stream, moves
		// it back, and the changes after it are delivered again.
		mon.allowRegression()
		if err := cl.Restart(ctx, mode); err != nil {
			t.Fatal(err)
		}
		mon.allowRegression()
		if err := c.alive(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if err := wr.stop(); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, e, ds, time.Minute, c.alive)
	c.term(t)
	compare(t, e, ds, mon, result{Fault: "F3", Name: "postgres fast+immediate restart", Runs: 2 * restarts,
		Note: "workload transactions cut by the restarts: " + itoa(w.failures.Load())}, compareOpts{commitOrder: true})
}
