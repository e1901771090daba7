package sink

import (
	"context"
	"errors"

	"github.com/walrelay/walrelay/message"
)

// Predicate reports whether a message should be kept.
type Predicate func(m message.Message) bool

// Filter returns a sink that passes to next only the messages keep returns
// true for, in their order (a batch left empty is still passed on, so that
// next reports a closed or cancelled state). Dropped messages count as delivered: a stream
// acknowledges them with the rest of the batch. Close closes next.
func Filter(next Sink, keep Predicate) Sink {
	return &filter{next: next, keep: keep}
}

type filter struct {
	next Sink
	keep Predicate
}

func (f *filter) Write(ctx context.Context, msgs ...message.Message) error {
	if f.next == nil || f.keep == nil {
		return Permanent(errors.New("sink: filter: nil sink or predicate"))
	}
	kept := msgs
	for i, m := range msgs {
		if f.keep(m) {
			continue
		}
		// The first dropped message: copy what was kept and go on.
		kept = append(make([]message.Message, 0, len(msgs)-1), msgs[:i]...)
		for _, m := range msgs[i+1:] {
			if f.keep(m) {
				kept = append(kept, m)
			}
		}
		break
	}
	return f.next.Write(ctx, kept...)
}

func (f *filter) Close(ctx context.Context) error {
	if f.next == nil {
		return nil
	}
	return f.next.Close(ctx)
}

// Tables keeps the messages of the named tables. A name is "schema.table"
// or, for the public schema, just "table", written as in SQL (see
// [message.ParseTable]): unquoted names are folded to lower case, so Orders
// and orders both keep the table orders; a name with upper case, a dot or
// other characters SQL allows only in quotes is written in double quotes, as
// in `"Sales"."Orders"` or `"my.schema".orders`. Tables panics on a name
// that is not a table name, as regexp.MustCompile panics on a bad pattern:
// a filter that silently matched nothing would drop every message; check
// names from configuration with message.ParseTable first.
func Tables(names ...string) Predicate {
	set := make(map[[2]string]bool, len(names))
	for _, n := range names {
		schema, table, err := message.ParseTable(n)
		if err != nil {
			panic("sink: Tables: " + err.Error())
		}
		if schema == "" {
			schema = "public"
		}
		set[[2]string{schema, table}] = true
	}
	return func(m message.Message) bool {
		return set[[2]string{m.Metadata.TableSchema, m.Metadata.TableName}]
	}
}

// Actions keeps the messages with one of the given actions.
func Actions(actions ...message.Action) Predicate {
	return func(m message.Message) bool {
		for _, a := range actions {
			if m.Action == a {
				return true
			}
		}
		return false
	}
}

// All keeps a message when every predicate keeps it (and always when there
// are none).
func All(preds ...Predicate) Predicate {
	return func(m message.Message) bool {
		for _, p := range preds {
			if !p(m) {
				return false
			}
		}
		return true
	}
}

// Any keeps a message when at least one predicate keeps it (and never when
// there are none).
func Any(preds ...Predicate) Predicate {
	return func(m message.Message) bool {
		for _, p := range preds {
			if p(m) {
				return true
			}
		}
		return false
	}
}

// Not keeps the messages p drops.
func Not(p Predicate) Predicate {
	return func(m message.Message) bool { return !p(m) }
}
