package backfill

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/walrelay/walrelay/internal/pgtest"
)

// TestKeyTypes backfills tables keyed by each kind of column Postgres
// allows in a primary key — types whose text form must be cast back with
// the column's modifier (bit(n), char(n)), with precision (numeric(p,s),
// time stamps), collations, arrays, enums, domains and keys mixing them —
// in small pages, and checks that every row is read exactly once: a cursor
// cast to the wrong type restarts, skips or repeats pages.
func TestKeyTypes(t *testing.T) {
	url := pgtest.NewDatabase(t)
	conn := connect(t, url)
	ctx := t.Context()
	// A collation other than the database's (C): ICU's root locale orders
	// case-insensitively first, unlike C. Fall back to libc's C.utf8.
	var coll string
	if err := conn.QueryRow(ctx, `select collname from pg_collation
		where collname in ('und-x-icu', 'C.utf8', 'C.UTF-8') order by collname = 'und-x-icu' desc limit 1`).Scan(&coll); err != nil {
		t.Fatalf("no collation to test with: %v", err)
	}
	t.Logf("collation: %s", coll)
	pgtest.Exec(t, url,
		"create type mood as enum ('sad', 'ok', 'happy')",
		"create domain byte8 as bit(8)",
	)
	const n = 300
	cases := []struct {
		name, cols, key, values string
	}{
		{"bit20", "k bit(20)", "k", "g::bit(20)"},
		{"bit1", "k bit(1), j int", "k, j", "(g % 2)::bit(1), g"},
		{"varbit", "k bit varying(40)", "k", "(repeat('1', g % 7) || g::bit(12)::text)::varbit"},
		{"char", "k char(6)", "k", "g::text"},
		{"char1", "k character, j int", "k, j", "chr(97 + g % 5), g"},
		{"varchar", "k varchar(5)", "k", "lpad(g::text, 5, 'z')"},
		{"numeric", "k numeric(10,2)", "k", "g / 7.0"},
		{"numeric neg", "k numeric(6,3)", "k", "(g - 150) / 8.0"},
		{"timestamp3", "k timestamp(3)", "k", "timestamp '2024-01-01' + g * interval '1.2345 ms'"},
		{"timestamptz0", "k timestamptz(0)", "k", "timestamptz '2024-01-01 00:00:00+02' + g * interval '1 s'"},
		{"timestamptz6", "k timestamptz", "k", "timestamptz '2024-01-01' + g * interval '1.000001 s'"},
		{"time2", "k time(2)", "k", "time '00:00' + g * interval '10 ms'"},
		{"timetz", "k timetz(1)", "k", "timetz '00:00+01' + g * interval '100 ms'"},
		{"date", "k date", "k", "date '2000-02-28' + g"},
		{"interval", "k interval", "k", "g * interval '1 day 1 ms'"},
		{"interval fields", "k interval day to second(1)", "k", "g * interval '1 hour 0.1 s'"},
		{"uuid", "k uuid", "k", "md5(g::text)::uuid"},
		{"text collate", "k text collate \"" + coll + "\"", "k", "chr(65 + (g % 3) * 32 + g % 26) || g"},
		{"float8", "k float8", "k", "g / 3.0"},
		{"float4", "k real", "k", "g / 3.0"},
		{"bytea", "k bytea", "k", "decode(lpad(to_hex(g), 4, '0'), 'hex')"},
		{"inet", "k inet", "k", "('10.0.' || g / 256 || '.' || g % 256)::inet"},
		{"macaddr", "k macaddr", "k", "('08:00:2b:01:' || lpad(to_hex(g / 256), 2, '0') || ':' || lpad(to_hex(g % 256), 2, '0'))::macaddr"},
		{"int array", "k int[]", "k", "array[g % 10, g]"},
		{"text array", "k text[]", "k", "array['a b', g::text, 'x,\"y\"']"},
		{"enum", "k mood, j int", "k, j", "(array['sad','ok','happy'])[g % 3 + 1]::mood, g"},
		{"domain", "k byte8, j int", "k, j", "(g % 256)::bit(8), g"},
		{"bool", "k bool, j smallint", "k, j", "g % 2 = 0, g"},
		{"jsonb", "k jsonb", "k", "jsonb_build_object('g', g, 's', 'x\"y')"},
		{"mixed", "b bit(4), c char(3), x numeric(5,1), t timestamp(2)", "b, c, x, t",
			"(g % 16)::bit(4), (g % 3)::text, (g % 7) / 10.0, timestamp '2024-01-01' + g * interval '1.005 s'"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := fmt.Sprintf("k%d", i)
			pgtest.Exec(t, url,
				fmt.Sprintf("create table %s (%s, v int not null, primary key (%s))", table, tc.cols, tc.key),
				fmt.Sprintf("insert into %s select %s, g from generate_series(1, %d) g", table, tc.values, n),
			)
			for _, size := range []int{1, 7, 0} {
				it, err := New(ctx, conn, Config{Table: table, ID: "k", ChunkSize: size})
				if err != nil {
					t.Fatal(err)
				}
				seen := make(map[string]int, n)
				reads := 0
				for reads <= 2*n { // more reads than rows: a page was read again
					_, err := it.Next(ctx, conn)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatalf("ChunkSize %d, after %d reads: %v", size, reads, err)
					}
					reads++
					seen[strings.Join(it.Cursor(), "\x00")]++
				}
				if reads != n || len(seen) != n {
					t.Errorf("ChunkSize %d: %d reads of %d distinct keys, want %d rows each read once", size, reads, len(seen), n)
				}
			}
		})
	}
}

// TestBitKeyManyPages backfills a bit(20)-keyed table with adaptive pages,
// several of them, and reads each row once.
func TestBitKeyManyPages(t *testing.T) {
	url := pgtest.NewDatabase(t)
	const n = 20000
	pgtest.Exec(t, url,
		"create table bits (k bit(20) primary key, v text not null)",
		fmt.Sprintf("insert into bits select g::bit(20), 'row ' || g from generate_series(1, %d) g", n),
	)
	conn := connect(t, url)
	it, err := New(t.Context(), conn, Config{Table: "bits", ID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]int, n)
	pages, reads := 0, 0
	for reads <= 2*n {
		ms, err := it.NextChunk(t.Context(), conn)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range ms {
			reads++
			seen[fmt.Sprint(m.Record["k"])]++
		}
	}
	t.Logf("%d pages", pages)
	if pages < 3 {
		t.Errorf("%d pages; the test needs several", pages)
	}
	if reads != n || len(seen) != n {
		t.Fatalf("%d reads of %d distinct keys, want %d rows each read once", reads, len(seen), n)
	}
}
