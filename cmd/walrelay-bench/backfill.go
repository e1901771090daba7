package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/walrelay/walrelay/backfill"
)

// Backfill compares backfill.Iterator with COPY (select …) TO STDOUT of the
// same rows in the same order: medians over the rounds. The Iterator runs on
// the *pgx.Conn (it reads pages with COPY) and, for QueryRowsPerSec, on a
// Querier that hides the connection's COPY (it reads pages with queries).
type Backfill struct {
	Rows            int
	IterRowsPerSec  float64
	QueryRowsPerSec float64
	CopyRowsPerSec  float64
	Ratio           float64
}

// queryOnly hides a connection's COPY from the Iterator.
type queryOnly struct{ backfill.Querier }

func (b *bench) backfill(ctx context.Context) (Backfill, error) {
	res := Backfill{Rows: b.sz.BackfillRows}
	b.opts.logf("backfill: %d rows", res.Rows)
	table := b.name("bf")
	if err := b.exec(ctx, tableDDL(table),
		rowsSQL(table, 100, "1", fmt.Sprint(res.Rows)),
		"vacuum analyze "+table,
	); err != nil {
		return res, err
	}
	defer b.exec(ctx, "drop table "+table)
	readAll := func(q backfill.Querier) (float64, error) {
		start := time.Now()
		it, err := backfill.New(ctx, q, backfill.Config{Table: table, ID: "bench"})
		if err != nil {
			return 0, err
		}
		n := 0
		for {
			ms, err := it.NextChunk(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return 0, err
			}
			n += len(ms)
		}
		if n != res.Rows {
			return 0, fmt.Errorf("iterator read %d of %d rows", n, res.Rows)
		}
		return time.Since(start).Seconds(), nil
	}
	var iter, query, cp []float64
	for range b.opts.Rounds {
		sec, err := readAll(b.conn)
		if err != nil {
			return res, err
		}
		iter = append(iter, sec)
		if sec, err = readAll(queryOnly{b.conn}); err != nil {
			return res, err
		}
		query = append(query, sec)

		start := time.Now()
		tag, err := b.conn.PgConn().CopyTo(ctx, io.Discard,
			"copy (select id, account, amount, status, note, created_at from "+table+" order by id) to stdout")
		if err != nil {
			return res, err
		}
		if tag.RowsAffected() != int64(res.Rows) {
			return res, fmt.Errorf("copy read %d of %d rows", tag.RowsAffected(), res.Rows)
		}
		cp = append(cp, time.Since(start).Seconds())
		b.opts.logf("backfill: iterator (COPY) %.3fs, iterator (queries) %.3fs, COPY %.3fs", iter[len(iter)-1], query[len(query)-1], cp[len(cp)-1])
	}
	res.IterRowsPerSec = float64(res.Rows) / median(iter)
	res.QueryRowsPerSec = float64(res.Rows) / median(query)
	res.CopyRowsPerSec = float64(res.Rows) / median(cp)
	res.Ratio = res.IterRowsPerSec / res.CopyRowsPerSec
	return res, nil
}
