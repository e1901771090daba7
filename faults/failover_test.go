package faults

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/internal/pgtest"
)

// failoverPair is a primary and a physical standby of it, with a database
// "f16" reached through a multi-host connection string that follows
// whichever of the two is the primary.
type failoverPair struct {
	primary, standby *pgtest.Cluster
	url              string // host=primary,standby target_session_attrs=primary
	major            int
}

const standbySlot = "walrelay_f16_standby"

// newFailoverPair starts a primary and a standby from the binaries of a
// major version (skipping the test, loudly, when there are none). The
// standby synchronises failover slots when syncSlots is set; the primary
// holds logical walsenders back until the standby has the WAL they send
// (synchronized_standby_slots), the setting that makes a failover safe.
func newFailoverPair(t *testing.T, major int, syncSlots bool) *failoverPair {
	t.Helper()
	bin, err := pgtest.BinFor(major)
	if err != nil {
		t.Skipf("SKIP F16 on PostgreSQL %d: %v", major, err)
	}
	primary := pgtest.NewCluster(t, pgtest.Options{Bin: bin})
	settings := []string{"hot_standby_feedback = on"}
	if syncSlots {
		settings = append(settings, "sync_replication_slots = on")
	}
	standby := pgtest.NewStandby(t, primary, pgtest.StandbyOptions{Slot: standbySlot, Settings: settings})
	pgtest.Exec(t, primary.URL,
		"alter system set synchronized_standby_slots = '"+standbySlot+"'",
		"select pg_reload_conf()",
		"create database f16")
	return &failoverPair{
		primary: primary, standby: standby, major: major,
		url: fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/f16?sslmode=disable&target_session_attrs=primary",
			primary.Port, standby.Port),
	}
}

