package cdc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/message"
)

// sequinCase is one row of the value table in message/SEQUIN.md: a column
// of type typ holding lit is written as want, in a change and in a read;
// Sequin writes it as sequin (from its value_caster.ex, array_lexer.ex and
// Jason encoding, or its tests where they pin it).
type sequinCase struct {
	name   string // the row's first cell in SEQUIN.md
	typ    string
	lit    string
	want   string
	sequin string
	diff   bool // a deliberate, documented difference
}

var sequinCases = []sequinCase{
	{"bool", "bool", "true", `true`, `true`, false},
	{"int2", "int2", "-32768", `-32768`, `-32768`, false},
	{"int4", "int4", "42", `42`, `42`, false}, // value_caster_test.exs "numeric → integer"
	{"int8", "int8", "9223372036854775807", `9223372036854775807`, `9223372036854775807`, false},
	{"oid", "oid", "4294967295", `4294967295`, `4294967295`, false},
	{"domain over int", "posint", "42", `42`, `42`, false},
	{"numeric", "numeric", "9.99", `"9.99"`, `"9.99"`, false}, // value_caster_test.exs
	{"numeric, 30 digits", "numeric", "12345678901234567890.123456789", `"12345678901234567890.123456789"`, `"12345678901234567890.123456789"`, false},
	{"numeric, trailing zeros", "numeric(10,4)", "1.5", `"1.5000"`, `"1.5000"`, false},
	{"numeric, small", "numeric", "0.0000001", `"0.0000001"`, `"0.0000001"`, false},
	{"numeric NaN", "numeric", "'NaN'", `"NaN"`, `"NaN"`, false},
	{"numeric Infinity", "numeric", "'-Infinity'", `"-Infinity"`, `"-Infinity"`, false},
	{"float4", "float4", "1.25", `1.25`, `1.25`, false}, // value_caster_test.exs
	{"float8", "float8", "1.1", `1.1`, `1.1`, false},
	{"float8, integral", "float8", "5", `5`, `5.0`, false},
	{"float8, large", "float8", "1e20", `100000000000000000000`, `1.0e20`, false},
	{"float8 NaN", "float8", "'NaN'", `"NaN"`, `"NaN"`, false},
	{"float8 Infinity", "float8", "'Infinity'", `"Infinity"`, `"Infinity"`, false},
	{"text", "text", `'he said "hi" <b>&'`, `"he said \"hi\" <b>&"`, `"he said \"hi\" <b>&"`, false},
	{"varchar", "varchar(10)", "'varchar'", `"varchar"`, `"varchar"`, false},
	{"char(5)", "char(5)", "'ab'", `"ab   "`, `"ab   "`, false},
	{"uuid", "uuid", "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`, `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`, false},
	{"json", "json", `'{"b": 1, "a": [1, 2]}'`, `{"b":1,"a":[1,2]}`, `{"a":[1,2],"b":1}`, false},
	{"json, duplicates and digits", "json", `'{"a": 1, "a": 2, "n": 12345678901234567890123456789}'`, `{"a":1,"a":2,"n":12345678901234567890123456789}`, `{"a":2,"n":1.2345678901234568e28}`, true},
	{"jsonb", "jsonb", `'{"b": 1, "a": {"c": null}}'`, `{"a":{"c":null},"b":1}`, `{"a":{"c":null},"b":1}`, false},
	{"jsonb, many digits", "jsonb", `'{"n": 12345678901234567890}'`, `{"n":12345678901234567890}`, `{"n":1.2345678901234567e19}`, true},
	{"bytea", "bytea", `'\x00ff48656c6c6f'`, `"\\x00ff48656c6c6f"`, `"\\x00ff48656c6c6f"`, false},
	{"date", "date", "'2024-02-29'", `"2024-02-29"`, `"2024-02-29"`, false},
	{"date infinity", "date", "'infinity'", `"infinity"`, `"infinity"`, false},
	{"date BC", "date", "'0044-03-15 BC'", `"0044-03-15 BC"`, `"0044-03-15 BC"`, false},
	{"time", "time", "'12:34:56'", `"12:34:56"`, `"12:34:56"`, false},
	{"time, fraction", "time", "'12:34:56.789012'", `"12:34:56.789012"`, `"12:34:56"`, true},
	{"timetz", "timetz", "'12:34:56.789+05:30'", `"12:34:56.789+05:30"`, `"12:34:56"`, true},
	{"timestamp", "timestamp", "'2024-10-28 21:37:01.12747'", `"2024-10-28T21:37:01.127470"`, `"2024-10-28T21:37:01.127470"`, false},
	{"timestamp infinity", "timestamp", "'infinity'", `"infinity"`, `"infinity"`, false},
	{"timestamp BC", "timestamp", "'0044-03-15 12:00:00 BC'", `"-0043-03-15T12:00:00.000000"`, `"0044-03-15 12:00:00 BC"`, true},
	{"timestamptz", "timestamptz", "'2024-10-28 21:37:01.12747+02'", `"2024-10-28T19:37:01.127470Z"`, `"2024-10-28T19:37:01.127470Z"`, false},
	{"timestamptz -infinity", "timestamptz", "'-infinity'", `"-infinity"`, `"-infinity"`, false},
	{"timestamptz, year 10000", "timestamptz", "'10000-01-01 00:00:00+00'", `"10000-01-01T00:00:00.000000Z"`, `"10000-01-01 00:00:00+00"`, true},
	{"interval", "interval", "'1 year 2 mons 3 days 04:05:06.789'", `{"days":3,"microseconds":14706789000,"months":14}`, `{"days":3,"microseconds":14706789000,"months":14}`, false}, // value_caster_test.exs
	{"interval, negative", "interval", "'-1 mons -3 days -00:00:01'", `{"days":-3,"microseconds":-1000000,"months":-1}`, `{"days":-3,"microseconds":-1000000,"months":-1}`, false},   // value_caster_test.exs
	{"interval, 100 hours", "interval", "'100:00:00'", `{"days":0,"microseconds":360000000000,"months":0}`, `{"days":0,"microseconds":0,"months":0}`, true},
	{"money", "money", "1234.56", `"$1,234.56"`, `"$1,234.56"`, false},
	{"inet", "inet", "'192.168.0.1/24'", `"192.168.0.1/24"`, `"192.168.0.1/24"`, false},
	{"cidr", "cidr", "'10.0.0.0/8'", `"10.0.0.0/8"`, `"10.0.0.0/8"`, false},
	{"macaddr", "macaddr", "'08:00:2b:01:02:03'", `"08:00:2b:01:02:03"`, `"08:00:2b:01:02:03"`, false},
	{"int4[]", "int4[]", "'{1,NULL,3}'", `[1,null,3]`, `[1,null,3]`, false},            // value_caster_test.exs
	{"int4[][]", "int4[]", "'{{1,2},{3,4}}'", `[[1,2],[3,4]]`, `[[1,2],[3,4]]`, false}, // value_caster_test.exs
	{"empty array", "int4[]", "'{}'", `[]`, `[]`, false},
	{"text[]", "text[]", `'{"a","b","c"}'`, `["a","b","c"]`, `["a","b","c"]`, false}, // value_caster_test.exs
	{"text[] with \"NULL\"", "text[]", `'{"a","NULL",NULL,""}'`, `["a","NULL",null,""]`, `["a",null,null,""]`, true},
	{"numeric[]", "numeric[]", "'{1.50,NaN,0.0000001}'", `["1.50","NaN","0.0000001"]`, `["1.50","NaN","0.0000001"]`, false},
	{"bool[]", "bool[]", "'{t,f}'", `[true,false]`, `[true,false]`, false},
	{"jsonb[]", "jsonb[]", `'{"{\"x\":1}","[2,3]","null"}'`, `[{"x":1},[2,3],null]`, `[{"x":1},[2,3],null]`, false}, // value_caster_test.exs
	{"timestamptz[]", "timestamptz[]", `'{"2024-01-01 00:00:00+00"}'`, `["2024-01-01T00:00:00.000000Z"]`, `["2024-01-01T00:00:00.000000Z"]`, false},
	{"uuid[]", "uuid[]", "'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'", `["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]`, `["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]`, false},
	{"bytea[]", "bytea[]", `'{"\\x0102"}'`, `["\\x0102"]`, `["\\x0102"]`, false},
	{"interval[]", "interval[]", `'{"1 day"}'`, `[{"days":1,"microseconds":0,"months":0}]`, `[{"days":1,"microseconds":0,"months":0}]`, false},
	{"array with bounds", "int4[]", "'[0:1]={1,2}'", `[1,2]`, `(crash)`, true},
	{"enum", "mood", "'happy'", `"happy"`, `"happy"`, false},
	{"enum[]", "mood[]", "'{sad,happy}'", `["sad","happy"]`, `["sad","happy"]`, false},
	{"int4range", "int4range", "'[1,10)'", `"[1,10)"`, `"[1,10)"`, false},
	{"daterange", "daterange", "'[2010-01-01,2021-01-01)'", `"[2010-01-01,2021-01-01)"`, `"[2010-01-01,2021-01-01)"`, false},
	{"point", "point", "'(1.5,2)'", `"(1.5,2)"`, `"(1.5,2)"`, false},
	{"tsvector", "tsvector", "'a cat'", `"'a' 'cat'"`, `"'a' 'cat'"`, false},
	{"xml", "xml", "'<a>x</a>'", `"<a>x</a>"`, `"<a>x</a>"`, false},
	{"bit(4)", "bit(4)", "B'1010'", `"1010"`, `"1010"`, false},
	{"varbit", "varbit", "B'101'", `"101"`, `"101"`, false},
	{"composite", "pair", `'(1,"x y")'`, `"(1,\"x y\")"`, `"(1,\"x y\")"`, false},
	{"NULL", "text", "null", `null`, `null`, false},
}

// jsonEqualValues reports whether a and b are the same JSON value:
// numbers compared exactly as rationals (5 equals 5.0, not 5.0000001),
// object key order ignored, a duplicate key's last value kept.
func jsonEqualValues(a, b string) bool {
	x, errA := exactJSON(a)
	y, errB := exactJSON(b)
	return errA == nil && errB == nil && reflect.DeepEqual(x, y)
}

func exactJSON(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var exact func(v any) any
	exact = func(v any) any {
		switch v := v.(type) {
		case json.Number:
			r, ok := new(big.Rat).SetString(string(v))
			if !ok {
				return v
			}
			return "number " + r.String()
		case []any:
			for i := range v {
				v[i] = exact(v[i])
			}
		case map[string]any:
			for k := range v {
				v[k] = exact(v[k])
			}
		}
		return v
	}
	return exact(v), nil
}

// sequinDoc returns message/SEQUIN.md, the table these tests pin.
func sequinDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../message/SEQUIN.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docRow returns the table row of SEQUIN.md whose first cell is name.
func docRow(t *testing.T, doc, name string) string {
	t.Helper()
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "| "+name+" |") {
			return line
		}
	}
	t.Errorf("message/SEQUIN.md has no row %q", name)
	return ""
}

