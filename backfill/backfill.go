package backfill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walrelay/walrelay/internal/pgvalue"
	"github.com/walrelay/walrelay/message"
)

// Page sizes. With Config.ChunkSize 0 the first page has DefaultChunkSize
// rows and each next one is sized from the last so that reading it takes
// about ChunkTarget: at most MaxChunkGrowth times the last page, at least
// MinChunkSize rows, at most MaxChunkSize rows and, by the last page's row
// width, about MaxChunkBytes of values. Large pages cost fewer queries and
// less work per row, so a fast table reaches MaxChunkSize within a few
// pages; the bounds keep a page's memory and a slow page's latency in check.
const (
	DefaultChunkSize = 1000
	MinChunkSize     = 100
	MaxChunkSize     = 50_000
	MaxChunkBytes    = 16 << 20
	MaxChunkGrowth   = 8
	ChunkTarget      = 200 * time.Millisecond
)

// Errors New returns for tables it cannot read. They are wrapped with the
// table's (or column's) name; test for them with errors.Is.
var (
	// ErrTableNotFound: no table, view or materialized view has the name.
	ErrTableNotFound = errors.New("table not found")
	// ErrNoPrimaryKey: the table has no primary key and Config.OrderBy is
	// empty, so there is no key to page by.
	ErrNoPrimaryKey = errors.New("table has no primary key (set Config.OrderBy)")
	// ErrUnknownColumn: a name in Config.Columns or Config.OrderBy is not a
	// column of the table.
	ErrUnknownColumn = errors.New("no such column")
)

// Querier runs a query. *pgx.Conn, *pgxpool.Pool and pgx.Tx satisfy it.
// The Iterator is given one with each call that reads, so a caller can read
// one page in a transaction of its own (a snapshot it needs) and the next
// on a pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Cursor is a position in a backfill: the text form of the ordering key of
// the last row read, one string per key column in key order. It is plain
// data — store it as JSON and pass it back in Config.Cursor to resume. A nil
// Cursor is the start of the table.
type Cursor []string

// Config says what a backfill reads. Table and ID are required; every
// other zero value is a working default.
type Config struct {
	// Table is "schema.table", or "table" for the public schema, written as
	// in SQL (see [message.ParseTable]): unquoted names are folded to lower
	// case, so Orders is the table orders; double-quote a name that has upper
	// case, a dot or any character SQL does not allow unquoted, as in
	// `"my.schema"."Orders"`.
	Table string
	// ID identifies the backfill. It is part of every read's idempotency key,
	// so a backfill that is resumed or run again with the same ID yields the
	// same keys.
	ID string
	// ChunkSize is the number of rows per query (one keyset page). 0 sizes
	// pages adaptively (see DefaultChunkSize); negative is an error.
	ChunkSize int
	// Columns limits the columns read; the key columns are always read. Empty
	// means every column. Records hold columns in table order either way.
	Columns []string
	// Where is an SQL boolean expression that filters rows, added to every
	// query as "and (Where)". It is trusted SQL and must not use $n
	// parameters.
	Where string
	// OrderBy names the columns to page by, in order, for a table without a
	// primary key, a view, or to page a table by another key. The columns
	// must be NOT NULL (New checks this for tables) and unique together
	// (nobody checks): rows with equal values straddling a page boundary
	// would be skipped. On a table without a primary key they also identify
	// rows in messages (Metadata.PrimaryKey, idempotency keys). Empty means
	// the primary key.
	OrderBy []string
	// Cursor resumes reading strictly after this position (from
	// Iterator.Cursor). Its length must match the ordering key.
	Cursor Cursor

	// Consumer and Database fill every message's metadata. An empty
	// Database.Database and Database.Name default to the connected
	// database's name; Metadata.DatabaseName mirrors Database.Name.
	Consumer message.Consumer
	Database message.Database

	// Now returns the read time stamped on messages as CommitTimestamp.
	// nil means time.Now. Times are converted to UTC.
	Now func() time.Time

	// Undecodable, when set, is called with each value the mapping cannot
	// decode: the column, the value's Postgres text (valid only during the
	// call) and the error. What it returns is delivered in the value's
	// place; an error it returns stops the iterator. nil means such a value
	// stops the iterator with an error naming the table and column.
	// cdc's Stream.Backfill sets it from cdc.Config.Undecodable.
	Undecodable func(column string, text []byte, err error) (any, error)
}

