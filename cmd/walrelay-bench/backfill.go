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
// same rows in the same order: medians over the rounds.
type Backfill struct {
	Rows           int
	IterRowsPerSec float64
	CopyRowsPerSec float64
	Ratio          float64
}

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
	var iter, cp []float64
	for range b.opts.Rounds {
		start := time.Now()
		it, err := backfill.New(ctx, b.conn, backfill.Config{Table: table, ID: "bench"})
		if err != nil {
			return res, err
		}
		n := 0
		for {
			ms, err := it.NextChunk(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return res, err
			}
			n += len(ms)
		}
		if n != res.Rows {
			return res, fmt.Errorf("iterator read %d of %d rows", n, res.Rows)
		}
		iter = append(iter, time.Since(start).Seconds())

		start = time.Now()
		tag, err := b.conn.PgConn().CopyTo(ctx, io.Discard,
			"copy (select id, account, amount, status, note, created_at from "+table+" order by id) to stdout")
		if err != nil {
			return res, err
		}
		if tag.RowsAffected() != int64(res.Rows) {
			return res, fmt.Errorf("copy read %d of %d rows", tag.RowsAffected(), res.Rows)
		}
		cp = append(cp, time.Since(start).Seconds())
	}
	res.IterRowsPerSec = float64(res.Rows) / median(iter)
	res.CopyRowsPerSec = float64(res.Rows) / median(cp)
	res.Ratio = res.IterRowsPerSec / res.CopyRowsPerSec
	return res, nil
}
