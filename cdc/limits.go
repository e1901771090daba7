package cdc

import (
	"errors"

	"github.com/jackc/pglogrepl"
	"github.com/walrelay/walrelay/message"
)

// decodeError is the error for a change of rel at lsn that could not be
// decoded; an error that already is a *DecodeError (a column's) is kept.
func decodeError(lsn message.LSN, rel *relation, err error) error {
	var de *DecodeError
	if errors.As(err, &de) {
		return err
	}
	return &DecodeError{LSN: lsn, Relation: rel.qualified(), Err: err}
}

// undecodable applies Config.Undecodable to column i of rel, whose text
// could not be decoded: an error that stops the stream, or the text itself,
// logged and handed to Config.DeadLetter.
func (s *Stream) undecodable(rel *relation, i int, text []byte, err error) (any, error) {
	de := &DecodeError{LSN: s.inLSN, Relation: rel.qualified(), Column: rel.columns[i], Err: err}
	if s.cfg.Undecodable != UndecodableText {
		return nil, de
	}
	s.cfg.Logger.Warn("undecodable value delivered as its text (Config.Undecodable)",
		"table", de.Relation, "column", de.Column, "lsn", de.LSN.String(), "commit_lsn", s.tx.commitLSN.String(), "err", err)
	if s.cfg.DeadLetter != nil {
		s.cfg.DeadLetter(de, append([]byte(nil), text...))
	}
	return string(text), nil
}

// undecodableRead is undecodable for the backfill reads of table, which
// have no LSN.
func (s *Stream) undecodableRead(table string) func(column string, text []byte, err error) (any, error) {
	return func(column string, text []byte, err error) (any, error) {
		de := &DecodeError{Relation: table, Column: column, Err: err}
		s.cfg.Logger.Warn("undecodable value in a backfill read delivered as its text (Config.Undecodable)",
			"table", table, "column", column, "err", err)
		if s.cfg.DeadLetter != nil {
			s.cfg.DeadLetter(de, append([]byte(nil), text...))
		}
		return string(text), nil
	}
}

// annotationsTooLarge reports, and logs, a transaction-annotations message
// larger than Config.MaxAnnotationBytes, which is then not decoded: any
// role that can log in may emit logical messages, and decoding JSON takes
// many times its size in memory. Its content is never copied.
func (s *Stream) annotationsTooLarge(m *pglogrepl.LogicalDecodingMessage) bool {
	if len(m.Content) <= s.cfg.MaxAnnotationBytes {
		return false
	}
	s.cfg.Logger.Warn("transaction annotations larger than Config.MaxAnnotationBytes dropped; annotations cleared",
		"prefix", m.Prefix, "bytes", len(m.Content), "max_bytes", s.cfg.MaxAnnotationBytes,
		"commit_lsn", s.tx.commitLSN.String(), "lsn", message.LSN(m.LSN).String())
	return true
}
