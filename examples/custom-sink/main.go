// Command custom-sink shows how to write a sink of your own: jsonLines
// appends each message, as one line of JSON, to a file and syncs it to disk
// before reporting the batch durable. It streams the changes of a Postgres
// table into such a file with cdc.Run and prints the file.
//
// Usage:
//
//	DATABASE_URL=postgres://…/app OUT=changes.jsonl custom-sink
//
// The database needs wal_level=logical. The example creates the table
// public.custom_sink_example, a publication and a replication slot (both
// named by SLOT, default walrelay_custom_sink_example), makes a few
// changes, exits once they are in the file, and drops the slot and
// publication. Without DATABASE_URL it starts a throwaway Postgres; without
// OUT it writes to a temporary file.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "custom-sink:", err)
		os.Exit(1)
	}
}
