package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/throwaway"
)

const table = "public.custom_sink_example"

// changes are the statements the example makes; each changes one row.
var changes = []string{
	"insert into " + table + " (id, note) values (1, 'first')",
	"insert into " + table + " (id, note) values (2, 'second')",
	"update " + table + " set note = 'first, edited' where id = 1",
	"delete from " + table + " where id = 2",
}

// deliveryWait bounds the wait for the changes (the example's test scales
// it on a slow machine).
var deliveryWait = time.Minute

func run(ctx context.Context) error {
	return runTo(ctx, os.Stdout)
}

// runTo is run, printing to out.
func runTo(ctx context.Context, out io.Writer) error {
	slot := envOr("SLOT", "walrelay_custom_sink_example")
	path := os.Getenv("OUT")
	if path == "" {
		dir, err := os.MkdirTemp("", "custom-sink")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "changes.jsonl")
	}
	dbURL, stopPostgres, err := throwaway.FromEnv(ctx, os.Stderr)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	defer stopPostgres()
	if err := throwaway.Exec(ctx, dbURL, "create table if not exists "+table+" (id bigint primary key, note text)"); err != nil {
		return err
	}

	file, err := openJSONLines(path)
	if err != nil {
		return err
	}
	defer file.Close(context.Background())
	// Tell the example's loop how many messages became durable, so that it
	// knows when to stop.
	written := make(chan int, 64)
	counted := sink.Func(func(ctx context.Context, msgs ...message.Message) error {
		if err := file.Write(ctx, msgs...); err != nil {
			return err
		}
		select {
		case written <- len(msgs):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})

	stream, err := cdc.Open(ctx, cdc.Config{
		ConnString:        dbURL,
		Slot:              slot,
		Publication:       slot,
		CreateSlot:        true,
		CreatePublication: true,
		PublicationTables: []string{table},
	})
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	defer cleanup(dbURL, slot, out)
	defer stream.Close()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- cdc.Run(runCtx, stream, counted, cdc.RunOptions{}) }()

	if err := throwaway.Exec(ctx, dbURL, changes...); err != nil {
		return err
	}
	timeout := time.NewTimer(deliveryWait)
	defer timeout.Stop()
	for n := 0; n < len(changes); {
		select {
		case k := <-written:
			n += k
		case err := <-done:
			return fmt.Errorf("delivery stopped: %w", err)
		case <-timeout.C:
			return fmt.Errorf("%d of %d changes written within %v", n, len(changes), deliveryWait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("delivery: %w", err)
	}
	return printFile(path, out)
}

// printFile prints each line of the file as action, table and record.
func printFile(path string, out io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m message.Message
		if err := m.UnmarshalJSON(sc.Bytes()); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rec, err := m.RecordJSON()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s %s.%s %s\n", m.Action, m.Metadata.TableSchema, m.Metadata.TableName, rec)
	}
	return sc.Err()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// cleanup drops the example's slot and publication, so that the slot does
// not keep WAL after the example ends.
func cleanup(url, slot string, out io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := throwaway.DropStream(ctx, url, slot, slot); err != nil {
		fmt.Fprintln(out, "cleanup:", err)
	}
}