// env makes a fault environment in the pair's database: audited tables, a
// publication, and a slot created by cdc.Open with Config.Failover.
func (p *failoverPair) env(t *testing.T, tables []string) *env {
	t.Helper()
	e := &env{
		t: t, url: p.url, dir: t.TempDir(), tables: make(map[string]bool),
		slot: pgtest.Name(t, "slot"), pub: pgtest.Name(t, "pub"),
	}
	sql := slices.Clone(auditSQL)
	var quoted []string
	for _, name := range tables {
		e.tables[name] = true
		sql = append(sql, tableSQL(name, true)...)
		quoted = append(quoted, pgx.Identifier{name}.Sanitize())
	}
	sql = append(sql, "create publication "+e.pub+" for table "+strings.Join(quoted, ", "))
	pgtest.Exec(t, e.url, sql...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := cdc.Open(ctx, cdc.Config{ConnString: e.url, Slot: e.slot, Publication: e.pub, CreateSlot: true, Failover: true})
	if err != nil {
		t.Fatalf("PostgreSQL %d: create the failover slot: %v", p.major, err)
	}
	s.Close()
	return e
}

// waitSynced waits until the standby holds a synchronised, persistent,
// valid copy of the slot — the state the PostgreSQL documentation asks to
// confirm before relying on a failover.
func (p *failoverPair) waitSynced(t *testing.T, slot string, alive func() error) {
	t.Helper()
	ctx := context.Background()
	conn, err := connect(ctx, p.standby.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	prim, err := connect(ctx, p.primary.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer prim.Close(ctx)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		// A standby persists its copy of the slot once the primary's slot
		// has moved past the point the copy starts from. The primary's
		// slot moves at running-transactions records, which the server
		// writes every 15s; writing one now saves the wait.
		if _, err := prim.Exec(ctx, "select pg_log_standby_snapshot()"); err != nil {
			t.Fatal(err)
		}
		var ready bool
		err := conn.QueryRow(ctx, `select synced and not temporary and invalidation_reason is null
			from pg_replication_slots where slot_name = $1`, slot).Scan(&ready)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if ready {
			return
		}
		if err := alive(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby did not synchronise slot %q; standby log:\n%s", slot, p.standby.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// failover kills the primary with SIGKILL and promotes the standby.
func (p *failoverPair) failover(t *testing.T) {
	t.Helper()
	p.primary.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.standby.Promote(ctx); err != nil {
		t.Fatalf("%v\nstandby log:\n%s", err, p.standby.Log())
	}
}

func failoverMajors() []int { return []int{17, 18} }

// F16: a primary with a physical standby that synchronises the stream's
// failover slot; under a mixed workload the primary is killed (SIGKILL)
// and the standby promoted. The consumer follows the multi-host connection
// string to the new primary and goes on: nothing lost, keys stable, the
// slot never ahead of the sink. Each run is a new pair of servers: one per
// version in the short campaign (CI runs it on 17 and on 18), five in the
// long one.
func TestF16Failover(t *testing.T) {
	for _, major := range failoverMajors() {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			for run := range pick(1, 5) {
				t.Run(fmt.Sprintf("run%d", run+1), func(t *testing.T) { failoverRun(t, major) })
			}
		})
	}
}

func failoverRun(t *testing.T, major int) {
	sd := seed(t)
	start := time.Now()
	p := newFailoverPair(t, major, true)
	e := p.env(t, []string{"items", "orders"})
	t.Logf("pair ready after %v", time.Since(start).Round(time.Millisecond))
	ds := &deliveries{}
	mon := startMonitor(t, e, ds)
	c := startConsumer(t, e, ds)
	c.streaming(t)
	w := newWorkload(e)
	w.pause = 20 * time.Millisecond // bounds the volume: checking the deliveries reads them all
	wr := w.background(sd, 2, 0)

	p.waitSynced(t, e.slot, c.alive)
	t.Logf("slot synchronised after %v", time.Since(start).Round(time.Millisecond))
	// The standby's copy cannot be streamed from before the promotion.
	standbyURL := pgtest.WithDatabase(p.standby.URL, "f16")
	err := openErr(standbyURL, e)
	if !errors.Is(err, cdc.ErrSlotSyncing) {
		t.Fatalf("PostgreSQL %d: Open on the standby: got %v, want ErrSlotSyncing", major, err)
	}
	// Some changes delivered, then more, so the kill lands mid-stream.
	before := deliveredBytes(ds)
	waitProgress(t, "deliveries before the failover", c.alive, func() (bool, error) {
		return deliveredBytes(ds) >= before+100_000, nil
	})

	// The server, not the stream, moves the slot back: the promoted
	// standby's copy is at the position it last synchronised.
	mon.allowRegression()
	p.failover(t)
	mon.allowRegression()
	t.Logf("promoted after %v", time.Since(start).Round(time.Millisecond))
	commits := w.commits.Load()
	waitProgress(t, "commits on the promoted server", c.alive, func() (bool, error) {
		return w.commits.Load() >= commits+200, nil
	})
	if err := wr.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("workload stopped after %v", time.Since(start).Round(time.Millisecond))
	waitDelivered(t, e, ds, 2*time.Minute, c.alive)
	t.Logf("all delivered after %v", time.Since(start).Round(time.Millisecond))
	c.term(t)
	compare(t, e, ds, mon, result{Fault: "F16", Name: fmt.Sprintf("failover to a promoted standby, PG %d", major), Runs: 1,
		Note: fmt.Sprintf("PostgreSQL %d; workload transactions cut by the failover: %d", major, w.failures.Load())},
		compareOpts{commitOrder: true})
}

// F16, the failure case: the standby does not synchronise slots, and is
// promoted. The stream following the connection string to it must stop
// with ErrSlotNotSynced — never go on as if nothing had been missed.
func TestF16PromotedBeforeSlotSynced(t *testing.T) {
	for _, major := range failoverMajors() {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			p := newFailoverPair(t, major, false)
			e := p.env(t, []string{"items"})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			s, err := cdc.Open(ctx, cdc.Config{ConnString: e.url, Slot: e.slot, Publication: e.pub,
				HeartbeatInterval: -1, Backoff: quickBackoff})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			pgtest.Exec(t, e.url, "insert into items (id, pad) select g, 'x' from generate_series(1, 10) g")
			for range 10 {
				m, err := s.Next(ctx)
				if err != nil {
					t.Fatalf("before the failover: %v", err)
				}
				s.Ack(m)
			}
			// Only the slot may be missing on the standby, not the
			// database or the rows before the failover: a standby just
			// started may not be streaming yet.
			waitReplayed(t, p.primary.URL, p.standby.URL)
			p.failover(t)
			// A change on the new primary that a silently recreated or
			// skipped slot would lose.
			pgtest.Exec(t, e.url, "insert into items (id, pad) values (11, 'after')")
			m, err := s.Next(ctx)
			if err == nil {
				t.Fatalf("PostgreSQL %d: after promoting a standby without the slot, Next returned %s %v; want ErrSlotNotSynced", major, m.Action, m.Record)
			}
			var se *cdc.SlotError
			if !errors.Is(err, cdc.ErrSlotNotSynced) || !errors.As(err, &se) || se.Slot != e.slot {
				t.Fatalf("PostgreSQL %d: got %v, want a *SlotError wrapping ErrSlotNotSynced", major, err)
			}
			t.Logf("PostgreSQL %d: %v", major, err)
			// 11 changes committed, 10 delivered before the failover; the
			// 11th is not lost silently: the stream stopped with the error.
			record(t, result{Fault: "F16", Name: fmt.Sprintf("promoted before slot sync, PG %d", major), Runs: 1,
				Changes: 11, Delivered: 10, Note: "typed error, nothing delivered after the failover: " + err.Error()})
		})
	}
}

// openErr opens a stream on url for e's slot and publication, expecting
// an error.
func openErr(url string, e *env) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := cdc.Open(ctx, cdc.Config{ConnString: url, Slot: e.slot, Publication: e.pub, HeartbeatInterval: -1})
	if err == nil {
		s.Close()
		return errors.New("Open succeeded")
	}
	return err
}

// deliveredBytes is how much the sinks acknowledged so far: it only grows,
// and costs no parsing.
func deliveredBytes(ds *deliveries) int64 {
	var n int64
	for _, s := range ds.sizes() {
		n += s
	}
	return n
}

// waitProgress waits, with one generous bound, until cond holds.
func waitProgress(t *testing.T, what string, alive func() error, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if err := alive(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
