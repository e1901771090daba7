package pgvalue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/message"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// column is a test column: its type, and values as SQL literals with the
// Go value each must decode to.
type column struct {
	name, typ string
	vals      []value
}

type value struct {
	lit  string
	want any
}

func v(lit string, want any) value { return value{lit, want} }

var big1000 = strings.Repeat("1234567890", 100)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// maxInterval is the largest interval the server can print: the int64
// microseconds' limit from PostgreSQL 15; before, interval_out fails past
// 2147483647 hours (22008, "interval out of range"), though such a value
// can be stored.
func maxInterval(major int) value {
	if major < 15 {
		return v("'2147483647:59:59.999999'", message.Interval{Microseconds: 2147483647*3600_000000 + 3599_999999})
	}
	return v("interval '2147483647 hours' + interval '414564141:00:54.775807'", message.Interval{Microseconds: math.MaxInt64})
}

// columns lists the test's columns; major is the server's major version.
func columns(major int) []column {
	return []column{
		{"c_int2", "int2", []value{v("32767", int64(32767)), v("-32768", int64(-32768))}},
		{"c_int4", "int4", []value{v("-2147483648", int64(-2147483648)), v("0", int64(0))}},
		{"c_int8", "int8", []value{v("9223372036854775807", int64(9223372036854775807)), v("-9223372036854775808", int64(-9223372036854775808))}},
		{"c_oid", "oid", []value{v("4294967295", int64(4294967295))}},
		{"c_float4", "float4", []value{v("1.1", 1.1), v("'NaN'", "NaN"), v("'Infinity'", "Infinity"), v("'-Infinity'", "-Infinity"), v("3.4028235e38", 3.4028235e38)}},
		{"c_float8", "float8", []value{v("3.141592653589793", 3.141592653589793), v("'NaN'", "NaN"), v("'Infinity'", "Infinity"), v("'-Infinity'", "-Infinity"), v("1e-300", 1e-300), v("-12345678.875", -12345678.875)}},
		{"c_numeric", "numeric", []value{
			v(big1000+".5", message.Numeric(big1000+".5")),
			v("'NaN'", message.Numeric("NaN")), v("'Infinity'", message.Numeric("Infinity")), v("'-Infinity'", message.Numeric("-Infinity")),
			v("-0.000100", message.Numeric("-0.000100")), v("0", message.Numeric("0")),
		}},
		{"c_numeric_scale", "numeric(12,4)", []value{v("3.14159", message.Numeric("3.1416"))}},
		{"c_bool", "bool", []value{v("true", true), v("false", false)}},
		{"c_text", "text", []value{v(`E'h\u00e9llo "world"\n\\'`, "héllo \"world\"\n\\"), v("''", "")}},
		{"c_varchar", "varchar(10)", []value{v("'abc'", "abc")}},
		{"c_bpchar", "char(5)", []value{v("'ab'", "ab   ")}},
		{"c_name", "name", []value{v("'nm'", "nm")}},
		{"c_char", `"char"`, []value{v("'x'", "x")}},
		{"c_citext", "citext", []value{v("'MiXeD'", "MiXeD")}},
		{"c_hstore", "hstore", []value{v(`'a=>1'`, `"a"=>"1"`)}},
		{"c_bytea", "bytea", []value{v(`'\xff00fe80'`, `\xff00fe80`), v(`'\x'`, `\x`), v(`'\xc328'`, `\xc328`)}},
		{"c_uuid", "uuid", []value{v("'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")}},
		{"c_json", "json", []value{v(`'{"b": 1,  "a": [1,2]}'`, raw(`{"b": 1,  "a": [1,2]}`)), v(`'"\u0000"'`, raw(`"\u0000"`))}},
		{"c_jsonb", "jsonb", []value{v(`'{"b":1,"a":[1,2.50]}'`, raw(`{"a": [1, 2.50], "b": 1}`)), v(`'null'`, raw(`null`))}},
		{"c_timestamptz", "timestamptz", []value{
			v("'2024-10-28 21:37:01.12747+00'", "2024-10-28T21:37:01.127470Z"),
			v("'2024-10-28 21:37:01+05:30'", "2024-10-28T16:07:01.000000Z"),
			v("'2024-01-01 00:00:00.000001-08'", "2024-01-01T08:00:00.000001Z"),
			v("'2000-02-29 23:59:59.999999+01'", "2000-02-29T22:59:59.999999Z"),
			v("'1800-01-01 00:00:00 America/New_York'", "1800-01-01T04:56:02.000000Z"),
			v("'0044-03-15 12:00:00+00 BC'", "-0043-03-15T12:00:00.000000Z"),
			v("'10000-01-01 00:00:00+00'", "10000-01-01T00:00:00.000000Z"),
			v("'infinity'", "infinity"), v("'-infinity'", "-infinity"),
		}},
		{"c_timestamp", "timestamp", []value{
			v("'2024-10-28 21:37:01.5'", "2024-10-28T21:37:01.500000"),
			v("'0001-01-01 00:00:00 BC'", "0000-01-01T00:00:00.000000"),
			v("'294276-12-31 23:59:59.999999'", "294276-12-31T23:59:59.999999"),
			v("'infinity'", "infinity"),
		}},
		{"c_date", "date", []value{v("'2024-02-29'", "2024-02-29"), v("'infinity'", "infinity")}},
		{"c_time", "time", []value{v("'21:37:01.5'", "21:37:01.5")}},
		{"c_timetz", "timetz", []value{v("'21:37:01+02'", "21:37:01+02")}},
		{"c_interval", "interval", []value{v("'1 day 02:03:04.5'", message.Interval{Days: 1, Microseconds: 7384500000}), v("'-1 year'", message.Interval{Months: -12}),
			v("'1 year 2 months 3 days 4 hours 5 minutes 6.789 seconds'", message.Interval{Months: 14, Days: 3, Microseconds: 14706789000}),
			v("'100 hours'", message.Interval{Microseconds: 360000000000}), v("'-1 day +1 second'", message.Interval{Days: -1, Microseconds: 1000000}),
			v("'-178956970 years -8 months -2147483648 days'", message.Interval{Months: math.MinInt32, Days: math.MinInt32}),
			maxInterval(major)}},
		{"c_inet", "inet", []value{v("'192.168.0.1/24'", "192.168.0.1/24"), v("'::1'", "::1")}},
		{"c_cidr", "cidr", []value{v("'10.0.0.0/8'", "10.0.0.0/8")}},
		{"c_macaddr", "macaddr", []value{v("'08:00:2B:01:02:03'", "08:00:2b:01:02:03")}},
		{"c_macaddr8", "macaddr8", []value{v("'08:00:2b:01:02:03:04:05'", "08:00:2b:01:02:03:04:05")}},
		{"c_money", "money", []value{v("12.34", "$12.34")}},
		{"c_xml", "xml", []value{v("'<a>b</a>'", "<a>b</a>")}},
		{"c_tsvector", "tsvector", []value{v("'a fat cat'", "'a' 'cat' 'fat'")}},
		{"c_point", "point", []value{v("'(1,2)'", "(1,2)")}},
		{"c_box", "box", []value{v("'(0,0),(1,1)'", "(1,1),(0,0)")}},
		{"c_int4range", "int4range", []value{v("'[1,5)'", "[1,5)")}},
		{"c_bit", "bit(3)", []value{v("B'101'", "101")}},
		{"c_enum", "mood", []value{v("'happy'", "happy"), v("'so so'", "so so")}},
		{"c_dint", "posint", []value{v("42", int64(42))}},
		{"c_dtext", "shorttext", []value{v("'dom'", "dom")}},
		{"c_ddint", "posint2", []value{v("7", int64(7))}},
		{"c_comp", "pair", []value{v(`'(1,"a b")'`, `(1,"a b")`), v("'(,)'", "(,)")}},

		// Arrays.
		{"a_int2", "int2[]", []value{v("'{1,NULL,-3}'", []any{int64(1), nil, int64(-3)})}},
		{"a_int4", "int4[]", []value{v("'{}'", []any{}), v("'{{1,2},{3,4}}'", []any{[]any{int64(1), int64(2)}, []any{int64(3), int64(4)}})}},
		{"a_int4_3d", "int4[]", []value{v("'{{{1},{2}},{{3},{NULL}}}'", []any{[]any{[]any{int64(1)}, []any{int64(2)}}, []any{[]any{int64(3)}, []any{nil}}})}},
		{"a_int4_lb", "int4[]", []value{v("'[0:2]={7,8,9}'", []any{int64(7), int64(8), int64(9)}), v("'[-1:0][1:1]={{1},{2}}'", []any{[]any{int64(1)}, []any{int64(2)}})}},
		{"a_int8", "int8[]", []value{v("'{9223372036854775807}'", []any{int64(9223372036854775807)})}},
		{"a_oid", "oid[]", []value{v("'{26}'", []any{int64(26)})}},
		{"a_float4", "float4[]", []value{v("'{1.5,NaN,Infinity,-Infinity}'", []any{1.5, "NaN", "Infinity", "-Infinity"})}},
		{"a_float8", "float8[]", []value{v("'{0.1,-2e-5}'", []any{0.1, -2e-5})}},
		{"a_numeric", "numeric[]", []value{v("'{1.50,NaN,-Infinity,NULL}'", []any{message.Numeric("1.50"), message.Numeric("NaN"), message.Numeric("-Infinity"), nil})}},
		{"a_bool", "bool[]", []value{v("'{t,f,NULL}'", []any{true, false, nil})}},
		{"a_text", "text[]", []value{v(`'{"a,b","c\"d","e\\f","NULL",NULL,"  sp  ","",plain,"{x}","é"}'`,
			[]any{"a,b", `c"d`, `e\f`, "NULL", nil, "  sp  ", "", "plain", "{x}", "é"})}},
		{"a_text_2d", "text[]", []value{v(`'{{a,"b c"},{"}",NULL}}'`, []any{[]any{"a", "b c"}, []any{"}", nil}})}},
		{"a_varchar", "varchar[]", []value{v("'{x,y}'", []any{"x", "y"})}},
		{"a_bpchar", "char(2)[]", []value{v("'{a,bb}'", []any{"a ", "bb"})}},
		{"a_name", "name[]", []value{v("'{n1}'", []any{"n1"})}},
		{"a_char", `"char"[]`, []value{v(`'{a,"\\"}'`, []any{"a", `\`})}},
		{"a_citext", "citext[]", []value{v("'{Aa,\"b b\"}'", []any{"Aa", "b b"})}},
		{"a_bytea", "bytea[]", []value{v(`'{"\\xff00",NULL,"\\x"}'`, []any{`\xff00`, nil, `\x`})}},
		{"a_uuid", "uuid[]", []value{v("'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'", []any{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"})}},
		{"a_json", "json[]", []value{v(`'{"{\"a\": 1}","[1, 2]",NULL}'`, []any{raw(`{"a": 1}`), raw(`[1, 2]`), nil})}},
		{"a_jsonb", "jsonb[]", []value{v(`'{"{\"a\": \"x,}\"}","3"}'`, []any{raw(`{"a": "x,}"}`), raw(`3`)})}},
		{"a_timestamptz", "timestamptz[]", []value{v(`'{"2024-10-28 21:37:01.12747+00",infinity,"0044-03-15 12:00:00+00 BC"}'`,
			[]any{"2024-10-28T21:37:01.127470Z", "infinity", "-0043-03-15T12:00:00.000000Z"})}},
		{"a_timestamp", "timestamp[]", []value{v(`'{"2024-10-28 21:37:01"}'`, []any{"2024-10-28T21:37:01.000000"})}},
		{"a_date", "date[]", []value{v("'{2024-02-29}'", []any{"2024-02-29"})}},
		{"a_time", "time[]", []value{v("'{21:37:01}'", []any{"21:37:01"})}},
		{"a_timetz", "timetz[]", []value{v("'{21:37:01+02}'", []any{"21:37:01+02"})}},
		{"a_interval", "interval[]", []value{v("'{\"1 day\",NULL}'", []any{message.Interval{Days: 1}, nil})}},
		{"a_inet", "inet[]", []value{v("'{10.1.2.3,::1}'", []any{"10.1.2.3", "::1"})}},
		{"a_cidr", "cidr[]", []value{v("'{10.0.0.0/8}'", []any{"10.0.0.0/8"})}},
		{"a_macaddr", "macaddr[]", []value{v("'{08:00:2b:01:02:03}'", []any{"08:00:2b:01:02:03"})}},
		{"a_macaddr8", "macaddr8[]", []value{v("'{08:00:2b:01:02:03:04:05}'", []any{"08:00:2b:01:02:03:04:05"})}},
		{"a_money", "money[]", []value{v("'{1.5}'", []any{"$1.50"})}},
		{"a_xml", "xml[]", []value{v(`'{"<a x=\"1\"/>"}'`, []any{`<a x="1"/>`})}},
		{"a_tsvector", "tsvector[]", []value{v(`'{"a b"}'`, []any{"'a' 'b'"})}},
		{"a_point", "point[]", []value{v(`'{"(1,2)","(3,4)"}'`, []any{"(1,2)", "(3,4)"})}},
		{"a_box", "box[]", []value{v("'{(1,1),(0,0);(3,3),(2,2)}'", []any{"(1,1),(0,0)", "(3,3),(2,2)"})}},
		{"a_int4range", "int4range[]", []value{v(`'{"[1,5)",empty}'`, []any{"[1,5)", "empty"})}},
		{"a_enum", "mood[]", []value{v(`'{happy,"so so",NULL}'`, []any{"happy", "so so", nil})}},
		{"a_dint", "posint[]", []value{v("'{1,2}'", []any{int64(1), int64(2)})}},
		{"a_dtext", "shorttext[]", []value{v(`'{"x y"}'`, []any{"x y"})}},
		{"a_comp", "pair[]", []value{v(`array['(1,"a b")'::pair, '(2,)'::pair]`, []any{`(1,"a b")`, "(2,)"})}},
		{"d_arr", "intlist", []value{v("'{5,6}'", []any{int64(5), int64(6)})}},
	}
}

func setupTypes(t *testing.T, url string) {
	pgtest.Exec(t, url,
		"create extension citext",
		"create extension hstore",
		"create type mood as enum ('happy', 'sad', 'so so')",
		"create domain posint as int4 check (value > 0)",
		"create domain posint2 as posint",
		"create domain shorttext as text check (length(value) < 10)",
		"create domain intlist as int8[]",
		"create type pair as (a int, b text)",
	)
}

// readText runs sql and returns the column type OIDs and the raw text of
// every row (nil for NULL), as a stream or backfill sees them.
func readText(t *testing.T, conn *pgx.Conn, sql string) (names []string, oids []uint32, rows [][][]byte) {
	t.Helper()
	res := conn.PgConn().ExecParams(t.Context(), sql, nil, nil, nil, []int16{0}).Read()
	if res.Err != nil {
		t.Fatalf("%s: %v", sql, res.Err)
	}
	for _, fd := range res.FieldDescriptions {
		names = append(names, fd.Name)
		oids = append(oids, fd.DataTypeOID)
	}
	return names, oids, res.Rows
}

func TestDecodeEveryType(t *testing.T) {
	url := pgtest.NewDatabase(t)
	setupTypes(t, url)
	major := pgtest.Major(t, url)
	cols := columns(major)
	t.Run("largest interval printable by version", func(t *testing.T) {
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var text string
		err = conn.QueryRow(t.Context(), "select (interval '2147483647 hours' + interval '414564141:00:54.775807')::text").Scan(&text)
		switch {
		case major < 15 && pgCode(err) != "22008":
			t.Errorf("PostgreSQL %d printed the int64-microsecond interval (%q, %v); want 22008 before 15", major, text, err)
		case major >= 15 && (err != nil || text != "2562047788:00:54.775807"):
			t.Errorf("PostgreSQL %d: %q, %v; want 2562047788:00:54.775807", major, text, err)
		}
	})
	nrows := 0
	var defs []string
	for _, c := range cols {
		defs = append(defs, c.name+" "+c.typ)
		nrows = max(nrows, len(c.vals))
	}
	pgtest.Exec(t, url, "create table everything (id int primary key, "+strings.Join(defs, ", ")+")")
	for r := range nrows {
		names := []string{"id"}
		lits := []string{fmt.Sprint(r)}
		for _, c := range cols {
			if r < len(c.vals) {
				names = append(names, c.name)
				lits = append(lits, c.vals[r].lit)
			}
		}
		pgtest.Exec(t, url, "insert into everything ("+strings.Join(names, ", ")+") values ("+strings.Join(lits, ", ")+")")
	}

	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	m := NewMapper()

	// Every session time zone must give the same UTC timestamps.
	for _, tz := range []string{"UTC", "Asia/Kolkata", "America/New_York", "Pacific/Chatham"} {
		if _, err := conn.Exec(ctx, "set timezone = '"+tz+"'"); err != nil {
			t.Fatal(err)
		}
		names, oids, rows := readText(t, conn, "select * from everything order by id")
		if err := m.Resolve(ctx, conn, oids...); err != nil {
			t.Fatal(err)
		}
		if len(rows) != nrows {
			t.Fatalf("got %d rows, want %d", len(rows), nrows)
		}
		for r, row := range rows {
			for i, c := range cols {
				text := row[i+1]
				if names[i+1] != c.name {
					t.Fatalf("column %d is %s, want %s", i+1, names[i+1], c.name)
				}
				if r >= len(c.vals) {
					if text != nil {
						t.Errorf("%s row %d: want NULL, got %q", c.name, r, text)
					}
					continue
				}
				got, err := m.Decode(oids[i+1], text)
				if err != nil {
					t.Errorf("tz %s: %s row %d: decode %q: %v", tz, c.name, r, text, err)
					continue
				}
				want := c.vals[r].want
				if !reflect.DeepEqual(got, want) {
					t.Errorf("tz %s: %s row %d: text %q decoded to %#v, want %#v", tz, c.name, r, text, got, want)
				}
				if _, err := json.Marshal(got); err != nil {
					t.Errorf("%s row %d: %#v does not encode as JSON: %v", c.name, r, got, err)
				}
			}
		}
	}

	// The JSON a message encoder produces from these values.
	_, oids, rows := readText(t, conn, "select c_numeric, c_bytea, c_jsonb, a_numeric, c_float4 from everything where id = 0")
	rec := map[string]any{}
	for i, name := range []string{"n", "b", "j", "an", "f"} {
		if rec[name], err = m.Decode(oids[i], rows[0][i]); err != nil {
			t.Fatal(err)
		}
	}
	js, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"an":["1.50","NaN","-Infinity",null],"b":"\\xff00fe80","f":1.1,"j":{"a":[1,2.50],"b":1},"n":"` + big1000 + `.5"}`
	if string(js) != want {
		t.Errorf("JSON:\n got %s\nwant %s", js, want)
	}
}

// TestResolveQueriesOnlyUnknown checks that built-in types need no catalog
// lookup and that resolved types stay resolved.
func TestResolveQueriesOnlyUnknown(t *testing.T) {
	url := pgtest.NewDatabase(t)
	setupTypes(t, url)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	m := NewMapper()
	q := &countingQuerier{q: conn}
	if err := m.Resolve(ctx, q, 20, 25, 1007, 3802, 1184, 1020); err != nil {
		t.Fatal(err)
	}
	if q.n != 0 {
		t.Fatalf("built-in types: %d queries, want 0", q.n)
	}
	var moodArr, posint uint32
	if err := conn.QueryRow(ctx, "select '_mood'::regtype::oid, 'posint'::regtype::oid").Scan(&moodArr, &posint); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Decode(posint, []byte("5")); got != "5" {
		t.Fatalf("unresolved domain decoded to %#v, want the text \"5\"", got)
	}
	if err := m.Resolve(ctx, q, 20, moodArr, posint, 4000000000); err != nil {
		t.Fatal(err)
	}
	if err := m.Resolve(ctx, q, moodArr, posint, 4000000000); err != nil {
		t.Fatal(err)
	}
	if q.n != 1 {
		t.Fatalf("%d queries, want 1", q.n)
	}
	if got, _ := m.Decode(posint, []byte("5")); got != int64(5) {
		t.Fatalf("resolved domain decoded to %#v, want int64(5)", got)
	}
	if got, _ := m.Decode(4000000000, []byte("x")); got != "x" {
		t.Fatalf("missing type decoded to %#v, want text", got)
	}
}

type countingQuerier struct {
	q Querier
	n int
}

func (c *countingQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c.n++
	return c.q.Query(ctx, sql, args...)
}

// TestResolveSimpleProtocol checks Resolve on a connection that only speaks
// the simple query protocol.
func TestResolveSimpleProtocol(t *testing.T) {
	url := pgtest.NewDatabase(t)
	setupTypes(t, url)
	ctx := t.Context()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var oid uint32
	if err := conn.QueryRow(ctx, "select 'intlist'::regtype::oid").Scan(&oid); err != nil {
		t.Fatal(err)
	}
	m := NewMapper()
	if err := m.Resolve(ctx, conn, oid); err != nil {
		t.Fatal(err)
	}
	got, err := m.Decode(oid, []byte("{1,2}"))
	if err != nil || !reflect.DeepEqual(got, []any{int64(1), int64(2)}) {
		t.Fatalf("got %#v, %v", got, err)
	}
}

// pgCode is err's SQLSTATE, "" when it is not a server error.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
