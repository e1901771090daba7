// Command quickstart streams a few changes from Postgres and prints each as
// one line of JSON, in the shape Sequin delivers.
//
//	go run ./examples/quickstart
//
// Without DATABASE_URL it starts a throwaway Postgres (PostgreSQL 15+ server
// binaries must be installed; as root it runs the server as the "postgres"
// user). With DATABASE_URL it uses that database, which needs
// wal_level=logical; it creates the table walrelay_quickstart, a publication
// and a slot of the same name, and drops them when done.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/throwaway"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

const name = "walrelay_quickstart"

// runTimeout bounds the demonstration (its test scales it on a slow
// machine).
var runTimeout = 2 * time.Minute

func run(ctx context.Context, out io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()

	url, stopPostgres, err := throwaway.FromEnv(ctx, os.Stderr)
	if err != nil {
		return err
	}
	defer stopPostgres()

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `create table if not exists `+name+` (
		id int primary key, name text, score numeric, updated_at timestamptz default now())`); err != nil {
		return err
	}
	defer func() {
		// Leave the user's database as it was: slot, publication, table.
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		// The stream is closed by now (deferred later, run earlier).
		derr := throwaway.DropStream(cctx, url, name, name)
		_, terr := conn.Exec(cctx, `drop table if exists `+name)
		err = errors.Join(err, derr, terr)
	}()

	stream, err := cdc.Open(ctx, cdc.Config{
		ConnString:        url,
		Slot:              name,
		Publication:       name,
		CreateSlot:        true,
		CreatePublication: true,
		PublicationTables: []string{"public." + name},
	})
	if err != nil {
		return err
	}
	defer stream.Close()

	// An insert, an update that carries transaction annotations, a delete.
	if _, err := conn.Exec(ctx, `insert into `+name+` (id, name, score) values (1, 'Ada', 99.5)`); err != nil {
		return err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `select pg_logical_emit_message(true, 'sequin:transaction_annotations.set', '{"username": "ada", "source": "quickstart"}')`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `update `+name+` set score = 100 where id = 1`); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `delete from `+name+` where id = 1`); err != nil {
		return err
	}

	enc := message.NewEncoder(out) // one JSON line per message, buffer reused
	for range 3 {
		m, err := stream.Next(ctx)
		if err != nil {
			return err
		}
		if err := enc.Encode(m); err != nil {
			return err
		}
		stream.Ack(m) // printed: durable enough for a demo
	}
	return nil
}
