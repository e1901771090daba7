package main

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/jackc/pgx/v5"
)

// workload makes random inserts, updates (including primary-key changes)
// and deletes of public.items in small transactions.
type workload struct {
	conn *pgx.Conn
	rng  *rand.Rand

	// Transactions and Changes count what committed; Moves counts the
	// changes that were primary-key changes.
	Transactions, Changes, Moves int64
}

// idSpace bounds the ids, so that rows are updated and deleted often.
const idSpace = 200

func newWorkload(ctx context.Context, url string, rng *rand.Rand) (*workload, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("workload: connect: %w", err)
	}
	return &workload{conn: conn, rng: rng}, nil
}

func (w *workload) Close() error { return w.conn.Close(context.Background()) }

// Step commits one transaction of one to four statements.
func (w *workload) Step(ctx context.Context) error {
	tx, err := w.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("workload: %w", err)
	}
	defer tx.Rollback(ctx)
	var changes, moves int64
	for range 1 + w.rng.IntN(4) {
		id, other := w.rng.Int64N(idSpace), w.rng.Int64N(idSpace)
		var q string
		var args []any
		op := w.rng.IntN(10)
		switch {
		case op < 4:
			q = `insert into public.items (id, name, qty, price, tags, attrs)
				values ($1, $2, $3, $4, $5, $6) on conflict (id) do nothing`
			args = []any{id, fmt.Sprintf("item %d 'é\"", id), w.rng.IntN(1000),
				fmt.Sprintf("%d.%02d", w.rng.IntN(10000), w.rng.IntN(100)),
				[]string{"a", fmt.Sprint(w.rng.IntN(5))}, fmt.Sprintf(`{"v": %d, "nested": {"x": [1, 2]}}`, w.rng.IntN(100))}
		case op < 7:
			q = "update public.items set qty = qty + $2, price = price * 1.01, attrs = jsonb_set(coalesce(attrs, '{}'), '{v}', to_jsonb($2::int)), updated_at = now() where id = $1"
			args = []any{id, w.rng.IntN(10)}
		case op < 8:
			// Move a row to a free id: a primary-key change.
			q = "update public.items set id = $2 where id = $1 and not exists (select 1 from public.items where id = $2)"
			args = []any{id, other}
		default:
			q = "delete from public.items where id = $1"
			args = []any{id}
		}
		tag, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("workload: %w", err)
		}
		changes += tag.RowsAffected()
		if op == 7 {
			moves += tag.RowsAffected()
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("workload: %w", err)
	}
	w.Transactions++
	w.Changes += changes
	w.Moves += moves
	return nil
}
