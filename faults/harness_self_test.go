package faults

import (
	"fmt"
	"strings"
	"testing"

	"github.com/walrelay/walrelay/message"
)

// line is a delivered message's JSON as the consumer writes it.
func line(action string, id, n int, lsn uint64, idx int, key string) []byte {
	if key == "" {
		key = message.ChangeKey(message.LSN(lsn), idx)
	}
	return fmt.Appendf(nil, `{"record":{"id":%d,"n":%d,"pad":"p","v":0},"changes":null,"action":%q,"metadata":{"table_name":"items","idempotency_key":%q,"commit_lsn":%d,"commit_idx":%d}}`,
		id, n, action, key, lsn, idx)
}

func auditOf(op string, id, n int) auditRow {
	h := "83878c91171338902e0fe0fb97a8c47a" // md5("p")
	cols := "id,n,pad,v"
	return auditRow{tbl: "items", pk: fmt.Sprint(id), op: op, n: int64(n), h: &h, cols: &cols}
}

// TestHarnessDetects checks that the comparison counts each kind of
// problem: a harness that cannot fail would prove nothing.
func TestHarnessDetects(t *testing.T) {
	e := &env{tables: map[string]bool{"items": true}}
	audit := []auditRow{auditOf("I", 1, 1), auditOf("U", 1, 2), auditOf("I", 2, 3), auditOf("D", 2, 3)}
	good := [][]byte{line("insert", 1, 1, 100, 0, ""), line("insert", 2, 3, 100, 1, ""), line("update", 1, 2, 200, 0, ""), line("delete", 2, 3, 200, 1, "")}
	tests := []struct {
		name  string
		lines [][]byte
		check func(r result) bool
	}{
		{"clean", good, func(r result) bool {
			return r.Lost+r.Duplicates+r.KeyMismatches+r.OrderViolations+r.Extra+r.ValueMismatches+r.ShapeMismatches == 0
		}},
		{"lost", good[:3], func(r result) bool { return r.Lost == 1 }},
		{"duplicate", append(good[:4:4], good[2]), func(r result) bool { return r.Duplicates == 1 && r.KeyMismatches == 0 }},
		{"duplicate with another key", append(good[:4:4], line("update", 1, 2, 300, 0, "")), func(r result) bool { return r.Duplicates == 1 && r.KeyMismatches == 1 }},
		{"key not from position", [][]byte{good[0], good[1], line("update", 1, 2, 200, 0, "eA=="), good[3]}, func(r result) bool { return r.KeyMismatches == 1 }},
		{"row order", [][]byte{line("update", 1, 2, 100, 0, ""), line("insert", 1, 1, 200, 0, ""), good[1], good[3]}, func(r result) bool { return r.OrderViolations >= 1 }},
		{"commit order", [][]byte{good[2], good[0], good[1], good[3]}, func(r result) bool { return r.OrderViolations >= 1 }},
		{"never committed", append(good[:4:4], line("insert", 9, 9, 300, 0, "")), func(r result) bool { return r.Extra == 1 }},
		{"wrong value", [][]byte{good[0], bytesReplace(good[1], `"pad":"p"`, `"pad":"q"`), good[2], good[3]}, func(r result) bool { return r.ValueMismatches == 1 }},
		{"null value", [][]byte{good[0], bytesReplace(good[1], `"pad":"p"`, `"pad":null`), good[2], good[3]}, func(r result) bool { return r.ValueMismatches == 1 }},
		{"toast marker with full identity", [][]byte{good[0], good[1], bytesReplace(good[2], `"pad":"p"`, `"pad":"`+message.UnchangedToastJSON+`"`), good[3]}, func(r result) bool { return r.ValueMismatches == 1 }},
		{"old shape", [][]byte{good[0], bytesReplace(good[1], `,"v":0`, ``), good[2], good[3]}, func(r result) bool { return r.ShapeMismatches == 1 }},
	}
	for _, tt := range tests {
		src := &memSource{}
		src.add(tt.lines...)
		all, err := src.read()
		if err != nil {
			t.Fatal(err)
		}
		r := tally(e, audit, all, result{}, compareOpts{commitOrder: true})
		if !tt.check(r) {
			t.Errorf("%s: %s", tt.name, r.fields())
		}
	}
}

func bytesReplace(b []byte, old, new string) []byte {
	return []byte(strings.Replace(string(b), old, new, 1))
}

// TestMonitorDetects checks the slot monitor's verdicts on made-up samples.
func TestMonitorDetects(t *testing.T) {
	ds := &deliveries{}
	src := &memSource{}
	ds.add(src)
	src.add(line("insert", 1, 1, 100, 0, ""), line("insert", 2, 2, 100, 1, ""), line("insert", 3, 3, 200, 0, ""))
	all, err := ds.all()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name             string
		samples          []sample
		ahead, backwards int
	}{
		{"behind", []sample{{lsn: 50, sizes: []int64{0}}, {lsn: 150, sizes: []int64{2}}, {lsn: 250, sizes: []int64{3}}}, 0, 0},
		// Past transaction 100 while only one of its two changes was written.
		{"ahead", []sample{{lsn: 150, sizes: []int64{1}}, {lsn: 250, sizes: []int64{3}}}, 1, 0},
		{"backwards", []sample{{lsn: 150, sizes: []int64{2}}, {lsn: 120, sizes: []int64{2}}}, 0, 1},
		{"backwards across a restart", []sample{{lsn: 150, sizes: []int64{2}}, {lsn: 120, sizes: []int64{2}, epoch: 1}}, 0, 0},
	}
	for _, tt := range tests {
		m := &monitor{samples: tt.samples}
		_, ahead, backwards, _ := m.check(all)
		if ahead != tt.ahead || backwards != tt.backwards {
			t.Errorf("%s: ahead %d backwards %d, want %d %d", tt.name, ahead, backwards, tt.ahead, tt.backwards)
		}
	}
}
