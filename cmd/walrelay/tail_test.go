package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walrelay/walrelay/internal/testtime"
)

// sequin is a message line decoded as a consumer of Sequin's messages
// reads it.
type sequin struct {
	Record   map[string]any  `json:"record"`
	Changes  map[string]any  `json:"changes"`
	Action   string          `json:"action"`
	Metadata json.RawMessage `json:"metadata"`
	meta     map[string]any
}

// decode decodes a line of tail's output and checks it has exactly the
// keys of Sequin's message, and its metadata Sequin's metadata keys.
func decode(t *testing.T, line string) sequin {
	t.Helper()
	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &keys); err != nil {
		t.Fatalf("line is not JSON: %v\n%s", err, line)
	}
	if got := slices.Sorted(maps.Keys(keys)); strings.Join(got, ",") != "action,changes,metadata,record" {
		t.Fatalf("message keys %q\n%s", got, line)
	}
	var m sequin
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(m.Metadata, &m.meta); err != nil {
		t.Fatal(err)
	}
	want := "commit_idx,commit_lsn,commit_timestamp,consumer,database,database_name,enrichment,idempotency_key,record_pks,table_name,table_schema,transaction_annotations"
	if got := slices.Sorted(maps.Keys(m.meta)); strings.Join(got, ",") != want {
		t.Fatalf("metadata keys %q\n%s", got, line)
	}
	if m.meta["idempotency_key"] == "" || m.meta["commit_lsn"] == nil {
		t.Fatalf("metadata %v", m.meta)
	}
	return m
}

