// Command kafka streams the changes of a Postgres table into Kafka with
// cdc.Run and the sink/kafka sink, then reads the topic back the way a
// consumer would and prints each record's key, headers and value.
//
// Usage:
//
//	DATABASE_URL=postgres://…/app KAFKA_BROKERS=broker-1:9092,broker-2:9092 kafka
//
// The database needs wal_level=logical. The example creates the table
// public.walrelay_example_users, a publication and a slot (both
// walrelay_example_kafka, dropped at the end so that no slot keeps WAL),
// writes a few changes and prints what reaches the
// topic sequin.public.walrelay_example_users (created when the broker
// allows auto-creation; create it yourself otherwise). Without
// DATABASE_URL it starts a throwaway Postgres; without KAFKA_BROKERS it
// starts an in-process Kafka (github.com/twmb/franz-go/pkg/kfake, which the
// module otherwise uses only in tests).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "kafka:", err)
		os.Exit(1)
	}
}

// run streams the demonstration changes into Kafka and prints what a
// consumer reads back.
func run(ctx context.Context, out io.Writer) error {
	var brokers []string
	if b := os.Getenv("KAFKA_BROKERS"); b != "" {
		brokers = strings.Split(b, ",")
	}
	return demo(ctx, os.Getenv("DATABASE_URL"), brokers, out)
}
