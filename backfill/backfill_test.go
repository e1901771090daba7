package backfill

//lint:file-ignore SA1019 Metadata.DatabaseName, deprecated, is still filled and checked

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/message"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// readAll reads the iterator to the end with Next through q.
func readAll(t *testing.T, it *Iterator, q Querier) []message.Message {
	t.Helper()
	var out []message.Message
	for {
		m, err := it.Next(t.Context(), q)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
}

// chunks reads the iterator to the end with NextChunk through q and returns
// the page sizes.
func chunks(t *testing.T, it *Iterator, q Querier) (sizes []int, all []message.Message) {
	t.Helper()
	for {
		ms, err := it.NextChunk(t.Context(), q)
		if errors.Is(err, io.EOF) {
			if ms != nil {
				t.Fatalf("io.EOF with %d messages", len(ms))
			}
			return sizes, all
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(ms))
		all = append(all, ms...)
	}
}

func ids(ms []message.Message, col string) []any {
	out := make([]any, len(ms))
	for i, m := range ms {
		out[i] = m.Record[col]
	}
	return out
}

func TestIntKey(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url,
		"create table items (name text, id int8 primary key, price numeric, tags text[], at timestamptz)",
		"insert into items select 'item ' || i, i, i * 1.5, array['t' || i, null], '2024-01-01 00:00:00+00'::timestamptz + i * interval '1 second' from generate_series(1, 25) i",
		"insert into items values (null, 0, null, null, null)",
	)
	conn := connect(t, url)
	fixed := time.Date(2024, 10, 28, 21, 37, 1, 127470000, time.FixedZone("x", 3600))
	it, err := New(t.Context(), conn, Config{
		Table: "items", ID: "bf1", ChunkSize: 10,
		Database: message.Database{Hostname: "db.example"},
		Consumer: message.Consumer{ID: "c1", Name: "consumer"},
		Now:      func() time.Time { return fixed },
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := it.Cursor(); c != nil {
		t.Fatalf("cursor before reading = %v, want nil", c)
	}
	sizes, ms := chunks(t, it, conn)
	if !slices.Equal(sizes, []int{10, 10, 6}) {
		t.Fatalf("chunk sizes %v, want [10 10 6]", sizes)
	}
	for i, m := range ms {
		if m.Record["id"] != int64(i) {
			t.Fatalf("row %d has id %#v", i, m.Record["id"])
		}
	}
	m := ms[3]
	want := message.Message{
		Record: map[string]any{
			"name": "item 3", "id": int64(3), "price": message.Numeric("4.5"),
			"tags": []any{"t3", nil}, "at": "2024-01-01T00:00:03.000000Z",
		},
		Action: message.ActionRead,
		Metadata: message.Metadata{
			TableSchema:     "public",
			TableName:       "items",
			IdempotencyKey:  message.ReadKey("bf1", int64(3)),
			CommitTimestamp: fixed.UTC(),
			DatabaseName:    it.database.Database,
			Consumer:        message.Consumer{ID: "c1", Name: "consumer"},
			Database:        message.Database{Name: it.database.Database, Database: it.database.Database, Hostname: "db.example"},
		},
	}
	want.Metadata.SetPrimaryKey("id")
	want.Metadata.SetColumns("name", "id", "price", "tags", "at")
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("message:\n got %#v\nwant %#v", m, want)
	}
	js, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"record":{"name":"item 3","id":3,"price":"4.5","tags":["t3",null],"at":"2024-01-01T00:00:03.000000Z"},` +
		`"changes":null,"action":"read","metadata":{"table_schema":"public","table_name":"items",` +
		`"idempotency_key":"` + message.ReadKey("bf1", int64(3)) + `","commit_timestamp":"2024-10-28T20:37:01.127470Z",` +
		`"commit_lsn":null,"commit_idx":null,"record_pks":["3"],"database_name":"` + it.database.Name + `"`
	if !strings.HasPrefix(string(js), wantJSON) {
		t.Fatalf("JSON:\n got %s\nwant prefix %s", js, wantJSON)
	}
	if !reflect.DeepEqual(ms[0].Record, map[string]any{"name": nil, "id": int64(0), "price": nil, "tags": nil, "at": nil}) {
		t.Fatalf("NULL row: %#v", ms[0].Record)
	}
	if m.Metadata.CommitTimestamp.Location() != time.UTC {
		t.Fatalf("CommitTimestamp not in UTC")
	}
	if it.database.Database == "" {
		t.Fatal("database name not discovered")
	}
	if c := it.Cursor(); !slices.Equal(c, Cursor{"25"}) {
		t.Fatalf("final cursor %v, want [25]", c)
	}
	if _, err := it.Next(t.Context(), conn); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after the end: %v, want io.EOF", err)
	}
}

func TestTextKey(t *testing.T) {
	url := pgtest.NewDatabase(t)
	keys := []string{"", " ", "A", "a", "a b", "a,b", "a\"b", "a\\b", "z", "é", "日本", "(x)", "{y}", "NULL"}
	pgtest.Exec(t, url, "create table words (w text primary key, n int)")
	for i, k := range keys {
		pgtest.Exec(t, url, fmt.Sprintf("insert into words values ('%s', %d)", pgxQuote(k), i))
	}
	conn := connect(t, url)
	for _, size := range []int{1, 3, 100} {
		it, err := New(t.Context(), conn, Config{Table: "public.words", ID: "w", ChunkSize: size})
		if err != nil {
			t.Fatal(err)
		}
		got := ids(readAll(t, it, conn), "w")
		want := make([]any, len(keys))
		sorted := slices.Clone(keys)
		slices.Sort(sorted) // the test database uses the C collation: byte order
		for i, k := range sorted {
			want[i] = k
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("chunk %d: got %q, want %q", size, got, want)
		}
	}
}

func pgxQuote(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func TestUUIDKey(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url,
		"create table u (id uuid primary key, v int)",
		"insert into u select md5(i::text)::uuid, i from generate_series(1, 30) i",
	)
	conn := connect(t, url)
	var want []any
	rows, err := conn.Query(t.Context(), "select id::text from u order by id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		want = append(want, s)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	it, err := New(t.Context(), conn, Config{Table: "u", ID: "u", ChunkSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	ms := readAll(t, it, conn)
	if got := ids(ms, "id"); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if k := ms[0].Metadata.IdempotencyKey; k != message.ReadKey("u", want[0]) {
		t.Fatalf("key %s, want ReadKey(u, %s)", k, want[0])
	}
}

func TestCompositeKey(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url,
		// The key's order (b, a) differs from the table's column order.
		"create table c (a text, b int, v text, primary key (b, a))",
		"insert into c select chr(97 + i % 5), i / 5, 'v' || i from generate_series(0, 49) i",
	)
	conn := connect(t, url)
	it, err := New(t.Context(), conn, Config{Table: "c", ID: "c", ChunkSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	ms := readAll(t, it, conn)
	if len(ms) != 50 {
		t.Fatalf("read %d rows, want 50", len(ms))
	}
	for i, m := range ms {
		want := []any{int64(i / 5), string(rune('a' + i%5))}
		if got := m.PrimaryKeyValues(); !reflect.DeepEqual(got, want) {
			t.Fatalf("row %d key %v, want %v", i, got, want)
		}
		if !slices.Equal(m.Metadata.PrimaryKey(), []string{"b", "a"}) {
			t.Fatalf("PrimaryKey %v", m.Metadata.PrimaryKey())
		}
		if m.Metadata.IdempotencyKey != message.ReadKey("c", want...) {
			t.Fatalf("row %d: wrong idempotency key", i)
		}
	}
	if c := it.Cursor(); !slices.Equal(c, Cursor{"9", "e"}) {
		t.Fatalf("cursor %v, want [9 e]", c)
	}
}

func TestResumeFromCursor(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url,
		"create table r (k1 int, k2 text, primary key (k1, k2))",
		"insert into r select i % 7, 'x' || i from generate_series(1, 40) i",
	)
	conn := connect(t, url)
	full, err := New(t.Context(), conn, Config{Table: "r", ID: "r", ChunkSize: 6})
	if err != nil {
		t.Fatal(err)
	}
	all := readAll(t, full, conn)
	if len(all) != 40 {
		t.Fatalf("read %d rows, want 40", len(all))
	}
	for _, stop := range []int{1, 5, 6, 7, 23, 39, 40} {
		it, err := New(t.Context(), conn, Config{Table: "r", ID: "r", ChunkSize: 6})
		if err != nil {
			t.Fatal(err)
		}
		for range stop {
			if _, err := it.Next(t.Context(), conn); err != nil {
				t.Fatal(err)
			}
		}
		// The cursor survives a JSON round trip, as it would in storage.
		js, err := json.Marshal(it.Cursor())
		if err != nil {
			t.Fatal(err)
		}
		var cur Cursor
		if err := json.Unmarshal(js, &cur); err != nil {
			t.Fatal(err)
		}
		resumed, err := New(t.Context(), conn, Config{Table: "r", ID: "r", ChunkSize: 4, Cursor: cur})
		if err != nil {
			t.Fatal(err)
		}
		rest := readAll(t, resumed, conn)
		if len(rest) != 40-stop {
			t.Fatalf("stop %d: resumed read %d rows, want %d", stop, len(rest), 40-stop)
		}
		for i, m := range rest {
			if !reflect.DeepEqual(m, withTime(all[stop+i], m.Metadata.CommitTimestamp)) {
				t.Fatalf("stop %d: resumed row %d = %v, want %v", stop, i, m.Record, all[stop+i].Record)
			}
		}
	}
}

func withTime(m message.Message, t time.Time) message.Message {
	m.Metadata.CommitTimestamp = t
	return m
}

func TestChunkBoundaries(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url,
		"create table b (id int primary key)",
		"insert into b select generate_series(1, 20)",
	)
	conn := connect(t, url)
	for _, tc := range []struct {
		size  int
		sizes []int
	}{
		{20, []int{20}}, {10, []int{10, 10}}, {21, []int{20}}, {1, slices.Repeat([]int{1}, 20)}, {7, []int{7, 7, 6}},
	} {
		it, err := New(t.Context(), conn, Config{Table: "b", ID: "b", ChunkSize: tc.size})
		if err != nil {
			t.Fatal(err)
		}
		sizes, ms := chunks(t, it, conn)
		if !slices.Equal(sizes, tc.sizes) {
			t.Fatalf("chunk %d: sizes %v, want %v", tc.size, sizes, tc.sizes)
		}
		if len(ms) != 20 || ms[19].Record["id"] != int64(20) {
			t.Fatalf("chunk %d: read %d rows", tc.size, len(ms))
		}
	}

	// Next and NextChunk mixed, and a chunk size changed mid-way.
	it, err := New(t.Context(), conn, Config{Table: "b", ID: "b", ChunkSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := it.Next(t.Context(), conn); err != nil {
			t.Fatal(err)
		}
	}
	rest, err := it.NextChunk(t.Context(), conn)
	if err != nil || len(rest) != 5 || rest[0].Record["id"] != int64(4) {
		t.Fatalf("rest of the page: %d rows, %v", len(rest), err)
	}
	it.SetChunkSize(3)
	sizes, ms := chunks(t, it, conn)
	if !slices.Equal(sizes, []int{3, 3, 3, 3}) || ms[0].Record["id"] != int64(9) {
		t.Fatalf("after SetChunkSize(3): sizes %v", sizes)
	}
}

func TestAdaptiveChunkSize(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url, "create table a (id int8 primary key, v text)",
		"insert into a select i, md5(i::text) from generate_series(1, 9000) i")
	conn := connect(t, url)
	it, err := New(t.Context(), conn, Config{Table: "a", ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if it.ChunkSize() != DefaultChunkSize {
		t.Fatalf("first page of %d rows, want %d", it.ChunkSize(), DefaultChunkSize)
	}
	var sizes []int
	next := int64(1)
	for {
		want := it.ChunkSize()
		ms, err := it.NextChunk(t.Context(), conn)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) > want {
			t.Fatalf("page of %d rows, asked for %d", len(ms), want)
		}
		for _, m := range ms {
			if m.Record["id"] != next {
				t.Fatalf("read id %v, want %d", m.Record["id"], next)
			}
			next++
		}
		sizes = append(sizes, len(ms))
		if got := it.ChunkSize(); got < MinChunkSize || got > MaxChunkGrowth*len(ms) {
			t.Fatalf("after a page of %d rows the next asks for %d", len(ms), got)
		}
	}
	if next != 9001 {
		t.Fatalf("read %d rows in pages %v", next-1, sizes)
	}
	if sizes[0] != DefaultChunkSize {
		t.Fatalf("pages %v: the first is not %d rows", sizes, DefaultChunkSize)
	}

	it.SetChunkSize(5)
	if it.ChunkSize() != 5 {
		t.Fatalf("SetChunkSize(5): %d", it.ChunkSize())
	}
	it.SetChunkSize(0)
	if it.ChunkSize() != DefaultChunkSize {
		t.Fatalf("SetChunkSize(0): %d, want adaptive from %d", it.ChunkSize(), DefaultChunkSize)
	}
}

func TestNextChunkSize(t *testing.T) {
	for _, tc := range []struct {
		n, size int
		elapsed time.Duration
		want    int
	}{
		{0, 0, 0, DefaultChunkSize},                              // nothing read: start over
		{1000, 100_000, 10 * time.Millisecond, 8000},             // fast: at most MaxChunkGrowth times
		{1000, 100_000, 0, 8000},                                 // too fast to time
		{1000, 100_000, 50 * time.Millisecond, 4000},             // a quarter of the target: four times
		{1000, 100_000, 100 * time.Millisecond, 2000},            // half the target: double
		{1000, 100_000, 400 * time.Millisecond, 500},             // twice the target: halve
		{1000, 100_000, 10 * time.Second, MinChunkSize},          // very slow: the floor
		{40_000, 4_000_000, 10 * time.Millisecond, MaxChunkSize}, // the ceiling
		{1000, 2 * MaxChunkBytes, 10 * time.Millisecond, 500},    // wide rows: about MaxChunkBytes
	} {
		if got := nextChunkSize(tc.n, tc.size, tc.elapsed); got != tc.want {
			t.Errorf("nextChunkSize(%d, %d, %v) = %d, want %d", tc.n, tc.size, tc.elapsed, got, tc.want)
		}
	}
}

func TestEmptyTable(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url, "create table e (id int primary key)")
	conn := connect(t, url)
	it, err := New(t.Context(), conn, Config{Table: "e", ID: "e"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := it.Next(t.Context(), conn); !errors.Is(err, io.EOF) {
		t.Fatalf("Next: %v, want io.EOF", err)
	}
	if ms, err := it.NextChunk(t.Context(), conn); !errors.Is(err, io.EOF) || ms != nil {
		t.Fatalf("NextChunk: %d, %v, want io.EOF", len(ms), err)
	}
	if it.Cursor() != nil {
		t.Fatalf("cursor %v, want nil", it.Cursor())
	}
}

func TestWhereAndColumns(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url,
		"create table w (a int, id int primary key, b text, c jsonb)",
		`insert into w select i * 10, i, 'b' || i, '{"i": 1}' from generate_series(1, 30) i`,
	)
	conn := connect(t, url)
	it, err := New(t.Context(), conn, Config{
		Table: "w", ID: "w", ChunkSize: 4,
		Columns: []string{"b", "a"}, // id is added; table order is kept
		Where:   "id % 3 = 0 or b = 'b1'",
	})
	if err != nil {
		t.Fatal(err)
	}
	ms := readAll(t, it, conn)
	want := []any{int64(1), int64(3), int64(6), int64(9), int64(12), int64(15), int64(18), int64(21), int64(24), int64(27), int64(30)}
	if got := ids(ms, "id"); !reflect.DeepEqual(got, want) {
		t.Fatalf("ids %v, want %v", got, want)
	}
	if !reflect.DeepEqual(ms[1].Record, map[string]any{"a": int64(30), "id": int64(3), "b": "b3"}) {
		t.Fatalf("record %v", ms[1].Record)
	}
	if !slices.Equal(ms[1].Metadata.Columns(), []string{"a", "id", "b"}) {
		t.Fatalf("columns %v", ms[1].Metadata.Columns())
	}
}

func TestOrderByWithoutPrimaryKey(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url,
		"create table nopk (x int not null, y text not null, z int, unique (x, y))",
		"insert into nopk select i % 3, 'y' || i, i from generate_series(1, 12) i",
		"create view v as select * from nopk",
	)
	conn := connect(t, url)
	_, err := New(t.Context(), conn, Config{Table: "nopk", ID: "n"})
	if !errors.Is(err, ErrNoPrimaryKey) {
		t.Fatalf("got %v, want ErrNoPrimaryKey", err)
	}
	for _, table := range []string{"nopk", "v"} {
		it, err := New(t.Context(), conn, Config{Table: table, ID: "n", OrderBy: []string{"x", "y"}, ChunkSize: 5})
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		ms := readAll(t, it, conn)
		if len(ms) != 12 {
			t.Fatalf("%s: %d rows, want 12", table, len(ms))
		}
		if k := ms[0].Metadata.PrimaryKey(); !slices.Equal(k, []string{"x", "y"}) {
			t.Fatalf("%s: PrimaryKey %v", table, k)
		}
		if got := ms[0].PrimaryKeyValues(); !reflect.DeepEqual(got, []any{int64(0), "y12"}) {
			t.Fatalf("%s: first row %v", table, got)
		}
	}
	if _, err := New(t.Context(), conn, Config{Table: "nopk", ID: "n", OrderBy: []string{"z"}}); err == nil {
		t.Fatal("nullable OrderBy column accepted")
	}
}

func TestErrors(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url,
		`create schema "odd.schema"`,
		`create table "odd.schema"."Odd ""Name""" ("Key" int primary key, "a b" text)`,
		`insert into "odd.schema"."Odd ""Name""" values (1, 'x'), (2, 'y')`,
		"create table t (id int primary key)",
	)
	conn := connect(t, url)
	ctx := t.Context()
	for _, tc := range []struct {
		cfg  Config
		want error
	}{
		{Config{Table: "missing", ID: "x"}, ErrTableNotFound},
		{Config{Table: "other.t", ID: "x"}, ErrTableNotFound},
		{Config{Table: `"T"`, ID: "x"}, ErrTableNotFound},
		{Config{Table: "a.b.c", ID: "x"}, message.ErrTableName},
		{Config{Table: "a.", ID: "x"}, message.ErrTableName},
		{Config{Table: `"unterminated`, ID: "x"}, message.ErrTableName},
		{Config{Table: "my-table", ID: "x"}, message.ErrTableName},
		{Config{Table: "t", ID: "x", Columns: []string{"nope"}}, ErrUnknownColumn},
		{Config{Table: "t", ID: "x", OrderBy: []string{"nope"}}, ErrUnknownColumn},
	} {
		if _, err := New(ctx, conn, tc.cfg); !errors.Is(err, tc.want) {
			t.Errorf("%+v: got %v, want %v", tc.cfg, err, tc.want)
		}
	}
	for _, cfg := range []Config{
		{Table: "", ID: "x"},
		{Table: "t", ID: ""},
		{Table: "t", ID: "x", ChunkSize: -1},
		{Table: "t", ID: "x", Cursor: Cursor{"1", "2"}},
	} {
		if _, err := New(ctx, conn, cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
	// A cursor value that is not valid for the key's type fails the read.
	it, err := New(ctx, conn, Config{Table: "t", ID: "x", Cursor: Cursor{"abc"}})
	if err != nil {
		t.Fatal(err)
	}
	var pgErr *pgconn.PgError
	if _, err := it.Next(ctx, conn); !errors.As(err, &pgErr) || pgErr.Code != "22P02" { // invalid_text_representation
		t.Fatalf("bad cursor: got %v, want Postgres' invalid input error", err)
	}
	// So does an error in Where, on the first page.
	it, err = New(ctx, conn, Config{Table: "t", ID: "x", Where: "1 / (id - id) = 1"})
	if err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, url, "insert into t values (1)")
	if _, err := it.Next(ctx, conn); !errors.As(err, &pgErr) || pgErr.Code != "22012" { // division_by_zero
		t.Fatalf("Where dividing by zero: got %v, want Postgres' division_by_zero error", err)
	}
	pgtest.Exec(t, url, "delete from t")

	// Unquoted names fold to lower case, as in SQL.
	it, err = New(ctx, conn, Config{Table: "Public.T", ID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if schema, table := it.Table(); schema != "public" || table != "t" {
		t.Fatalf("Public.T: Table() = %q, %q", schema, table)
	}

	// Quoted names with dots, quotes and capitals.
	it, err = New(ctx, conn, Config{Table: `"odd.schema"."Odd ""Name"""`, ID: "x", ChunkSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	ms := readAll(t, it, conn)
	if len(ms) != 2 || ms[1].Record["a b"] != "y" || ms[1].Metadata.TableSchema != "odd.schema" || ms[1].Metadata.TableName != `Odd "Name"` {
		t.Fatalf("odd names: %+v", ms)
	}
}

// TestKeysStable checks that two runs with the same ID give every row the
// same idempotency key, and another ID gives different ones.
func TestKeysStable(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url,
		"create table s (t timestamptz, n numeric, primary key (t, n))",
		"insert into s select '2024-01-01 00:00:00+00'::timestamptz + i * interval '1 minute', i / 3.0 from generate_series(1, 10) i",
	)
	keys := func(tz, id string) []string {
		conn := connect(t, url)
		if _, err := conn.Exec(t.Context(), "set timezone = '"+tz+"'"); err != nil {
			t.Fatal(err)
		}
		it, err := New(t.Context(), conn, Config{Table: "s", ID: id, ChunkSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range readAll(t, it, conn) {
			out = append(out, m.Metadata.IdempotencyKey)
		}
		return out
	}
	a, b, c := keys("UTC", "run"), keys("Asia/Kolkata", "run"), keys("UTC", "other")
	if len(a) != 10 || !slices.Equal(a, b) {
		t.Fatalf("keys differ between runs:\n%v\n%v", a, b)
	}
	if slices.Contains(c, a[0]) {
		t.Fatal("another backfill ID gave the same key")
	}
	if len(slices.Compact(slices.Sorted(slices.Values(a)))) != 10 {
		t.Fatal("duplicate keys within a run")
	}
	want := message.ReadKey("run", "2024-01-01T00:01:00.000000Z", "0.33333333333333333333")
	if a[0] != want {
		t.Fatalf("first key %s, want %s", a[0], want)
	}
}

// TestPoolAndTx checks the other Queriers: a pool, and a transaction that
// reads the whole table as of one snapshot.
func TestPoolAndTx(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url,
		"create table p (id int primary key)",
		"insert into p select generate_series(1, 9)",
	)
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	it, err := New(t.Context(), pool, Config{Table: "p", ID: "p", ChunkSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, it, pool)); n != 9 {
		t.Fatalf("pool: %d rows", n)
	}

	tx, err := pool.BeginTx(t.Context(), pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	it, err = New(t.Context(), tx, Config{Table: "p", ID: "p", ChunkSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	first, err := it.NextChunk(t.Context(), tx)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, url, "insert into p values (100)", "delete from p where id = 9")
	_, rest := chunks(t, it, tx)
	got := ids(append(first, rest...), "id")
	want := []any{int64(1), int64(2), int64(3), int64(4), int64(5), int64(6), int64(7), int64(8), int64(9)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot read %v, want %v", got, want)
	}
}

// eofQuerier fails every query as a connection closed between messages can:
// with an error that wraps io.EOF.
type eofQuerier struct{}

func (eofQuerier) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, fmt.Errorf("failed to receive message: %w", io.EOF)
}

// A read that fails with a wrapped io.EOF is an error, not the end of the
// table: a caller looping until errors.Is(err, io.EOF) would stop early.
func TestReadErrorIsNotEOF(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url, "create table items (id int8 primary key)", "insert into items select generate_series(1, 5)")
	it, err := New(t.Context(), connect(t, url), Config{Table: "items", ID: "eof"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = it.NextChunk(t.Context(), eofQuerier{})
	if err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("NextChunk = %v; want an error that is not io.EOF", err)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("NextChunk = %v; want io.ErrUnexpectedEOF", err)
	}
}
