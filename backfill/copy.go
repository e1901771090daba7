package backfill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walrelay/walrelay/message"
)

// Copier is a [Querier] that can also run COPY … TO STDOUT, writing each
// row's COPY data to w. An Iterator on a Copier reads its pages with COPY,
// which Postgres produces about twice as fast as query results; the values,
// keys and cursors are the same either way. *pgx.Conn, pgx.Tx and
// *pgxpool.Pool are used this way without implementing it; implement it on a
// wrapper Querier to give the Iterator its connection.
type Copier interface {
	Querier
	CopyTo(ctx context.Context, w io.Writer, sql string) (pgconn.CommandTag, error)
}

// copyFunc runs one COPY … TO STDOUT; nil when the Querier cannot.
type copyFunc func(ctx context.Context, w io.Writer, sql string) (pgconn.CommandTag, error)

// copierOf finds a way to run COPY through q, or returns nil.
func copierOf(q Querier) copyFunc {
	switch c := q.(type) {
	case Copier:
		return c.CopyTo
	case *pgx.Conn:
		return c.PgConn().CopyTo
	case pgx.Tx:
		return func(ctx context.Context, w io.Writer, sql string) (pgconn.CommandTag, error) {
			return c.Conn().PgConn().CopyTo(ctx, w, sql)
		}
	case *pgxpool.Pool:
		return func(ctx context.Context, w io.Writer, sql string) (pgconn.CommandTag, error) {
			conn, err := c.Acquire(ctx)
			if err != nil {
				return pgconn.CommandTag{}, err
			}
			defer conn.Release()
			return conn.Conn().PgConn().CopyTo(ctx, w, sql)
		}
	}
	return nil
}

// copyPlan is what the COPY path needs beyond the queries: the types the
// query path would decode with, and a check that they still hold.
type copyPlan struct {
	run      copyFunc
	oids     []uint32 // result column types, as the query's row description gives them
	checkSQL string   // one row: the columns' current types, and a lock on the table
	checkRow []byte   // that row, in COPY text, when oids were learned
	selSQL   string   // select list and from, as in buildQueries
	order    []catalogColumn
	filter   string
}

// checkSQL returns a query whose one row lists the read columns' types; it
// also takes the table's ACCESS SHARE lock, so that no ALTER TABLE can
// change them before the page's query (in the same transaction) runs.
func buildCheckSQL(qname string, columns []string) string {
	var names strings.Builder
	names.WriteString("array[")
	for i, c := range columns {
		if i > 0 {
			names.WriteString(", ")
		}
		names.WriteString(quoteLiteral(c))
	}
	names.WriteString("]::text[]")
	return "select (select string_agg(a.atttypid::text, ',' order by a.attnum) from pg_catalog.pg_attribute a" +
		" where a.attrelid = " + quoteLiteral(qname) + "::regclass and not a.attisdropped and a.attname = any(" + names.String() + "))," +
		" (select count(*) from (select from " + qname + " limit 0) z)"
}

