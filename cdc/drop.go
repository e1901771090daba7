package cdc

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/message"
)

// DropOptions choose what [Drop] leaves in place. The zero value drops
// everything the Config names.
type DropOptions struct {
	// KeepSlot, KeepPublication and KeepBackfillTable leave the slot, the
	// publication (another slot may use it) or the backfill progress table
	// (Config.BackfillTable) in place.
	KeepSlot, KeepPublication, KeepBackfillTable bool
	// IdempotencyTables are Postgres idempotency stores' tables in the same
	// database to drop too ("name" or "schema.name", as in
	// idempotency.PostgresConfig.Table; "walrelay_idempotency" is its
	// default). A store in another database is dropped there, with SQL.
	IdempotencyTables []string
	// DryRun drops nothing: Drop returns what it would drop, and
	// [ErrSlotInUse] when the slot is active, as it would. For a tool that
	// asks before it drops.
	DryRun bool
}

// Drop removes what walrelay created in the database for cfg: the slot
// (which frees the WAL it retains), the publication and the backfill
// progress table, and the idempotency tables opts names. Objects that do
// not exist are skipped; it returns what it dropped ("slot name",
// "publication name", "table schema.name"). No stream may use the slot:
// an active slot is an [ErrSlotInUse] error and nothing else is dropped.
//
// Dropping the slot loses the changes not yet delivered from it: a new
// slot starts at the present, so tables must be backfilled again.
func Drop(ctx context.Context, cfg Config, opts DropOptions) ([]string, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	type table struct{ schema, name string }
	var tables []table
	if !opts.KeepBackfillTable {
		schema, name, _ := qualifiedTable(cfg.BackfillTable)
		tables = append(tables, table{schema, name})
	}
	for _, t := range opts.IdempotencyTables {
		schema, name, err := message.ParseTable(t)
		if err != nil {
			return nil, &ConfigError{Err: fmt.Errorf("DropOptions.IdempotencyTables: %w", err)}
		}
		tables = append(tables, table{schema, name})
	}
	conn, release, err := cfg.connectOne(ctx)
	if err != nil {
		return nil, err
	}
	defer release()

	var dropped []string
	if !opts.KeepSlot {
		ok, err := dropSlot(ctx, conn.Conn(), cfg.Slot, opts.DryRun)
		if err != nil {
			return nil, err
		}
		if ok {
			dropped = append(dropped, "slot "+cfg.Slot)
		}
	}
	if !opts.KeepPublication {
		ok, err := dropPublication(ctx, conn.Conn(), cfg.Publication, opts.DryRun)
		if err != nil {
			return dropped, err
		}
		if ok {
			dropped = append(dropped, "publication "+cfg.Publication)
		}
	}
	for _, t := range tables {
		name, err := dropTable(ctx, conn.Conn(), t.schema, t.name, opts.DryRun)
		if err != nil {
			return dropped, err
		}
		if name != "" {
			dropped = append(dropped, "table "+name)
		}
	}
	return dropped, nil
}

// dropSlot drops slot unless dryRun, and reports whether it existed. A
// slot in use is an ErrSlotInUse error.
func dropSlot(ctx context.Context, conn *pgx.Conn, slot string, dryRun bool) (bool, error) {
	var pid *int32
	err := conn.QueryRow(ctx, "select active_pid from pg_replication_slots where slot_name = $1", slot).Scan(&pid)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("cdc: drop slot %q: %w", slot, err)
	case pid != nil:
		return false, &SlotError{Slot: slot, Err: ErrSlotInUse, Detail: fmt.Sprintf("held by backend pid %d; stop the stream before dropping the slot", *pid)}
	case dryRun:
		return true, nil
	}
	_, err = conn.Exec(ctx, "select pg_drop_replication_slot($1)", slot)
	if pgCode(err) == "55006" { // object_in_use: taken since
		return false, &SlotError{Slot: slot, Err: ErrSlotInUse, Detail: err.Error()}
	}
	if err != nil && pgCode(err) != "42704" { // undefined_object: dropped since
		return false, fmt.Errorf("cdc: drop slot %q: %w", slot, err)
	}
	return true, nil
}

// dropPublication drops the publication unless dryRun, and reports
// whether it existed.
func dropPublication(ctx context.Context, conn *pgx.Conn, pub string, dryRun bool) (bool, error) {
	var exists bool
	if err := conn.QueryRow(ctx, "select exists(select 1 from pg_publication where pubname = $1)", pub).Scan(&exists); err != nil {
		return false, fmt.Errorf("cdc: drop publication %q: %w", pub, err)
	}
	if exists && !dryRun {
		if _, err := conn.Exec(ctx, "drop publication if exists "+pgx.Identifier{pub}.Sanitize()); err != nil {
			return false, fmt.Errorf("cdc: drop publication %q: %w", pub, err)
		}
	}
	return exists, nil
}

// dropTable drops the table unless dryRun, and returns its name as
// Postgres writes it, "" when it does not exist. An unqualified name (an
// idempotency table) is found in the search_path, as the store finds it.
func dropTable(ctx context.Context, conn *pgx.Conn, schema, table string, dryRun bool) (string, error) {
	ident := pgx.Identifier{table}.Sanitize()
	if schema != "" {
		ident = pgx.Identifier{schema, table}.Sanitize()
	}
	var name *string
	if err := conn.QueryRow(ctx, "select to_regclass($1)::text", ident).Scan(&name); err != nil {
		return "", fmt.Errorf("cdc: drop table %s: %w", ident, err)
	}
	if name == nil {
		return "", nil
	}
	if !dryRun {
		if _, err := conn.Exec(ctx, "drop table if exists "+ident); err != nil {
			return "", fmt.Errorf("cdc: drop table %s: %w", ident, err)
		}
	}
	return *name, nil
}
