package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/idempotency"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// config says what to replicate where.
type config struct {
	SourceURL, TargetURL string
	// Table is the source table, "schema.table"; the target table has the
	// same name unless TargetTable is set.
	Table       string
	TargetTable string
	Slot        string
	Publication string
}

// keyRetention is how long claimed keys are kept: far longer than a change
// can wait to be redelivered.
const keyRetention = 7 * 24 * time.Hour

// replicate streams cfg.Table from the source into the target until ctx is
// done. Each line written to out reports a duplicate that was skipped.
func replicate(ctx context.Context, cfg config, out io.Writer) error {
	target := cfg.TargetTable
	if target == "" {
		target = cfg.Table
	}
	targetIdent, err := tableIdent(target)
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, cfg.TargetURL)
	if err != nil {
		return fmt.Errorf("connect to target: %w", err)
	}
	defer pool.Close()
	store, err := idempotency.NewPostgresStore(ctx, pool, idempotency.PostgresConfig{})
	if err != nil {
		return err
	}
	if _, err := store.Prune(ctx, keyRetention); err != nil {
		return err
	}
	stream, err := cdc.Open(ctx, cdc.Config{
		ConnString:        cfg.SourceURL,
		Slot:              cfg.Slot,
		Publication:       cfg.Publication,
		CreateSlot:        true,
		CreatePublication: true,
		PublicationTables: []string{cfg.Table},
		// A restarted process waits for the slot while Postgres notices
		// that the previous one is gone.
		WaitForSlot: true,
	})
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	defer stream.Close()
	r := &replicator{pool: pool, store: store, table: targetIdent.Sanitize(), out: out}
	return cdc.Run(ctx, stream, r, cdc.RunOptions{})
}

// replicator is a sink applying changes to the target table.
type replicator struct {
	pool  *pgxpool.Pool
	store *idempotency.PostgresStore
	table string // quoted
	out   io.Writer
}

// Write applies msgs and claims their keys in one transaction: both commit,
// or neither does. Messages whose key was already claimed are skipped.
func (r *replicator) Write(ctx context.Context, msgs ...message.Message) error {
	keys := make([]string, 0, len(msgs))
	for _, m := range msgs {
		if m.Metadata.IdempotencyKey == "" {
			return sink.Permanent(fmt.Errorf("%s message without an idempotency key", m.Action))
		}
		keys = append(keys, m.Metadata.IdempotencyKey)
	}
	var skipped []string
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		skipped = skipped[:0]
		first, err := r.store.ClaimAllTx(ctx, tx, keys...)
		if err != nil {
			return err
		}
		for i, m := range msgs {
			if !first[i] {
				skipped = append(skipped, keys[i])
				continue
			}
			if err := r.apply(ctx, tx, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return classify(err)
	}
	for _, k := range skipped {
		fmt.Fprintln(r.out, "duplicate", k)
	}
	return nil
}

func (r *replicator) Close(context.Context) error { return nil }

// apply makes the target row match the change.
func (r *replicator) apply(ctx context.Context, tx pgx.Tx, m message.Message) error {
	pk := m.Metadata.PrimaryKey()
	if m.Action != message.ActionTruncate && len(pk) == 0 {
		return sink.Permanent(fmt.Errorf("table %s.%s has no primary key", m.Metadata.TableSchema, m.Metadata.TableName))
	}
	switch m.Action {
	case message.ActionInsert, message.ActionRead:
		return r.upsert(ctx, tx, m.Record, pk)
	case message.ActionUpdate:
		// A changed primary key arrives in Changes (the source table has
		// REPLICA IDENTITY FULL): remove the old row.
		if old, moved := oldKey(m, pk); moved {
			if err := r.delete(ctx, tx, old, pk); err != nil {
				return err
			}
		}
		return r.upsert(ctx, tx, m.Record, pk)
	case message.ActionDelete:
		return r.delete(ctx, tx, m.Record, pk)
	case message.ActionTruncate:
		_, err := tx.Exec(ctx, "delete from "+r.table)
		return err
	}
	return sink.Permanent(fmt.Errorf("unknown action %q", m.Action))
}

// upsert inserts the row or updates it in place. Postgres converts the
// values from the record's JSON (json_populate_record), so every column
// type with a JSON text form round-trips. Unchanged TOASTed columns are left
// as they are.
func (r *replicator) upsert(ctx context.Context, tx pgx.Tx, rec map[string]any, pk []string) error {
	row := make(map[string]any, len(rec))
	for c, v := range rec {
		if !message.IsUnchangedToast(v) {
			row[c] = v
		}
	}
	cols := slices.Sorted(maps.Keys(row))
	js, err := message.Message{Record: row}.RecordJSON()
	if err != nil {
		return sink.Permanent(err)
	}
	quoted := quoteAll(cols)
	var set []string
	for _, c := range cols {
		if !slices.Contains(pk, c) {
			q := pgx.Identifier{c}.Sanitize()
			set = append(set, q+" = excluded."+q)
		}
	}
	conflict := "do nothing"
	if len(set) > 0 {
		conflict = "do update set " + strings.Join(set, ", ")
	}
	q := "insert into " + r.table + " (" + strings.Join(quoted, ", ") + ") select " + strings.Join(quoted, ", ") +
		" from json_populate_record(null::" + r.table + ", $1::json) on conflict (" + strings.Join(quoteAll(pk), ", ") + ") " + conflict
	_, err = tx.Exec(ctx, q, string(js))
	return err
}

// delete removes the row whose key rec holds.
func (r *replicator) delete(ctx context.Context, tx pgx.Tx, rec map[string]any, pk []string) error {
	key := make(map[string]any, len(pk))
	var where []string
	for _, c := range pk {
		key[c] = rec[c]
		q := pgx.Identifier{c}.Sanitize()
		where = append(where, "t."+q+" = k."+q)
	}
	js, err := message.Message{Record: key}.RecordJSON()
	if err != nil {
		return sink.Permanent(err)
	}
	q := "delete from " + r.table + " t using json_populate_record(null::" + r.table + ", $1::json) k where " + strings.Join(where, " and ")
	_, err = tx.Exec(ctx, q, string(js))
	return err
}

// oldKey returns the row's previous primary key when an update changed it.
func oldKey(m message.Message, pk []string) (map[string]any, bool) {
	moved := false
	old := make(map[string]any, len(pk))
	for _, c := range pk {
		if v, ok := m.Changes[c]; ok {
			old[c], moved = v, true
		} else {
			old[c] = m.Record[c]
		}
	}
	return old, moved
}

func quoteAll(cols []string) []string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return q
}

// tableIdent parses a table name written as in SQL, "schema.table" or
// "table" (see message.ParseTable), into an identifier for queries.
func tableIdent(name string) (pgx.Identifier, error) {
	schema, table, err := message.ParseTable(name)
	if err != nil {
		return nil, err
	}
	if schema == "" {
		return pgx.Identifier{table}, nil
	}
	return pgx.Identifier{schema, table}, nil
}

// classify marks the errors that retrying cannot fix (bad data, a missing
// or different target table) as permanent, so the delivery loop stops
// instead of retrying them forever.
func classify(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "22", "23", "42": // data exception, integrity violation, syntax or schema
			return sink.Permanent(err)
		}
	}
	return err
}
