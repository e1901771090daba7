package idempotency_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/walrelay/walrelay/idempotency"
	"github.com/walrelay/walrelay/message"
)

func decode(key string) string {
	b, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return "invalid: " + err.Error()
	}
	return string(b)
}

func ExampleChangeKey() {
	lsn, _ := message.ParseLSN("16/B374D848")
	key := idempotency.ChangeKey(lsn, 3)
	fmt.Println(key)
	fmt.Println(decode(key))
	// Output:
	// OTc1MDAwNTk3MjA6Mw==
	// 97500059720:3
}

func ExampleReadKey() {
	key := idempotency.ReadKey("backfill-7", int64(42), "eu")
	fmt.Println(key)
	fmt.Println(decode(key))
	// Output:
	// YmFja2ZpbGwtNzo0MjpldQ==
	// backfill-7:42:eu
}

func ExampleMemoryStore() {
	ctx := context.Background()
	store, err := idempotency.NewMemoryStore(100_000)
	if err != nil {
		log.Fatal(err)
	}
	key := idempotency.ChangeKey(0x16B374D848, 0)
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
