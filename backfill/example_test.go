package backfill_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/walrelay/walrelay/backfill"
)

// Read a table in pages, saving the cursor after each page so that a
// restarted process resumes where the last one stopped.
func Example() {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return
	}
	defer conn.Close(ctx)

	var cursor backfill.Cursor
	if saved, err := os.ReadFile("orders.cursor"); err == nil {
		json.Unmarshal(saved, &cursor)
	}
	it, err := backfill.New(ctx, conn, backfill.Config{
		Table:     "public.orders",
		ID:        "orders-initial",
		ChunkSize: 500,
		Cursor:    cursor,
	})
	if err != nil {
		return
	}
	enc := json.NewEncoder(os.Stdout)
	for {
		page, err := it.NextChunk(ctx, conn)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return
		}
		for _, m := range page {
			enc.Encode(m)
		}
		saved, _ := json.Marshal(it.Cursor())
		os.WriteFile("orders.cursor", saved, 0o644)
	}
}
