// Command backfill delivers the rows already in a table as read messages,
// through the same stream as the live changes a concurrent writer makes,
// and prints its progress. At the end it checks that replaying what it
// received reproduces the table.
//
//	go run ./examples/backfill
//
// Without DATABASE_URL it starts a throwaway Postgres. With DATABASE_URL it
// uses that database (wal_level=logical), creating and finally dropping the
// table walrelay_backfill_demo, a slot and publication of that name, and the
// table walrelay_backfill_demo_progress where the backfill saves its
// progress (its own, so that backfills of your own, in
// public.walrelay_backfills by default, are left alone).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/throwaway"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "backfill:", err)
		os.Exit(1)
	}
}

const (
	name     = "walrelay_backfill_demo"
	progress = name + "_progress" // the backfill's progress table
	rows     = 20000
)

// Bounds on the demonstration (its tests scale them on a slow machine).
var (
	runTimeout  = 5 * time.Minute
	catchUpWait = 30 * time.Second
)

func run(ctx context.Context, out io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	url, stopPostgres, err := throwaway.FromEnv(ctx, os.Stderr)
	if err != nil {
		return err
	}
	defer stopPostgres()
	db, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec(ctx, `create table `+name+` (id bigint primary key, balance bigint not null);
		insert into `+name+` select g, 100 from generate_series(1, `+fmt.Sprint(rows)+`) g`); err != nil {
		return err
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		// The stream is closed by now (deferred later, run earlier).
		derr := throwaway.DropStream(cctx, url, name, name)
		_, terr := db.Exec(cctx, `drop table if exists `+name+`; drop table if exists `+progress)
		err = errors.Join(err, derr, terr)
	}()

	s, err := cdc.Open(ctx, cdc.Config{
		ConnString: url, Slot: name, Publication: name,
		CreateSlot: true, CreatePublication: true, PublicationTables: []string{name},
		BackfillTable: progress,
	})
	if err != nil {
		return err
	}
	defer s.Close()

	// The consumer: replays every message into a map, as a downstream copy.
	var mu sync.Mutex
	replica := map[int64]int64{}
	var reads, changes int
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	go func() {
		for {
			m, err := s.Next(cctx)
			if err != nil {
				return
			}
			mu.Lock()
			id := m.Record["id"].(int64)
			switch m.Action {
			case message.ActionDelete:
				delete(replica, id)
				changes++
			case message.ActionRead:
				replica[id] = m.Record["balance"].(int64)
				reads++
			default:
				replica[id] = m.Record["balance"].(int64)
				changes++
			}
			mu.Unlock()
			s.Ack(m)
		}
	}()

	// A writer moving money around and closing accounts while the backfill runs.
	writerCtx, stopWriter := context.WithCancel(ctx)
	var writes int
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for writerCtx.Err() == nil {
			a, b := rand.Int64N(rows)+1, rand.Int64N(rows)+1
			if _, err := db.Exec(writerCtx, `update `+name+` set balance = balance - 1 where id = $1;`, a); err == nil {
				writes++
			}
			if _, err := db.Exec(writerCtx, `update `+name+` set balance = balance + 1 where id = $1;`, b); err == nil {
				writes++
			}
			if writes%50 == 0 {
				db.Exec(writerCtx, `delete from `+name+` where id = $1`, a)
			}
		}
	}()

	// Progress, every 50ms.
	pctx, stopProgress := context.WithCancel(ctx)
	defer stopProgress()
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
				mu.Lock()
				fmt.Fprintf(out, "%5.1fs  reads %6d  live changes %6d\n", time.Since(start).Seconds(), reads, changes)
				mu.Unlock()
			}
		}
	}()

	start := time.Now()
	err = s.Backfill(ctx, backfill.Config{Table: name, ID: "demo"})
	stopWriter()
	<-writerDone
	if err != nil {
		return err
	}
	stopProgress()
	<-progressDone // the progress lines end before the summary
	mu.Lock()
	fmt.Fprintf(out, "backfill done in %v: %d rows read while %d concurrent updates ran\n", time.Since(start).Round(time.Millisecond), reads, writes)
	mu.Unlock()

	// Catch up with the writer's last changes, then compare.
	want := map[int64]int64{}
	deadline := time.Now().Add(catchUpWait)
	for {
		clear(want)
		r, err := db.Query(ctx, `select id, balance from `+name)
		if err != nil {
			return err
		}
		for r.Next() {
			var id, bal int64
			if err := r.Scan(&id, &bal); err != nil {
				return err
			}
			want[id] = bal
		}
		if err := r.Err(); err != nil {
			return err
		}
		mu.Lock()
		same := reflect.DeepEqual(want, replica)
		mu.Unlock()
		if same {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the replayed copy does not match the table")
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopConsumer()
	fmt.Fprintf(out, "replayed copy matches the table: %d rows\n", len(want))
	return nil
}
