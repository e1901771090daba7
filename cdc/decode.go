package cdc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/walrelay/walrelay/idempotency"
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
	idx         int
	annotations map[string]any
}

// handle decodes one pgoutput message received at lsn.
func (s *Stream) handle(lsn message.LSN, data []byte) error {
	s.inLSN, s.inSize = lsn, int64(len(data))
	msg, err := s.parser.Parse(data)
	if err != nil {
		return &DecodeError{LSN: lsn, Err: err}
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		s.tx = txState{active: true, xid: m.Xid, commitLSN: message.LSN(m.FinalLSN), commitTime: m.CommitTime.UTC()}
		s.decoded.add(m.Xid)
		s.mu.Lock()
		s.inTx = true
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
		return s.change(rel, message.ActionUpdate, rec, changes)
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
	s.pending = append(s.pending, pendingTx{lastSeq: s.emitted, end: end})
}

// change delivers a row change, after the backfills in flight took note
// of it. Changes to the stream's own progress table are not delivered.
func (s *Stream) change(rel *relation, action message.Action, rec, changes map[string]any) error {
	if rel.internal {
		return nil
	}
	m := s.message(rel, action, rec, changes)
	s.chunks.observe(&m, s.tx.xid)
	return s.emit(m, s.inSize)
}

func (s *Stream) relation(lsn message.LSN, m *pglogrepl.RelationMessage) error {
	rel := &relation{schema: m.Namespace, name: m.RelationName}
	ps, pt := s.progressTable()
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
	s.tx.idx++
	return message.Message{
		Record:  rec,
		Changes: changes,
		Action:  action,
		Metadata: message.Metadata{
			TableSchema:            rel.schema,
			TableName:              rel.name,
			IdempotencyKey:         idempotency.ChangeKey(s.tx.commitLSN, idx),
			CommitTimestamp:        s.tx.commitTime,
			CommitLSN:              s.tx.commitLSN,
			CommitIdx:              idx,
			DatabaseName:           s.database.Name,
			Consumer:               s.consumer,
			Database:               s.database,
			TransactionAnnotations: s.tx.annotations,
			PrimaryKey:             rel.primaryKey,
			Columns:                rel.columns,
		},
	}
}

// value decodes one column of a tuple.
func (s *Stream) value(rel *relation, i int, c *pglogrepl.TupleDataColumn) (any, error) {
	switch c.DataType {
	case pglogrepl.TupleDataTypeNull:
		return nil, nil
	case pglogrepl.TupleDataTypeText:
		// The parser copied the tuple for this row alone: values may share it.
		v, err := s.mapper.DecodeOwned(rel.oids[i], c.Data)
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
			rec[rel.columns[i]] = message.UnchangedToast
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

// changes returns the old values of the columns an update changed: all
// columns with REPLICA IDENTITY FULL, the key columns when the key changed,
// and an empty map without an old tuple.
func (s *Stream) changes(rel *relation, t, old *pglogrepl.TupleData, full bool) (map[string]any, error) {
	changes := map[string]any{}
	if old == nil {
		return changes, nil
	}
	for i, oc := range old.Columns {
		if !full && !rel.key[i] {
			continue // not sent: the 'n' is not a real NULL
		}
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

// oldRow decodes a deleted row: every column with REPLICA IDENTITY FULL,
// only the key columns otherwise (the others are not sent, and are left out
// rather than reported as NULL).
func (s *Stream) oldRow(rel *relation, old *pglogrepl.TupleData, full bool) (map[string]any, error) {
	if err := checkWidth(rel, old); err != nil {
		return nil, err
	}
	rec := make(map[string]any, len(old.Columns))
	for i, c := range old.Columns {
		if !full && !rel.key[i] {
			continue
		}
		if c.DataType == pglogrepl.TupleDataTypeToast {
			rec[rel.columns[i]] = message.UnchangedToast
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
		s.cfg.Logger.Warn("truncate skipped (Config.Truncate = TruncateSkip)", "tables", names, "commit_lsn", s.tx.commitLSN.String())
		return nil
	case TruncateFail:
		return &TruncateError{Tables: names, CommitLSN: s.tx.commitLSN}
	}
	for _, rel := range rels {
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
			s.tx.annotations = nil
			return
		}
		var ann map[string]any
		dec := json.NewDecoder(bytes.NewReader(m.Content))
		dec.UseNumber()
		if err := dec.Decode(&ann); err != nil || dec.More() || ann == nil {
			s.cfg.Logger.Warn("invalid transaction annotations: want a JSON object; annotations cleared",
				"commit_lsn", s.tx.commitLSN.String(), "err", err)
			ann = nil
		}
		s.tx.annotations = ann
	case prefixAnnotationsClear, prefixWalrelayAnnotationClr:
		s.tx.annotations = nil
	}
}
