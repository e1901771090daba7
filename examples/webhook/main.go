// Command webhook streams the changes of a Postgres table to an HTTP
// endpoint as signed webhooks, and runs that endpoint itself: a receiver on
// 127.0.0.1 that verifies each request's signature and that its timestamp is
// within five minutes of its clock, skips redeliveries by idempotency key and
// prints what it receives.
//
// Usage:
//
//	DATABASE_URL=postgres://…/app webhook
//
// The database needs wal_level=logical. The example creates the table
// public.webhook_example_orders, a publication and a replication slot (both
// named by SLOT, default walrelay_webhook_example), makes a few changes,
// exits once the receiver has them all, and drops the slot and publication.
// Without DATABASE_URL it starts a throwaway Postgres.
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
		fmt.Fprintln(os.Stderr, "webhook:", err)
		os.Exit(1)
	}
}