// TestSequinValues streams one row holding every value of sequinCases and
// reads it again with a backfill: each column's JSON must be the case's,
// in both, each case must match Sequin's JSON or be marked a difference,
// and message/SEQUIN.md must show the same two JSON texts.
func TestSequinValues(t *testing.T) {
	cols := []string{"id int primary key"}
	vals := []string{"1"}
	for i, c := range sequinCases {
		cols = append(cols, fmt.Sprintf("c%d %s", i, c.typ))
		vals = append(vals, c.lit)
	}
	e := newEnv(t,
		"create type mood as enum ('sad', 'happy')",
		"create domain posint as int check (value > 0)",
		"create type pair as (a int, b text)",
		"create table golden ("+strings.Join(cols, ", ")+")")
	s := e.open(e.config())
	e.exec("insert into golden values (" + strings.Join(vals, ", ") + ")")
	change := next(t, s, 1)[0]
	s.Ack(change)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Backfill(ctx, backfill.Config{Table: "public.golden", ID: "golden"}) }()
	read := next(t, s, 1)[0]
	s.Ack(read)
	if err := <-errc; err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	if change.Action != message.ActionInsert || read.Action != message.ActionRead {
		t.Fatalf("actions %s, %s", change.Action, read.Action)
	}

	records := map[string]map[string]json.RawMessage{}
	for name, m := range map[string]message.Message{"change": change, "read": read} {
		b, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Record map[string]json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		records[name] = doc.Record
	}
	rc, _ := change.RecordJSON()
	rr, _ := read.RecordJSON()
	if !bytes.Equal(rc, rr) {
		t.Errorf("read record differs from the insert's:\n%s\n%s", rr, rc)
	}

	doc := sequinDoc(t)
	for i, c := range sequinCases {
		col := fmt.Sprintf("c%d", i)
		for _, kind := range []string{"change", "read"} {
			if got := string(records[kind][col]); got != c.want {
				t.Errorf("%s (%s %s): %s JSON = %s, want %s", c.name, c.typ, c.lit, kind, got, c.want)
			}
		}
		if eq := jsonEqualValues(c.want, c.sequin); eq == c.diff {
			t.Errorf("%s: walrelay %s vs Sequin %s: marked diff=%v but equal=%v", c.name, c.want, c.sequin, c.diff, eq)
		}
		if row := docRow(t, doc, c.name); row != "" {
			if !strings.Contains(row, "`"+c.want+"`") || !strings.Contains(row, "`"+c.sequin+"`") {
				t.Errorf("SEQUIN.md row %q does not show `%s` and `%s`", c.name, c.want, c.sequin)
			}
			if c.diff != strings.Contains(row, "difference") {
				t.Errorf("SEQUIN.md row %q: difference marked %v in the test", c.name, c.diff)
			}
		}
	}
}

