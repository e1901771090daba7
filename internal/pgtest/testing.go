package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/internal/testtime"
)

// shared is the cluster of this test binary, set by Main.
var (
	sharedURL     string
	sharedCluster *Cluster
	sharedErr     error
	dbCounter     atomic.Int64
)

// Main runs a test binary's tests with one shared cluster: call it from
// TestMain as os.Exit(pgtest.Main(m)). The cluster starts before the tests,
// unless WALRELAY_TEST_DATABASE_URL is set, and stops after them.
func Main(m *testing.M) int {
	flag.Parse()
	if fuzzing() {
		// Fuzz targets are pure; fuzz workers must not each start a server.
		return m.Run()
	}
	if u := os.Getenv("WALRELAY_TEST_DATABASE_URL"); u != "" {
		sharedURL = u
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), testtime.Bound(2*time.Minute))
	c, err := Start(ctx, Options{})
	cancel()
	if err != nil {
		sharedErr = err
		if Required() {
			fmt.Fprintf(os.Stderr, "pgtest: WALRELAY_REQUIRE_POSTGRES=1 and no cluster could start: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "pgtest: SKIPPING integration tests: %v\n", err)
		return m.Run()
	}
	sharedCluster, sharedURL = c, c.URL
	code := m.Run()
	if err := c.Stop(); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, err)
	}
	return code
}

// fuzzing reports whether this binary runs fuzz targets (-test.fuzz), as
// the coordinator or a worker.
func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// Required reports whether WALRELAY_REQUIRE_POSTGRES=1 is set.
func Required() bool { return os.Getenv("WALRELAY_REQUIRE_POSTGRES") == "1" }

// URL returns the shared server's URL (the "postgres" database), skipping the
// test — or failing it when Postgres is required — if there is none.
func URL(t testing.TB) string {
	t.Helper()
	if sharedURL == "" {
		err := sharedErr
		if err == nil {
			err = errors.New("pgtest.Main was not called from TestMain")
		}
		if Required() {
			t.Fatalf("postgres required: %v", err)
		}
		t.Skipf("SKIP (no postgres): %v", err)
	}
	return sharedURL
}

// Shared returns the cluster started by Main, or nil when an external server
// (WALRELAY_TEST_DATABASE_URL) is used or none started. Fault tests that
// restart the server skip without it.
func Shared() *Cluster { return sharedCluster }

// NewCluster starts a cluster of the test's own, for a test that needs
// server settings the shared cluster must not have, and stops it at
// cleanup. It skips the test, or fails it when Postgres is required, when no
// cluster can start.
func NewCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testtime.Bound(2*time.Minute))
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		if Required() {
			t.Fatalf("postgres required: %v", err)
		}
		t.Skipf("SKIP (no postgres): %v", err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

// NewDatabase creates a fresh database on the shared server and returns its
// URL. At cleanup it drops the database, first dropping its replication
// slots and ending its connections.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := URL(t)
	name := Name(t, "db")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "create database "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() { DropDatabase(base, name) })
	return WithDatabase(base, name)
}

// DropDatabase drops a database, its replication slots and connections.
func DropDatabase(baseURL, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), testtime.Bound(30*time.Second))
	defer cancel()
	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for i := 0; i < 50; i++ {
		conn.Exec(ctx, "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()", name)
		conn.Exec(ctx, "select pg_terminate_backend(active_pid) from pg_replication_slots where database = $1 and active_pid is not null", name)
		conn.Exec(ctx, "select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1 and not active", name)
		if _, err = conn.Exec(ctx, "drop database if exists "+pgx.Identifier{name}.Sanitize()+" with (force)"); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// WithDatabase returns url with its database replaced by name.
func WithDatabase(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return rawURL + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

// Name returns a unique lowercase identifier for a test's slots,
// publications, tables or databases: prefix, a sanitized test name, a counter
// and random hex; at most 63 bytes.
func Name(t testing.TB, prefix string) string {
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteByte('_')
	for _, r := range strings.ToLower(t.Name()) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() > 36 {
			break
		}
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	fmt.Fprintf(&b, "_%d_%s", dbCounter.Add(1), hex.EncodeToString(rnd[:]))
	return b.String()
}

// Exec runs statements on url, failing the test on error.
func Exec(t testing.TB, url string, sql ...string) {
	t.Helper()
	if err := ExecURL(context.Background(), url, sql...); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

// WrongPassword returns rawURL as PasswordRole with the password wrong,
// after creating PasswordRole (with another password) in its cluster when
// it is not there. It skips the test without a cluster of Main's, the only
// one whose pg_hba.conf asks PasswordRole for a password.
func WrongPassword(t testing.TB, rawURL, wrong string) string {
	t.Helper()
	if Shared() == nil {
		t.Skip("needs the test cluster's pg_hba.conf")
	}
	Exec(t, rawURL, fmt.Sprintf(`do $$ begin
		if not exists (select from pg_roles where rolname = '%[1]s') then
			create role %[1]s login replication password 'right';
		end if; end $$`, PasswordRole))
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	u.User = url.UserPassword(PasswordRole, wrong)
	return u.String()
}
