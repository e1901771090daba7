package cdc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/sink"
)

// openErr returns the error of an Open that must fail by itself, before
// its context (a generous bound, scaled by testtime) ends.
func openErr(t *testing.T, cfg Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testtime.Bound(60*time.Second))
	defer cancel()
	s, err := Open(ctx, cfg)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded, want an error")
	}
	if ctx.Err() != nil {
		t.Fatalf("Open returned only when its context ended: %v", err)
	}
	return err
}

// noRetries sets cfg.Backoff to a policy that counts how often Open asks
// for one, which is how it would retry.
func noRetries(cfg *Config) (asked *int) {
	asked = new(int)
	cfg.Backoff = func() backoff.BackOff {
		*asked++
		return backoff.NewConstantBackOff(time.Millisecond)
	}
	return asked
}

func TestConfigValidation(t *testing.T) {
	ok := Config{ConnString: "postgres://u@localhost/db", Slot: "s", Publication: "p"}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"empty conn string", func(c *Config) { c.ConnString = "" }, "ConnString is empty"},
		{"bad url", func(c *Config) { c.ConnString = "postgres://u:secret@[bad/db" }, "not a valid postgres URL"},
		{"empty slot", func(c *Config) { c.Slot = "" }, "Slot is empty"},
		{"bad slot", func(c *Config) { c.Slot = "My-Slot" }, "lower-case"},
		{"long slot", func(c *Config) { c.Slot = strings.Repeat("s", 64) }, "longer than 63"},
		{"empty publication", func(c *Config) { c.Publication = "" }, "Publication is empty"},
		{"negative buffer", func(c *Config) { c.BufferSize = -1 }, "BufferSize -1"},
		{"negative status", func(c *Config) { c.StatusInterval = -time.Second }, "StatusInterval"},
		{"negative buffer bytes", func(c *Config) { c.BufferBytes = -1 }, "BufferBytes -1"},
		{"negative annotation cap", func(c *Config) { c.MaxAnnotationBytes = -1 }, "MaxAnnotationBytes -1"},
		{"bad undecodable", func(c *Config) { c.Undecodable = 7 }, "Undecodable 7"},
		{"dead letter without text", func(c *Config) { c.DeadLetter = func(*DecodeError, []byte) {} }, "DeadLetter"},
		{"bad truncate", func(c *Config) { c.Truncate = 9 }, "Truncate 9"},
		{"bad publication", func(c *Config) { c.Publication = "My-Pub" }, "Publication \"My-Pub\" may contain only"},
		{"long publication", func(c *Config) { c.Publication = strings.Repeat("p", 64) }, "longer than 63"},
		{"create without tables", func(c *Config) { c.CreatePublication = true }, "CreatePublication needs PublicationTables, or PublicationAllTables"},
		{"all tables and a list", func(c *Config) {
			c.CreatePublication, c.PublicationAllTables, c.PublicationTables = true, true, []string{"a"}
		}, "both set"},
		{"all tables without create", func(c *Config) { c.PublicationAllTables = true }, "PublicationAllTables is set but CreatePublication is not"},
		{"alter without tables", func(c *Config) { c.AlterPublication = true }, "AlterPublication"},
		{"bad pool setting", func(c *Config) { c.ConnString = "postgres://u:secret@localhost/db?pool_max_conns=x" }, "pool_* setting"},
		{"bad table", func(c *Config) { c.CreatePublication, c.PublicationTables = true, []string{"a", `"b`} }, "PublicationTables"},
		{"bad progress table", func(c *Config) { c.BackfillTable = "a.b.c" }, "BackfillTable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			_, err := Open(t.Context(), cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want a ConfigError mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the password: %v", err)
			}
			if verr := cfg.Validate(); !errors.As(verr, &ce) || !strings.Contains(verr.Error(), tc.want) {
				t.Errorf("Validate = %v, want a ConfigError mentioning %q, as Open", verr, tc.want)
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate of a valid Config = %v", err)
	}
}

// TestConfigBackoffDefault: a Config without Backoff retries as
// sink.DefaultBackoff says, as Run does.
func TestConfigBackoffDefault(t *testing.T) {
	c := Config{ConnString: "postgres://localhost/db", Slot: "s", Publication: "p"}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	got, ok := c.Backoff().(*backoff.ExponentialBackOff)
	want := sink.DefaultBackoff().(*backoff.ExponentialBackOff)
	if !ok || got.InitialInterval != want.InitialInterval || got.MaxInterval != want.MaxInterval ||
		got.Multiplier != want.Multiplier || got.RandomizationFactor != want.RandomizationFactor || got.MaxElapsedTime != want.MaxElapsedTime {
		t.Errorf("default Config.Backoff = %+v, want sink.DefaultBackoff's %+v", c.Backoff(), want)
	}
}

func TestOpenMissingPublication(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Publication = "nope"
	if err := openErr(t, cfg); !errors.Is(err, ErrPublicationNotFound) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("got %v", err)
	}
}

