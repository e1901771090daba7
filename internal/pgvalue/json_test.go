package pgvalue

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// json and jsonb text is valid JSON at any depth Postgres accepts; nesting
// past encoding/json's 10000 levels must decode, on every decoding path.
func TestDecodeDeepJSON(t *testing.T) {
	m := NewMapper()
	text := []byte(strings.Repeat(`{"a": [`, 15_000) + "1" + strings.Repeat("]}", 15_000))
	var a Arena
	for name, decode := range map[string]func(oid uint32, b []byte) (any, error){
		"Decode":   m.Decode,
		"DecodeIn": func(oid uint32, b []byte) (any, error) { return m.DecodeIn(&a, oid, b) },
	} {
		for _, oid := range []uint32{oidJSON, oidJSONB} {
			v, err := decode(oid, text)
			if err != nil {
				t.Fatalf("%s(%d): %v", name, oid, err)
			}
			if raw, ok := v.(json.RawMessage); !ok || !bytes.Equal(raw, text) {
				t.Fatalf("%s(%d) = %T, want the text as json.RawMessage", name, oid, v)
			}
		}
	}
	// In an array too.
	elem := strings.ReplaceAll(string(text), `"`, `\"`)
	v, err := m.Decode(oidJSONBArr, []byte(`{"`+elem+`",null}`))
	if err != nil {
		t.Fatalf("jsonb[]: %v", err)
	}
	if arr, ok := v.([]any); !ok || len(arr) != 2 || !bytes.Equal(arr[0].(json.RawMessage), text) {
		t.Fatalf("jsonb[] = %T, want the element's text", v)
	}
}
