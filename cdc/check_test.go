package cdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
)

// find returns the findings with code c.
func find(fs []Finding, c FindingCode) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Code == c {
			out = append(out, f)
		}
	}
	return out
}

func check(t *testing.T, cfg Config) []Finding {
	t.Helper()
	fs, err := Check(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return fs
}

// exists reports whether the catalog has a row for name: "publication" or
// "slot".
func (e *env) exists(kind, name string) bool {
	e.t.Helper()
	q := "select exists(select 1 from pg_publication where pubname = $1)"
	if kind == "slot" {
		q = "select exists(select 1 from pg_replication_slots where slot_name = $1)"
	}
	var ok bool
	if err := e.conn.QueryRow(context.Background(), q, name).Scan(&ok); err != nil {
		e.t.Fatal(err)
	}
	return ok
}

// TestCheckReplicaIdentity: a table without a primary key and with
// REPLICA IDENTITY DEFAULT blocks a publication Open would create (for
// its tables or for all tables), since the application's UPDATEs of it
// would fail; the finding's fix makes Open pass. In a publication that
// exists already it is a warning.
func TestCheckReplicaIdentity(t *testing.T) {
	e := newEnv(t, "create table keyed (id int primary key)", "create table nokey (id int, v text)",
		"create table nothing (id int primary key)", "alter table nothing replica identity nothing",
		"create table full_id (id int)", "alter table full_id replica identity full",
		"create table parted (id int, v text) partition by range (id)", "create table parted_1 partition of parted for values from (0) to (100)")
	cfg := e.config()
	cfg.Publication = pgtest.Name(t, "pub")
	cfg.CreatePublication = true
	cfg.PublicationTables = []string{"keyed", "nokey", "nothing", "full_id", "parted"}

	fs := check(t, cfg)
	bad := find(fs, FindingReplicaIdentity)
	var objects []string
	for _, f := range bad {
		objects = append(objects, f.Object)
		if f.Severity != SeverityBlocking || !errors.Is(f.Err, ErrReplicaIdentity) {
			t.Errorf("finding %+v: want blocking, wrapping ErrReplicaIdentity", f)
		}
	}
	if want := []string{"public.nokey", "public.nothing", "public.parted_1"}; !slices.Equal(objects, want) {
		t.Fatalf("replica identity findings for %v, want %v (all: %v)", objects, want, fs)
	}
	if bad[0].Fix != `ALTER TABLE "public"."nokey" REPLICA IDENTITY FULL;` {
		t.Errorf("fix = %q", bad[0].Fix)
	}
	b, err := json.Marshal(bad[0])
	if err != nil {
		t.Fatal(err)
	}
	var j map[string]any
	json.Unmarshal(b, &j)
	if j["severity"] != "blocking" || j["code"] != "replica_identity" || j["object"] != "public.nokey" || j["fix"] != bad[0].Fix || j["message"] == "" {
		t.Errorf("JSON %s", b)
	}

	// Open refuses, and creates nothing.
	err = openErr(t, cfg)
	var ce *CheckError
	if !errors.As(err, &ce) || !errors.Is(err, ErrReplicaIdentity) || !strings.Contains(err.Error(), "nokey") {
		t.Fatalf("Open = %v, want a CheckError naming nokey", err)
	}
	if e.exists("publication", cfg.Publication) || e.exists("slot", cfg.Slot) {
		t.Fatal("a refused Open left a publication or slot behind")
	}

	// FOR ALL TABLES is refused for the same tables.
	all := cfg
	all.PublicationTables, all.PublicationAllTables = nil, true
	if got := find(check(t, all), FindingReplicaIdentity); len(got) != 3 {
		t.Errorf("all tables: %d replica identity findings, want 3: %v", len(got), got)
	}

	// The fixes make Open pass.
	for _, f := range bad {
		e.exec(f.Fix)
	}
	if fs := check(t, cfg); len(fs) != 0 {
		t.Fatalf("after the fixes: %v", fs)
	}
	e.open(cfg).Close()
	if !e.exists("publication", cfg.Publication) {
		t.Fatal("publication not created")
	}

	// A publication that exists already with such a table: a warning.
	e.exec("create table nokey2 (id int)")
	fs = check(t, Config{ConnString: e.url, Slot: cfg.Slot, Publication: e.pub}) // env's: FOR ALL TABLES
	got := find(fs, FindingReplicaIdentity)
	if len(got) != 1 || got[0].Object != "public.nokey2" || got[0].Severity != SeverityWarning {
		t.Fatalf("existing publication: %v, want one warning for public.nokey2", fs)
	}
}

// TestCheckTablesMissingFromPublication: a table of PublicationTables
// that the existing publication lacks is a warning (with the ALTER
// PUBLICATION that adds it), added by AlterPublication; a table that does
// not exist is blocking.
func TestCheckTablesMissingFromPublication(t *testing.T) {
	e := newEnv(t, "create table a (id int primary key)", "create table b (id int primary key)", "create table nokey (id int)")
	pub := pgtest.Name(t, "pub")
	e.exec("create publication " + pub + " for table a")
	cfg := e.config()
	cfg.Publication = pub
	cfg.PublicationTables = []string{"a", "b"}

	fs := check(t, cfg)
	got := find(fs, FindingTableNotPublished)
	if len(fs) != 1 || len(got) != 1 || got[0].Severity != SeverityWarning || got[0].Object != "public.b" ||
		got[0].Fix != `ALTER PUBLICATION "`+pub+`" ADD TABLE "public"."b";` || !errors.Is(got[0].Err, ErrTableNotPublished) {
		t.Fatalf("findings %v, want one warning for public.b", fs)
	}

	missing := cfg
	missing.PublicationTables = []string{"a", "nosuch"}
	got = find(check(t, missing), FindingTableMissing)
	if len(got) != 1 || got[0].Severity != SeverityBlocking || got[0].Object != "public.nosuch" {
		t.Fatalf("missing table: %v", got)
	}
	if err := openErr(t, missing); !errors.Is(err, ErrTableNotFound) {
		t.Fatalf("Open with a missing table: %v", err)
	}

	// AlterPublication adds b, and its changes are streamed; it will not
	// add a table whose UPDATEs that would break.
	bad := cfg
	bad.AlterPublication = true
	bad.PublicationTables = []string{"a", "nokey"}
	if err := openErr(t, bad); !errors.Is(err, ErrReplicaIdentity) {
		t.Fatalf("Open adding nokey: %v", err)
	}
	cfg.AlterPublication = true
	s := e.open(cfg)
	var n int
	e.conn.QueryRow(context.Background(), "select count(*) from pg_publication_tables where pubname = $1 and tablename = 'b'", pub).Scan(&n)
	if n != 1 {
		t.Fatal("b was not added to the publication")
	}
	e.exec("insert into b values (7)")
	if m := next(t, s, 1)[0]; m.Metadata.TableName != "b" {
		t.Fatalf("got a change of %s, want b", m.Metadata.TableName)
	}
	s.Close()
	if fs := check(t, cfg); len(fs) != 0 {
		t.Fatalf("after adding: %v", fs)
	}
}

// TestCheckReplicationRole: a role without REPLICATION is a blocking
// finding whose fix is the ALTER ROLE to run; Open reports it as an
// authorization error.
func TestCheckReplicationRole(t *testing.T) {
	e := newEnv(t)
	role := pgtest.Name(t, "r")
	e.exec("create role " + role + " login")
	u, _ := url.Parse(e.url)
	u.User = url.User(role)
	cfg := e.config()
	cfg.ConnString = u.String()
	got := find(check(t, cfg), FindingReplicationRole)
	if len(got) != 1 || got[0].Severity != SeverityBlocking || got[0].Object != role ||
		got[0].Fix != `ALTER ROLE "`+role+`" WITH REPLICATION;` {
		t.Fatalf("findings %v", got)
	}
	if err := openErr(t, cfg); !IsAuthError(err) || !errors.Is(err, ErrPrivilege) || !strings.Contains(err.Error(), "ALTER ROLE") {
		t.Fatalf("Open = %v", err)
	}
	e.exec(got[0].Fix)
	if got := find(check(t, cfg), FindingReplicationRole); len(got) != 0 {
		t.Fatalf("after the fix: %v", got)
	}
}

// TestCheckSlot: a missing slot without CreateSlot is blocking, a slot in
// use a warning.
func TestCheckSlot(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.CreateSlot = false
	if got := find(check(t, cfg), FindingSlotMissing); len(got) != 1 || got[0].Severity != SeverityBlocking || !errors.Is(got[0].Err, ErrSlotNotFound) {
		t.Fatalf("missing slot: %v", got)
	}
	cfg.CreateSlot = true
	if fs := check(t, cfg); len(fs) != 0 {
		t.Fatalf("CreateSlot: %v", fs)
	}
	e.open(cfg)
	if got := find(check(t, cfg), FindingSlotInUse); len(got) != 1 || got[0].Severity != SeverityWarning || !errors.Is(got[0].Err, ErrSlotInUse) {
		t.Fatalf("slot in use: %v", got)
	}
}

// TestBackfillUnpublishedTable: Stream.Backfill refuses a table the
// publication does not include (its changes would never reach the
// backfill's merge), and accepts a partition of a published root.
func TestBackfillUnpublishedTable(t *testing.T) {
	e := newEnv(t, "create table a (id int primary key)", "create table b (id int primary key)",
		"create table pt (id int primary key) partition by range (id)", "create table pt_1 partition of pt for values from (0) to (100)")
	pub := pgtest.Name(t, "pub")
	e.exec("create publication " + pub + " for table a, pt with (publish_via_partition_root = true)")
	cfg := e.config()
	cfg.Publication = pub
	s := e.open(cfg)
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(60*time.Second))
	defer cancel()
	err := s.Backfill(ctx, backfill.Config{Table: "b", ID: "b1"})
	if !errors.Is(err, ErrTableNotPublished) || !strings.Contains(err.Error(), "ALTER PUBLICATION") {
		t.Fatalf("Backfill of b = %v, want ErrTableNotPublished", err)
	}
	e.exec("insert into pt values (1)", "insert into a values (1)")
	next(t, s, 2)
	ackAll(ctx, s)
	for _, table := range []string{"a", "pt_1"} {
		if err := s.Backfill(ctx, backfill.Config{Table: table, ID: "ok_" + table}); err != nil {
			t.Fatalf("Backfill of %s: %v", table, err)
		}
	}
}