func TestOpenCreatesPublicationForTables(t *testing.T) {
	e := newEnv(t, "create table a (id int primary key)", "create table b (id int primary key)",
		`create schema "S.1"`, `create table "S.1"."My ""T""" (id int primary key)`)
	cfg := e.config()
	cfg.Publication, cfg.CreatePublication = "only_a", true
	cfg.PublicationTables = []string{"Public.A", `"S.1"."My ""T"""`}
	s := e.open(cfg)
	e.exec("insert into b values (1)", "insert into a values (2)", `insert into "S.1"."My ""T""" values (3)`, "insert into b values (4)")
	for i, m := range next(t, s, 2) {
		want := [][2]string{{"public", "a"}, {"S.1", `My "T"`}}[i]
		if got := [2]string{m.Metadata.TableSchema, m.Metadata.TableName}; got != want {
			t.Fatalf("change %d is of %q, want %q", i, got, want)
		}
	}
	// b's row 4 was not delivered: the next change is a's row 5.
	e.exec("insert into a values (5)")
	if m := next(t, s, 1)[0]; m.Metadata.TableName != "a" || fmt.Sprint(m.Record["id"]) != "5" {
		t.Fatalf("got %s %v, want a's row 5", m.Metadata.TableName, m.Record)
	}
}

func TestOpenMissingSlot(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.CreateSlot = false
	err := openErr(t, cfg)
	var se *SlotError
	if !errors.Is(err, ErrSlotNotFound) || !errors.As(err, &se) || se.Slot != e.slot {
		t.Fatalf("got %v", err)
	}
}

func TestSlotDroppedWhileStreamingIsNotRecreated(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	s := e.open(e.config())
	e.exec("select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = '" + e.slot + "'")
	waitFor(t, "slot to be released", func() bool {
		var active bool
		e.conn.QueryRow(context.Background(), "select active from pg_replication_slots where slot_name = $1", e.slot).Scan(&active)
		if !active {
			e.conn.Exec(context.Background(), "select pg_drop_replication_slot($1)", e.slot)
		}
		var n int
		e.conn.QueryRow(context.Background(), "select count(*) from pg_replication_slots where slot_name = $1", e.slot).Scan(&n)
		return n == 0
	})
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(30*time.Second))
	defer cancel()
	_, err := s.Next(ctx)
	if !errors.Is(err, ErrSlotNotFound) {
		t.Fatalf("Next = %v, want ErrSlotNotFound", err)
	}
	var n int
	e.conn.QueryRow(context.Background(), "select count(*) from pg_replication_slots where slot_name = $1", e.slot).Scan(&n)
	if n != 0 {
		t.Fatal("the slot was silently re-created")
	}
}

func TestOpenSlotInUseAndStandbyTakeover(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	cfg := e.config()
	first := e.open(cfg)
	err := openErr(t, cfg)
	if !errors.Is(err, ErrSlotInUse) || !strings.Contains(err.Error(), e.slot) {
		t.Fatalf("second Open = %v, want ErrSlotInUse naming the slot", err)
	}

	// A standby waits, then takes over when the first stream goes away.
	cfg.WaitForSlot = true
	type result struct {
		s   *Stream
		err error
	}
	standby := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testtime.Bound(60*time.Second))
		defer cancel()
		s, err := Open(ctx, cfg)
		standby <- result{s, err}
	}()
	e.exec("insert into t values (1)")
	m := next(t, first, 1)[0]
	select {
	case r := <-standby:
		t.Fatalf("standby opened while the slot was held: %v", r.err)
	case <-time.After(300 * time.Millisecond):
	}
	// The first consumer dies without acknowledging.
	_ = m
	first.Close()
	r := <-standby
	if r.err != nil {
		t.Fatalf("standby Open: %v", r.err)
	}
	defer r.s.Close()
	if got := next(t, r.s, 1)[0]; got.Metadata.IdempotencyKey != m.Metadata.IdempotencyKey {
		t.Fatalf("standby got %v, want the unacknowledged change again", got.Record)
	}
}

func TestOpenSlotOfAnotherPluginOrDatabase(t *testing.T) {
	e := newEnv(t)
	e.exec("select pg_create_logical_replication_slot('" + e.slot + "', 'test_decoding')")
	err := openErr(t, e.config())
	if !errors.Is(err, ErrSlotMismatch) || !strings.Contains(err.Error(), "test_decoding") {
		t.Fatalf("got %v", err)
	}

	other := pgtest.NewDatabase(t)
	slot2 := pgtest.Name(t, "slot")
	pgtest.Exec(t, other, "select pg_create_logical_replication_slot('"+slot2+"', 'pgoutput')")
	cfg := e.config()
	cfg.Slot = slot2
	if err := openErr(t, cfg); !errors.Is(err, ErrSlotMismatch) || !strings.Contains(err.Error(), "database") {
		t.Fatalf("got %v", err)
	}
}

