package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

const tailSummary = `prints the changes of the database to stdout as they commit, one JSON
message per line, in the shape Sequin delivers ({"record", "changes", "action",
"metadata"}).

By default it streams from a temporary slot, which Postgres drops when tail
exits however it exits: nothing is left behind, and only changes committed
after tail started are printed. With -slot it streams from that slot (created
with -create), acknowledging what it printed when it stops, so the next tail
of the slot goes on from there (at least once: a transaction it stopped in
the middle of is printed again from its start).

The publication: -publication names one that exists; -tables creates one for
those tables for as long as tail runs (named walrelay_tail_..., dropped at
exit; only with the temporary slot, since a lasting slot needs a lasting
publication). Without either, the tables of -table, if given, are used as
-tables; else the publication "walrelay" if it exists (always with -slot),
else a temporary publication of every table the role may publish that has
a primary key or replica identity (the list is printed on stderr): on any
database, tail needs nothing but the database URL.

-table and -action print only the messages of those tables and actions
(insert, update, delete; read comes from backfills, which tail does not run).
tail stops on SIGINT or SIGTERM, or after -n messages.

Exit status: 0 stopped by a signal or -n, or stdout was closed; 1 failure;
2 usage error (no database given, a bad flag or table name).`

const tailExample = `  DATABASE_URL=postgres://app@db/app walrelay tail -tables public.orders
  walrelay tail -publication walrelay -table orders -action update,delete | jq .record
  walrelay tail -slot debug_slot -create -publication walrelay -n 100 > changes.jsonl
`

func tailCmd(ctx context.Context, e *env, args []string) int {
	fs := newDBFlags(e, "tail", tailSummary, tailExample)
	var o tailOptions
	fs.StringVar(&o.slot, "slot", "", "stream from this slot, acknowledging what was printed (default: a temporary slot)")
	fs.BoolVar(&o.create, "create", false, "with -slot: create the slot when it does not exist (it stays; walrelay drop removes it)")
	fs.StringVar(&o.pub, "publication", "", "an existing publication (default \"walrelay\", or a temporary one for -tables)")
	fs.Var(&o.tables, "tables", "create a publication of these tables while tail runs, `schema.table,...` (repeatable)")
	fs.Var(&o.only, "table", "print only these tables' messages, `schema.table,...` (repeatable)")
	fs.Var(&o.actions, "action", "print only these actions, `insert,update,delete,read` (repeatable)")
	fs.IntVar(&o.limit, "n", 0, "stop after printing this many messages (0: until a signal)")
	url, code := fs.parse(args)
	if code >= 0 {
		return code
	}
	keep, err := o.filter()
	if err == nil {
		err = o.check()
	}
	if err != nil {
		return fail(e, "tail", exitUsage, err)
	}
	if err := o.defaults(ctx, e, url); err != nil {
		return failErr(e, "tail", err)
	}

	var suffix [4]byte
	rand.Read(suffix[:])
	name := fmt.Sprintf("walrelay_tail_%d_%s", os.Getpid(), hex.EncodeToString(suffix[:]))
	cfg := o.config(url, name)
	s, err := cdc.Open(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return exitOK
		}
		if hint := o.openHint(err); hint != nil {
			return fail(e, "tail", exitFailure, hint)
		}
		return failErr(e, "tail", err)
	}
	code = tail(ctx, e, s, keep, o.limit)
	if cfg.CreatePublication {
		// The temporary publication, whatever happened.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		_, err := cdc.Drop(dctx, cfg, cdc.DropOptions{KeepSlot: true, KeepBackfillTable: true})
		cancel()
		if err != nil {
			fmt.Fprintf(e.stderr, "walrelay tail: could not drop the temporary publication %s: %v\n(drop it with: DROP PUBLICATION %s;)\n", name, err, name)
			if code == exitOK {
				code = exitFailure
			}
		}
	}
	return code
}

// tailOptions are tail's flags.
type tailOptions struct {
	slot, pub             string
	create                bool
	tables, only, actions listFlag
	limit                 int
}

// filter checks the table names of -tables and -table and the actions of
// -action, and returns what keeps the messages to print.
func (o *tailOptions) filter() (sink.Predicate, error) {
	for _, t := range append(append([]string{}, o.tables...), o.only...) {
		if _, _, err := message.ParseTable(t); err != nil {
			return nil, err
		}
	}
	keep := sink.Predicate(func(message.Message) bool { return true })
	var preds []sink.Predicate
	if len(o.only) > 0 {
		preds = append(preds, sink.Tables(o.only...))
	}
	if len(o.actions) > 0 {
		acts := make([]message.Action, len(o.actions))
		for i, a := range o.actions {
			acts[i] = message.Action(a)
			if !acts[i].Valid() {
				return nil, fmt.Errorf("-action %q: want insert, update, delete or read", a)
			}
		}
		preds = append(preds, sink.Actions(acts...))
	}
	if len(preds) > 0 {
		keep = sink.All(preds...)
	}
	return keep, nil
}

