package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walrelay/walrelay/message"
)

// DefaultProgressTable is the table a [ProgressStore] keeps progress in
// when it is given no name (cdc.Config.BackfillTable's default).
const DefaultProgressTable = "public.walrelay_backfills"

// Progress is a backfill's saved state: how far it got, as a [Cursor]
// after the last rows the consumer has durably processed.
type Progress struct {
	// ID is the backfill's Config.ID, the store's key.
	ID string
	// Table is the Config.Table the backfill reads, as it was written.
	Table string
	// Cursor is where to resume: pass it in Config.Cursor. nil is the
	// start of the table.
	Cursor Cursor
	// Done reports that the whole table was read and processed.
	Done bool
	// UpdatedAt is when the progress was last saved (set by the store;
	// Save ignores it).
	UpdatedAt time.Time
}

// ProgressStore keeps the [Progress] of backfills in a Postgres table, one
// row per backfill ID: id, table_name, cursor (jsonb), done and
// updated_at. cdc's Stream.Backfill saves each chunk's cursor here once its
// reads are acknowledged, and resumes from it; a program running an
// [Iterator] itself can do the same. Its methods are given the [Querier] to
// use (a *pgxpool.Pool, a *pgx.Conn, or a pgx.Tx to save progress in the
// transaction that stores the rows). Safe for concurrent use.
type ProgressStore struct {
	schema, name string
}

// NewProgressStore returns a store in table, written as in SQL (see
// [message.ParseTable]): "schema.table", or "table" for the public schema;
// "" is [DefaultProgressTable]. It does not touch the database.
func NewProgressStore(table string) (*ProgressStore, error) {
	if table == "" {
		table = DefaultProgressTable
	}
	schema, name, err := message.ParseTable(table)
	if err != nil {
		return nil, fmt.Errorf("backfill: progress table: %w", err)
	}
	if schema == "" {
		schema = "public"
	}
	return &ProgressStore{schema: schema, name: name}, nil
}

// Table returns the schema and name of the store's table, as the catalog
// spells them.
func (ps *ProgressStore) Table() (schema, name string) { return ps.schema, ps.name }

func (ps *ProgressStore) ident() string { return pgx.Identifier{ps.schema, ps.name}.Sanitize() }

// Create creates the table if it does not exist. Stores created at once by
// several processes do not fail each other. The schema must exist.
func (ps *ProgressStore) Create(ctx context.Context, q Querier) error {
	err := exec(ctx, q, `create table if not exists `+ps.ident()+` (
		id text primary key,
		table_name text not null,
		cursor jsonb,
		done boolean not null default false,
		updated_at timestamptz not null default now())`)
	switch pgCode(err) {
	case "23505", "42P07", "42710": // created concurrently: unique_violation (pg_type), duplicate_table, duplicate_object
		err = nil
	}
	if err != nil {
		return fmt.Errorf("backfill: progress table %s: %w", ps.ident(), err)
	}
	return nil
}

// Load returns the saved progress of backfill id, or nil when it saved
// none — also when the table, or its schema, does not exist yet: Load only
// reads, and creates nothing.
func (ps *ProgressStore) Load(ctx context.Context, q Querier, id string) (*Progress, error) {
	saved, err := ps.query(ctx, q, ` where id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("backfill %q: load progress: %w", id, err)
	}
	if len(saved) == 0 {
		return nil, nil
	}
	return &saved[0], nil
}

// List returns the saved progress of every backfill in the table, by ID:
// none when the table, or its schema, does not exist. Like Load it only
// reads.
func (ps *ProgressStore) List(ctx context.Context, q Querier) ([]Progress, error) {
	saved, err := ps.query(ctx, q, ` order by id`)
	if err != nil {
		return nil, fmt.Errorf("backfill: list progress in %s: %w", ps.ident(), err)
	}
	return saved, nil
}

// query reads the rows the SQL tail (a where or order by clause) selects;
// a missing table or schema is no rows.
func (ps *ProgressStore) query(ctx context.Context, q Querier, tail string, args ...any) ([]Progress, error) {
	rows, err := q.Query(ctx, `select id, table_name, cursor, done, updated_at from `+ps.ident()+tail, args...)
	var out []Progress
	var p Progress
	var cursor []byte
	if err == nil {
		_, err = pgx.ForEachRow(rows, []any{&p.ID, &p.Table, &cursor, &p.Done, &p.UpdatedAt}, func() error {
			if len(cursor) > 0 && string(cursor) != "null" {
				if err := json.Unmarshal(cursor, &p.Cursor); err != nil {
					return fmt.Errorf("backfill %q: saved cursor: %w", p.ID, err)
				}
			}
			out = append(out, p)
			p, cursor = Progress{}, nil
			return nil
		})
	}
	if c := pgCode(err); c == "42P01" || c == "3F000" { // undefined_table or _schema: nothing was saved
		return nil, nil
	}
	return out, err
}

// Save records p, replacing what backfill p.ID saved before.
func (ps *ProgressStore) Save(ctx context.Context, q Querier, p Progress) error {
	cursor, err := json.Marshal(p.Cursor)
	if err != nil {
		return fmt.Errorf("backfill %q: %w", p.ID, err)
	}
	err = exec(ctx, q, `insert into `+ps.ident()+` (id, table_name, cursor, done) values ($1, $2, $3, $4)
		on conflict (id) do update set cursor = excluded.cursor, done = excluded.done, updated_at = now()`,
		p.ID, p.Table, string(cursor), p.Done)
	if err != nil {
		return fmt.Errorf("backfill %q: save progress: %w", p.ID, err)
	}
	return nil
}

// exec runs a statement that returns no rows through q.
func exec(ctx context.Context, q Querier, sql string, args ...any) error {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