// record formats a decoded record or changes, for comparisons.
func record(m map[string]any) string {
	if m == nil {
		return "null"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// tailLeftovers counts the slots and publications tail made.
func (d *db) tailLeftovers() int {
	return d.count("select (select count(*) from pg_replication_slots where slot_name like 'walrelay_tail_%') + (select count(*) from pg_publication where pubname like 'walrelay_tail_%')")
}

// TestTailTemporary: tail with -tables streams the inserts, updates and
// deletes committed after it started as Sequin-shaped JSON lines, from a
// temporary slot and publication; after SIGTERM it exits 0 and leaves
// neither behind.
func TestTailTemporary(t *testing.T) {
	d := newDB(t, "create table orders (id int primary key, v text)", "alter table orders replica identity full",
		"insert into orders values (100, 'before')")
	p := start(t, d.url, "tail", "-tables", "orders")
	waitFor(t, "tail's temporary slot", func() bool {
		return d.count("select count(*) from pg_replication_slots where slot_name like 'walrelay_tail_%' and temporary and active") == 1
	})
	if d.count("select count(*) from pg_publication_tables where pubname like 'walrelay_tail_%' and tablename = 'orders'") != 1 {
		t.Fatal("no temporary publication of orders")
	}
	d.exec("insert into orders values (1, 'a')", "update orders set v = 'b' where id = 1", "delete from orders where id = 1")
	for i, want := range []struct{ action, record, changes string }{
		{"insert", `{"id":1,"v":"a"}`, "null"},
		{"update", `{"id":1,"v":"b"}`, `{"v":"a"}`},
		{"delete", `{"id":1,"v":"b"}`, "null"},
	} {
		m := decode(t, p.line())
		if m.Action != want.action || record(m.Record) != want.record || record(m.Changes) != want.changes ||
			m.meta["table_schema"] != "public" || m.meta["table_name"] != "orders" {
			t.Fatalf("message %d: %s %s %s %v, want %+v", i, m.Action, record(m.Record), record(m.Changes), m.meta, want)
		}
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != exitOK {
		t.Fatalf("tail after SIGTERM: exit %d\n%s", code, p.stderr)
	}
	waitFor(t, "the temporary slot and publication to go", func() bool { return d.tailLeftovers() == 0 })
}

// TestTailFilters: -table and -action print only those messages; -n stops
// after that many; -table alone makes the temporary publication.
func TestTailFilters(t *testing.T) {
	d := newDB(t, "create table orders (id int primary key, v text)", "create table other (id int primary key)")
	p := start(t, d.url, "tail", "-tables", "orders,other", "-table", "orders", "-action", "update", "-action", "delete", "-n", "2")
	waitFor(t, "tail's temporary slot", func() bool {
		return d.count("select count(*) from pg_replication_slots where slot_name like 'walrelay_tail_%' and active") == 1
	})
	d.exec("insert into other values (1)", "insert into orders values (1, 'a')", "update other set id = 2",
		"update orders set v = 'b'", "delete from other", "delete from orders", "insert into orders values (3, 'c')")
	a, b := decode(t, p.line()), decode(t, p.line())
	if a.Action != "update" || record(a.Record) != `{"id":1,"v":"b"}` || b.Action != "delete" || b.meta["table_name"] != "orders" {
		t.Fatalf("filtered messages: %s %v, %s %v", a.Action, a.Record, b.Action, b.meta)
	}
	if code := p.wait(); code != exitOK {
		t.Fatalf("tail -n 2: exit %d\n%s", code, p.stderr)
	}
	waitFor(t, "the temporary slot and publication to go", func() bool { return d.tailLeftovers() == 0 })

	p = start(t, d.url, "tail", "-table", "orders", "-n", "1")
	waitFor(t, "tail's temporary slot", func() bool {
		return d.count("select count(*) from pg_replication_slots where slot_name like 'walrelay_tail_%' and active") == 1
	})
	if d.count("select count(*) from pg_publication_tables where pubname like 'walrelay_tail_%'") != 1 {
		t.Fatal("-table alone: the temporary publication should have that table alone")
	}
	d.exec("insert into orders values (4, 'd')")
	if m := decode(t, p.line()); record(m.Record) != `{"id":4,"v":"d"}` {
		t.Fatalf("tail -table orders: %v", m.Record)
	}
	if code := p.wait(); code != exitOK {
		t.Fatalf("tail -n 1: exit %d\n%s", code, p.stderr)
	}
	waitFor(t, "the temporary slot and publication to go", func() bool { return d.tailLeftovers() == 0 })
}

// TestTailNamedSlot: with -slot tail acknowledges what it printed when
// SIGINT stops it, so the next tail of the slot starts after it; the slot
// stays.
func TestTailNamedSlot(t *testing.T) {
	d := newDB(t, "create table orders (id int primary key)", "create publication walrelay for table orders")
	if r := run(t, d.url, "tail", "-slot", "debug_slot"); r.code != exitFailure || !strings.Contains(r.stderr, `no slot "debug_slot": pass -create`) {
		t.Fatalf("tail of a missing slot without -create: %v", r)
	}
	p := start(t, d.url, "tail", "-slot", "debug_slot", "-create")
	waitFor(t, "the slot", func() bool {
		return d.count("select count(*) from pg_replication_slots where slot_name = 'debug_slot' and active and not temporary") == 1
	})
	d.exec("insert into orders values (1)", "insert into orders values (2)")
	decode(t, p.line())
	last := decode(t, p.line())
	p.signal(syscall.SIGINT)
	if code := p.wait(); code != exitOK {
		t.Fatalf("tail after SIGINT: exit %d\n%s", code, p.stderr)
	}
	if d.count("select count(*) from pg_replication_slots where slot_name = 'debug_slot' and confirmed_flush_lsn - '0/0' >= $1::numeric", last.meta["commit_lsn"]) != 1 {
		t.Fatalf("the slot's confirmed_flush_lsn is before the last printed message's commit LSN %v", last.meta["commit_lsn"])
	}
	d.exec("insert into orders values (3)")
	r := run(t, d.url, "tail", "-slot", "debug_slot", "-n", "1")
	if r.code != exitOK {
		t.Fatalf("second tail: %v", r)
	}
	if m := decode(t, strings.TrimSpace(r.stdout)); record(m.Record) != `{"id":3}` {
		t.Fatalf("second tail of the slot printed %v, want row 3 (rows 1 and 2 were acknowledged)", m.Record)
	}
	if !d.slotExists("debug_slot") {
		t.Fatal("the named slot is gone")
	}
}

// TestTailErrors: what tail refuses, and how it says so.
func TestTailErrors(t *testing.T) {
	d := newDB(t, "create table orders (id int primary key)")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"tail", "-tables", "nosuch"}, exitFailure, "nosuch"},
		{[]string{"tail", "-action", "upsert", "-tables", "orders"}, exitUsage, "upsert"},
		{[]string{"tail", "-table", "a.b.c"}, exitUsage, "a.b.c"},
		{[]string{"tail", "-tables", "orders", "-publication", "p"}, exitUsage, "-publication and -tables"},
		{[]string{"tail", "-tables", "orders", "-slot", "s"}, exitUsage, "lasting publication"},
		{[]string{"tail", "-create", "-tables", "orders"}, exitUsage, "-create needs -slot"},
	} {
		r := run(t, d.url, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%q: want exit %d and %q: %v", c.args, c.code, c.want, r)
		}
	}
	if n := d.tailLeftovers(); n != 0 {
		t.Fatalf("%d temporary slots or publications left", n)
	}
}

