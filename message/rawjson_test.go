package message

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Postgres stores jsonb nested deeper than encoding/json's 10000 levels
// (about 19,960 with the default max_stack_depth; more when it is raised):
// such a value is embedded like any other, and a message carrying it
// encodes.
func TestRawJSONAnyDepth(t *testing.T) {
	for _, depth := range []int{10_001, 15_000, 1_000_000} {
		raw := strings.Repeat(`{"a": [`, depth) + "1" + strings.Repeat("]}", depth)
		m := Message{Action: ActionInsert, Record: map[string]any{"doc": json.RawMessage(raw)}}
		b, err := m.MarshalJSON()
		if err != nil {
			t.Fatalf("depth %d: %v", depth, err)
		}
		want := `"doc":` + strings.Repeat(`{"a":[`, depth) + "1" + strings.Repeat("]}", depth)
		if !strings.Contains(string(b), want) {
			t.Fatalf("depth %d: the value is not embedded compacted", depth)
		}
	}
	// Still validated at any depth.
	bad := strings.Repeat("[", 20_000) + strings.Repeat("]", 19_999) + "}"
	_, err := Message{Record: map[string]any{"doc": json.RawMessage(bad)}}.MarshalJSON()
	var re *RawJSONError
	if !errors.As(err, &re) || re.Offset != 39_999 {
		t.Fatalf("mismatched bracket at depth 20000: err = %v, want a RawJSONError at offset 39999", err)
	}
	// Go values keep their limit: a map that contains itself is an error.
	cyclic := map[string]any{}
	cyclic["c"] = cyclic
	if _, err := (Message{Record: cyclic}).MarshalJSON(); !errors.Is(err, errTooDeep) {
		t.Fatalf("cyclic map: err = %v, want errTooDeep", err)
	}
}

// BenchmarkAppendRawJSON validates and compacts a jsonb document of nested
// objects and arrays, as a json column's value is embedded.
func BenchmarkAppendRawJSON(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"items": [`)
	for i := range 40 {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(`{"sku": "A-1234", "qty": 3, "price": 19.99, "tags": ["red", "large"], "meta": {"gift": false, "note": null}}`)
	}
	sb.WriteString(`], "total": 799.6}`)
	raw := []byte(sb.String())
	buf := make([]byte, 0, len(raw))
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = appendRawJSON(buf[:0], raw); err != nil {
			b.Fatal(err)
		}
	}
}

// What the package doc says of decoding: a message with a value nested
// past 10000 levels encodes, and UnmarshalJSON refuses it.
func TestDeepRawJSONDoesNotDecode(t *testing.T) {
	raw := strings.Repeat("[", 10_001) + strings.Repeat("]", 10_001)
	b, err := Message{Action: ActionInsert, Record: map[string]any{"doc": json.RawMessage(raw)}}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m Message
	if err := m.UnmarshalJSON(b); err == nil {
		t.Fatal("UnmarshalJSON accepted a value nested 10001 levels deep")
	}
}