// TestFailedOpenLeavesNothing: when Open fails after it created the
// publication and the slot (or added tables to a publication), it drops
// them again; here the replication connection is refused because the
// server's only WAL sender is taken by another stream. When the slot is
// unusable, Open creates nothing.
func TestFailedOpenLeavesNothing(t *testing.T) {
	c := pgtest.NewCluster(t, pgtest.Options{Settings: []string{"max_wal_senders = 1"}})
	e := newEnvAt(t, c.URL, "create table t (id int primary key)", "create table t2 (id int primary key)")
	busy := e.config()
	busy.Slot = pgtest.Name(t, "busy")
	e.open(busy) // holds the only WAL sender

	cfg := e.config()
	cfg.Publication = pgtest.Name(t, "pub")
	cfg.CreatePublication, cfg.PublicationTables = true, []string{"t"}
	err := openErr(t, cfg)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53300" {
		t.Fatalf("Open = %v, want too_many_connections from the replication connection", err)
	}
	if e.exists("publication", cfg.Publication) || e.exists("slot", cfg.Slot) {
		t.Fatalf("the failed Open left behind: publication %v, slot %v", e.exists("publication", cfg.Publication), e.exists("slot", cfg.Slot))
	}

	// Tables it added to an existing publication are removed again.
	e.exec("create publication " + cfg.Publication + " for table t")
	cfg.CreatePublication, cfg.AlterPublication, cfg.PublicationTables = false, true, []string{"t", "t2"}
	openErr(t, cfg)
	var n int
	e.conn.QueryRow(context.Background(), "select count(*) from pg_publication_tables where pubname = $1", cfg.Publication).Scan(&n)
	if n != 1 || !e.exists("publication", cfg.Publication) || e.exists("slot", cfg.Slot) {
		t.Fatalf("after a failed Open: %d tables in the publication (want 1), slot left %v", n, e.exists("slot", cfg.Slot))
	}

	// A physical slot of the same name: refused before anything is created.
	cfg = e.config()
	cfg.Publication = pgtest.Name(t, "pub")
	cfg.CreatePublication, cfg.PublicationTables = true, []string{"t"}
	e.exec(fmt.Sprintf("select pg_create_physical_replication_slot('%s')", cfg.Slot))
	if err := openErr(t, cfg); !errors.Is(err, ErrSlotMismatch) {
		t.Fatalf("Open = %v, want ErrSlotMismatch", err)
	}
	if e.exists("publication", cfg.Publication) {
		t.Fatal("Open refused by the slot left the publication it created")
	}
}