// Iterator reads a table in key order, a page at a time, as read messages.
// It holds no connection: each call that reads is given its [Querier]. It
// is not safe for concurrent use.
type Iterator struct {
	mapper *pgvalue.Mapper
	id     string
	now    func() time.Time
	limit  int
	adapt  bool // size pages adaptively: Config.ChunkSize 0

	schema, table string
	columns       []string // read, in table order
	key           []string // Metadata.PrimaryKey: the primary key, else the ordering key
	keyIdx        []int    // positions of key in columns
	orderIdx      []int    // positions of the ordering key in columns
	sqlFirst      string   // first page: no cursor
	sqlAfter      string   // later pages: strictly after the cursor ($1…$n)
	consumer      message.Consumer
	database      message.Database

	undecodable func(column string, text []byte, err error) (any, error)

	cursor  Cursor
	buf     []message.Message
	bufKeys []string // cursor after each buffered message: len(orderIdx) values each
	done    bool     // the last page was short: nothing more to read

	dec pageDecoder
}

// catalogColumn is one column of the table from pg_attribute.
type catalogColumn struct {
	name string
	// typ is the column's type with its modifier, as format_type spells it
	// (bit(20), character(6), numeric(10,2)), for casting cursor values:
	// without the modifier bit and character mean bit(1) and character(1),
	// and a cursor cast to them is cut to its first bit or character.
	typ     string
	oid     uint32
	notNull bool
}

// New looks the table up through q, checks cfg and prepares the queries.
// It reads no rows, and keeps no reference to q.
func New(ctx context.Context, q Querier, cfg Config) (*Iterator, error) {
	if q == nil {
		return nil, errors.New("backfill: nil Querier")
	}
	schema, table, err := cfg.check()
	if err != nil {
		return nil, err
	}
	it := &Iterator{
		mapper:   pgvalue.NewMapper(),
		id:       cfg.ID,
		now:      cfg.Now,
		limit:    cfg.ChunkSize,
		schema:   schema,
		table:    table,
		consumer: cfg.Consumer,
		database: cfg.Database,

		undecodable: cfg.Undecodable,
	}
	if it.limit == 0 {
		it.limit, it.adapt = DefaultChunkSize, true
	}
	if it.now == nil {
		it.now = time.Now
	}
	qname := pgx.Identifier{schema, table}.Sanitize()

	rel, err := describe(ctx, q, schema, table)
	if err != nil {
		return nil, err
	}
	if it.database.Database == "" {
		it.database.Database = rel.dbname
	}
	if it.database.Name == "" {
		it.database.Name = rel.dbname
	}
	byName := make(map[string]catalogColumn, len(rel.cols))
	for _, c := range rel.cols {
		byName[c.name] = c
	}
	order, err := rel.orderKey(qname, cfg, byName)
	if err != nil {
		return nil, err
	}
	it.key = rel.pk
	if len(rel.pk) == 0 {
		it.key = order
	}
	oids, err := it.selectColumns(qname, cfg.Columns, rel.cols, byName, order)
	if err != nil {
		return nil, err
	}
	if err := it.mapper.Resolve(ctx, q, oids...); err != nil {
		return nil, fmt.Errorf("backfill: %s: %w", qname, err)
	}
	orderCols := make([]catalogColumn, len(order))
	for i, name := range order {
		orderCols[i] = byName[name]
	}
	it.sqlFirst, it.sqlAfter = buildQueries(qname, it.columns, orderCols, cfg.Where)
	if cfg.Cursor != nil {
		it.cursor = append(Cursor(nil), cfg.Cursor...)
	}
	return it, nil
}

