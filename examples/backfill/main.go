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

	r := &replica{rows: map[int64]int64{}}
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	go r.consume(cctx, s)
	writerCtx, stopWriter := context.WithCancel(ctx)
	var writes int
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); writes = write(writerCtx, db) }()
	pctx, stopProgress := context.WithCancel(ctx)
	defer stopProgress()
	progressDone := make(chan struct{})
	go func() { defer close(progressDone); r.report(pctx, out) }()

	start := time.Now()
	err = s.Backfill(ctx, backfill.Config{Table: name, ID: "demo"})
	stopWriter()
	<-writerDone
	if err != nil {
		return err
	}
	stopProgress()
	<-progressDone // the progress lines end before the summary
	reads, _ := r.counts()
	fmt.Fprintf(out, "backfill done in %v: %d rows read while %d concurrent updates ran\n", time.Since(start).Round(time.Millisecond), reads, writes)

	n, err := r.catchUp(ctx, db)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "replayed copy matches the table: %d rows\n", n)
	return nil
}

// replica is the consumer: it replays every message into a map, as a
// downstream copy of the table.
type replica struct {
	mu             sync.Mutex
	rows           map[int64]int64
	reads, changes int
}

func (r *replica) consume(ctx context.Context, s *cdc.Stream) {
	for {
		m, err := s.Next(ctx)
		if err != nil {
			return
		}
		r.mu.Lock()
		id := m.Record["id"].(int64)
		switch m.Action {
		case message.ActionDelete:
			delete(r.rows, id)
			r.changes++
		case message.ActionRead:
			r.rows[id] = m.Record["balance"].(int64)
			r.reads++
		default:
			r.rows[id] = m.Record["balance"].(int64)
			r.changes++
		}
		r.mu.Unlock()
		s.Ack(m)
	}
}

func (r *replica) counts() (reads, changes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads, r.changes
}

// report prints the progress every 50ms until ctx ends.
func (r *replica) report(ctx context.Context, out io.Writer) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			reads, changes := r.counts()
			fmt.Fprintf(out, "%5.1fs  reads %6d  live changes %6d\n", time.Since(start).Seconds(), reads, changes)
		}
	}
}

// catchUp waits until the replica has the writer's last changes and equals
// the table, and returns its number of rows.
func (r *replica) catchUp(ctx context.Context, db *pgxpool.Pool) (int, error) {
	want := map[int64]int64{}
	deadline := time.Now().Add(catchUpWait)
	for {
		clear(want)
		rs, err := db.Query(ctx, `select id, balance from `+name)
		if err != nil {
			return 0, err
		}
		for rs.Next() {
			var id, bal int64
			if err := rs.Scan(&id, &bal); err != nil {
				return 0, err
			}
			want[id] = bal
		}
		if err := rs.Err(); err != nil {
			return 0, err
		}
		r.mu.Lock()
		same := reflect.DeepEqual(want, r.rows)
		r.mu.Unlock()
		if same {
			return len(want), nil
		}
		if time.Now().After(deadline) {
			return 0, errors.New("the replayed copy does not match the table")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// write moves money between accounts and closes some until ctx ends, and
// returns the number of updates it made.
func write(ctx context.Context, db *pgxpool.Pool) (writes int) {
	for ctx.Err() == nil {
		a, b := rand.Int64N(rows)+1, rand.Int64N(rows)+1
		if _, err := db.Exec(ctx, `update `+name+` set balance = balance - 1 where id = $1;`, a); err == nil {
			writes++
		}
		if _, err := db.Exec(ctx, `update `+name+` set balance = balance + 1 where id = $1;`, b); err == nil {
			writes++
		}
		if writes%50 == 0 {
			db.Exec(ctx, `delete from `+name+` where id = $1`, a)
		}
	}
	return writes
}