func TestOpenPublicationCreatedAfterSlot(t *testing.T) {
	url := pgtest.NewDatabase(t)
	slot := pgtest.Name(t, "slot")
	pgtest.Exec(t, url, "create table t (id int primary key)",
		"select pg_create_logical_replication_slot('"+slot+"', 'pgoutput')",
		"insert into t values (1)", // decoded with a catalog that has no publication yet
		"create publication late for all tables",
		"insert into t values (2)")
	s, err := Open(t.Context(), Config{ConnString: url, Slot: slot, Publication: "late"})
	if err == nil {
		defer s.Close()
		ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(30*time.Second))
		defer cancel()
		_, err = s.Next(ctx)
	}
	if !errors.Is(err, ErrPublicationNotFound) || !strings.Contains(err.Error(), "created after the slot") {
		t.Fatalf("got %v", err)
	}
	// Before 18 pgoutput fails; from 18 it warns and skips the missing
	// publication (dropping the first insert), and the stream turns the
	// warning into the same error.
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want it to wrap the server's message", err)
	}
	severity, code := "ERROR", "42704" // undefined_object
	if pgtest.Major(t, url) >= 18 {
		severity, code = "WARNING", "55000" // object_not_in_prerequisite_state
	}
	if pe.SeverityUnlocalized != severity || pe.Code != code {
		t.Fatalf("PostgreSQL %d: server message %s %s %q, want %s %s", pgtest.Major(t, url), pe.SeverityUnlocalized, pe.Code, pe.Message, severity, code)
	}
}

func TestOpenInvalidatedSlot(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key, v text)")
	cfg := e.config()
	s := e.open(cfg)
	s.Close()
	e.exec("alter system set max_slot_wal_keep_size = '1MB'", "select pg_reload_conf()")
	t.Cleanup(func() { pgtest.Exec(t, e.url, "alter system reset max_slot_wal_keep_size", "select pg_reload_conf()") })
	waitFor(t, "slot invalidation", func() bool {
		e.exec("insert into t select g, repeat('x', 1000) from generate_series(1, 3000) g", "delete from t", "select pg_switch_wal()", "checkpoint")
		var status *string
		e.conn.QueryRow(context.Background(), "select wal_status from pg_replication_slots where slot_name = $1", e.slot).Scan(&status)
		return status != nil && *status == "lost"
	})
	err := openErr(t, cfg)
	if !errors.Is(err, ErrSlotInvalidated) || !strings.Contains(err.Error(), e.slot) {
		t.Fatalf("got %v", err)
	}
}

func TestOpenAuthAndPrivilegeErrors(t *testing.T) {
	e := newEnv(t)
	u, _ := url.Parse(e.url)
	role := pgtest.Name(t, "r")
	e.exec(fmt.Sprintf("create role %s nologin", role))
	u.User = url.User(role)
	cfg := e.config()
	cfg.ConnString = u.String()
	asked := noRetries(&cfg)
	err := openErr(t, cfg)
	if !IsAuthError(err) {
		t.Fatalf("nologin role: got %v, want an auth error", err)
	}
	if *asked != 0 {
		t.Errorf("Open asked for a retry policy %d times after an auth failure: it must not be retried", *asked)
	}

	// A role that may log in but lacks REPLICATION.
	e.exec(fmt.Sprintf("alter role %s login", role))
	err = openErr(t, cfg)
	if !IsAuthError(err) {
		t.Fatalf("role without replication: got %v, want an auth error", err)
	}
}

func TestOpenWALLevelNotLogical(t *testing.T) {
	if pgtest.Shared() == nil {
		t.Skip("needs its own cluster")
	}
	c, err := pgtest.Start(t.Context(), pgtest.Options{Settings: []string{"wal_level = replica"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	err = openErr(t, Config{ConnString: c.URL, Slot: "s", Publication: "p"})
	if !errors.Is(err, ErrWALLevel) || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("got %v", err)
	}
	fs, err := Check(t.Context(), Config{ConnString: c.URL, Slot: "s", Publication: "p", CreateSlot: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || fs[0].Code != FindingWALLevel || fs[0].Severity != SeverityBlocking ||
		!strings.HasPrefix(fs[0].Fix, "ALTER SYSTEM SET wal_level = logical;") || fs[1].Code != FindingPublicationMissing {
		t.Fatalf("Check = %v, want wal_level and the missing publication", fs)
	}
}

func TestOpenBadPasswordIsNotRetried(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.ConnString = pgtest.WrongPassword(t, e.url, "wrong-secret")
	asked := noRetries(&cfg)
	err := openErr(t, cfg)
	if !IsAuthError(err) {
		t.Fatalf("got %v, want an authentication error", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("error leaks the password: %v", err)
	}
	if *asked != 0 {
		t.Errorf("Open asked for a retry policy %d times: authentication failures must not be retried", *asked)
	}
}