// check validates what New can check of cfg without the database, and
// returns the table's schema (public when it names none) and name.
func (cfg Config) check() (schema, table string, err error) {
	if cfg.ID == "" {
		return "", "", errors.New("backfill: config: ID is required")
	}
	if cfg.ChunkSize < 0 {
		return "", "", fmt.Errorf("backfill: config: ChunkSize %d is negative", cfg.ChunkSize)
	}
	schema, table, err = message.ParseTable(cfg.Table)
	if err != nil {
		return "", "", fmt.Errorf("backfill: config: Table: %w", err)
	}
	if schema == "" {
		schema = "public"
	}
	return schema, table, nil
}

// orderKey is the columns the table is read in the order of: cfg.OrderBy
// (NOT NULL columns, but in a view), else the primary key; a Cursor must
// have one value for each.
func (rel relation) orderKey(qname string, cfg Config, byName map[string]catalogColumn) ([]string, error) {
	order := rel.pk
	if len(cfg.OrderBy) > 0 {
		order = cfg.OrderBy
		for _, name := range order {
			c, ok := byName[name]
			if !ok {
				return nil, fmt.Errorf("backfill: %s: OrderBy column %q: %w", qname, name, ErrUnknownColumn)
			}
			if !c.notNull && !rel.view {
				return nil, fmt.Errorf("backfill: %s: OrderBy column %q is nullable; the ordering key must be NOT NULL", qname, name)
			}
		}
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("backfill: %s: %w", qname, ErrNoPrimaryKey)
	}
	if cfg.Cursor != nil && len(cfg.Cursor) != len(order) {
		return nil, fmt.Errorf("backfill: config: Cursor has %d values; the ordering key (%s) has %d",
			len(cfg.Cursor), strings.Join(order, ", "), len(order))
	}
	return order, nil
}

// selectColumns sets the columns the iterator reads — those named (all
// when none are), with the key and the ordering columns always — in the
// table's order, and the positions of the key and ordering columns among
// them. It returns the columns' type OIDs.
func (it *Iterator) selectColumns(qname string, named []string, cols []catalogColumn, byName map[string]catalogColumn, order []string) ([]uint32, error) {
	want := make(map[string]bool)
	for _, name := range named {
		if _, ok := byName[name]; !ok {
			return nil, fmt.Errorf("backfill: %s: column %q: %w", qname, name, ErrUnknownColumn)
		}
		want[name] = true
	}
	for _, name := range it.key {
		want[name] = true
	}
	for _, name := range order {
		want[name] = true
	}
	var oids []uint32
	for _, c := range cols {
		if len(named) == 0 || want[c.name] {
			it.columns = append(it.columns, c.name)
			oids = append(oids, c.oid)
		}
	}
	pos := make(map[string]int, len(it.columns))
	for i, name := range it.columns {
		pos[name] = i
	}
	for _, name := range it.key {
		it.keyIdx = append(it.keyIdx, pos[name])
	}
	for _, name := range order {
		it.orderIdx = append(it.orderIdx, pos[name])
	}
	return oids, nil
}

const describeSQL = `select a.attname::text, format_type(a.atttypid, a.atttypmod), a.atttypid, a.attnotnull,
	coalesce((select k.ord from pg_catalog.pg_index i,
			unnest(i.indkey::int2[]) with ordinality k(attnum, ord)
		where i.indrelid = c.oid and i.indisprimary and k.attnum = a.attnum), 0),
	current_database()::text, c.relkind::text
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p', 'v', 'm', 'f')
order by a.attnum`

// relation is what describe learns about the table.
type relation struct {
	cols   []catalogColumn // in table order
	pk     []string        // in key order
	dbname string          // the connected database
	view   bool            // a view or materialized view: no NOT NULL to check
}