// quoteLiteral quotes s as an SQL string literal whatever
// standard_conforming_strings is.
func quoteLiteral(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 3)
	b.WriteString("E'")
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		default:
			b.WriteByte(s[i])
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// prepareCopy learns the result types of the page query and the check row,
// so that pages can be read with COPY, which reports no types. It leaves
// it.copy nil when q cannot COPY.
func (it *Iterator) prepareCopy(ctx context.Context, q Querier, qname string, order []catalogColumn, where string) error {
	run := copierOf(q)
	if run == nil {
		return nil
	}
	p := &copyPlan{run: run, order: order, checkSQL: buildCheckSQL(qname, it.columns)}
	var types string
	var zero int64
	rows, err := q.Query(ctx, p.checkSQL)
	if err == nil {
		_, err = pgx.ForEachRow(rows, []any{&types, &zero}, func() error { return nil })
	}
	if err != nil {
		return fmt.Errorf("backfill: %s: column types: %w", qname, err)
	}
	p.checkRow = []byte(types + "\t0\n")
	rows, err = q.Query(ctx, it.sqlFirst, pgx.QueryResultFormats{pgx.TextFormatCode}, 0)
	if err != nil {
		return fmt.Errorf("backfill: %s: describe query: %w", qname, err)
	}
	for _, fd := range rows.FieldDescriptions() {
		p.oids = append(p.oids, fd.DataTypeOID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("backfill: %s: describe query: %w", qname, err)
	}
	if len(p.oids) != len(it.columns) {
		return fmt.Errorf("backfill: %s: query has %d columns, want %d", qname, len(p.oids), len(it.columns))
	}
	if err := it.mapper.Resolve(ctx, q, p.oids...); err != nil {
		return fmt.Errorf("backfill: %s: %w", qname, err)
	}
	var sel strings.Builder
	sel.WriteString("select ")
	for i, c := range it.columns {
		if i > 0 {
			sel.WriteString(", ")
		}
		sel.WriteString(pgx.Identifier{c}.Sanitize())
	}
	sel.WriteString(" from ")
	sel.WriteString(qname)
	p.selSQL = sel.String()
	if where != "" {
		p.filter = "(" + where + ")"
	}
	it.copy = p
	return nil
}

// copySQL is the COPY statement for the page after cursor (nil: the first),
// preceded by the type check: two statements run as one transaction.
func (p *copyPlan) copySQL(cursor Cursor, limit int) string {
	var b strings.Builder
	b.WriteString("copy (")
	b.WriteString(p.checkSQL)
	b.WriteString(") to stdout; copy (")
	b.WriteString(p.selSQL)
	var keys strings.Builder
	for i, c := range p.order {
		if i > 0 {
			keys.WriteString(", ")
		}
		keys.WriteString(pgx.Identifier{c.name}.Sanitize())
	}
	conds := 0
	if cursor != nil {
		b.WriteString(" where (")
		b.WriteString(keys.String())
		b.WriteString(") > (")
		for i, c := range p.order {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteLiteral(cursor[i]))
			b.WriteString("::text::")
			b.WriteString(c.typ)
		}
		b.WriteString(")")
		conds++
	}
	if p.filter != "" {
		if conds > 0 {
			b.WriteString(" and ")
		} else {
			b.WriteString(" where ")
		}
		b.WriteString(p.filter)
	}
	b.WriteString(" order by ")
	b.WriteString(keys.String())
	b.WriteString(" limit ")
	b.WriteString(strconv.Itoa(limit))
	b.WriteString(") to stdout")
	return b.String()
}

// errTypesChanged: a column's type changed since the plan was made; the
// page is read with a query instead.
var errTypesChanged = errors.New("column types changed")

// fillCopy reads the page after the cursor with COPY into buf. It returns
// errTypesChanged, having read nothing, when the columns' types are no
// longer those the plan decodes.
func (it *Iterator) fillCopy(ctx context.Context) error {
	qname := pgx.Identifier{it.schema, it.table}.Sanitize()
	pr := newPageReader(it)
	_, err := it.copy.run(ctx, pr, it.copy.copySQL(it.cursor, it.limit))
	if ferr := pr.finish(); err == nil {
		err = ferr
	}
	if pr.changed {
		return errTypesChanged
	}
	if err != nil {
		return fmt.Errorf("backfill: read %s: %w", qname, err)
	}
	if len(pr.msgs) < it.limit {
		it.done = true
	}
	if len(pr.msgs) == 0 {
		return io.EOF
	}
	it.buf, it.bufKeys = pr.msgs, pr.keys
	return nil
}

// chunkSize is the size of the buffers a page's COPY data is gathered in.
// Decoded values share them, so they are never reused.
const chunkSize = 64 << 10

// pageReader receives a page's COPY data (one Write per row, as Postgres
// sends it, though it does not rely on that) and gathers it in buffers of
// its own; a goroutine decodes the complete lines, in place, while more
// arrive. The first line is the check row. Write never fails: an error
// would close the connection, so a decoding error is kept, the rest of the
// page dropped, and the error reported by finish.
type pageReader struct {
	it      *Iterator
	read    time.Time
	checked bool   // the check row was seen
	changed bool   // and it did not match
	buf     []byte // the current buffer; buf[start:] is not handed off yet
	start   int
	lines   chan []byte   // complete lines for the decoder
	done    chan struct{} // closed when the decoder has finished
	err     error         // the decoder's first error, read after done

	// Owned by the decoder.
	msgs []message.Message
	keys []string
	pkv  []any
}

// handOff is how many bytes of complete lines Write gathers before it hands
// them to the decoder.
const handOff = 16 << 10

func newPageReader(it *Iterator) *pageReader {
	pr := &pageReader{
		it:    it,
		read:  it.now().UTC(),
		pkv:   make([]any, len(it.keyIdx)),
		msgs:  make([]message.Message, 0, it.limit),
		keys:  make([]string, 0, it.limit*len(it.orderIdx)),
		lines: make(chan []byte, 64),
		done:  make(chan struct{}),
	}
	go pr.decode()
	return pr
}

// decode decodes what Write hands off until finish closes lines.
func (pr *pageReader) decode() {
	defer close(pr.done)
	for b := range pr.lines {
		for pr.err == nil && len(b) > 0 {
			i := bytes.IndexByte(b, '\n')
			pr.err = pr.line(b[:i:i])
			b = b[i+1:]
		}
	}
}

