package idempotency_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/walrelay/walrelay/idempotency"
	"github.com/walrelay/walrelay/idempotency/storetest"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/message"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func newPostgresStore(t *testing.T, pool *pgxpool.Pool, cfg idempotency.PostgresConfig) *idempotency.PostgresStore {
	t.Helper()
	if cfg.Table == "" {
		cfg.Table = pgtest.Name(t, "keys")
	}
	s, err := idempotency.NewPostgresStore(t.Context(), pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPostgresStoreConformance(t *testing.T) {
	pool := newPool(t, pgtest.NewDatabase(t))
	storetest.Run(t, storetest.Config{
		New: func(t *testing.T) idempotency.Store {
			return newPostgresStore(t, pool, idempotency.PostgresConfig{})
		},
		Expire: func(ctx context.Context, s idempotency.Store) error {
			_, err := s.(*idempotency.PostgresStore).Prune(ctx, 0)
			return err
		},
	})
}

// TestClaimTxAbort shows that an effect and its claim commit together: a
// transaction that applies a change and claims its key, then dies before
// committing, leaves neither behind, and a retry does both.
func TestClaimTxAbort(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url, "create table target (id int primary key, v text)")
	pool := newPool(t, url)
	store := newPostgresStore(t, pool, idempotency.PostgresConfig{})
	ctx := t.Context()
	key := message.ChangeKey(0x16B374D848, 0)

	apply := func(tx pgx.Tx) bool {
		t.Helper()
		first, err := store.ClaimTx(ctx, tx, key)
		if err != nil {
			t.Fatal(err)
		}
		if first {
			if _, err := tx.Exec(ctx, "insert into target values (1, 'one')"); err != nil {
				t.Fatal(err)
			}
		}
		return first
	}
	state := func() (rows int, claimed bool) {
		t.Helper()
		if err := pool.QueryRow(ctx, "select count(*) from target").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		seen, err := store.Seen(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return rows, seen[0]
	}

	// 1. Rolled back after apply and claim.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !apply(tx) {
		t.Fatal("first ClaimTx: first = false")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, claimed := state(); rows != 0 || claimed {
		t.Fatalf("after rollback: %d rows, claimed = %v; want 0 rows, not claimed", rows, claimed)
	}

	// 2. The session dies mid-transaction, as when the process is killed.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err = conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !apply(tx) {
		t.Fatal("ClaimTx after rollback: first = false")
	}
	var pid uint32 = conn.PgConn().PID()
	if _, err := pool.Exec(ctx, "select pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err == nil {
		t.Fatal("commit on a terminated session succeeded")
	}
	if rows, claimed := state(); rows != 0 || claimed {
		t.Fatalf("after a killed session: %d rows, claimed = %v; want 0 rows, not claimed", rows, claimed)
	}

	// 3. A committed retry applies and claims; a redelivery does neither.
	for i, wantFirst := range []bool{true, false} {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := apply(tx); got != wantFirst {
			t.Fatalf("attempt %d: first = %v, want %v", i, got, wantFirst)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if rows, claimed := state(); rows != 1 || !claimed {
			t.Fatalf("after commit %d: %d rows, claimed = %v; want 1 row, claimed", i, rows, claimed)
		}
	}
}

// TestClaimTxWaitsForOpenClaim: a claim held by an open transaction blocks a
// concurrent claim of the same key until it ends, and the outcome follows
// whether it committed.
func TestClaimTxWaitsForOpenClaim(t *testing.T) {
	pool := newPool(t, pgtest.NewDatabase(t))
	store := newPostgresStore(t, pool, idempotency.PostgresConfig{})
	ctx := t.Context()

	for _, commit := range []bool{false, true} {
		key := "open-" + map[bool]string{false: "rollback", true: "commit"}[commit]
		holder, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if first, err := store.ClaimTx(ctx, holder, key); err != nil || !first {
			t.Fatalf("holder ClaimTx = %v, %v", first, err)
		}
		type result struct {
			first bool
			err   error
		}
		done := make(chan result, 1)
		go func() {
			first, err := store.Claim(ctx, key)
			done <- result{first, err}
		}()
		// Wait until the second claim is blocked on the holder's lock.
		for {
			var waiting bool
			err := pool.QueryRow(ctx, `select exists (select 1 from pg_stat_activity
				where datname = current_database() and wait_event_type = 'Lock' and query like 'insert into%')`).Scan(&waiting)
			if err != nil {
				t.Fatal(err)
			}
			if waiting {
				break
			}
			select {
			case r := <-done:
				t.Fatalf("Claim of a key held by an open transaction returned %v, %v without waiting", r.first, r.err)
			case <-time.After(5 * time.Millisecond):
			}
		}
		if commit {
			err = holder.Commit(ctx)
		} else {
			err = holder.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.first == commit {
			t.Fatalf("holder committed = %v: waiting Claim first = %v, want %v", commit, r.first, !commit)
		}
	}
}

func TestClaimAllTx(t *testing.T) {
	pool := newPool(t, pgtest.NewDatabase(t))
	store := newPostgresStore(t, pool, idempotency.PostgresConfig{})
	ctx := t.Context()
	if _, err := store.Claim(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	for _, commit := range []bool{false, true} {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		first, err := store.ClaimAllTx(ctx, tx, "a", "b", "c", "a")
		if err != nil {
			t.Fatal(err)
		}
		if want := []bool{true, false, true, false}; !equalBools(first, want) {
			t.Fatalf("ClaimAllTx(a b c a) = %v, want %v", first, want)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		seen, err := store.Seen(ctx, "a", "c")
		if err != nil {
			t.Fatal(err)
		}
		if seen[0] != commit || seen[1] != commit {
			t.Fatalf("committed = %v: Seen(a c) = %v", commit, seen)
		}
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPostgresStorePrune(t *testing.T) {
	pool := newPool(t, pgtest.NewDatabase(t))
	store := newPostgresStore(t, pool, idempotency.PostgresConfig{})
	ctx := t.Context()
	if _, err := store.ClaimAll(ctx, "old1", "old2", "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "update "+store.Table()+" set claimed_at = now() - interval '2 hours' where key like 'old%'"); err != nil {
		t.Fatal(err)
	}
	n, err := store.Prune(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("Prune(1h) deleted %d keys, want 2", n)
	}
	seen, err := store.Seen(ctx, "old1", "old2", "new")
	if err != nil {
		t.Fatal(err)
	}
	if !equalBools(seen, []bool{false, false, true}) {
		t.Fatalf("after Prune: Seen(old1 old2 new) = %v", seen)
	}
	if _, err := store.Prune(ctx, -time.Second); err == nil {
		t.Fatal("Prune with a negative age: no error")
	}
}

func TestPostgresStoreRetentionPrunesOnClaim(t *testing.T) {
	pool := newPool(t, pgtest.NewDatabase(t))
	store := newPostgresStore(t, pool, idempotency.PostgresConfig{Retention: time.Hour})
	ctx := t.Context()
	if _, err := pool.Exec(ctx, "insert into "+store.Table()+" values ('stale', now() - interval '2 hours'), ('fresh', now() - interval '30 minutes')"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Claim(ctx, "new"); err != nil {
		t.Fatal(err)
	}
	seen, err := store.Seen(ctx, "stale", "fresh", "new")
	if err != nil {
		t.Fatal(err)
	}
	if !equalBools(seen, []bool{false, true, true}) {
		t.Fatalf("Retention 1h: Seen(stale fresh new) = %v, want [false true true]", seen)
	}
}

func TestNewPostgresStoreConfig(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url, "create schema app", `create schema "my.app"`, "create table wrong_shape (id int)")
	pool := newPool(t, url)
	ctx := t.Context()

	bad := []idempotency.PostgresConfig{
		{Table: "a.b.c"},
		{Table: "keys; drop table x"},
		{Table: `"unterminated`},
		{Table: "my-keys"},
		{Table: "1keys"},
		{Table: "app."},
		{Table: strings.Repeat("k", 64)},
		{Retention: -time.Second},
	}
	for _, cfg := range bad {
		if _, err := idempotency.NewPostgresStore(ctx, pool, cfg); err == nil {
			t.Errorf("NewPostgresStore(%+v): no error", cfg)
		}
	}
	if _, err := idempotency.NewPostgresStore(ctx, nil, idempotency.PostgresConfig{}); err == nil {
		t.Error("NewPostgresStore with a nil Querier: no error")
	}
	if _, err := idempotency.NewPostgresStore(ctx, pool, idempotency.PostgresConfig{Table: "wrong_shape"}); err == nil {
		t.Error("NewPostgresStore on a table without key and claimed_at columns: no error")
	}

	// The default table, a schema-qualified one, quoted mixed-case ones,
	// unquoted upper case (folded) and quoted dots and quotes; each can be
	// opened again (and concurrently) without error.
	for _, name := range []string{"", `app."Keys"`, "App.Lower", "keys$1", strings.Repeat("k", 63), `"my.app"."Keys ""x"""`} {
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = idempotency.NewPostgresStore(ctx, pool, idempotency.PostgresConfig{Table: name})
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("table %q: %v", name, err)
		}
	}
	var n int
	err := pool.QueryRow(ctx, `select count(*) from pg_tables where (schemaname, tablename) in
		(('public', 'walrelay_idempotency'), ('app', 'Keys'), ('app', 'lower'), ('public', 'keys$1'), ('my.app', 'Keys "x"'))`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Fatalf("found %d of the 5 created tables", n)
	}
}

// TestPostgresStoreLongNamesIndexed checks that every store table gets its
// claimed_at index, also when Postgres would truncate two tables' index
// names to the same 63 bytes.
func TestPostgresStoreLongNamesIndexed(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pool := newPool(t, url)
	ctx := t.Context()
	prefix := strings.Repeat("k", 55)
	names := []string{
		prefix + "_one", prefix + "_two", // same first 55 bytes
		strings.Repeat("k", 63),
		`"` + strings.Repeat("é", 31) + `"`, // 62 bytes: the cut must keep whole characters
		`"` + strings.Repeat("é", 30) + `a"`,
		"short",
	}
	for _, name := range names {
		if _, err := idempotency.NewPostgresStore(ctx, pool, idempotency.PostgresConfig{Table: name}); err != nil {
			t.Errorf("table %q: %v", name, err)
		}
	}
	for _, name := range names {
		_, table, err := message.ParseTable(name)
		if err != nil {
			t.Fatal(err)
		}
		var idx []string
		rows, err := pool.Query(ctx, `select i.relname::text from pg_index x
			join pg_class i on i.oid = x.indexrelid
			join pg_class c on c.oid = x.indrelid
			join pg_attribute a on a.attrelid = c.oid and a.attnum = x.indkey[0]
			where c.relname = $1 and a.attname = 'claimed_at' and x.indnatts = 1`, table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			idx = append(idx, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(idx) != 1 {
			t.Errorf("table %q: claimed_at indexes %q, want one", table, idx)
		}
	}
}
