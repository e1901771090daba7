package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestNewDatabaseLogical(t *testing.T) {
	url := NewDatabase(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var level, db string
	if err := conn.QueryRow(ctx, "select current_setting('wal_level'), current_database()").Scan(&level, &db); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		t.Fatalf("wal_level = %q, want logical", level)
	}
	if db == "postgres" {
		t.Fatalf("NewDatabase returned the shared database")
	}
}

func TestRestart(t *testing.T) {
	c := Shared()
	if c == nil {
		t.Skip("external server: cannot restart it")
	}
	ctx := t.Context()
	for _, mode := range []ShutdownMode{Fast, Immediate} {
		if err := c.Restart(ctx, mode); err != nil {
			t.Fatalf("restart %v: %v\n%s", mode, err, c.Log())
		}
		conn, err := pgx.Connect(ctx, c.URL)
		if err != nil {
			t.Fatalf("connect after restart %v: %v", mode, err)
		}
		conn.Close(ctx)
	}
}
