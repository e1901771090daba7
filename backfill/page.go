package backfill

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walrelay/walrelay/internal/pgvalue"
	"github.com/walrelay/walrelay/message"
)

// pageDecoder turns a page's rows into read messages. Its arena holds the
// decoded values, read keys and cursors of many rows in a few blocks, so a
// row costs two allocations (its record map) and the page one (its
// messages), whatever its columns.
type pageDecoder struct {
	arena   pgvalue.Arena
	scratch []byte // a read key being built
	pkv     []any  // a row's key values
}

// readPage reads every row of rows and returns them as read messages with,
// for each, its cursor (len(orderIdx) strings per row), and the size of the
// rows' values.
func (it *Iterator) readPage(rows pgx.Rows, oids []uint32) (msgs []message.Message, keys []string, size int, err error) {
	read := it.now().UTC()
	nk := len(it.orderIdx)
	msgs = make([]message.Message, 0, it.limit)
	keys = make([]string, 0, it.limit*nk)
	for rows.Next() {
		if len(msgs) == cap(msgs) {
			break // a page never has more rows than asked for
		}
		raw := rows.RawValues()
		for _, v := range raw {
			size += len(v)
		}
		msgs = msgs[:len(msgs)+1]
		if keys, err = it.decodeRow(&msgs[len(msgs)-1], keys, raw, oids, read); err != nil {
			return nil, nil, 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, 0, err
	}
	return msgs, keys, size, nil
}

// decodeRow decodes one row's raw values (one per column: fill checked the
// result's columns) into m, which is zero, and appends the row's cursor to
// keys.
func (it *Iterator) decodeRow(m *message.Message, keys []string, raw [][]byte, oids []uint32, read time.Time) ([]string, error) {
	d := &it.dec
	a := &d.arena
	rec := make(map[string]any, len(it.columns))
	for i, name := range it.columns {
		if raw[i] == nil {
			rec[name] = nil
			continue
		}
		v, err := it.mapper.DecodeIn(a, oids[i], raw[i])
		if err != nil && it.undecodable != nil {
			v, err = it.undecodable(name, raw[i], err)
		}
		if err != nil {
			return keys, fmt.Errorf("column %s: %w", name, err)
		}
		rec[name] = v
	}
	for _, idx := range it.orderIdx {
		keys = append(keys, a.String(raw[idx]))
	}
	if len(d.pkv) != len(it.keyIdx) {
		d.pkv = make([]any, len(it.keyIdx))
	}
	for j, idx := range it.keyIdx {
		d.pkv[j] = rec[it.columns[idx]]
	}
	d.scratch = message.AppendReadKey(d.scratch[:0], it.id, d.pkv...)

	// Field by field: m is zeroed memory, and a whole-struct copy would
	// write (with write barriers while the collector runs) every zero field.
	m.Record = rec
	m.Action = message.ActionRead
	md := &m.Metadata
	md.TableSchema, md.TableName = it.schema, it.table
	md.IdempotencyKey = a.String(d.scratch)
	md.CommitTimestamp = read
	//lint:ignore SA1019 the deprecated mirror is still filled
	md.DatabaseName = it.database.Name
	md.Consumer, md.Database = it.consumer, it.database
	md.SetPrimaryKey(it.key...) // shared, not copied: Metadata hands out copies
	md.SetColumns(it.columns...)
	return keys, nil
}
