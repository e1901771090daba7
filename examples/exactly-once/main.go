// Command exactly-once replicates a Postgres table into a table of another
// database with exactly-once effects: each batch of changes is applied to
// the target, and its idempotency keys claimed, in one transaction of the
// target database, and acknowledged to the source only after that
// transaction committed. Kill it at any moment and start it again: the
// changes it had applied but not acknowledged come back, find their keys
// claimed and are skipped; the others are applied. The target stays equal
// to the source.
//
// Usage:
//
//	SOURCE_URL=postgres://…/app TARGET_URL=postgres://…/replica exactly-once
//
// replicates public.items (TABLE) of SOURCE_URL into the table of the same
// name in TARGET_URL, which must exist with the same columns and primary
// key. With only DATABASE_URL set, the target is the table of that name in
// the schema walrelay_replica of the same database (created if missing).
// With neither, it starts a throwaway Postgres, creates both databases,
// runs a demonstration workload, waits until the copy matches and exits.
//
// The source needs wal_level=logical, and the source table REPLICA
// IDENTITY FULL if its primary keys change: only then does an update that
// moves a row carry the old key (in Changes) for the old row to be
// removed. The slot (SLOT, default
// walrelay_exactly_once) and publication (PUBLICATION, default
// walrelay_exactly_once) are created on the first run; rows that were in
// the source before that are not copied. Claimed keys live in the target
// table walrelay_idempotency; keys older than a week are pruned at start.
// The slot stays when the process exits, since a restarted process resumes
// from it; it keeps WAL on the source until it is dropped. When you are
// done with the replica, drop both on the source:
//
//	select pg_drop_replication_slot('walrelay_exactly_once');
//	drop publication walrelay_exactly_once;
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "exactly-once:", err)
		os.Exit(1)
	}
}

// run reads its configuration from the environment and replicates until ctx
// is done, or runs the self-contained demonstration.
func run(ctx context.Context, out io.Writer) error {
	cfg := config{
		SourceURL:   os.Getenv("SOURCE_URL"),
		TargetURL:   os.Getenv("TARGET_URL"),
		Table:       envOr("TABLE", "public.items"),
		Slot:        envOr("SLOT", "walrelay_exactly_once"),
		Publication: envOr("PUBLICATION", "walrelay_exactly_once"),
	}
	if db := os.Getenv("DATABASE_URL"); db != "" && cfg.SourceURL == "" && cfg.TargetURL == "" {
		return replicateIntoSchema(ctx, db, cfg, out)
	}
	if cfg.SourceURL == "" && cfg.TargetURL == "" {
		return demo(ctx, cfg, out)
	}
	if cfg.SourceURL == "" || cfg.TargetURL == "" {
		return errors.New("set both SOURCE_URL and TARGET_URL, only DATABASE_URL, or none for the demonstration")
	}
	return replicate(ctx, cfg, out)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
