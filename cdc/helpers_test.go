package cdc

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// env is a fresh database with a publication for all tables and a slot
// name, for one test.
type env struct {
	t    testing.TB
	url  string
	slot string
	pub  string
	conn *pgx.Conn
	p    *pgxpool.Pool
}

// pool returns a connection from a pool for goroutines other than the test's.
func (e *env) pool(ctx context.Context) (*pgxpool.Conn, error) {
	return e.p.Acquire(ctx)
}

func newEnv(t *testing.T, setup ...string) *env {
	t.Helper()
	return newEnvAt(t, pgtest.NewDatabase(t), setup...)
}

// newEnvAt is newEnv in the database at url.
func newEnvAt(t testing.TB, url string, setup ...string) *env {
	t.Helper()
	e := &env{t: t, url: url, slot: pgtest.Name(t, "slot"), pub: "pub"}
	pgtest.Exec(t, url, setup...)
	pgtest.Exec(t, url, "create publication pub for all tables")
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	e.conn = conn
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	e.p = p
	return e
}

func (e *env) config() Config {
	return Config{ConnString: e.url, Slot: e.slot, Publication: e.pub, CreateSlot: true}
}

func (e *env) open(cfg Config) *Stream {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testtime.Bound(30*time.Second))
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

func (e *env) exec(sql ...string) {
	e.t.Helper()
	for _, q := range sql {
		if _, err := e.conn.Exec(context.Background(), q); err != nil {
			e.t.Fatalf("%s: %v", q, err)
		}
	}
}

// next returns n messages, failing the test after a timeout (scaled by
// testtime).
func next(t *testing.T, s *Stream, n int) []message.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testtime.Bound(60*time.Second))
	defer cancel()
	msgs := make([]message.Message, 0, n)
	for len(msgs) < n {
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d of %d messages: %v", len(msgs), n, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// none checks that no message arrives within d: a short, fixed window,
// which a slow machine can only make pass, never fail.
func none(t *testing.T, s *Stream, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := s.Next(ctx)
	if err == nil {
		t.Fatalf("unexpected message: %s %v", m.Action, m.Record)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v", err)
	}
}

// confirmedFlush reads the slot's confirmed_flush_lsn.
func (e *env) confirmedFlush() message.LSN {
	e.t.Helper()
	var s *string
	if err := e.conn.QueryRow(context.Background(), "select confirmed_flush_lsn::text from pg_replication_slots where slot_name = $1", e.slot).Scan(&s); err != nil {
		e.t.Fatal(err)
	}
	if s == nil {
		return 0
	}
	l, err := message.ParseLSN(*s)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// waitFor polls cond until it holds or fails after 30s (scaled by
// testtime).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testtime.WaitFor(t, 30*time.Second, what, cond)
}

// ackAll acknowledges every message of s, in a goroutine, until ctx ends.
func ackAll(ctx context.Context, s *Stream) {
	go func() {
		for {
			m, err := s.Next(ctx)
			if err != nil {
				return
			}
			s.Ack(m)
		}
	}()
}
