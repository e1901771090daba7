package cdc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/tlstest"
	"github.com/walrelay/walrelay/message"
)

// tlsEnv is a cluster of the test's own with TLS on, its CA, and a second
// CA the server's certificate does not come from.
type tlsEnv struct {
	c        *pgtest.Cluster
	ca       *tlstest.CA
	caFile   string // the CA that signed the server's certificate
	otherCA  *tlstest.CA
	other    string // a CA that did not
	goodCert string // the server's certificate and key files
	goodKey  string
}

func newTLSEnv(t *testing.T) *tlsEnv {
	t.Helper()
	pgtest.URL(t) // skip, or fail, as the other integration tests do without Postgres
	ca := tlstest.NewCA(t, "walrelay test CA")
	e := &tlsEnv{ca: ca, otherCA: tlstest.NewCA(t, "some other CA")}
	e.caFile, e.other = ca.WriteFile(t), e.otherCA.WriteFile(t)
	e.goodCert, e.goodKey = e.ca.Server(t, "127.0.0.1", "localhost").WriteFiles(t)
	e.c = pgtest.NewCluster(t, pgtest.Options{TLSCertFile: e.goodCert, TLSKeyFile: e.goodKey})
	return e
}

// database creates a database with a publication for all tables and
// returns its name.
func (e *tlsEnv) database(t *testing.T, setup ...string) string {
	t.Helper()
	name := pgtest.Name(t, "db")
	pgtest.Exec(t, e.c.URL, "create database "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() { pgtest.DropDatabase(e.c.URL, name) })
	pgtest.Exec(t, e.admin(name), append(setup, "create publication pub for all tables")...)
	return name
}

// admin is a connection string to db without TLS, for the test's own work.
func (e *tlsEnv) admin(db string) string { return pgtest.WithDatabase(e.c.URL, db) }

// verifyFull is a connection string to db at host that verifies the
// server's certificate against the CA in caFile and its name against host.
func (e *tlsEnv) verifyFull(host, db, caFile string) string {
	q := url.Values{"sslmode": {"verify-full"}, "sslrootcert": {caFile}}
	return fmt.Sprintf("postgres://postgres@%s:%d/%s?%s", host, e.c.Port, db, q.Encode())
}

// reload makes the server present cert (files) to new connections until
// the test ends.
func (e *tlsEnv) reload(t *testing.T, cert, key string) {
	t.Helper()
	if err := e.c.ReloadTLS(t.Context(), cert, key); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.c.ReloadTLS(context.Background(), e.goodCert, e.goodKey); err != nil {
			t.Errorf("restore the server's certificate: %v", err)
		}
	})
}

// walrelayTLS returns how many of walrelay's connections to db (sessions and
// walsenders) there are and how many of them use TLS.
func (e *tlsEnv) walrelayTLS(t *testing.T, db string) (conns, withTLS int) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), e.admin(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(t.Context(), `select count(*), count(*) filter (where s.ssl)
		from pg_stat_activity a join pg_stat_ssl s using (pid)
		where a.datname = $1 and a.application_name = 'walrelay'`, db).Scan(&conns, &withTLS)
	if err != nil {
		t.Fatal(err)
	}
	return conns, withTLS
}

// quickBackoff retries at once, so that a test that must not see a retry
// loop sees many turns of it quickly.
func quickBackoff() backoff.BackOff { return backoff.NewConstantBackOff(20 * time.Millisecond) }

// checkVerifyError checks that err is a certificate verification failure
// that says why, of type T (x509.UnknownAuthorityError, x509.HostnameError).
func checkVerifyError[T error](t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("connected, want a certificate verification failure")
	}
	var ve *tls.CertificateVerificationError
	var why T
	if !errors.As(err, &ve) || !errors.As(err, &why) {
		t.Fatalf("error %v (%T) is not a *tls.CertificateVerificationError with a %T", err, err, why)
	}
	if IsAuthError(err) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v is classified as an authentication failure or a timeout", err)
	}
	t.Logf("as expected: %v", err)
}

