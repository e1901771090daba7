package throwaway_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/throwaway"
)

// start starts a server, or skips (loudly) without PostgreSQL binaries
// unless WALRELAY_REQUIRE_POSTGRES=1.
func start(t *testing.T) *throwaway.Postgres {
	t.Helper()
	p, err := throwaway.Start(t.Context())
	if errors.Is(err, throwaway.ErrNoPostgres) && os.Getenv("WALRELAY_REQUIRE_POSTGRES") != "1" {
		t.Skip("SKIPPED LOUDLY: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStartStop(t *testing.T) {
	ctx := t.Context()
	p := start(t)
	stopped := false
	defer func() {
		if !stopped {
			p.Stop()
		}
	}()
	if err := throwaway.Exec(ctx, p.URL, "create database demo"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, p.DatabaseURL("demo"))
	if err != nil {
		t.Fatal(err)
	}
	var db, walLevel string
	err = conn.QueryRow(ctx, "select current_database(), current_setting('wal_level')").Scan(&db, &walLevel)
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if db != "demo" || walLevel != "logical" {
		t.Fatalf("database %q, wal_level %q; want demo, logical", db, walLevel)
	}
	stopped = true
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := throwaway.Exec(ctx, p.URL, "select 1"); err == nil {
		t.Fatal("the server still answers after Stop")
	}
}

func TestDropStream(t *testing.T) {
	ctx := t.Context()
	p := start(t)
	defer p.Stop()
	if err := throwaway.Exec(ctx, p.URL, "create table t (id int primary key)", "create publication demo_pub for table t",
		"select pg_create_logical_replication_slot('demo_slot', 'pgoutput')"); err != nil {
		t.Fatal(err)
	}
	if err := throwaway.DropStream(ctx, p.URL, "demo_slot", "demo_pub"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, p.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var slots, pubs int
	if err := conn.QueryRow(ctx, "select (select count(*) from pg_replication_slots), (select count(*) from pg_publication)").Scan(&slots, &pubs); err != nil {
		t.Fatal(err)
	}
	if slots != 0 || pubs != 0 {
		t.Fatalf("%d slots and %d publications left", slots, pubs)
	}
	// Neither exists now: dropping again is not an error.
	if err := throwaway.DropStream(ctx, p.URL, "demo_slot", "demo_pub"); err != nil {
		t.Fatal(err)
	}
}
