package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/walrelay/walrelay/backfill"
)

// Backfill compares backfill.Iterator with COPY (select …) TO STDOUT of the
// same rows in the same order: medians over the rounds. The iterator is
// timed twice per round: with the process's collector settings, and with
// GOGC at 400 (set for that read only), because the collector's work for
// each read message's record map and Message is most of what separates the
// iterator from COPY.
type Backfill struct {
	Rows              int
	IterRowsPerSec    float64
	CopyRowsPerSec    float64
	Ratio             float64
	IterGOGC400PerSec float64
	RatioGOGC400      float64
	GCs, GCsGOGC400   int // collections during one read (median)
}

// backfillGOGC is the collector setting of the second iterator timing.
const backfillGOGC = 400

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
	var iter, iter400, cp, gcs, gcs400 []float64
	for range b.opts.Rounds {
		d, n, err := b.readTable(ctx, table, -1)
		if err != nil {
			return res, err
		}
		iter, gcs = append(iter, d), append(gcs, float64(n))
		if d, n, err = b.readTable(ctx, table, backfillGOGC); err != nil {
			return res, err
		}
		iter400, gcs400 = append(iter400, d), append(gcs400, float64(n))

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
	}
	res.IterRowsPerSec = float64(res.Rows) / median(iter)
	res.IterGOGC400PerSec = float64(res.Rows) / median(iter400)
	res.CopyRowsPerSec = float64(res.Rows) / median(cp)
	res.Ratio = res.IterRowsPerSec / res.CopyRowsPerSec
	res.RatioGOGC400 = res.IterGOGC400PerSec / res.CopyRowsPerSec
	res.GCs, res.GCsGOGC400 = int(median(gcs)), int(median(gcs400))
	return res, nil
}

// readTable reads the whole table with a backfill.Iterator and returns the
// seconds it took and the collections that ran meanwhile. gogc >= 0 sets
// GOGC for the read (and restores it after); -1 leaves it as it is.
func (b *bench) readTable(ctx context.Context, table string, gogc int) (float64, uint32, error) {
	if gogc >= 0 {
		defer debug.SetGCPercent(debug.SetGCPercent(gogc))
	}
	var stats debug.GCStats
	debug.ReadGCStats(&stats)
	gc0 := stats.NumGC
	start := time.Now()
	it, err := backfill.New(ctx, b.conn, backfill.Config{Table: table, ID: "bench"})
	if err != nil {
		return 0, 0, err
	}
	n := 0
	for {
		ms, err := it.NextChunk(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		n += len(ms)
	}
	if n != b.sz.BackfillRows {
		return 0, 0, fmt.Errorf("iterator read %d of %d rows", n, b.sz.BackfillRows)
	}
	d := time.Since(start).Seconds()
	debug.ReadGCStats(&stats)
	return d, uint32(stats.NumGC - gc0), nil
}