// TestTLSVerifyFull streams and backfills over connections with
// sslmode=verify-full to a server whose certificate was made in the test,
// and checks that a certificate from another CA, or for another host, is
// refused with a typed error — also when it appears on a reconnect, where
// retrying cannot help and so must not go on forever.
func TestTLSVerifyFull(t *testing.T) {
	e := newTLSEnv(t)

	t.Run("stream", func(t *testing.T) {
		db := e.database(t, "create table items (id int primary key, v text)")
		s := openTLS(t, Config{ConnString: e.verifyFull("127.0.0.1", db, e.caFile),
			Slot: pgtest.Name(t, "slot"), Publication: "pub", CreateSlot: true})
		pgtest.Exec(t, e.admin(db), "insert into items select g, 'v' || g from generate_series(1, 3) g")
		for i, m := range next(t, s, 3) {
			if m.Action != message.ActionInsert || m.Record["id"] != int64(i+1) {
				t.Fatalf("message %d = %s %v", i, m.Action, m.Record)
			}
			s.Ack(m)
		}
		if conns, withTLS := e.walrelayTLS(t, db); conns == 0 || withTLS != conns {
			t.Fatalf("%d of walrelay's %d connections use TLS", withTLS, conns)
		}
	})

	t.Run("backfill", func(t *testing.T) {
		const rows = 500
		db := e.database(t, "create table items (id int primary key, v text)",
			fmt.Sprintf("insert into items select g, 'v' || g from generate_series(1, %d) g", rows))
		// By name this time: the certificate names localhost too.
		s := openTLS(t, Config{ConnString: e.verifyFull("localhost", db, e.caFile),
			Slot: pgtest.Name(t, "slot"), Publication: "pub", CreateSlot: true})
		done := make(chan error, 1)
		go func() {
			done <- s.Backfill(t.Context(), backfill.Config{Table: "items", ID: "tls", ChunkSize: 100})
		}()
		seen := map[int64]bool{}
		for len(seen) < rows {
			m := next(t, s, 1)[0]
			if m.Action != message.ActionRead {
				t.Fatalf("unexpected %s %v", m.Action, m.Record)
			}
			seen[m.Record["id"].(int64)] = true
			s.Ack(m)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Backfill: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("Backfill did not return after all its reads were acknowledged")
		}
		if conns, withTLS := e.walrelayTLS(t, db); conns == 0 || withTLS != conns {
			t.Fatalf("%d of walrelay's %d connections use TLS", withTLS, conns)
		}
	})

	t.Run("wrong CA", func(t *testing.T) {
		db := e.database(t)
		err := openErr(t, Config{ConnString: e.verifyFull("127.0.0.1", db, e.other),
			Slot: pgtest.Name(t, "slot"), Publication: "pub", CreateSlot: true})
		checkVerifyError[x509.UnknownAuthorityError](t, err)
	})

	t.Run("wrong host", func(t *testing.T) {
		db := e.database(t)
		// The trusted CA, but a certificate for another name.
		cert, key := e.ca.Server(t, "db.example.test").WriteFiles(t)
		e.reload(t, cert, key)
		err := openErr(t, Config{ConnString: e.verifyFull("127.0.0.1", db, e.caFile),
			Slot: pgtest.Name(t, "slot"), Publication: "pub", CreateSlot: true})
		var he x509.HostnameError
		checkVerifyError[x509.HostnameError](t, err)
		if errors.As(err, &he); he.Host != "127.0.0.1" {
			t.Errorf("HostnameError.Host = %q, want 127.0.0.1", he.Host)
		}
	})

	// replacedWhileStreaming streams from db with connString, then has
	// the server present a certificate of another CA and cuts the
	// replication connection: the reconnect must fail for good, not retry
	// every 20ms until the test gives up. It returns Next's error.
	replacedWhileStreaming := func(t *testing.T, db, connString string) error {
		s := openTLS(t, Config{ConnString: connString,
			Slot: pgtest.Name(t, "slot"), Publication: "pub", CreateSlot: true, Backoff: quickBackoff})
		pgtest.Exec(t, e.admin(db), "insert into items values (1, 'a')")
		s.Ack(next(t, s, 1)[0])
		cert, key := e.otherCA.Server(t, "127.0.0.1", "localhost").WriteFiles(t)
		e.reload(t, cert, key)
		pgtest.Exec(t, e.admin(db), "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'walrelay'")
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		m, err := s.Next(ctx)
		if err == nil {
			t.Fatalf("Next returned %s %v after the server's certificate changed", m.Action, m.Record)
		}
		return err
	}

	t.Run("certificate replaced while streaming", func(t *testing.T) {
		db := e.database(t, "create table items (id int primary key, v text)")
		err := replacedWhileStreaming(t, db, e.verifyFull("127.0.0.1", db, e.caFile))
		checkVerifyError[x509.UnknownAuthorityError](t, err)
	})

	// sslmode=verify-ca checks the chain in a callback of pgx's, whose
	// x509 error comes without a tls.CertificateVerificationError around it.
	t.Run("certificate replaced while streaming, verify-ca", func(t *testing.T) {
		db := e.database(t, "create table items (id int primary key, v text)")
		connString := strings.Replace(e.verifyFull("127.0.0.1", db, e.caFile), "sslmode=verify-full", "sslmode=verify-ca", 1)
		err := replacedWhileStreaming(t, db, connString)
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next = %v, want an x509.UnknownAuthorityError", err)
		}
		t.Logf("as expected: %v", err)
	})

	t.Run("certificate replaced during a backfill", func(t *testing.T) {
		db := e.database(t, "create table items (id int primary key, v text)",
			"insert into items select g, 'v' || g from generate_series(1, 10) g")
		s := openTLS(t, Config{ConnString: e.verifyFull("127.0.0.1", db, e.caFile),
			Slot: pgtest.Name(t, "slot"), Publication: "pub", CreateSlot: true, Backoff: quickBackoff})
		cert, key := e.otherCA.Server(t, "127.0.0.1", "localhost").WriteFiles(t)
		e.reload(t, cert, key)
		// The replication connection stays up; the backfill's queries need
		// new connections, which the server's new certificate fails.
		pgtest.Exec(t, e.admin(db), "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'walrelay' and backend_type = 'client backend'")
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		err := s.Backfill(ctx, backfill.Config{Table: "items", ID: "tls"})
		checkVerifyError[x509.UnknownAuthorityError](t, err)
		// Backfill gave up by itself, not because the stream stopped: the
		// stream, on its old replication connection, still runs.
		select {
		case <-s.done:
			t.Fatalf("the stream stopped: %v", s.err)
		default:
		}
	})
}

func openTLS(t *testing.T, cfg Config) *Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
