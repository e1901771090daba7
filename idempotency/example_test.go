package idempotency_test

import (
	"context"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/walrelay/walrelay/idempotency"
	"github.com/walrelay/walrelay/message"
)

func ExampleMemoryStore() {
	ctx := context.Background()
	store, err := idempotency.NewMemoryStore(100_000)
	if err != nil {
		log.Fatal(err)
	}
	key := message.ChangeKey(0x16B374D848, 0)
	for range 2 {
		first, err := store.Claim(ctx, key)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("first:", first)
	}
	// Output:
	// first: true
	// first: false
}

// Apply a change and claim its key in one transaction of the target
// database, so that the change takes effect exactly once.
func ExamplePostgresStore_ClaimTx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@localhost/target")
	if err != nil {
		log.Fatal(err)
	}
	store, err := idempotency.NewPostgresStore(ctx, pool, idempotency.PostgresConfig{})
	if err != nil {
		log.Fatal(err)
	}
	var m message.Message // from cdc.Stream.Next

	tx, err := pool.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx) // does nothing after Commit
	first, err := store.ClaimTx(ctx, tx, m.Metadata.IdempotencyKey)
	if err != nil {
		log.Fatal(err)
	}
	if first {
		_, err = tx.Exec(ctx, "insert into orders_copy (id, total) values ($1, $2) on conflict (id) do update set total = excluded.total",
			m.Record["id"], m.Record["total"])
		if err != nil {
			log.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	// Now acknowledge m to the stream.
}
