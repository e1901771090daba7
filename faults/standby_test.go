package faults

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/internal/pgtest"
)

// newStandbyPair is a primary and a hot standby (hot_standby_feedback on,
// which keeps the primary from removing rows a standby's slot still
// decodes) from the binaries of a major version, with a database "faults"
// on both. It skips the test, loudly, when those binaries are absent.
func newStandbyPair(t *testing.T, major int) (primary, standby *pgtest.Cluster, primaryURL, standbyURL string) {
	t.Helper()
	bin, err := pgtest.BinFor(major)
	if err != nil {
		t.Skipf("SKIP on PostgreSQL %d: %v", major, err)
	}
	primary = pgtest.NewCluster(t, pgtest.Options{Bin: bin})
	pgtest.Exec(t, primary.URL, "create database faults")
	standby = pgtest.NewStandby(t, primary, pgtest.StandbyOptions{Slot: "walrelay_f17_standby", Settings: []string{"hot_standby_feedback = on"}})
	return primary, standby, pgtest.WithDatabase(primary.URL, "faults"), pgtest.WithDatabase(standby.URL, "faults")
}

// openOnStandby creates the stream's slot on the standby with cdc.Open. A
// standby creates a logical slot once the primary logs its running
// transactions, which it does every 15s; the test logs them meanwhile.
func openOnStandby(t *testing.T, primaryURL string, cfg cdc.Config) (*cdc.Stream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			pgtest.ExecURL(ctx, primaryURL, "select pg_log_standby_snapshot()")
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); <-done }()
	return cdc.Open(ctx, cfg)
}

// Decoding on a standby needs PostgreSQL 16: before, Open on a standby is
// ErrServerVersion; from 16 it streams (F17 tests it under faults).
func TestStandbyDecodingByVersion(t *testing.T) {
	bin, err := pgtest.FindBin()
	if err != nil {
		t.Skipf("SKIP: %v", err)
	}
	major, err := pgtest.BinMajor(bin)
	if err != nil {
		t.Fatal(err)
	}
	_, _, primaryURL, standbyURL := newStandbyPair(t, major)
	slot, pub := pgtest.Name(t, "slot"), pgtest.Name(t, "pub")
	pgtest.Exec(t, primaryURL, "create table t (id int primary key)", "create publication "+pub+" for table t")
	waitReplayed(t, primaryURL, standbyURL)
	s, err := openOnStandby(t, primaryURL, cdc.Config{ConnString: standbyURL, Slot: slot, Publication: pub, CreateSlot: true})
	if major < 16 {
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, cdc.ErrServerVersion) {
			t.Fatalf("PostgreSQL %d: Open on a standby: got %v, want ErrServerVersion", major, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("PostgreSQL %d: Open on a standby: %v", major, err)
	}
	defer s.Close()
	pgtest.Exec(t, primaryURL, "insert into t values (1)")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := s.Next(ctx)
	if err != nil || m.Record["id"] != int64(1) {
		t.Fatalf("PostgreSQL %d: Next on the standby: %v %v", major, m.Record, err)
	}
}

// waitReplayed waits until the standby has replayed the primary's WAL up
// to now.
func waitReplayed(t *testing.T, primaryURL, standbyURL string) {
	t.Helper()
	ctx := context.Background()
	p, err := connect(ctx, primaryURL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	var target string
	if err := p.QueryRow(ctx, "select pg_current_wal_lsn()::text").Scan(&target); err != nil {
		t.Fatal(err)
	}
	s, err := connect(ctx, standbyURL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	waitProgress(t, "the standby replaying "+target, func() error { return nil }, func() (bool, error) {
		var ok bool
		err := s.QueryRow(ctx, "select pg_last_wal_replay_lsn() >= $1::pg_lsn", target).Scan(&ok)
		return ok, err
	})
}

// F17: streaming from a standby (its own slot, PostgreSQL 16+) under a
// workload on the primary, with the standby and the primary restarted.
func TestF17StandbyDecoding(t *testing.T) {
	for _, major := range []int{16, 17, 18} {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			sd := seed(t)
			primary, standby, primaryURL, standbyURL := newStandbyPair(t, major)
			e := &env{t: t, url: primaryURL, dir: t.TempDir(), tables: map[string]bool{"items": true},
				slot: pgtest.Name(t, "slot"), pub: pgtest.Name(t, "pub")}
			sql := append(append([]string{}, auditSQL...), tableSQL("items", true)...)
			sql = append(sql, "create publication "+e.pub+" for table items")
			pgtest.Exec(t, primaryURL, sql...)
			waitReplayed(t, primaryURL, standbyURL)
			s, err := openOnStandby(t, primaryURL, cdc.Config{ConnString: standbyURL, Slot: e.slot, Publication: e.pub, CreateSlot: true})
			if err != nil {
				t.Fatalf("PostgreSQL %d: create the slot on the standby: %v", major, err)
			}
			s.Close()

			// The consumer and the slot monitor use the standby; the
			// workload and the audit, the primary.
			onStandby := *e
			onStandby.url = standbyURL
			ds := &deliveries{}
			mon := startMonitor(t, &onStandby, ds)
			c := startConsumer(t, &onStandby, ds)
			c.streaming(t)
			w := newWorkload(e)
			wr := w.background(sd, 2, 0)
			ctx := context.Background()
			restarts := pick(2, 6)
			for i := range restarts {
				for _, step := range []struct {
					cl   *pgtest.Cluster
					mode pgtest.ShutdownMode
				}{{standby, pgtest.Fast}, {standby, pgtest.Immediate}, {primary, pgtest.Fast}} {
					n, err := ds.distinct()
					if err != nil {
						t.Fatal(err)
					}
					waitProgress(t, fmt.Sprintf("deliveries before restart %d", i+1), c.alive, func() (bool, error) {
						m, err := ds.distinct()
						return m >= n+200, err
					})
					// A restarted standby restores the slot position of its
					// last restartpoint, which may be older.
					mon.allowRegression()
					if err := step.cl.Restart(ctx, step.mode); err != nil {
						t.Fatal(err)
					}
					mon.allowRegression()
				}
			}
			if err := wr.stop(); err != nil {
				t.Fatal(err)
			}
			waitDelivered(t, e, ds, 2*time.Minute, c.alive)
			c.term(t)
			compare(t, e, ds, mon, result{Fault: "F17", Name: fmt.Sprintf("decoding on a standby, PG %d", major), Runs: 3 * restarts,
				Note: fmt.Sprintf("PostgreSQL %d; %d restarts each of the standby (fast, immediate) and the primary (fast); workload transactions cut: %d",
					major, restarts, w.failures.Load())},
				compareOpts{commitOrder: true})
		})
	}
}