// TestSequinMessageRules checks the message-level rules of SEQUIN.md
// against a live stream: a transaction mixing changes, a logical message
// and a TRUNCATE, with the default replica identity.
func TestSequinMessageRules(t *testing.T) {
	e := newEnv(t,
		"create table t (id int primary key, a text, b int)",
		"create table other (id int primary key)",
		"create table mpk (b text, a int, c int, primary key (a, b))",
		"create table toasty (id int primary key, n int, big text)",
		"alter table toasty alter column big set storage external",
		"create table pt (id int, region text, primary key (id, region)) partition by list (region)",
		"create table pt_eu partition of pt for values in ('eu')")
	e.exec("insert into toasty values (1, 0, repeat('x', 10000))")
	s := e.open(e.config())
	e.exec("begin",
		"insert into t values (1, 'x', 1)",
		`select pg_logical_emit_message(true, 'sequin:transaction_annotations.set', '["not", "an", "object"]')`,
		"update t set a = 'y' where id = 1",
		"update t set id = 2 where id = 1",
		"delete from t where id = 2",
		"truncate other",
		"insert into t values (3, 'z', 3)",
		"commit")
	e.exec("insert into mpk values ('k', 7, 0)",
		"update toasty set n = 1",
		"insert into pt values (1, 'eu')")
	msgs := next(t, s, 8)
	for _, m := range msgs {
		s.Ack(m)
	}
	type want struct {
		action, table string
		idx           int
		record        string
		changes       string
		annotations   string
		pks           string
	}
	wants := []want{
		{"insert", "t", 0, `{"id":1,"a":"x","b":1}`, `null`, `null`, `["1"]`},
		// 1: the annotation message itself
		{"update", "t", 2, `{"id":1,"a":"y","b":1}`, `{}`, `["not","an","object"]`, `["1"]`},
		{"update", "t", 3, `{"id":2,"a":"y","b":1}`, `{}`, `["not","an","object"]`, `["2"]`},
		{"delete", "t", 4, `{"id":2,"a":null,"b":null}`, `null`, `["not","an","object"]`, `["2"]`},
		// 5: the TRUNCATE, not delivered
		{"insert", "t", 6, `{"id":3,"a":"z","b":3}`, `null`, `["not","an","object"]`, `["3"]`},
		{"insert", "mpk", 0, `{"b":"k","a":7,"c":0}`, `null`, `null`, `["k","7"]`},
		{"update", "toasty", 0, `{"id":1,"n":1,"big":"unchanged_toast"}`, `{}`, `null`, `["1"]`},
		{"insert", "pt", 0, `{"id":1,"region":"eu"}`, `null`, `null`, `["1","eu"]`},
	}
	for i, w := range wants {
		m := msgs[i]
		b, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Record   json.RawMessage `json:"record"`
			Changes  json.RawMessage `json:"changes"`
			Action   string          `json:"action"`
			Metadata struct {
				TableName   string          `json:"table_name"`
				Key         string          `json:"idempotency_key"`
				CommitLSN   uint64          `json:"commit_lsn"`
				CommitIdx   int             `json:"commit_idx"`
				RecordPKs   json.RawMessage `json:"record_pks"`
				Annotations json.RawMessage `json:"transaction_annotations"`
				Enrichment  json.RawMessage `json:"enrichment"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		md := doc.Metadata
		if doc.Action != w.action || md.TableName != w.table || md.CommitIdx != w.idx ||
			string(doc.Record) != w.record || string(doc.Changes) != w.changes ||
			string(md.Annotations) != w.annotations || string(md.RecordPKs) != w.pks || string(md.Enrichment) != "null" {
			t.Errorf("message %d:\n got %s\nwant %+v", i, b, w)
		}
		if md.Key != message.ChangeKey(message.LSN(md.CommitLSN), w.idx) {
			t.Errorf("message %d: idempotency_key %s is not ChangeKey(%d, %d)", i, md.Key, md.CommitLSN, w.idx)
		}
	}
	if !message.IsUnchangedToast(msgs[6].Record["big"]) {
		t.Errorf("unchanged TOAST = %#v", msgs[6].Record["big"])
	}

	// A read of the same table: no transaction.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Backfill(ctx, backfill.Config{Table: "public.t", ID: "rules"}) }()
	read := next(t, s, 1)[0]
	s.Ack(read)
	if err := <-errc; err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	b, _ := read.MarshalJSON()
	for _, part := range []string{`"commit_lsn":null,"commit_idx":null,"record_pks":["3"]`, `"transaction_annotations":null,"enrichment":null}}`} {
		if !bytes.Contains(b, []byte(part)) {
			t.Errorf("read %s lacks %s", b, part)
		}
	}

	doc := sequinDoc(t)
	for _, name := range []string{"delete, default identity", "key change, default identity", "unchanged TOAST, no old row",
		"TRUNCATE", "partition", "commit_idx", "read commit_lsn, commit_idx", "record_pks", "enrichment", "transaction_annotations, not an object"} {
		docRow(t, doc, name)
	}
}

// TestCreatedPublicationViaRoot checks that a publication the stream
// creates publishes partitions' changes as their root's.
func TestCreatedPublicationViaRoot(t *testing.T) {
	e := newEnv(t, "create table pt (id int primary key) partition by range (id)",
		"create table pt_1 partition of pt for values from (0) to (100)")
	cfg := e.config()
	cfg.Publication = "created_pub"
	cfg.CreatePublication, cfg.PublicationAllTables = true, true
	s := e.open(cfg)
	var viaRoot bool
	if err := e.conn.QueryRow(context.Background(), "select pubviaroot from pg_publication where pubname = 'created_pub'").Scan(&viaRoot); err != nil {
		t.Fatal(err)
	}
	if !viaRoot {
		t.Error("created publication lacks publish_via_partition_root")
	}
	e.exec("insert into pt values (5)")
	if m := next(t, s, 1)[0]; m.Metadata.TableName != "pt" {
		t.Errorf("table_name = %q, want pt", m.Metadata.TableName)
	}
}

// TestBackfillSeesOldKeyWithoutFull: changes carry no old key without
// REPLICA IDENTITY FULL, yet a backfill chunk in flight must still learn
// that a key change made the row's old key stale (from the old key tuple).
func TestBackfillSeesOldKeyWithoutFull(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key, a text)", "insert into t values (1, 'x')")
	s := e.open(e.config())
	ch := &chunk{id: "probe", schema: "public", table: "t", keyCols: []string{"id"},
		dirty: map[string][]uint32{}, done: make(chan struct{})}
	s.chunks.register(ch)
	defer s.chunks.remove(ch.id)
	e.exec("update t set id = 2 where id = 1")
	m := next(t, s, 1)[0]
	if len(m.Changes) != 0 {
		t.Errorf("changes = %v, want {}", m.Changes)
	}
	s.chunks.mu.Lock()
	defer s.chunks.mu.Unlock()
	for _, id := range []int64{1, 2} {
		if k := rowKey(ch.keyCols, map[string]any{"id": id}); len(ch.dirty[k]) == 0 {
			t.Errorf("key %d not marked changed for the chunk: %v", id, ch.dirty)
		}
	}
}
