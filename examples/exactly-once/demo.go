package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/throwaway"
)

// replicaSchema holds the target table when source and target share a
// database.
const replicaSchema = "walrelay_replica"

// replicateIntoSchema replicates cfg.Table of db into the same-named table
// of the schema walrelay_replica in db, creating both if missing.
func replicateIntoSchema(ctx context.Context, db string, cfg config, out io.Writer) error {
	src, err := tableIdent(cfg.Table)
	if err != nil {
		return err
	}
	name := src[len(src)-1]
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	schema := pgx.Identifier{replicaSchema}.Sanitize()
	target := pgx.Identifier{replicaSchema, name}.Sanitize()
	for _, q := range []string{
		"create schema if not exists " + schema,
		"create table if not exists " + target + " (like " + src.Sanitize() + " including defaults including constraints including indexes)",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("create target: %w", err)
		}
	}
	cfg.SourceURL, cfg.TargetURL = db, db
	cfg.TargetTable = replicaSchema + "." + name
	return replicate(ctx, cfg, out)
}

// itemsTable is the table of the demonstration and the tests.
const itemsTable = `create table public.items (
	id bigint primary key,
	name text not null,
	qty int not null,
	price numeric(12,2),
	tags text[],
	attrs jsonb,
	updated_at timestamptz not null default now()
)`

// demo starts a throwaway Postgres with a source and a target database,
// replicates while a workload runs, and reports when the copy matches.
func demo(ctx context.Context, cfg config, out io.Writer) error {
	cluster, err := throwaway.Start(ctx)
	if err != nil {
		return err
	}
	defer cluster.Stop()
	cfg.SourceURL = cluster.DatabaseURL("source")
	cfg.TargetURL = cluster.DatabaseURL("target")
	if err := setup(ctx, cluster.URL, cfg.SourceURL, cfg.TargetURL); err != nil {
		return err
	}
	// Create the slot before the workload, so that every change streams.
	fmt.Fprintln(out, "replicating public.items from database source into database target")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- replicate(ctx, cfg, io.Discard) }()
	if err := waitForSlot(ctx, cfg.SourceURL, cfg.Slot, done); err != nil {
		return err
	}
	w, err := newWorkload(ctx, cfg.SourceURL, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		return err
	}
	defer w.Close()
	for range 500 {
		if err := w.Step(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "workload: %d transactions, %d row changes\n", w.Transactions, w.Changes)
	rows, err := waitEqual(ctx, cfg.SourceURL, cfg.TargetURL, "public.items", waitLimit, done)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "target equals source: %d rows\n", rows)
	return nil
}

// sourceIdentity gives the source table REPLICA IDENTITY FULL, so that an
// update that changes a row's primary key carries the old key in Changes
// (without it Changes is {}, as in Sequin, and the old row would stay).
const sourceIdentity = "alter table public.items replica identity full"

// setup creates the source and target databases and their items tables.
func setup(ctx context.Context, adminURL, sourceURL, targetURL string) error {
	for _, db := range []string{"source", "target"} {
		if err := throwaway.Exec(ctx, adminURL, "create database "+db); err != nil {
			return err
		}
	}
	if err := throwaway.Exec(ctx, sourceURL, itemsTable, sourceIdentity); err != nil {
		return err
	}
	return throwaway.Exec(ctx, targetURL, itemsTable)
}

// waitLimit bounds each wait of the demonstration (its tests scale it on a
// slow machine).
var waitLimit = time.Minute

// waitForSlot waits until the replication slot exists, or the replicator
// failed.
func waitForSlot(ctx context.Context, url, slot string, failed <-chan error) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	return poll(ctx, waitLimit, failed, func() (bool, error) {
		var ok bool
		err := conn.QueryRow(ctx, "select exists (select 1 from pg_replication_slots where slot_name = $1)", slot).Scan(&ok)
		return ok, err
	})
}

// waitEqual waits until table holds the same rows in both databases and
// returns how many.
func waitEqual(ctx context.Context, sourceURL, targetURL, table string, limit time.Duration, failed <-chan error) (int, error) {
	var n int
	var last string
	err := poll(ctx, limit, failed, func() (bool, error) {
		src, err := tableRows(ctx, sourceURL, table)
		if err != nil {
			return false, err
		}
		dst, err := tableRows(ctx, targetURL, table)
		if err != nil {
			return false, err
		}
		n = len(src)
		last = diff(src, dst)
		return last == "", nil
	})
	if err != nil && last != "" {
		err = fmt.Errorf("%w; last difference: %s", err, last)
	}
	return n, err
}

// poll calls cond every 20ms until it is true, fails, failed reports, or
// limit passes.
func poll(ctx context.Context, limit time.Duration, failed <-chan error, cond func() (bool, error)) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-failed:
			return fmt.Errorf("replicator stopped: %w", err)
		case <-deadline.C:
			return errors.New("timed out")
		case <-tick.C:
		}
	}
}

// tableRows returns table's rows as JSON text, sorted.
func tableRows(ctx context.Context, url, table string) ([]string, error) {
	ident, err := tableIdent(table)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "select row_to_json(t)::text from "+ident.Sanitize()+" t")
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	slices.Sort(out)
	return out, err
}

// diff describes the first difference between two sorted row lists, or
// returns "" when they are equal.
func diff(src, dst []string) string {
	for i := 0; i < len(src) || i < len(dst); i++ {
		switch {
		case i >= len(src):
			return fmt.Sprintf("target has %d extra rows, first %s", len(dst)-i, dst[i])
		case i >= len(dst):
			return fmt.Sprintf("target lacks %d rows, first %s", len(src)-i, src[i])
		case src[i] != dst[i]:
			return fmt.Sprintf("source %s, target %s", src[i], dst[i])
		}
	}
	return ""
}
