package cdc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/message"
)

// Behaviour that differs by server version is asserted for each version,
// never skipped: the matrix (.ci/matrix) runs these on 14 to 18.

// Generated columns: before 18 pgoutput never sends them; from 18 a
// publication with publish_generated_columns = stored sends stored ones
// (virtual ones, new in 18, are never sent).
func TestGeneratedColumnsByVersion(t *testing.T) {
	url := pgtest.NewDatabase(t)
	major := pgtest.Major(t, url)
	pgtest.Exec(t, url, "create table g (id int primary key, a int, twice int generated always as (a * 2) stored)")
	if major >= 18 {
		pgtest.Exec(t, url, "alter table g add column thrice int generated always as (a * 3) virtual")
	}
	e := newEnvAt(t, url)

	// The default publication: no generated column on any version.
	s := e.open(e.config())
	e.exec("insert into g (id, a) values (1, 5)")
	m := next(t, s, 1)[0]
	if _, ok := m.Record["twice"]; ok || m.Record["a"] != int64(5) {
		t.Fatalf("PostgreSQL %d, default publication: record %v, want a=5 and no generated column", major, m.Record)
	}
	s.Close()

	const opt = "create publication pubgen for table g with (publish_generated_columns = stored)"
	if major < 18 {
		_, err := e.conn.Exec(context.Background(), opt)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42601" && pe.Code != "22023" {
			t.Fatalf("PostgreSQL %d: %s: got %v, want an unrecognized parameter error", major, opt, err)
		}
		return
	}
	e.exec(opt)
	cfg := e.config()
	cfg.Slot, cfg.Publication = pgtest.Name(t, "slot"), "pubgen"
	s = e.open(cfg)
	e.exec("insert into g (id, a) values (2, 7)", "update g set a = 8 where id = 2")
	msgs := next(t, s, 2)
	if got := msgs[0].Record["twice"]; got != int64(14) {
		t.Fatalf("PostgreSQL %d, publish_generated_columns = stored: insert record %v, want twice=14", major, msgs[0].Record)
	}
	if got := msgs[1].Record["twice"]; got != int64(16) {
		t.Fatalf("PostgreSQL %d: update record %v, want twice=16", major, msgs[1].Record)
	}
	if _, ok := msgs[0].Record["thrice"]; ok {
		t.Fatalf("PostgreSQL %d: a virtual generated column was published: %v", major, msgs[0].Record)
	}
}

// Config.Failover creates a failover slot on 17+, gives an existing slot
// failover, and is a typed error before 17.
func TestFailoverSlotByVersion(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	major := pgtest.Major(t, e.url)
	cfg := e.config()
	cfg.Failover = true
	if major < 17 {
		err := openErr(t, cfg)
		if !errors.Is(err, ErrServerVersion) || !strings.Contains(err.Error(), "17") {
			t.Fatalf("PostgreSQL %d: got %v, want ErrServerVersion", major, err)
		}
		var n int
		e.conn.QueryRow(context.Background(), "select count(*) from pg_replication_slots where slot_name = $1", e.slot).Scan(&n)
		if n != 0 {
			t.Fatalf("PostgreSQL %d: a slot was created although Failover is unsupported", major)
		}
		return
	}
	failover := func(slot string) bool {
		t.Helper()
		var f bool
		if err := e.conn.QueryRow(context.Background(), "select failover from pg_replication_slots where slot_name = $1", slot).Scan(&f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	s := e.open(cfg)
	if !failover(e.slot) {
		t.Fatalf("PostgreSQL %d: slot created with Config.Failover has failover = false", major)
	}
	e.exec("insert into t values (1)")
	next(t, s, 1)
	s.Close()

	// An existing slot without failover gets it.
	plain := pgtest.Name(t, "slot")
	e.exec("select pg_create_logical_replication_slot('" + plain + "', 'pgoutput')")
	cfg.Slot = plain
	s = e.open(cfg)
	e.exec("insert into t values (2)")
	if m := next(t, s, 1)[0]; m.Record["id"] != int64(2) {
		t.Fatalf("got %v", m.Record)
	}
	if !failover(plain) {
		t.Fatalf("PostgreSQL %d: existing slot still has failover = false after Open with Config.Failover", major)
	}
}

// The slot's confirmed position across a fast restart: from 17 the shutdown
// checkpoint saves it, so nothing acknowledged comes again; before 17 it is
// saved only with other slot state, so the server may come back at an older
// position (never a newer one) and deliver acknowledged changes again.
func TestSlotPositionAfterFastRestartByVersion(t *testing.T) {
	c := pgtest.NewCluster(t, pgtest.Options{})
	major := pgtest.Major(t, c.URL)
	pgtest.Exec(t, c.URL, "create table t (id int primary key)", "create publication pub for all tables")
	slot := pgtest.Name(t, "slot")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s, err := Open(ctx, Config{ConnString: c.URL, Slot: slot, Publication: "pub", CreateSlot: true, HeartbeatInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, c.URL, "insert into t values (1)")
	m := next(t, s, 1)[0]
	s.Ack(m)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	flush := func() message.LSN {
		t.Helper()
		var l string
		conn, err := pgx.Connect(ctx, c.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if err := conn.QueryRow(ctx, "select confirmed_flush_lsn::text from pg_replication_slots where slot_name = $1", slot).Scan(&l); err != nil {
			t.Fatal(err)
		}
		lsn, err := message.ParseLSN(l)
		if err != nil {
			t.Fatal(err)
		}
		return lsn
	}
	before := flush()
	if before < m.Metadata.CommitLSN {
		t.Fatalf("after Ack and Close the slot is at %v, before the acknowledged commit %v", before, m.Metadata.CommitLSN)
	}
	if err := c.Restart(ctx, pgtest.Fast); err != nil {
		t.Fatal(err)
	}
	after := flush()
	switch {
	case major >= 17 && after != before:
		t.Fatalf("PostgreSQL %d: slot at %v after a fast restart, %v before; want it saved at shutdown", major, after, before)
	case after > before:
		t.Fatalf("PostgreSQL %d: slot moved ahead across a restart: %v -> %v", major, before, after)
	}
	t.Logf("PostgreSQL %d: confirmed_flush_lsn %v before a fast restart, %v after", major, before, after)
}