// describe reads the table's columns and primary key from the catalog.
func describe(ctx context.Context, q Querier, schema, table string) (relation, error) {
	name := pgx.Identifier{schema, table}.Sanitize()
	rows, err := q.Query(ctx, describeSQL, schema, table)
	if err != nil {
		return relation{}, fmt.Errorf("backfill: describe %s: %w", name, err)
	}
	defer rows.Close()
	var (
		rel  relation
		keys = map[int64]string{}
	)
	for rows.Next() {
		var (
			c       catalogColumn
			pos     int64
			relkind string
		)
		if err := rows.Scan(&c.name, &c.typ, &c.oid, &c.notNull, &pos, &rel.dbname, &relkind); err != nil {
			return relation{}, fmt.Errorf("backfill: describe %s: %w", name, err)
		}
		rel.cols = append(rel.cols, c)
		rel.view = relkind == "v" || relkind == "m"
		if pos > 0 {
			keys[pos] = c.name
		}
	}
	if err := rows.Err(); err != nil {
		return relation{}, fmt.Errorf("backfill: describe %s: %w", name, err)
	}
	if len(rel.cols) == 0 {
		return relation{}, fmt.Errorf("backfill: %s: %w", name, ErrTableNotFound)
	}
	for i := range int64(len(keys)) {
		k, ok := keys[i+1]
		if !ok {
			return relation{}, fmt.Errorf("backfill: describe %s: primary key column %d not found", name, i+1)
		}
		rel.pk = append(rel.pk, k)
	}
	return rel, nil
}

// buildQueries returns the keyset queries: the first page, and the pages
// strictly after a cursor, whose values arrive as text and are cast to the
// key columns' types. The page size is the last parameter.
func buildQueries(qname string, columns []string, order []catalogColumn, where string) (first, after string) {
	var sel strings.Builder
	sel.WriteString("select ")
	for i, c := range columns {
		if i > 0 {
			sel.WriteString(", ")
		}
		sel.WriteString(pgx.Identifier{c}.Sanitize())
	}
	sel.WriteString(" from ")
	sel.WriteString(qname)

	var keyList, params strings.Builder
	for i, c := range order {
		if i > 0 {
			keyList.WriteString(", ")
			params.WriteString(", ")
		}
		keyList.WriteString(pgx.Identifier{c.name}.Sanitize())
		params.WriteString("$" + strconv.Itoa(i+1) + "::text::" + c.typ)
	}
	tail := " order by " + keyList.String() + " limit "
	filter := ""
	if where != "" {
		filter = "(" + where + ")"
	}

	first = sel.String()
	if filter != "" {
		first += " where " + filter
	}
	first += tail + "$1"

	after = sel.String() + " where (" + keyList.String() + ") > (" + params.String() + ")"
	if filter != "" {
		after += " and " + filter
	}
	after += tail + "$" + strconv.Itoa(len(order)+1)
	return first, after
}

// Table returns the schema and name of the table read, as the catalog and
// every message's metadata spell them.
func (it *Iterator) Table() (schema, name string) { return it.schema, it.table }

// Columns returns the names of the columns read, in table order.
func (it *Iterator) Columns() []string { return append([]string(nil), it.columns...) }

// PrimaryKey returns the key columns that identify a row in messages: the
// primary key, or the ordering key of a table without one.
func (it *Iterator) PrimaryKey() []string { return append([]string(nil), it.key...) }

// Cursor returns the position after the last row returned by Next or
// NextChunk: pass it in Config.Cursor to resume there. It is nil before any
// row was returned (and no Config.Cursor was given).
func (it *Iterator) Cursor() Cursor {
	if it.cursor == nil {
		return nil
	}
	return append(Cursor(nil), it.cursor...)
}

// SetChunkSize changes the rows per query for the following pages; n <= 0
// returns to adaptive sizing, from DefaultChunkSize.
func (it *Iterator) SetChunkSize(n int) {
	it.limit, it.adapt = n, false
	if n <= 0 {
		it.limit, it.adapt = DefaultChunkSize, true
	}
}

// ChunkSize returns the rows per query of the next page.
func (it *Iterator) ChunkSize() int { return it.limit }

