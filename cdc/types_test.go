package cdc

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/walrelay/walrelay/message"
)

// TestEveryTypeJSON streams one row holding every built-in type family and
// checks the record's JSON, value by value.
func TestEveryTypeJSON(t *testing.T) {
	e := newEnv(t,
		"create type mood as enum ('sad', 'happy')",
		"create domain posint as int check (value > 0)",
		"create domain label as text",
		"create type pair as (a int, b text)",
		`create table every (
			id int primary key,
			i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, f8nan float8, f8inf float8,
			num numeric, bignum numeric, numnan numeric, b bool,
			t text, vc varchar(10), c char(3), ba bytea, u uuid, j json, jb jsonb,
			d date, tm time, ts timestamp, tstz timestamptz, iv interval,
			ip inet, cidr cidr, mac macaddr,
			ai int[], at text[], ajb jsonb[], ats timestamptz[], a2 int[][], anull int[],
			m mood, am mood[], pi posint, l label, p pair, nothing text
		)`)
	s := e.open(e.config())
	big := strings.Repeat("9", 1000) + "." + strings.Repeat("1", 20)
	e.exec(`insert into every values (
		1, -32768, 2147483647, 9223372036854775807, 1.5, 0.1, 'NaN', '-Infinity',
		'12345678901234567890.000000000000000001', '` + big + `', 'NaN', true,
		'he said "hi" <b>&', 'varchar', 'ab', '\xdeadbeef00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
		'{"b": 1,   "a": [1, 2]}', '{"b": 1, "a": {"c": null}}',
		'2024-02-29', '13:14:15.5', '2024-10-28 21:37:01.12747', '2024-10-28 23:37:01.12747+02', '1 day 02:03:04',
		'192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
		'{1,2,NULL}', '{"a b","c,d","e\"f"}', array['{"x":1}'::jsonb], array['2024-01-01 00:00:00+00'::timestamptz],
		'{{1,2},{3,4}}', '{}',
		'happy', '{sad,happy}', 7, 'lbl', '(1,"x y")', null)`)
	m := next(t, s, 1)[0]
	raw, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Record map[string]json.RawMessage `json:"record"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, raw)
	}
	want := map[string]string{
		"id": `1`, "i2": `-32768`, "i4": `2147483647`, "i8": `9223372036854775807`,
		"f4": `1.5`, "f8": `0.1`, "f8nan": `"NaN"`, "f8inf": `"-Infinity"`,
		"num": `"12345678901234567890.000000000000000001"`, "bignum": `"` + big + `"`, "numnan": `"NaN"`, "b": `true`,
		"t": `"he said \"hi\" <b>&"`, "vc": `"varchar"`, "c": `"ab "`, "ba": `"\\xdeadbeef00ff"`,
		"u": `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`,
		"d": `"2024-02-29"`, "tm": `"13:14:15.5"`, "ts": `"2024-10-28T21:37:01.127470"`,
		"tstz": `"2024-10-28T21:37:01.127470Z"`, "iv": `{"days":1,"microseconds":7384000000,"months":0}`,
		"ip": `"192.168.0.1/24"`, "cidr": `"10.0.0.0/8"`, "mac": `"08:00:2b:01:02:03"`,
		"ai": `[1,2,null]`, "at": `["a b","c,d","e\"f"]`, "ajb": `[{"x":1}]`,
		"ats": `["2024-01-01T00:00:00.000000Z"]`, "a2": `[[1,2],[3,4]]`, "anull": `[]`,
		"m": `"happy"`, "am": `["sad","happy"]`, "pi": `7`, "l": `"lbl"`, "p": `"(1,\"x y\")"`, "nothing": `null`,
	}
	for col, w := range want {
		got, ok := doc.Record[col]
		if !ok {
			t.Errorf("%s: missing from record", col)
			continue
		}
		if string(got) != w {
			t.Errorf("%s = %s, want %s", col, got, w)
		}
	}
	// json and jsonb are embedded as JSON, whatever their spacing.
	for _, col := range []string{"j", "jb"} {
		var v map[string]any
		if err := json.Unmarshal(doc.Record[col], &v); err != nil || v["b"] != float64(1) {
			t.Errorf("%s = %s, want an embedded object", col, doc.Record[col])
		}
	}
	if len(doc.Record) != len(want)+2 {
		t.Errorf("record has %d columns, want %d", len(doc.Record), len(want)+2)
	}
	// Columns come in table order.
	if !strings.HasPrefix(string(raw), `{"record":{"id":1,"i2":-32768,"i4":`) {
		t.Errorf("record not in column order: %.80s", raw)
	}
}

func TestToast(t *testing.T) {
	for _, identity := range []string{"default", "full"} {
		t.Run(identity, func(t *testing.T) {
			e := newEnv(t, "create table doc (id int primary key, n int, body text)",
				"alter table doc alter column body set storage external",
				"alter table doc replica identity "+identity)
			s := e.open(e.config())
			e.exec(`insert into doc select 1, 0, string_agg(md5(g::text), '') from generate_series(1, 500) g`,
				"update doc set n = 1 where id = 1",
				"update doc set n = 2, body = 'short' where id = 1",
				"delete from doc where id = 1")
			msgs := next(t, s, 4)
			body := msgs[0].Record["body"]
			if s, ok := body.(string); !ok || len(s) != 16000 {
				t.Fatalf("inserted body = %T of len %d", body, len(body.(string)))
			}
			upd := msgs[1].Record["body"]
			switch identity {
			case "default":
				if !message.IsUnchangedToast(upd) {
					t.Errorf("unchanged TOAST without an old row = %T %.20v; want message.UnchangedToast{}", upd, upd)
				}
				raw, _ := msgs[1].MarshalJSON()
				if !strings.Contains(string(raw), `"body":"`+message.UnchangedToastJSON+`"`) {
					t.Errorf("JSON does not carry the sentinel: %.200s", raw)
				}
				if len(msgs[1].Changes) != 0 {
					t.Errorf("changes without an old row = %v, want {}", msgs[1].Changes)
				}
			case "full":
				if upd != body {
					t.Errorf("unchanged TOAST with FULL identity = %.20v…, want the value from the old row", upd)
				}
				if len(msgs[1].Changes) != 1 || msgs[1].Changes["n"] != int64(0) {
					t.Errorf("changes = %v, want only n", msgs[1].Changes)
				}
				if msgs[2].Changes["body"] != body {
					t.Errorf("changed TOAST column's prior value missing from changes")
				}
				if msgs[3].Record["body"] != "short" {
					t.Errorf("deleted row body = %.20v", msgs[3].Record["body"])
				}
			}
			if msgs[2].Record["body"] != "short" || msgs[1].Record["n"] != int64(1) {
				t.Errorf("update records wrong: %v / %.40v", msgs[1].Record["n"], msgs[2].Record["body"])
			}
		})
	}
}
