// Package throwaway starts a throwaway PostgreSQL server with logical
// replication, for demos and tests only: the examples use it when
// DATABASE_URL is not set, so that they run on a machine with nothing but
// the PostgreSQL server binaries installed.
//
// The server listens on 127.0.0.1 on a free port, trusts every local
// connection, runs without fsync, and keeps its files in a temporary
// directory deleted by [Postgres.Stop]. It is killed when the process that
// started it dies. It is not a way to run Postgres for anything that
// matters.
//
// The binaries (initdb, postgres; PostgreSQL 14 or newer) are found in
// $PGBIN, on the PATH, or as the newest /usr/lib/postgresql/<version>/bin.
// As root the server runs as the user "postgres", which must exist.
package throwaway

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/internal/pgtest"
)

// ErrNoPostgres means no PostgreSQL server binaries were found.
var ErrNoPostgres = pgtest.ErrNoPostgres

// Postgres is a running throwaway server.
type Postgres struct {
	// URL connects to the database "postgres" as the superuser "postgres".
	URL string

	c *pgtest.Cluster
}

// Start initialises a server in a new temporary directory and starts it.
func Start(ctx context.Context) (*Postgres, error) {
	c, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		return nil, err
	}
	return &Postgres{URL: c.URL, c: c}, nil
}

// DatabaseURL returns URL with the database name replaced by name (which
// must exist: create it with "create database").
func (p *Postgres) DatabaseURL(name string) string {
	return pgtest.WithDatabase(p.URL, name)
}

// Stop shuts the server down at once and deletes its files.
func (p *Postgres) Stop() error { return p.c.Stop() }

// FromEnv returns DATABASE_URL when it is set; otherwise it starts a
// throwaway server, says so on w, and returns its URL. Call stop when done:
// it stops the throwaway server and does nothing for DATABASE_URL.
func FromEnv(ctx context.Context, w io.Writer) (url string, stop func(), err error) {
	if url := os.Getenv("DATABASE_URL"); url != "" {
		return url, func() {}, nil
	}
	fmt.Fprintln(w, "DATABASE_URL is not set: starting a throwaway Postgres…")
	p, err := Start(ctx)
	if err != nil {
		return "", nil, err
	}
	return p.URL, func() { p.Stop() }, nil
}

// Exec runs statements, in order, on a new connection to url: a
// convenience for demos.
func Exec(ctx context.Context, url string, sql ...string) error {
	return pgtest.ExecURL(ctx, url, sql...)
}

// DropStream drops a replication slot and a publication that a demo
// created, so that no slot keeps WAL in the database after the demo ends.
// It waits (until ctx is done) for a process that still streams from the
// slot to let go of it, as a closed stream's server process exits shortly
// after the stream closed. Neither needs to exist.
func DropStream(ctx context.Context, url, slot, publication string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "drop publication if exists "+pgx.Identifier{publication}.Sanitize()); err != nil {
		return fmt.Errorf("drop publication: %w", err)
	}
	for {
		if _, err := conn.Exec(ctx, "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1 and not active", slot); err != nil {
			return fmt.Errorf("drop slot %s: %w", slot, err)
		}
		var left bool
		if err := conn.QueryRow(ctx, "select exists (select 1 from pg_replication_slots where slot_name = $1)", slot).Scan(&left); err != nil {
			return fmt.Errorf("drop slot %s: %w", slot, err)
		}
		if !left {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drop slot %s: still in use: %w", slot, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