// TestConnectTimeout: a server that accepts the connection and never
// answers is given up on after the default connect timeout, with the
// host named in the error.
func TestConnectTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // never answered
		}
	}()
	addr := ln.Addr().String()
	cs := "postgres://u@" + addr + "/db?sslmode=disable"
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		want    string
	}{
		{"default", 0, DefaultConnectTimeout.String()},
		{"configured", 300 * time.Millisecond, "300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testtime.Bound(2*time.Minute))
			defer cancel()
			_, err := Open(ctx, Config{ConnString: cs, Slot: "s", Publication: "p", ConnectTimeout: tc.timeout})
			if err == nil || ctx.Err() != nil {
				t.Fatalf("Open = %v (context: %v), want the connect timeout's error", err, ctx.Err())
			}
			if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "connect timeout ("+tc.want+")") || !pgconn.Timeout(err) {
				t.Fatalf("error %q does not name %s and the %s timeout", err, addr, tc.want)
			}
			_, err = Check(ctx, Config{ConnString: cs, Slot: "s", Publication: "p", ConnectTimeout: tc.timeout})
			if err == nil || !strings.Contains(err.Error(), addr) {
				t.Fatalf("Check = %v", err)
			}
		})
	}
}

// TestPoolSettings: pool_* settings in the connection string size the
// query pool and are not sent on the replication connection (the server
// would refuse them).
func TestPoolSettings(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	u, _ := url.Parse(e.url)
	q := u.Query()
	q.Set("pool_max_conns", "2")
	q.Set("pool_max_conn_idle_time", "7m")
	u.RawQuery = q.Encode()
	cfg := e.config()
	cfg.ConnString = u.String()
	s := e.open(cfg)
	if got := s.pool.Config().MaxConns; got != 2 {
		t.Errorf("pool MaxConns = %d, want 2", got)
	}
	if got := s.pool.Config().MaxConnIdleTime; got != 7*time.Minute {
		t.Errorf("pool MaxConnIdleTime = %v, want 7m", got)
	}
	e.exec("insert into t values (1)")
	if m := next(t, s, 1)[0]; m.Record["id"] != int64(1) {
		t.Fatalf("got %v", m.Record)
	}
	s.Close()
	cfg.ConnString = e.url
	s = e.open(cfg)
	if got := s.pool.Config().MaxConns; got != defaultPoolMaxConns {
		t.Errorf("default pool MaxConns = %d, want %d", got, defaultPoolMaxConns)
	}
}