func (pr *pageReader) Write(p []byte) (int, error) {
	if pr.changed {
		return len(p), nil
	}
	if !pr.checked {
		if bytes.Equal(p, pr.it.copy.checkRow) { // the usual case: one write per row
			pr.checked = true
			return len(p), nil
		}
	}
	if len(pr.buf)+len(p) > cap(pr.buf) {
		pr.send(false)
		tail := pr.buf[pr.start:]
		buf := make([]byte, 0, max(chunkSize, 2*(len(tail)+len(p))))
		pr.buf, pr.start = append(buf, tail...), 0
	}
	pr.buf = append(pr.buf, p...)
	if !pr.checked {
		i := bytes.IndexByte(pr.buf[pr.start:], '\n')
		if i < 0 {
			return len(p), nil
		}
		pr.checked = true
		pr.changed = !bytes.Equal(pr.buf[pr.start:pr.start+i+1], pr.it.copy.checkRow)
		pr.start += i + 1
	}
	if len(pr.buf)-pr.start >= handOff {
		pr.send(false)
	}
	return len(p), nil
}

// send hands the complete lines gathered so far to the decoder; all of
// them, complete or not, when last.
func (pr *pageReader) send(last bool) {
	b := pr.buf[pr.start:]
	if !last {
		b = b[:bytes.LastIndexByte(b, '\n')+1]
	}
	if len(b) > 0 {
		pr.lines <- b[:len(b):len(b)]
		pr.start += len(b)
	}
}

// finish waits for the decoder and reports what Write could not: a
// decoding error, a missing check row, or a last line without its newline.
// It must be called once Write is done, whatever CopyTo returned.
func (pr *pageReader) finish() error {
	var partial bool
	if !pr.changed {
		partial = len(pr.buf) > pr.start && pr.buf[len(pr.buf)-1] != '\n'
		if !partial {
			pr.send(true)
		}
	}
	close(pr.lines)
	<-pr.done
	switch {
	case pr.err != nil:
		return pr.err
	case !pr.checked:
		return errors.New("copy: no type check row")
	case partial:
		return errors.New("copy: data ends inside a row")
	}
	return nil
}

// line decodes one row of COPY text: fields separated by tabs, \N for
// NULL, backslash escapes otherwise.
func (pr *pageReader) line(line []byte) error {
	it := pr.it
	rec := make(map[string]any, len(it.columns))
	nk := len(it.orderIdx)
	keys := len(pr.keys)
	pr.keys = append(pr.keys, make([]string, nk)...)
	for i, name := range it.columns {
		var f []byte
		if i == len(it.columns)-1 {
			f, line = line, nil
			if bytes.IndexByte(f, '\t') >= 0 {
				return fmt.Errorf("copy: row has more than %d fields", len(it.columns))
			}
		} else {
			j := bytes.IndexByte(line, '\t')
			if j < 0 {
				return fmt.Errorf("copy: row has %d fields, want %d", i+1, len(it.columns))
			}
			f, line = line[:j:j], line[j+1:]
		}
		if len(f) == 2 && f[0] == '\\' && f[1] == 'N' {
			rec[name] = nil
			continue
		}
		if j := bytes.IndexByte(f, '\\'); j >= 0 {
			f = unescapeCopy(f, j)
		}
		for k, idx := range it.orderIdx {
			if idx == i {
				pr.keys[keys+k] = string(f)
			}
		}
		v, err := it.mapper.DecodeOwned(it.copy.oids[i], f)
		if err != nil {
			return fmt.Errorf("column %s: %w", name, err)
		}
		rec[name] = v
	}
	pr.msgs = it.appendRead(pr.msgs, rec, pr.pkv, pr.read)
	return nil
}

// unescapeCopy undoes COPY text escaping in place, from f[j], the first
// backslash, and returns the shortened field.
func unescapeCopy(f []byte, j int) []byte {
	w := j
	for r := j; r < len(f); {
		c := f[r]
		if c != '\\' || r+1 == len(f) {
			f[w] = c
			w++
			r++
			continue
		}
		c = f[r+1]
		r += 2
		switch c {
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'v':
			c = '\v'
		case '0', '1', '2', '3', '4', '5', '6', '7':
			c -= '0'
			for n := 0; n < 2 && r < len(f) && f[r] >= '0' && f[r] <= '7'; n++ {
				c = c<<3 | (f[r] - '0')
				r++
			}
		case 'x':
			if r < len(f) && isHex(f[r]) {
				c = unhex(f[r])
				r++
				if r < len(f) && isHex(f[r]) {
					c = c<<4 | unhex(f[r])
					r++
				}
			}
		}
		f[w] = c
		w++
	}
	return f[:w:w]
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
