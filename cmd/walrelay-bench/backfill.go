package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/walrelay/walrelay/backfill"
)

// Backfill compares backfill.Iterator with COPY (select …) TO STDOUT of the
// same rows in the same order: medians over the rounds. The iterator is
// timed once per round with each of gcSettings — the process's own, then
// settings a process whose main work is a backfill may choose — because the
// runtime's work for each read message's record map and Message (the
// collector's marking, and the page faults of a heap that grows again after
// each page) is most of what separates the iterator from COPY.
type Backfill struct {
	Rows           int
	CopyRowsPerSec float64
	Reads          []BackfillRead // one per gcSettings entry, in order
}

// BackfillRead is the iterator's figure with one collector setting.
type BackfillRead struct {
	Setting    string
	RowsPerSec float64
	Ratio      float64 // RowsPerSec / CopyRowsPerSec
	GCs        int     // collections during one read (median)
}

// gcSetting is a collector setting applied for one read and restored after.
// GOGC < 0 turns the collector off; limitMB > 0 sets a memory limit of that
// much above what the process holds when the read starts. Every read starts
// after a collection, from the same heap whatever the last one left.
type gcSetting struct {
	name    string
	gogc    int
	limitMB int64
	keep    bool // the process's settings, untouched
}

var gcSettings = []gcSetting{
	{name: "default", keep: true},
	{name: "GOGC=400", gogc: 400},
	{name: "GOGC=off, GOMEMLIMIT=+256 MiB", gogc: -1, limitMB: 256},
}

// apply sets g and returns the function that restores the previous settings.
func (g gcSetting) apply() (restore func()) {
	runtime.GC()
	if g.keep {
		return func() {}
	}
	limit := int64(math.MaxInt64)
	if g.limitMB > 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		limit = int64(ms.Sys-ms.HeapReleased) + g.limitMB<<20
	}
	oldLimit := debug.SetMemoryLimit(limit)
	oldGOGC := debug.SetGCPercent(g.gogc)
	return func() {
		debug.SetGCPercent(oldGOGC)
		debug.SetMemoryLimit(oldLimit)
	}
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
	secs := make([][]float64, len(gcSettings))
	gcs := make([][]float64, len(gcSettings))
	var cp []float64
	for range b.opts.Rounds {
		for i, g := range gcSettings {
			d, n, err := b.readTable(ctx, table, g)
			if err != nil {
				return res, err
			}
			secs[i], gcs[i] = append(secs[i], d), append(gcs[i], float64(n))
		}
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
	res.CopyRowsPerSec = float64(res.Rows) / median(cp)
	for i, g := range gcSettings {
		rate := float64(res.Rows) / median(secs[i])
		res.Reads = append(res.Reads, BackfillRead{Setting: g.name, RowsPerSec: rate,
			Ratio: rate / res.CopyRowsPerSec, GCs: int(median(gcs[i]))})
	}
	return res, nil
}

// readTable reads the whole table with a backfill.Iterator under g and
// returns the seconds it took and the collections that ran meanwhile.
func (b *bench) readTable(ctx context.Context, table string, g gcSetting) (float64, uint32, error) {
	defer g.apply()()
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
		ms, err := it.NextChunk(ctx, b.conn)
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