// TestTailAnyDatabase: with no table flag and no publication "walrelay",
// tail streams every table the role may publish whose UPDATEs can be
// published, through a temporary publication, and says so; a database
// without such a table is an error that says what to pass.
func TestTailAnyDatabase(t *testing.T) {
	d := newDB(t, "create table orders (id int primary key, v text)", "create table notes (v text)")
	p := start(t, d.url, "tail", "-n", "1")
	waitFor(t, "tail's temporary slot", func() bool {
		return d.count("select count(*) from pg_replication_slots where slot_name like 'walrelay_tail_%' and temporary and active") == 1
	})
	if n := d.count("select count(*) from pg_publication_tables where pubname like 'walrelay_tail_%'"); n != 1 {
		t.Fatalf("the temporary publication has %d tables, want orders alone", n)
	}
	d.exec("insert into notes values ('x')", "insert into orders values (1, 'a')")
	if m := decode(t, p.line()); m.Action != "insert" || m.meta["table_name"] != "orders" || record(m.Record) != `{"id":1,"v":"a"}` {
		t.Fatalf("first line: %s %v %s", m.Action, m.meta, record(m.Record))
	}
	if code := p.wait(); code != exitOK {
		t.Fatalf("tail -n 1: exit %d\n%s", code, p.stderr)
	}
	if stderr := p.stderr.String(); !strings.Contains(stderr, "public.orders") || !strings.Contains(stderr, "left out") || !strings.Contains(stderr, "public.notes") {
		t.Errorf("stderr does not say what is tailed and what is left out:\n%s", stderr)
	}
	waitFor(t, "the temporary slot and publication to go", func() bool { return d.tailLeftovers() == 0 })

	d.exec("drop table orders")
	if r := run(t, d.url, "tail"); r.code != exitFailure || !strings.Contains(r.stderr, "-tables") || !strings.Contains(r.stderr, "primary key") {
		t.Errorf("tail with no publishable table: want exit 1 saying to pass -tables: %v", r)
	}
}

// TestTailClosedStdout: when the reader of tail's output goes away
// (walrelay tail | head -n 1), tail exits 0 and drops its temporary
// publication, instead of being killed by SIGPIPE with it left behind.
func TestTailClosedStdout(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash for the pipeline")
	}
	d := newDB(t, "create table orders (id int primary key)")
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(60*time.Second))
	defer cancel()
	cmd := walrelayCmd(ctx, t, d.url)
	cmd.Path, cmd.Args = bash, []string{"bash", "-c", `set -o pipefail; "$0" tail -tables orders | head -n 1 >/dev/null`, walrelayBin(t)}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFor(t, "tail's temporary slot", func() bool {
		return d.count("select count(*) from pg_replication_slots where slot_name like 'walrelay_tail_%' and active") == 1
	})
	// Rows until the pipeline ends: head takes the first, tail's next
	// write finds the pipe closed.
	for id := 1; ; id++ {
		d.exec(fmt.Sprintf("insert into orders values (%d)", id))
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("tail | head: %v\n%s", err, stderr.String())
			}
			waitFor(t, "the temporary slot and publication to go", func() bool { return d.tailLeftovers() == 0 })
			return
		case <-ctx.Done():
			t.Fatal("the pipeline did not end")
		case <-time.After(50 * time.Millisecond):
		}
	}
}
