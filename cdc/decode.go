package cdc

//lint:file-ignore SA1019 Metadata.DatabaseName, deprecated, is still filled and checked

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/message"
)

// Logical-message prefixes the stream understands. The sequin: prefixes
// let applications instrumented for Sequin work unchanged.
const (
	prefixAnnotationsSet        = "sequin:transaction_annotations.set"
	prefixAnnotationsClear      = "sequin:transaction_annotations.clear"
	prefixWalrelayAnnotationSet = "walrelay:transaction_annotations.set"
	prefixWalrelayAnnotationClr = "walrelay:transaction_annotations.clear"
	prefixHeartbeat             = "walrelay:heartbeat"
)

// relation is a published table as the latest RELATION message described it.
type relation struct {
	schema, name string
	columns      []string // names, in table order; shared by the messages
	oids         []uint32
	key          []bool   // replica-identity key flags
	primaryKey   []string // primary-key columns in key order; shared
	internal     bool     // the stream's own backfill progress table
}

func (r *relation) qualified() string { return r.schema + "." + r.name }

// txState is the transaction being received.
type txState struct {
	active      bool
	xid         uint32
	commitLSN   message.LSN
	commitTime  time.Time
	idx         int // commit_idx of the next change: Sequin's count (see handle)
	annotations map[string]any
	rawAnn      json.RawMessage // annotations that are JSON but not an object
}

// handle decodes one pgoutput message received at lsn. Inside a
// transaction, every insert, update, delete, truncate and logical message
// takes one commit_idx, delivered or not, as Sequin counts them
// (slot_producer.ex @advance_idx_types), so that the same WAL gives the
// same idempotency keys.
func (s *Stream) handle(lsn message.LSN, data []byte) error {
	s.inLSN, s.inSize = lsn, int64(len(data))
	msg, err := s.parser.Parse(data)
	if err != nil {
		return &DecodeError{LSN: lsn, Err: err}
	}
	err = s.dispatch(lsn, msg)
	if s.tx.active {
		switch msg.(type) {
		case *pglogrepl.InsertMessage, *pglogrepl.UpdateMessage, *pglogrepl.DeleteMessage,
			*pglogrepl.TruncateMessage, *pglogrepl.LogicalDecodingMessage:
			s.tx.idx++
		}
	}
	return err
}

// dispatch handles one parsed pgoutput message.
func (s *Stream) dispatch(lsn message.LSN, msg pglogrepl.Message) error {
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		s.tx = txState{active: true, xid: m.Xid, commitLSN: message.LSN(m.FinalLSN), commitTime: m.CommitTime.UTC()}
		s.decoded.add(m.Xid)
		s.mu.Lock()
		s.inTx = true
		s.st.txTime = s.tx.commitTime
		s.mu.Unlock()
	case *pglogrepl.CommitMessage:
		s.tx.active = false
		s.commit(message.LSN(m.TransactionEndLSN))
	case *pglogrepl.RelationMessage:
		return s.relation(lsn, m)
	case *pglogrepl.InsertMessage:
		rel, err := s.rel(lsn, m.RelationID)
		if err != nil {
			return err
		}
		rec, err := s.row(rel, m.Tuple, nil, false)
		if err != nil {
			return decodeError(lsn, rel, err)
		}
		return s.change(rel, message.ActionInsert, rec, nil)
	case *pglogrepl.UpdateMessage:
		rel, err := s.rel(lsn, m.RelationID)
		if err != nil {
			return err
		}
		full := m.OldTupleType == pglogrepl.UpdateMessageTupleTypeOld
		rec, err := s.row(rel, m.NewTuple, m.OldTuple, full)
		if err != nil {
			return decodeError(lsn, rel, err)
		}
		changes, err := s.changes(rel, m.NewTuple, m.OldTuple, full)
		if err != nil {
			return decodeError(lsn, rel, err)
		}
		var oldKey map[string]any
		if m.OldTuple != nil && s.chunks.active.Load() > 0 {
			// A backfill in flight needs the key the row moved away from,
			// which changes no longer carries without FULL.
			if oldKey, err = s.keyOf(rel, m.OldTuple, full); err != nil {
				return decodeError(lsn, rel, err)
			}
		}
		return s.changeFrom(rel, message.ActionUpdate, rec, changes, oldKey)
	case *pglogrepl.DeleteMessage:
		rel, err := s.rel(lsn, m.RelationID)
		if err != nil {
			return err
		}
		full := m.OldTupleType == pglogrepl.DeleteMessageTupleTypeOld
		rec, err := s.oldRow(rel, m.OldTuple, full)
		if err != nil {
			return decodeError(lsn, rel, err)
		}
		return s.change(rel, message.ActionDelete, rec, nil)
	case *pglogrepl.TruncateMessage:
		return s.truncate(lsn, m)
	case *pglogrepl.LogicalDecodingMessage:
		if !m.Transactional && m.Prefix == prefixWatermark {
			return s.watermark(message.LSN(m.LSN), string(m.Content))
		}
		s.logicalMessage(m)
	}
	// TYPE and ORIGIN messages need nothing: user-defined types are resolved
	// from the catalog when a relation arrives.
	return nil
}

