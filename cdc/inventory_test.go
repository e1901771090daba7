package cdc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/internal/testtime"
)

// TestTemporarySlot: a stream with Config.TemporarySlot creates its slot on
// the replication connection, streams the changes made after Open, and
// leaves no slot behind after Close; an existing slot of the name and
// conflicting options are refused.
func TestTemporarySlot(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	cfg := Config{ConnString: e.url, Slot: e.slot, Publication: e.pub, TemporarySlot: true}
	s := e.open(cfg)
	var temporary, active bool
	if err := e.conn.QueryRow(t.Context(), "select temporary, active from pg_replication_slots where slot_name = $1", e.slot).Scan(&temporary, &active); err != nil {
		t.Fatalf("the temporary slot is not there: %v", err)
	}
	if !temporary || !active {
		t.Fatalf("slot temporary=%v active=%v, want both", temporary, active)
	}
	e.exec("insert into t values (1), (2)")
	msgs := next(t, s, 2)
	if fmt.Sprint(msgs[0].Record["id"]) != "1" || fmt.Sprint(msgs[1].Record["id"]) != "2" {
		t.Fatalf("records %v %v", msgs[0].Record, msgs[1].Record)
	}
	s.Ack(msgs[1])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the temporary slot to go", func() bool { return !e.exists("slot", e.slot) })

	// A slot of that name exists: refused, and the slot is left as it was.
	e.open(e.config()).Close()
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(30*time.Second))
	defer cancel()
	if _, err := Open(ctx, cfg); !errors.Is(err, ErrSlotMismatch) {
		t.Fatalf("Open with a temporary slot whose name is taken = %v, want ErrSlotMismatch", err)
	}
	findings, err := Check(ctx, cfg)
	if err != nil || len(findings) != 1 || findings[0].Code != FindingSlotUnusable || findings[0].Severity != SeverityBlocking {
		t.Fatalf("Check with a temporary slot whose name is taken = %+v, %v", findings, err)
	}
	if !e.exists("slot", e.slot) {
		t.Fatal("the refused Open dropped the existing slot")
	}
	for _, c := range []Config{
		{ConnString: e.url, Slot: "x", Publication: "p", TemporarySlot: true, CreateSlot: true},
		{ConnString: e.url, Slot: "x", Publication: "p", TemporarySlot: true, WaitForSlot: true},
		{ConnString: e.url, Slot: "x", Publication: "p", TemporarySlot: true, Failover: true},
	} {
		if _, err := Open(ctx, c); !errors.As(err, new(*ConfigError)) {
			t.Errorf("Open(%v) = %v, want a *ConfigError", c, err)
		}
	}
}

// TestTemporarySlotLostConnection: when the replication connection of a
// temporary slot is terminated, the slot is gone with it and the stream
// stops with ErrSlotNotFound rather than making a new slot.
func TestTemporarySlotLostConnection(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	cfg := Config{ConnString: e.url, Slot: e.slot, Publication: e.pub, TemporarySlot: true,
		Backoff: fastBackoff}
	s := e.open(cfg)
	e.exec("select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = '" + e.slot + "'")
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(60*time.Second))
	defer cancel()
	for {
		_, err := s.Next(ctx)
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrSlotNotFound) {
			t.Fatalf("Next after the connection was terminated = %v, want ErrSlotNotFound", err)
		}
		break
	}
	if e.exists("slot", e.slot) {
		t.Fatal("a slot was re-created")
	}
}

