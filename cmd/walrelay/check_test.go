package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/walrelay/walrelay/internal/pgtest"
)

// checkJSON is the output of check -json.
type checkJSON struct {
	Blocking int `json:"blocking"`
	Warnings int `json:"warnings"`
	Findings []struct {
		Severity, Code, Object, Message, Fix string
	} `json:"findings"`
}

func parseCheck(t *testing.T, r result) checkJSON {
	t.Helper()
	var out checkJSON
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("check -json output does not parse: %v\n%v", err, r)
	}
	return out
}

// TestCheck: check on a database ready for walrelay exits 0; a table
// without primary key or replica identity, a missing publication and a
// missing slot are blocking findings with the SQL that fixes them (exit
// 3); -json gives the same findings; check changes nothing.
func TestCheck(t *testing.T) {
	d := newDB(t, "create table orders (id int primary key, v text)", "create table events (at timestamptz, what text)")

	r := run(t, d.url, "check", "-tables", "orders")
	if r.code != exitOK || !strings.Contains(r.stdout, "ok: nothing found") {
		t.Fatalf("check of a ready table: %v", r)
	}
	r = run(t, d.url, "check", "-tables", "orders", "-json")
	if out := parseCheck(t, r); r.code != exitOK || out.Blocking != 0 || out.Warnings != 0 || out.Findings == nil || len(out.Findings) != 0 {
		t.Fatalf("check -json of a ready table: %+v\n%v", out, r)
	}

	// A table without a primary key.
	r = run(t, d.url, "check", "-tables", "orders,events")
	if r.code != exitBlocking || !strings.Contains(r.stdout, "BLOCKING  replica_identity  public.events") ||
		!strings.Contains(r.stdout, `fix: ALTER TABLE "public"."events" REPLICA IDENTITY FULL;`) ||
		!strings.Contains(r.stdout, "1 blocking finding, 0 warnings") {
		t.Fatalf("check of a table without a primary key: %v", r)
	}
	r = run(t, d.url, "check", "-tables", "orders", "-tables", "events", "-json")
	out := parseCheck(t, r)
	if r.code != exitBlocking || out.Blocking != 1 || len(out.Findings) != 1 || out.Findings[0].Code != "replica_identity" ||
		out.Findings[0].Severity != "blocking" || out.Findings[0].Object != "public.events" || !strings.Contains(out.Findings[0].Fix, "REPLICA IDENTITY FULL") {
		t.Fatalf("check -json of a table without a primary key: %+v\n%v", out, r)
	}

	// No publication, no slot, and not to be created.
	r = run(t, d.url, "check", "-slot", "nosuchslot", "-publication", "nosuchpub", "-create=false", "-json")
	out = parseCheck(t, r)
	codes := map[string]string{}
	for _, f := range out.Findings {
		codes[f.Code] = f.Fix
	}
	if r.code != exitBlocking || out.Blocking != 2 || !strings.HasPrefix(codes["publication_missing"], `CREATE PUBLICATION "nosuchpub"`) ||
		!strings.Contains(codes["slot_missing"], "pg_create_logical_replication_slot('nosuchslot', 'pgoutput')") {
		t.Fatalf("check of a missing publication and slot: %+v\n%v", out, r)
	}
	// Without -tables nor a publication: the publication is the finding.
	r = run(t, d.url, "check")
	if r.code != exitBlocking || !strings.Contains(r.stdout, "publication_missing") || !strings.Contains(r.stdout, `fix: CREATE PUBLICATION "walrelay" FOR TABLE`) {
		t.Fatalf("check with nothing set up: %v", r)
	}
	// A publication that lacks a table: a warning, exit 0.
	d.exec("create publication walrelay for table orders", "create table items (id int primary key)")
	r = run(t, d.url, "check", "-tables", "orders,items")
	if r.code != exitOK || !strings.Contains(r.stdout, "warning   table_not_published  public.items") ||
		!strings.Contains(r.stdout, `fix: ALTER PUBLICATION "walrelay" ADD TABLE "public"."items";`) {
		t.Fatalf("check of a table missing from the publication: %v", r)
	}

	if d.count("select count(*) from pg_replication_slots") != 0 || d.count("select count(*) from pg_publication") != 1 {
		t.Fatal("check created something")
	}
	if r := run(t, d.url, "check", "-slot", "Bad-Name"); r.code != exitUsage || !strings.Contains(r.stderr, "Slot") {
		t.Fatalf("check with an invalid slot name: %v", r)
	}
}

// TestWALLevel: on a server whose wal_level is not logical, check's
// finding and tail's error both give the SQL that fixes it.
func TestWALLevel(t *testing.T) {
	c := pgtest.NewCluster(t, pgtest.Options{Settings: []string{"wal_level = replica"}})
	pgtest.Exec(t, c.URL, "create table orders (id int primary key)")
	r := run(t, c.URL, "check", "-tables", "orders")
	if r.code != exitBlocking || !strings.Contains(r.stdout, "BLOCKING  wal_level") ||
		!strings.Contains(r.stdout, "fix: ALTER SYSTEM SET wal_level = logical; -- then restart the server") {
		t.Fatalf("check with wal_level = replica: %v", r)
	}
	r = run(t, c.URL, "tail", "-tables", "orders")
	if r.code != exitFailure || !strings.Contains(r.stderr, "fix: ALTER SYSTEM SET wal_level = logical") {
		t.Fatalf("tail with wal_level = replica: %v", r)
	}
}
