package pgoutput

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus from a live capture")

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// capture streams a workload that produces every pgoutput message type and
// returns the raw messages.
func capture(t *testing.T) [][]byte {
	t.Helper()
	url := pgtest.NewDatabase(t)
	slot := pgtest.Name(t, "slot")
	pgtest.Exec(t, url,
		"create type color as enum ('red', 'blue')",
		"create table t (id int primary key, c color, body text, n numeric)",
		"create table u (a int, b text)",
		"alter table u replica identity full",
		"create publication pub for all tables",
		"select pg_create_logical_replication_slot('"+slot+"', 'pgoutput')",
		"insert into t values (1, 'red', repeat('x', 5000), 1.5), (2, null, 'y', 'NaN')",
		"update t set n = 2 where id = 1",
		"update t set id = 3 where id = 2",
		"delete from t where id = 1",
		"insert into u values (1, 'a')",
		"update u set b = 'b'",
		"delete from u",
		"truncate t, u",
		"alter table t add column extra int",
		"insert into t (id, extra) values (9, 9)",
		"select pg_logical_emit_message(true, 'p', 'transactional')",
		"select pg_logical_emit_message(false, 'p', 'not transactional')",
	)
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(30*time.Second))
	defer cancel()
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	err = pglogrepl.StartReplication(ctx, conn, slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'pub'", "messages 'true'"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	seen := map[byte]bool{}
	for len(seen) < 9 { // every type but ORIGIN, which needs replication origins
		raw, err := conn.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("receive (types seen %v): %v", seen, err)
		}
		cd, ok := raw.(*pgproto3.CopyData)
		if !ok || len(cd.Data) == 0 || cd.Data[0] != pglogrepl.XLogDataByteID {
			continue
		}
		xld, err := pglogrepl.ParseXLogData(cd.Data[1:])
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, append([]byte(nil), xld.WALData...))
		seen[xld.WALData[0]] = true
	}
	return msgs
}

func TestParseCapturedMessages(t *testing.T) {
	msgs := capture(t)
	for i, data := range msgs {
		m, err := Parse(data)
		if err != nil {
			t.Errorf("message %d (%q): %v", i, data[0], err)
			continue
		}
		if byte(m.Type()) != data[0] {
			t.Errorf("message %d: type %v, want %q", i, m.Type(), data[0])
		}
		// A truncated message is an error or (where the decoder tolerates
		// missing trailing fields) a message of the same type — never a panic.
		for n := 0; n < len(data); n++ {
			m, err := Parse(data[:n])
			if err == nil && (m == nil || byte(m.Type()) != data[0]) {
				t.Errorf("message %d cut to %d bytes: %T without an error", i, n, m)
			}
		}
	}
	if *update {
		dir := filepath.Join("testdata", "fuzz", "FuzzParse")
		os.MkdirAll(dir, 0o755)
		for i, data := range msgs {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("captured-%02d-%c", i, data[0])), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	cases := map[string][]byte{
		"empty":             nil,
		"unknown type":      {'Z', 0, 0},
		"short begin":       {'B', 1, 2, 3},
		"short relation":    {'R', 0, 0, 0, 1},
		"tuple overrun":     append([]byte{'I', 0, 0, 0, 1, 'N', 0, 1, 't', 0, 0, 0, 50}, 'x'),
		"message overrun":   {'M', 1, 0, 0, 0, 0, 0, 0, 0, 1, 'p', 0, 0, 0, 0, 99, 'x'},
		"unterminated name": {'R', 0, 0, 0, 1, 'p', 'u', 'b', 'l', 'i', 'c', 'x', 'y'},
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(data)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v, want *Error", err)
			}
		})
	}
}

// FuzzParse checks that Parse never panics nor returns nothing without an
// error, and that a Parser, reusing or borrowing, decodes as Parse does.
func FuzzParse(f *testing.F) {
	f.Add([]byte{'B', 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7})
	f.Add([]byte{'I', 0, 0, 64, 0, 'N', 0, 1, 't', 0, 0, 0, 1, '1'})
	var p Parser
	borrow := Parser{Borrow: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err == nil && m == nil {
			t.Fatal("nil message without an error")
		}
		// The reusing and the borrowing Parser decode as Parse does.
		for _, p := range []*Parser{&p, &borrow} {
			pm, perr := p.Parse(data)
			if (err == nil) != (perr == nil) || !reflect.DeepEqual(m, pm) {
				t.Fatalf("Parser{Borrow: %v}.Parse(%q) = %#v, %v; Parse %#v, %v", p.Borrow, data, pm, perr, m, err)
			}
		}
	})
}
