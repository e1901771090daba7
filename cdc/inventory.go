package cdc

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/walrelay/walrelay/backfill"
)

// The listings below read what a database holds for walrelay without a
// stream, for tools and dashboards (walrelay status): they change nothing,
// and the role needs no REPLICATION attribute.

// ListSlots returns the state of every logical replication slot of the
// pgoutput plugin in the database at connString (the slots a stream can
// use; other plugins' slots, physical slots and other databases' slots are
// left out), by name.
func ListSlots(ctx context.Context, connString string) ([]SlotState, error) {
	conn, release, err := connectList(ctx, connString)
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := conn.Query(ctx, `select slot_name::text from pg_replication_slots
		where slot_type = 'logical' and plugin = 'pgoutput' and database = current_database() order by 1`)
	if err != nil {
		return nil, fmt.Errorf("cdc: list slots: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("cdc: list slots: %w", err)
	}
	out := make([]SlotState, 0, len(names))
	for _, n := range names {
		st, err := querySlot(ctx, conn, n)
		if err != nil {
			return nil, err
		}
		if st.Exists { // dropped since
			out = append(out, st)
		}
	}
	return out, nil
}

// Publication is a publication and the tables it publishes.
type Publication struct {
	Name string `json:"name"`
	// AllTables: FOR ALL TABLES (Tables then lists today's tables).
	AllTables bool `json:"all_tables"`
	// Tables are "schema.table", unquoted, by name.
	Tables []string `json:"tables"`
	// Insert, Update, Delete and Truncate: what it publishes.
	Insert   bool `json:"insert"`
	Update   bool `json:"update"`
	Delete   bool `json:"delete"`
	Truncate bool `json:"truncate"`
}

// ListPublications returns the publications of the database at connString,
// by name.
func ListPublications(ctx context.Context, connString string) ([]Publication, error) {
	return list[Publication](ctx, connString, "publications", `select p.pubname::text, p.puballtables,
			coalesce((select array_agg(t.schemaname || '.' || t.tablename order by 1) from pg_publication_tables t where t.pubname = p.pubname), '{}'),
			p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate
		from pg_publication p order by 1`)
}

// Table is a table of the database, as a publication would take it.
type Table struct {
	// Name is "schema.table", quoted where SQL needs it (as
	// [message.ParseTable] and Config.PublicationTables read it).
	Name string `json:"name"`
	// Identity reports that its UPDATEs and DELETEs can be published: it
	// has a primary key, or REPLICA IDENTITY FULL or USING INDEX. Publishing
	// a table without makes the application's UPDATEs and DELETEs of it
	// fail (see [Check]).
	Identity bool `json:"identity"`
	// Publishable reports that the role may add it to a publication: it
	// owns the table (or a role it belongs to does), or is a superuser.
	Publishable bool `json:"publishable"`
}

// ListTables returns the tables a publication can hold in the database at
// connString — permanent tables and partitioned tables (not their
// partitions, which are published through them), outside the system
// schemas — by name.
func ListTables(ctx context.Context, connString string) ([]Table, error) {
	return list[Table](ctx, connString, "tables", `select format('%I.%I', n.nspname, c.relname),
			c.relreplident in ('f', 'i') or (c.relreplident = 'd' and exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary)),
			pg_has_role(c.relowner, 'USAGE') or (select rolsuper from pg_roles where rolname = current_user)
		from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where c.relkind in ('r', 'p') and c.relpersistence = 'p' and not c.relispartition
			and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp_)'
		order by n.nspname, c.relname`)
}

// list runs one catalog query on a connection to connString and returns
// its rows, each column into the field of T at its position.
func list[T any](ctx context.Context, connString, what, sql string) ([]T, error) {
	conn, release, err := connectList(ctx, connString)
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := conn.Query(ctx, sql)
	if err == nil {
		var out []T
		if out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[T]); err == nil {
			return out, nil
		}
	}
	return nil, fmt.Errorf("cdc: list %s: %w", what, err)
}

// ListBackfills returns the saved progress of every backfill in the
// progress table (Config.BackfillTable; "" = [backfill.DefaultProgressTable])
// of the database at connString, by ID: none when the table does not exist.
// A backfill that is not Done resumes after Cursor. It reads through a
// [backfill.ProgressStore], which a program with a connection of its own
// can use directly.
func ListBackfills(ctx context.Context, connString, progressTable string) ([]backfill.Progress, error) {
	if progressTable == "" {
		progressTable = backfill.DefaultProgressTable
	}
	ps, err := backfill.NewProgressStore(progressTable)
	if err != nil {
		return nil, &ConfigError{Err: fmt.Errorf("progress table: %w", err)}
	}
	conn, release, err := connectList(ctx, connString)
	if err != nil {
		return nil, err
	}
	defer release()
	saved, err := ps.List(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("cdc: %w", err)
	}
	return saved, nil
}

// connectList opens one query connection to connString for the listings.
func connectList(ctx context.Context, connString string) (*pgxpool.Conn, func(), error) {
	if connString == "" {
		return nil, nil, &ConfigError{Err: errors.New("ConnString is empty")}
	}
	cfg := Config{ConnString: connString}
	return cfg.connectOne(ctx)
}
