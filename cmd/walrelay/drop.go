package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/walrelay/walrelay/cdc"
)

const dropSummary = `removes what walrelay created in the database: the slot (which frees the
WAL it retains; the changes it has not delivered are lost, and a new slot
starts at the present, so tables must be backfilled again), the publication
and the backfill progress table (shared by every stream that uses it: keep
it with -keep-progress while other streams backfill), and the idempotency
tables -idempotency-table names. It lists what it will drop and asks you to
type yes; -yes drops without asking (for scripts). Without a terminal to ask
on and without -yes it refuses. A slot a stream is using is not dropped:
stop the stream first.

Exit status: 0 dropped (or nothing to drop), 1 failure (the slot is in use,
no connection, the answer was not yes), 2 usage error (no database given, a
bad flag, no terminal to confirm on and no -yes).`

const dropExample = `  DATABASE_URL=postgres://app@db/app walrelay drop -slot orders_cdc -publication orders_pub
  walrelay drop -slot orders_cdc -keep-publication -keep-progress -yes
`

func dropCmd(ctx context.Context, e *env, args []string) int {
	fs := newDBFlags(e, "drop", dropSummary, dropExample)
	slot, pub := fs.slotFlags(" to drop")
	progress := fs.String("progress-table", "", "backfill progress table (default public.walrelay_backfills)")
	var idem listFlag
	fs.Var(&idem, "idempotency-table", "idempotency store tables to drop too, `schema.table,...` (repeatable)")
	keepSlot := fs.Bool("keep-slot", false, "keep the slot")
	keepPub := fs.Bool("keep-publication", false, "keep the publication (another slot may use it)")
	keepProgress := fs.Bool("keep-progress", false, "keep the backfill progress table")
	yes := fs.Bool("yes", false, "drop without asking")
	url, code := fs.parse(args)
	if code >= 0 {
		return code
	}
	cfg := cdc.Config{ConnString: url, Slot: *slot, Publication: *pub, BackfillTable: *progress}
	opts := cdc.DropOptions{KeepSlot: *keepSlot, KeepPublication: *keepPub, KeepBackfillTable: *keepProgress, IdempotencyTables: idem}

	dry := opts
	dry.DryRun = true
	will, err := cdc.Drop(ctx, cfg, dry)
	if err != nil {
		return failErr(e, "drop", err)
	}
	if len(will) == 0 {
		fmt.Fprintln(e.stdout, "nothing to drop: none of them exists")
		return exitOK
	}
	fmt.Fprintln(e.stdout, "walrelay drop will drop:")
	for _, w := range will {
		fmt.Fprintf(e.stdout, "  %s\n", w)
	}
	if !*yes {
		if !e.terminal {
			return fail(e, "drop", exitUsage, errors.New("not dropped: stdin is not a terminal to confirm on; run with -yes to drop without asking"))
		}
		fmt.Fprint(e.stdout, "Type yes to drop them: ")
		// The read does not end with ctx: a goroutine reads, so that
		// Ctrl-C at the prompt stops the command.
		answer := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(e.stdin).ReadString('\n')
			answer <- line
		}()
		select {
		case <-ctx.Done():
			fmt.Fprintln(e.stdout)
			return fail(e, "drop", exitFailure, errors.New("interrupted: nothing dropped"))
		case a := <-answer:
			if strings.TrimSpace(a) != "yes" {
				return fail(e, "drop", exitFailure, errors.New("not confirmed: nothing dropped"))
			}
		}
	}
	dropped, err := cdc.Drop(ctx, cfg, opts)
	for _, d := range dropped {
		fmt.Fprintf(e.stdout, "dropped %s\n", d)
	}
	if err != nil {
		return failErr(e, "drop", err)
	}
	return exitOK
}
