package cdc_test

import (
	"context"
	"log"
	"os"

	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink/webhook"
)

// Stream a database's changes, and a backfill of one table, to a webhook.
// (Needs a database, so it has no output to check.)
func ExampleRun() {
	ctx := context.Background()
	stream, err := cdc.Open(ctx, cdc.Config{
		ConnString:  os.Getenv("DATABASE_URL"),
		Slot:        "orders_cdc",
		Publication: "orders_pub",
		CreateSlot:  true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()

	hook, err := webhook.New(webhook.Config{URL: "https://example.com/cdc", Secret: os.Getenv("WEBHOOK_SECRET")})
	if err != nil {
		log.Fatal(err)
	}
	defer hook.Close(ctx)

	errc := make(chan error, 1)
	go func() { errc <- stream.Backfill(ctx, backfill.Config{Table: "public.orders", ID: "orders-v1"}) }()
	if err := cdc.Run(ctx, stream, hook, cdc.RunOptions{}); err != nil {
		log.Fatal(err)
	}
}

// Read changes one by one and acknowledge each once it is durable.
func ExampleStream_Next() {
	ctx := context.Background()
	stream, err := cdc.Open(ctx, cdc.Config{ConnString: os.Getenv("DATABASE_URL"), Slot: "s", Publication: "p"})
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	// message.Encoder writes each message as one JSON line into a reused
	// buffer; json.Marshal(m) gives the same JSON at several times the CPU.
	enc := message.NewEncoder(os.Stdout)
	for {
		m, err := stream.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if err := enc.Encode(m); err != nil {
			log.Fatal(err)
		}
		stream.Ack(m)
	}
}