// commit queues the transaction for acknowledgement; if every message up
// to it is already acknowledged (it had none), the slot may advance now.
func (s *Stream) commit(end message.LSN) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inTx = false
	s.st.transactions++
	s.st.lastMsg.Store(time.Now().UnixNano())
	s.fo.committed = end
	if end > s.received {
		s.received = end
	}
	if len(s.pending) == 0 && s.emitted <= s.acked {
		if end > s.flushed {
			s.flushed = end
		}
		return
	}
	s.pending = append(s.pending, pendingTx{lastSeq: s.emitted, end: end, commitTime: s.st.txTime})
}

// change delivers a row change, after the backfills in flight took note
// of it. Changes to the stream's own progress table are not delivered.
func (s *Stream) change(rel *relation, action message.Action, rec, changes map[string]any) error {
	return s.changeFrom(rel, action, rec, changes, nil)
}

// changeFrom is change for an update whose old key values (oldKey, nil
// when unknown) a backfill in flight may need.
func (s *Stream) changeFrom(rel *relation, action message.Action, rec, changes, oldKey map[string]any) error {
	if rel.internal {
		return nil
	}
	m := s.message(rel, action, rec, changes)
	s.chunks.observe(&m, s.tx.xid, oldKey)
	return s.emit(m, s.inSize)
}

// keyOf decodes the primary-key columns sent in an old tuple.
func (s *Stream) keyOf(rel *relation, old *pglogrepl.TupleData, full bool) (map[string]any, error) {
	if err := checkWidth(rel, old); err != nil {
		return nil, err
	}
	key := make(map[string]any, len(rel.primaryKey))
	for i, c := range old.Columns {
		if (!full && !rel.key[i]) || c.DataType != pglogrepl.TupleDataTypeText {
			continue
		}
		if !slices.Contains(rel.primaryKey, rel.columns[i]) {
			continue
		}
		v, err := s.value(rel, i, c)
		if err != nil {
			return nil, err
		}
		key[rel.columns[i]] = v
	}
	return key, nil
}

func (s *Stream) relation(lsn message.LSN, m *pglogrepl.RelationMessage) error {
	rel := &relation{schema: m.Namespace, name: m.RelationName}
	ps, pt := s.progress.Table()
	rel.internal = m.Namespace == ps && m.RelationName == pt
	for _, c := range m.Columns {
		rel.columns = append(rel.columns, c.Name)
		rel.oids = append(rel.oids, c.DataType)
		rel.key = append(rel.key, c.Flags&1 != 0)
	}
	ctx, cancel := s.closingContext(30 * time.Second)
	defer cancel()
	if err := s.mapper.Resolve(ctx, s.pool, rel.oids...); err != nil {
		return fmt.Errorf("cdc: resolve column types of %s: %w", rel.qualified(), err)
	}
	rows, err := s.pool.Query(ctx, `select a.attname from pg_index i
		join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
		where i.indrelid = $1 and i.indisprimary
		order by array_position(i.indkey::int2[], a.attnum)`, m.RelationID)
	if err != nil {
		return fmt.Errorf("cdc: primary key of %s: %w", rel.qualified(), err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("cdc: primary key of %s: %w", rel.qualified(), err)
		}
		rel.primaryKey = append(rel.primaryKey, name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cdc: primary key of %s: %w", rel.qualified(), err)
	}
	// A partition's changes are reported under its root table (a
	// publication without publish_via_partition_root sends the partition).
	var rootSchema, rootName *string
	if err := s.pool.QueryRow(ctx, `select n.nspname::text, c.relname::text from pg_catalog.pg_class c
		join pg_catalog.pg_namespace n on n.oid = c.relnamespace
		where c.oid = pg_catalog.pg_partition_root($1::oid::regclass) and c.oid <> $1::oid`, m.RelationID).Scan(&rootSchema, &rootName); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("cdc: partition root of %s: %w", rel.qualified(), err)
	}
	if rootSchema != nil && rootName != nil {
		rel.schema, rel.name = *rootSchema, *rootName
	}
	if len(rel.primaryKey) == 0 { // no primary key: the replica identity
		for i, k := range rel.key {
			if k {
				rel.primaryKey = append(rel.primaryKey, rel.columns[i])
			}
		}
	}
	s.rels[m.RelationID] = rel
	return nil
}