// TestListings: ListSlots, ListPublications and ListBackfills report what
// the database holds; a missing progress table is no backfill, not an
// error.
func TestListings(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)", "create table u (id int primary key)", "insert into t values (1), (2)")
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(60*time.Second))
	defer cancel()
	if bf, err := ListBackfills(ctx, e.url, ""); err != nil || len(bf) != 0 {
		t.Fatalf("ListBackfills before any = %v, %v", bf, err)
	}
	cfg := e.config()
	cfg.Publication, cfg.CreatePublication, cfg.PublicationTables = "list_pub", true, []string{"t"}
	s := e.open(cfg)
	ackAll(ctx, s)
	if err := s.Backfill(ctx, backfill.Config{Table: "t", ID: "first"}); err != nil {
		t.Fatal(err)
	}
	slots, err := ListSlots(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	if len(slots) != 1 || slots[0].Slot != e.slot || !slots[0].Active || slots[0].Plugin != "pgoutput" {
		t.Fatalf("ListSlots = %+v", slots)
	}
	pubs, err := ListPublications(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pubs {
		names = append(names, p.Name)
		if p.Name == "list_pub" && (p.AllTables || !slices.Equal(p.Tables, []string{"public.t"}) || !p.Insert || !p.Delete) {
			t.Errorf("list_pub = %+v", p)
		}
		if p.Name == "pub" && (!p.AllTables || !slices.Contains(p.Tables, "public.u")) {
			t.Errorf("pub = %+v", p)
		}
	}
	if !slices.Equal(names, []string{"list_pub", "pub"}) {
		t.Fatalf("publications %q", names)
	}
	bf, err := ListBackfills(ctx, e.url, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(bf) != 1 || bf[0].ID != "first" || bf[0].Table != "t" || !bf[0].Done {
		t.Fatalf("ListBackfills = %+v", bf)
	}
	if _, err := ListBackfills(ctx, e.url, "no such.thing.here"); !errors.As(err, new(*ConfigError)) {
		t.Fatalf("ListBackfills with a bad table name = %v", err)
	}
	if _, err := ListSlots(ctx, ""); !errors.As(err, new(*ConfigError)) {
		t.Fatalf("ListSlots without a connection string = %v", err)
	}

	// Tables: a key or REPLICA IDENTITY FULL is an identity; a table of
	// another role is not publishable by a role that is not a superuser;
	// partitions are published through their root.
	role := e.slot + "_lister"
	e.exec(`create schema "Odd.Schema"`, `create table "Odd.Schema"."T x" (v int)`,
		`alter table "Odd.Schema"."T x" replica identity full`, "create table nokey (v int)",
		"create table parted (id int primary key) partition by range (id)",
		"create table parted_1 partition of parted for values from (0) to (10)",
		"create role "+role+" login", "create table mine (id int primary key)", "alter table mine owner to "+role)
	want := []Table{{`"Odd.Schema"."T x"`, true, true}, {"public.mine", true, true}, {"public.nokey", false, true},
		{"public.parted", true, true}, {"public.t", true, true}, {"public.u", true, true},
		{"public.walrelay_backfills", true, true}} // the backfill above made it
	got, err := ListTables(ctx, e.url)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ListTables = %v, %v\nwant %v", got, err, want)
	}
	got, err = ListTables(ctx, withUser(e.url, role))
	if err != nil || len(got) != len(want) {
		t.Fatalf("ListTables as %s = %v, %v", role, got, err)
	}
	for _, tb := range got {
		if tb.Publishable != (tb.Name == "public.mine") {
			t.Errorf("as %s: %+v, want only public.mine publishable", role, tb)
		}
	}
}

// TestDropDryRun: DropOptions.DryRun reports what Drop would drop and
// drops nothing.
func TestDropDryRun(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	cfg := e.config()
	e.open(cfg).Close()
	got, err := Drop(t.Context(), cfg, DropOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"slot " + e.slot, "publication pub"}; !slices.Equal(got, want) {
		t.Fatalf("dry run = %q, want %q", got, want)
	}
	if !e.exists("slot", e.slot) || !e.exists("publication", "pub") {
		t.Fatal("the dry run dropped something")
	}
}

// TestSlotStatusFlushLag: while a stream confirms what it receives,
// SlotStatus reports the walsender's flush lag.
func TestSlotStatusFlushLag(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	s := e.open(e.config())
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(60*time.Second))
	defer cancel()
	ackAll(ctx, s)
	id := 0
	waitFor(t, "a flush lag", func() bool {
		id++
		e.exec(fmt.Sprintf("insert into t values (%d)", id))
		st, err := SlotStatus(ctx, e.url, e.slot)
		if err != nil {
			t.Fatal(err)
		}
		return st.Active && st.FlushLag > 0 && st.FlushLag < time.Hour
	})
}
