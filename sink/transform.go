package sink

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/walrelay/walrelay/message"
)

// Transform rewrites one message before it reaches a sink. It returns the
// message to deliver and true, or false to drop the message (a dropped
// message counts as delivered). An error stops the batch; [Map] makes it
// permanent unless it is marked with [Retryable].
//
// A Transform run by [Map] receives its own copy of the message's Record and
// Changes maps, so it may change those in place; values nested inside them,
// and the metadata maps, are shared with the caller and must be copied
// before they are changed. The column lists cannot be changed in place:
// Metadata.Columns and PrimaryKey return copies, and SetColumns and
// SetPrimaryKey replace them.
type Transform func(m message.Message) (message.Message, bool, error)

// Map returns a sink that passes each message through fn before handing the
// batch to next, in order. When fn fails the batch is not written and Write
// returns fn's error, marked [Permanent] unless fn marked it [Retryable]: a
// transform that failed once will fail the same way on a retry. Close closes
// next.
func Map(next Sink, fn Transform) Sink {
	return &mapper{next: next, fn: fn}
}

type mapper struct {
	next Sink
	fn   Transform
}

func (s *mapper) Write(ctx context.Context, msgs ...message.Message) error {
	if s.next == nil || s.fn == nil {
		return Permanent(errors.New("sink: map: nil sink or transform"))
	}
	out := make([]message.Message, 0, len(msgs))
	for _, m := range msgs {
		t, keep, err := s.fn(clone(m))
		if err != nil {
			err = fmt.Errorf("sink: map: %s.%s %s: %w", m.Metadata.TableSchema, m.Metadata.TableName, m.Metadata.IdempotencyKey, err)
			var r *retryable
			if errors.As(err, &r) {
				return err
			}
			return Permanent(err)
		}
		if keep {
			out = append(out, t)
		}
	}
	return s.next.Write(ctx, out...)
}

func (s *mapper) Close(ctx context.Context) error {
	if s.next == nil {
		return nil
	}
	return s.next.Close(ctx)
}

// clone copies the parts of m a Transform may change in place.
func clone(m message.Message) message.Message {
	m.Record = maps.Clone(m.Record)
	m.Changes = maps.Clone(m.Changes)
	return m
}

// retryable marks an error a retry may fix.
type retryable struct{ err error }

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

// Retryable marks an error of a [Transform] as one a retry may fix (a lookup
// that timed out), so that [Map] does not make it permanent. Retryable(nil)
// is nil.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &retryable{err}
}

// Chain returns a Transform that applies fns in order, stopping at the
// first that drops the message or fails.
func Chain(fns ...Transform) Transform {
	return func(m message.Message) (message.Message, bool, error) {
		for _, fn := range fns {
			var keep bool
			var err error
			if m, keep, err = fn(m); err != nil || !keep {
				return m, keep, err
			}
		}
		return m, true, nil
	}
}

// DropColumns removes the named columns from the record and the changes,
// like a Sequin transform that deletes keys. It never drops a message. Use
// it with [Map], which gives it copies to change.
func DropColumns(cols ...string) Transform {
	return func(m message.Message) (message.Message, bool, error) {
		for _, c := range cols {
			delete(m.Record, c)
			delete(m.Changes, c)
		}
		m.Metadata.SetColumns(slices.DeleteFunc(m.Metadata.Columns(), func(c string) bool { return slices.Contains(cols, c) })...)
		return m, true, nil
	}
}

// RenameColumns renames columns (old name to new name) in the record, the
// changes, and the column and primary-key lists. Renaming onto a column that
// is already there is an error. Use it with [Map].
func RenameColumns(names map[string]string) Transform {
	return func(m message.Message) (message.Message, bool, error) {
		var err error
		if m.Record, err = renameKeys(m.Record, names); err != nil {
			return m, false, fmt.Errorf("rename columns: record: %w", err)
		}
		if m.Changes, err = renameKeys(m.Changes, names); err != nil {
			return m, false, fmt.Errorf("rename columns: changes: %w", err)
		}
		m.Metadata.SetColumns(renameList(m.Metadata.Columns(), names)...)
		m.Metadata.SetPrimaryKey(renameList(m.Metadata.PrimaryKey(), names)...)
		return m, true, nil
	}
}

// renameList renames the names of list in place (a copy the caller owns).
func renameList(list []string, names map[string]string) []string {
	for i, c := range list {
		if n, ok := names[c]; ok {
			list[i] = n
		}
	}
	return list
}

func renameKeys(row map[string]any, names map[string]string) (map[string]any, error) {
	if row == nil {
		return nil, nil
	}
	out := make(map[string]any, len(row))
	for k, v := range row {
		if n, ok := names[k]; ok {
			k = n
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("two columns named %q", k)
		}
		out[k] = v
	}
	return out, nil
}

// Masked is the value [MaskColumns] writes in place of a masked column.
const Masked = "********"

// MaskColumns replaces the values of the named columns, in the record and
// the changes, with [Masked] (NULLs too, so that masking hides whether a
// value was set). Columns the message lacks are left out. Use it with [Map].
func MaskColumns(cols ...string) Transform {
	return func(m message.Message) (message.Message, bool, error) {
		for _, c := range cols {
			if _, ok := m.Record[c]; ok {
				m.Record[c] = Masked
			}
			if _, ok := m.Changes[c]; ok {
				m.Changes[c] = Masked
			}
		}
		return m, true, nil
	}
}