func (s *Stream) rel(lsn message.LSN, id uint32) (*relation, error) {
	rel, ok := s.rels[id]
	if !ok {
		return nil, &DecodeError{LSN: lsn, Err: fmt.Errorf("change to relation %d before its RELATION message", id)}
	}
	return rel, nil
}

func (s *Stream) message(rel *relation, action message.Action, rec, changes map[string]any) message.Message {
	idx := s.tx.idx
	m := message.Message{
		Record:  rec,
		Changes: changes,
		Action:  action,
		Metadata: message.Metadata{
			TableSchema:               rel.schema,
			TableName:                 rel.name,
			IdempotencyKey:            s.changeKey(idx),
			CommitTimestamp:           s.tx.commitTime,
			CommitLSN:                 s.tx.commitLSN,
			CommitIdx:                 idx,
			DatabaseName:              s.database.Name,
			Consumer:                  s.consumer,
			Database:                  s.database,
			TransactionAnnotations:    s.tx.annotations,
			RawTransactionAnnotations: s.tx.rawAnn,
		},
	}
	// Shared with the relation cache without copying: Metadata hands out
	// only copies of them.
	m.Metadata.SetPrimaryKey(rel.primaryKey...)
	m.Metadata.SetColumns(rel.columns...)
	return m
}

// changeKey is message.ChangeKey of the current transaction's change idx,
// stored in the arena.
func (s *Stream) changeKey(idx int) string {
	s.keyBuf = message.AppendChangeKey(s.keyBuf[:0], s.tx.commitLSN, idx)
	return s.arena.String(s.keyBuf)
}

// value decodes one column of a tuple.
func (s *Stream) value(rel *relation, i int, c *pglogrepl.TupleDataColumn) (any, error) {
	switch c.DataType {
	case pglogrepl.TupleDataTypeNull:
		return nil, nil
	case pglogrepl.TupleDataTypeText:
		// Values are stored in the stream's arena: a row's scalars cost no
		// allocation of their own most of the time.
		v, err := s.mapper.DecodeIn(&s.arena, rel.oids[i], c.Data)
		if err != nil {
			return s.undecodable(rel, i, c.Data, err)
		}
		return v, nil
	default:
		return nil, fmt.Errorf("column %q: unexpected tuple data kind %q", rel.columns[i], c.DataType)
	}
}

func checkWidth(rel *relation, t *pglogrepl.TupleData) error {
	if len(t.Columns) != len(rel.columns) {
		return fmt.Errorf("tuple has %d columns, relation has %d", len(t.Columns), len(rel.columns))
	}
	return nil
}

// row decodes a new tuple. An unchanged TOASTed column ('u') is filled from
// the old tuple when it carries the value, else marked UnchangedToast.
func (s *Stream) row(rel *relation, t, old *pglogrepl.TupleData, full bool) (map[string]any, error) {
	if err := checkWidth(rel, t); err != nil {
		return nil, err
	}
	if old != nil {
		if err := checkWidth(rel, old); err != nil {
			return nil, err
		}
	}
	rec := make(map[string]any, len(t.Columns))
	for i, c := range t.Columns {
		if c.DataType == pglogrepl.TupleDataTypeToast {
			rec[rel.columns[i]] = message.UnchangedToast{}
			if old != nil && (full || rel.key[i]) && old.Columns[i].DataType == pglogrepl.TupleDataTypeText {
				v, err := s.value(rel, i, old.Columns[i])
				if err != nil {
					return nil, err
				}
				rec[rel.columns[i]] = v
			}
			continue
		}
		v, err := s.value(rel, i, c)
		if err != nil {
			return nil, err
		}
		rec[rel.columns[i]] = v
	}
	return rec, nil
}