// nextChunkSize sizes the page after one of n rows and size bytes of values
// that took elapsed to read.
func nextChunkSize(n, size int, elapsed time.Duration) int {
	if n <= 0 {
		return DefaultChunkSize
	}
	next := n * MaxChunkGrowth
	if elapsed > 0 {
		next = int(float64(n) * float64(ChunkTarget) / float64(elapsed))
	}
	if size > 0 {
		next = min(next, int(float64(n)*MaxChunkBytes/float64(size)))
	}
	next = min(next, n*MaxChunkGrowth, MaxChunkSize)
	return max(next, MinChunkSize)
}

// Next returns the next row as a read message, reading a page through q
// when the previous one is used up. It returns io.EOF after the last row.
func (it *Iterator) Next(ctx context.Context, q Querier) (message.Message, error) {
	if len(it.buf) == 0 {
		if err := it.fill(ctx, q); err != nil {
			return message.Message{}, err
		}
	}
	m := it.buf[0]
	it.buf[0] = message.Message{} // the caller's now, not the page's
	it.take(1)
	return m, nil
}

// NextChunk returns the next page of rows: one query's worth through q, at
// most the chunk size. Rows a preceding Next left of the current page come
// first, as a page of their own (q is then not used). It returns io.EOF, and
// no messages, when the table is done.
func (it *Iterator) NextChunk(ctx context.Context, q Querier) ([]message.Message, error) {
	if len(it.buf) == 0 {
		if err := it.fill(ctx, q); err != nil {
			return nil, err
		}
	}
	return it.take(len(it.buf)), nil
}

// fill reads the page after the cursor into buf through q; io.EOF when
// there is none.
func (it *Iterator) fill(ctx context.Context, q Querier) error {
	if it.done {
		return io.EOF
	}
	if q == nil {
		return errors.New("backfill: nil Querier")
	}
	sql, args := it.sqlFirst, []any{pgx.QueryResultFormats{pgx.TextFormatCode}}
	if it.cursor != nil {
		sql = it.sqlAfter
		for _, v := range it.cursor {
			args = append(args, v)
		}
	}
	args = append(args, it.limit)
	qname := pgx.Identifier{it.schema, it.table}.Sanitize()
	start := time.Now()
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return readErr(qname, err)
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	if len(fds) != len(it.columns) {
		// pgx reports most query errors (a bad cursor value, permission
		// denied) through rows.Err, with no columns described.
		rows.Close()
		if err := rows.Err(); err != nil {
			return readErr(qname, err)
		}
		return fmt.Errorf("backfill: read %s: got %d columns, want %d", qname, len(fds), len(it.columns))
	}
	// A column's type can change while a backfill runs (ALTER TABLE … TYPE):
	// learn any type not seen yet. Known types cost no query.
	oids := make([]uint32, len(fds))
	for i, fd := range fds {
		oids[i] = fd.DataTypeOID
	}
	if err := it.mapper.Resolve(ctx, q, oids...); err != nil {
		return readErr(qname, err)
	}
	msgs, keys, size, err := it.readPage(rows, oids)
	if err != nil {
		return readErr(qname, err)
	}
	limit := it.limit
	if it.adapt {
		it.limit = nextChunkSize(len(msgs), size, time.Since(start))
	}
	if len(msgs) < limit {
		it.done = true
	}
	if len(msgs) == 0 {
		return io.EOF
	}
	it.buf, it.bufKeys = msgs, keys
	return nil
}

// readErr is the error of reading a page of table qname. A connection
// closed between messages can surface as io.EOF, which callers take for the
// end of the table: it is reported as io.ErrUnexpectedEOF instead.
func readErr(qname string, err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("backfill: read %s: %w (%v)", qname, io.ErrUnexpectedEOF, err)
	}
	return fmt.Errorf("backfill: read %s: %w", qname, err)
}

// take removes the first n buffered messages and moves the cursor past them.
func (it *Iterator) take(n int) []message.Message {
	nk := len(it.orderIdx)
	it.cursor = Cursor(it.bufKeys[(n-1)*nk : n*nk : n*nk])
	out := it.buf[:n:n]
	it.buf, it.bufKeys = it.buf[n:], it.bufKeys[n*nk:]
	if len(it.buf) == 0 {
		it.buf, it.bufKeys = nil, nil
	}
	return out
}