// check reports flags that do not go together.
func (o *tailOptions) check() error {
	switch {
	case o.limit < 0:
		return errors.New("-n must not be negative")
	case o.create && o.slot == "":
		return errors.New("-create needs -slot: the temporary slot is always created")
	case o.pub != "" && len(o.tables) > 0:
		return errors.New("-publication and -tables: give one (-tables makes a publication of its own)")
	case o.slot != "" && len(o.tables) > 0:
		return errors.New("-slot with -tables: a lasting slot needs a lasting publication; create it (CREATE PUBLICATION, or walrelay run) and pass -publication")
	}
	return nil
}

// defaults fills in the publication when neither -publication nor -tables
// gives one: a temporary one of the -table tables when tailing from a
// temporary slot; with a lasting -slot, "walrelay". With no table flag at
// all it is "walrelay" when that publication exists, else a temporary one
// of every table the role can publish whose UPDATEs can be published (what
// it chose is said on stderr), so that tail needs nothing but a database.
func (o *tailOptions) defaults(ctx context.Context, e *env, url string) error {
	if o.pub != "" || len(o.tables) > 0 {
		return nil
	}
	switch {
	case len(o.only) > 0 && o.slot == "":
		o.tables = o.only
		return nil
	case o.slot != "":
		o.pub = defaultName
		return nil
	}
	pubs, err := cdc.ListPublications(ctx, url)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(pubs, func(p cdc.Publication) bool { return p.Name == defaultName }) {
		o.pub = defaultName
		return nil
	}
	tables, err := cdc.ListTables(ctx, url)
	if err != nil {
		return err
	}
	var skipped []string
	for _, t := range tables {
		switch {
		case t.Publishable && t.Identity:
			o.tables = append(o.tables, t.Name)
		case t.Publishable:
			skipped = append(skipped, t.Name)
		}
	}
	if len(o.tables) == 0 {
		return fmt.Errorf("there is no publication %q and no table this role may publish that has a primary key or replica identity: name the tables with -tables, or a publication with -publication", defaultName)
	}
	fmt.Fprintf(e.stderr, "walrelay tail: no publication %q: tailing every table this role may publish, through a temporary publication: %s\n",
		defaultName, strings.Join(o.tables, ", "))
	if len(skipped) > 0 {
		fmt.Fprintf(e.stderr, "walrelay tail: left out, without a primary key or replica identity (publishing them would make their UPDATEs fail): %s\n",
			strings.Join(skipped, ", "))
	}
	return nil
}

// config is the stream's configuration; name names the temporary slot
// and publication, where those are made.
func (o *tailOptions) config(url, name string) cdc.Config {
	cfg := cdc.Config{ConnString: url, Slot: o.slot, Publication: o.pub, CreateSlot: o.create}
	if o.slot == "" {
		cfg.Slot, cfg.TemporarySlot = name, true
	}
	if len(o.tables) > 0 {
		cfg.Publication, cfg.CreatePublication, cfg.PublicationTables = name, true, o.tables
	}
	return cfg
}

// openHint says what to do when the stream could not open because the
// default publication or the -slot is missing; nil for other errors.
func (o *tailOptions) openHint(err error) error {
	if errors.Is(err, cdc.ErrPublicationNotFound) && o.pub == defaultName {
		return fmt.Errorf("there is no publication %q: name the tables to tail with -tables public.orders,..., or an existing publication with -publication", defaultName)
	}
	if errors.Is(err, cdc.ErrSlotNotFound) && o.slot != "" && !o.create {
		return fmt.Errorf("there is no slot %q: pass -create to create it (it stays until walrelay drop), or leave -slot out to tail from a temporary slot", o.slot)
	}
	return nil
}

// tail prints the messages of s that keep accepts until ctx ends or limit
// were printed, acknowledging each once it was written out, and closes s.
func tail(ctx context.Context, e *env, s *cdc.Stream, keep sink.Predicate, limit int) int {
	out := bufio.NewWriterSize(e.stdout, 64<<10)
	enc := message.NewEncoder(out)
	var last *message.Message // received, not yet acknowledged
	var printed int
	// flush writes out what was printed and acknowledges it, with the
	// messages skipped before it.
	flush := func() error {
		if err := out.Flush(); err != nil {
			return err
		}
		if last != nil {
			s.Ack(*last)
			last = nil
		}
		return nil
	}
	code := exitOK
	for limit == 0 || printed < limit {
		m, err := s.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				code = failErr(e, "tail", err)
			}
			break
		}
		if keep(m) {
			if err := enc.Encode(m); err != nil {
				code = writeFailed(e, err)
				break
			}
			printed++
		}
		last = &m
		if s.Buffered().Messages == 0 || (limit > 0 && printed == limit) {
			if err := flush(); err != nil {
				code = writeFailed(e, err)
				last = nil
				break
			}
		}
	}
	if err := flush(); err != nil && code == exitOK {
		code = writeFailed(e, err)
	}
	if err := s.Close(); err != nil && code == exitOK {
		code = failErr(e, "tail", err)
	}
	return code
}

// writeFailed is the exit status after stdout failed: closed by its
// reader (walrelay tail | head) is a normal end.
func writeFailed(e *env, err error) int {
	if errors.Is(err, os.ErrClosed) || isBrokenPipe(err) {
		return exitOK
	}
	return fail(e, "tail", exitFailure, fmt.Errorf("write to stdout: %w", err))
}

func isBrokenPipe(err error) bool { return errors.Is(err, syscall.EPIPE) }