// changes returns the old values of the columns an update changed, from
// the old row of a table with REPLICA IDENTITY FULL; without it (no old
// tuple, or only the old key of a key change) an empty map, as Sequin,
// which reads only full old rows (processor.ex old_tuple_data).
func (s *Stream) changes(rel *relation, t, old *pglogrepl.TupleData, full bool) (map[string]any, error) {
	changes := map[string]any{}
	if old == nil || !full {
		return changes, nil
	}
	for i, oc := range old.Columns {
		nc := t.Columns[i]
		if nc.DataType == pglogrepl.TupleDataTypeToast || oc.DataType == pglogrepl.TupleDataTypeToast {
			continue // unchanged
		}
		if nc.DataType == oc.DataType && bytes.Equal(nc.Data, oc.Data) {
			continue
		}
		v, err := s.value(rel, i, oc)
		if err != nil {
			return nil, err
		}
		changes[rel.columns[i]] = v
	}
	return changes, nil
}

// oldRow decodes a deleted row: every column. Without REPLICA IDENTITY
// FULL only the key columns are sent; the others are null, as Sequin and
// Debezium report them.
func (s *Stream) oldRow(rel *relation, old *pglogrepl.TupleData, full bool) (map[string]any, error) {
	if err := checkWidth(rel, old); err != nil {
		return nil, err
	}
	rec := make(map[string]any, len(old.Columns))
	for i, c := range old.Columns {
		if !full && !rel.key[i] {
			rec[rel.columns[i]] = nil
			continue
		}
		if c.DataType == pglogrepl.TupleDataTypeToast {
			rec[rel.columns[i]] = message.UnchangedToast{}
			continue
		}
		v, err := s.value(rel, i, c)
		if err != nil {
			return nil, err
		}
		rec[rel.columns[i]] = v
	}
	return rec, nil
}

func (s *Stream) truncate(lsn message.LSN, m *pglogrepl.TruncateMessage) error {
	var rels []*relation
	var names []string
	for _, id := range m.RelationIDs {
		rel, err := s.rel(lsn, id)
		if err != nil {
			return err
		}
		rels = append(rels, rel)
		names = append(names, rel.qualified())
	}
	switch s.cfg.Truncate {
	case TruncateSkip:
		s.cfg.Logger.Warn("truncate not delivered (Config.Truncate = TruncateSkip, the default)", "tables", names, "commit_lsn", s.tx.commitLSN.String())
		for _, rel := range rels {
			// Backfills in flight must still drop the rows they read.
			m := s.message(rel, message.ActionTruncate, nil, nil)
			s.chunks.observe(&m, s.tx.xid, nil)
		}
		return nil
	case TruncateFail:
		return &TruncateError{Tables: names, CommitLSN: s.tx.commitLSN}
	}
	for i, rel := range rels {
		if i > 0 {
			// Each table's message needs a key of its own: a TRUNCATE of n
			// tables takes n commit_idx values here (Sequin, which delivers
			// no truncates, counts one).
			s.tx.idx++
		}
		if err := s.change(rel, message.ActionTruncate, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// logicalMessage applies transaction annotations; other prefixes (the
// heartbeat among them) are ignored.
func (s *Stream) logicalMessage(m *pglogrepl.LogicalDecodingMessage) {
	if !m.Transactional || !s.tx.active {
		return
	}
	switch m.Prefix {
	case prefixAnnotationsSet, prefixWalrelayAnnotationSet:
		if s.annotationsTooLarge(m) {
			s.tx.annotations, s.tx.rawAnn = nil, nil
			return
		}
		var ann map[string]any
		var raw json.RawMessage
		if c := bytes.TrimSpace(m.Content); len(c) > 0 && c[0] != '{' && json.Valid(c) {
			// Any JSON passes through, as Sequin passes it; null clears.
			if string(c) != "null" {
				var buf bytes.Buffer
				_ = json.Compact(&buf, c) // valid: cannot fail
				raw = buf.Bytes()
			}
		} else {
			dec := json.NewDecoder(bytes.NewReader(m.Content))
			dec.UseNumber()
			if err := dec.Decode(&ann); err != nil || dec.More() || ann == nil {
				s.cfg.Logger.Warn("invalid transaction annotations: not JSON; annotations cleared",
					"commit_lsn", s.tx.commitLSN.String(), "err", err)
				ann = nil
			}
		}
		s.tx.annotations, s.tx.rawAnn = ann, raw
	case prefixAnnotationsClear, prefixWalrelayAnnotationClr:
		s.tx.annotations, s.tx.rawAnn = nil, nil
	}
}
