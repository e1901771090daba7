package cdc

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
)

func TestIsRetryable(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("cdc: query: %w", &pgconn.PgError{Code: code}) }
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"context canceled", fmt.Errorf("x: %w", context.Canceled), false},
		{"context deadline", context.DeadlineExceeded, true},

		// Postgres errors, by SQLSTATE.
		{"admin shutdown", pg("57P01"), true},
		{"crash shutdown", pg("57P02"), true},
		{"cannot connect now", pg("57P03"), true},
		{"connection failure", pg("08006"), true},
		{"serialization failure", pg("40001"), true},
		{"deadlock", pg("40P01"), true},
		{"too many connections", pg("53300"), true},
		{"disk full", pg("53100"), true},
		{"object in use", pg("55006"), true},
		{"undefined file", pg("58P01"), true},
		{"internal error", pg("XX000"), true},
		{"undefined table", pg("42P01"), false},
		{"undefined column", pg("42703"), false},
		{"insufficient privilege", pg("42501"), false},
		{"invalid password", pg("28P01"), false},
		{"invalid text representation", pg("22P02"), false},
		{"division by zero", pg("22012"), false},
		{"unique violation", pg("23505"), false},
		{"feature not supported", pg("0A000"), false},
		{"no such database", pg("3D000"), false},
		{"no such schema", pg("3F000"), false},
		{"raised exception", pg("P0001"), false},

		// Connections.
		{"net error", reset, true},
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"broken pipe", syscall.EPIPE, true},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"reconnect gave up", fmt.Errorf("cdc: reconnect gave up: %w", reset), true},
		{"server ended the stream", errStreamEnded, true},
		{"a replication error the catalog could not explain yet", fmt.Errorf("%w: %w (%v)", errUndiagnosed, &pgconn.PgError{Code: "42704"}, errors.New("pool closed")), true},
		{"chunk lost", errChunkLost, true},

		// This package's errors.
		{"slot in use", &SlotError{Slot: "s", Err: ErrSlotInUse}, true},
		{"slot syncing", &SlotError{Slot: "s", Err: ErrSlotSyncing}, true},
		{"slot not found", &SlotError{Slot: "s", Err: ErrSlotNotFound}, false},
		{"slot invalidated", &SlotError{Slot: "s", Err: ErrSlotInvalidated}, false},
		{"slot mismatch", &SlotError{Slot: "s", Err: ErrSlotMismatch}, false},
		{"slot not synced", &SlotError{Slot: "s", Err: ErrSlotNotSynced}, false},
		{"config", &ConfigError{Err: errors.New("Slot is empty")}, false},
		{"config naming a connection", &ConfigError{Err: reset}, false},
		{"check", &CheckError{}, false},
		{"decode", &DecodeError{Err: errors.New("bad tuple")}, false},
		{"truncate", &TruncateError{Tables: []string{"public.t"}}, false},
		{"privilege", fmt.Errorf("%w: x", ErrPrivilege), false},
		{"wal_level", ErrWALLevel, false},
		{"publication", fmt.Errorf("%w: %q", ErrPublicationNotFound, "p"), false},
		{"history diverged", ErrHistoryDiverged, false},
		{"server version", ErrServerVersion, false},
		{"replica identity", fmt.Errorf("%w: t", ErrReplicaIdentity), false},
		{"table not found", ErrTableNotFound, false},
		{"table not published", ErrTableNotPublished, false},
		{"closed", ErrClosed, false},
		{"backfill: no table", fmt.Errorf("backfill: t: %w", backfill.ErrTableNotFound), false},
		{"backfill: no key", backfill.ErrNoPrimaryKey, false},
		{"backfill: no column", backfill.ErrUnknownColumn, false},
		{"unknown", errors.New("backfill: read: got 3 columns, want 4"), false},
	} {
		if got := IsRetryable(c.err); got != c.want {
			t.Errorf("%s: IsRetryable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// TestIsRetryableRealErrors classifies errors as pgx returns them from a
// real server.
func TestIsRetryableRealErrors(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(30*time.Second))
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	check := func(what string, err error, want bool) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		if got := IsRetryable(err); got != want {
			t.Errorf("%s: IsRetryable(%v) = %v, want %v", what, err, got, want)
		}
	}

	_, err = conn.Exec(ctx, "select * from no_such_table")
	check("missing table", err, false)
	_, err = conn.Exec(ctx, "select 1 / (random() * 0)::int")
	check("division by zero", err, false)

	// A refused connection.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = pgconn.Connect(ctx, "postgres://u@"+addr+"/db?connect_timeout=5")
	check("refused connection", err, true)

	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	nodb := cfg.Copy()
	nodb.Database = "no_such_database"
	_, err = pgx.ConnectConfig(ctx, nodb)
	check("missing database", err, false)
	norole := cfg.Copy()
	norole.User = "no_such_role"
	_, err = pgx.ConnectConfig(ctx, norole)
	check("missing role", err, false)

	// The server ends the session (as a restart does).
	victim, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close(context.Background())
	if _, err := conn.Exec(ctx, "select pg_terminate_backend($1)", victim.PgConn().PID()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testtime.Bound(10 * time.Second))
	for {
		_, err = victim.Exec(ctx, "select 1")
		if err != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // the signal is on its way
	}
	check("terminated session", err, true)
}

// TestOneRetryPolicy: the reader (Stream.run, which reconnects) and
// Backfill (backfillRun.again, which reads a chunk again) decide with the
// same function, and no other function of the package classifies
// connection errors.
func TestOneRetryPolicy(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	calls := map[string]map[string]bool{} // function → what it calls
	for _, f := range files {
		if test, _ := filepath.Match("*_test.go", f); test {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			name := fd.Name.Name
			if fd.Recv != nil {
				typ := fd.Recv.List[0].Type
				if st, ok := typ.(*ast.StarExpr); ok {
					typ = st.X
				}
				name = typ.(*ast.Ident).Name + "." + name
			}
			called := map[string]bool{}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					switch fn := n.Fun.(type) {
					case *ast.Ident:
						called[fn.Name] = true
					case *ast.SelectorExpr:
						if x, ok := fn.X.(*ast.Ident); ok {
							called[x.Name+"."+fn.Sel.Name] = true
						}
					}
				}
				return true
			})
			calls[name] = called
		}
	}
	for _, fn := range []string{"Stream.run", "backfillRun.again"} {
		if !calls[fn]["IsRetryable"] {
			t.Errorf("%s does not decide with IsRetryable", fn)
		}
	}
	for fn, called := range calls {
		if called["pgconn.SafeToRetry"] && fn != "connectionLost" {
			t.Errorf("%s classifies connection errors itself (pgconn.SafeToRetry); IsRetryable is the one classifier", fn)
		}
	}
}
