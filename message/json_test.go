package message

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Shared metadata of the golden messages.
var (
	goldenConsumer = Consumer{
		ID:          "f47ac10b-58cc-4372-a567-0e02b2c3d479",
		Name:        "orders_kafka",
		Annotations: map[string]any{"team": "orders"},
	}
	goldenDatabase = Database{
		ID:       "12345678-9abc-def0-1234-56789abcdef0",
		Name:     "myapp-prod",
		Database: "myapp",
		Hostname: "db.example.com",
	}
	cet = time.FixedZone("CET", 3600)
)

// goldenMessages are the messages whose JSON is in testdata/<name>.json.
func goldenMessages() map[string]Message {
	return map[string]Message{
		"insert": {
			Record: map[string]any{
				"id":          int64(1234),
				"customer_id": int64(789),
				"product":     "Wireless Headphones",
				"quantity":    int32(1),
				"price":       Numeric("199.99"),
				"note":        nil,
				"created_at":  time.Date(2024, 10, 28, 22, 37, 1, 127470000, cet),
			},
			Action: ActionInsert,
			Metadata: Metadata{
				TableSchema:     "public",
				TableName:       "orders",
				IdempotencyKey:  "MTIzNDU2Nzg5OjA=",
				CommitTimestamp: time.Date(2024, 10, 28, 22, 37, 1, 127470999, cet),
				CommitLSN:       123456789,
				CommitIdx:       0,
				Consumer:        goldenConsumer,
				Database:        goldenDatabase,
				TransactionAnnotations: map[string]any{
					"username": "paul.atreides", "source": "web_ui", "request_id": "req_123",
				},
				primaryKey: []string{"id"},
				columns:    []string{"id", "customer_id", "product", "quantity", "price", "note", "created_at"},
			},
		},
		"update": {
			Record: map[string]any{
				"id":         int64(1234),
				"status":     "shipped",
				"total":      Numeric("1000000000000000000000000.000001"),
				"updated_at": "2024-10-28T21:40:00.000000Z",
			},
			Changes: map[string]any{
				"status": "pending",
				"total":  Numeric("999.5"),
			},
			Action: ActionUpdate,
			Metadata: Metadata{
				TableSchema:     "public",
				TableName:       "orders",
				IdempotencyKey:  "MTIzNDU2Nzg5OjE=",
				CommitTimestamp: time.Date(2024, 10, 28, 21, 40, 0, 1000, time.UTC),
				CommitLSN:       123456789,
				CommitIdx:       1,
				Consumer:        goldenConsumer,
				Database:        goldenDatabase,
				primaryKey:      []string{"id"},
				columns:         []string{"id", "status", "total", "updated_at"},
			},
		},
		"update_no_old_row": {
			Record: map[string]any{
				"id":     int64(1234),
				"status": "delivered",
				"notes":  UnchangedToast{},
			},
			Changes: map[string]any{},
			Action:  ActionUpdate,
			Metadata: Metadata{
				TableSchema:     "public",
				TableName:       "orders",
				IdempotencyKey:  "MTIzNDU2NzkwOjA=",
				CommitTimestamp: time.Date(2024, 10, 29, 8, 0, 0, 0, time.UTC),
				CommitLSN:       123456790,
				DatabaseName:    "legacy-name",
				Consumer:        goldenConsumer,
				Database:        goldenDatabase,
				columns:         []string{"id", "status", "notes"},
			},
		},
		"delete": {
			// Without REPLICA IDENTITY FULL: the key, and null for the rest.
			Record: map[string]any{"id": int64(1234), "status": nil, "notes": nil},
			Action: ActionDelete,
			Metadata: Metadata{
				TableSchema:     "public",
				TableName:       "orders",
				IdempotencyKey:  "MTIzNDU2NzkxOjM=",
				CommitTimestamp: time.Date(2024, 10, 29, 9, 15, 30, 500000000, time.UTC),
				CommitLSN:       123456791,
				CommitIdx:       3,
				Consumer:        goldenConsumer,
				Database:        goldenDatabase,
				primaryKey:      []string{"id"},
				columns:         []string{"id", "status", "notes"},
			},
		},
		"read": {
			Record: map[string]any{
				"id":      int64(1234),
				"payload": "\\x686900ff", // bytea, as a stream decodes it
				"attrs":   json.RawMessage(`{ "b": [1, 2.5, "x<y"],` + "\n\t" + `"a": null }`),
				"ratio":   math.NaN(),
				"score":   0.1,
				"tags":    []any{"a", int64(2), nil, []any{true}},
			},
			Action: ActionRead,
			Metadata: Metadata{
				TableSchema:     "public",
				TableName:       "orders",
				IdempotencyKey:  "YmFja2ZpbGwtMToxMjM0",
				CommitTimestamp: time.Date(2024, 10, 29, 10, 0, 0, 0, time.UTC),
				Consumer:        Consumer{ID: goldenConsumer.ID, Name: goldenConsumer.Name},
				Database:        goldenDatabase,
				primaryKey:      []string{"id"},
			},
		},
		"annotations_not_object": {
			Record: map[string]any{"id": "a1", "n": int64(2), "d": Interval{Months: 14, Days: 3, Microseconds: 14706789000}},
			Action: ActionInsert,
			Metadata: Metadata{
				TableSchema:               "other",
				TableName:                 "Odd Table",
				IdempotencyKey:            "MTIzNDU2Nzk0OjI=",
				CommitTimestamp:           time.Date(2024, 10, 29, 9, 15, 30, 0, time.UTC),
				CommitLSN:                 123456794,
				CommitIdx:                 2,
				Consumer:                  goldenConsumer,
				Database:                  goldenDatabase,
				RawTransactionAnnotations: json.RawMessage(`["not", "an",` + "\n" + ` "object"]`),
				primaryKey:                []string{"n", "id"},
				columns:                   []string{"id", "n", "d"},
			},
		},
	}
}

func TestMarshalJSONGolden(t *testing.T) {
	for name, m := range goldenMessages() {
		t.Run(name, func(t *testing.T) {
			got, err := m.MarshalJSON()
			if err != nil {
				t.Fatalf("MarshalJSON: %v", err)
			}
			path := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want = bytes.TrimSuffix(want, []byte("\n"))
			if !bytes.Equal(got, want) {
				t.Errorf("MarshalJSON mismatch\n got: %s\nwant: %s", got, want)
			}
			if !json.Valid(got) {
				t.Errorf("MarshalJSON output is not valid JSON: %s", got)
			}
			appended, err := m.AppendJSON([]byte("prefix"))
			if err != nil {
				t.Fatalf("AppendJSON: %v", err)
			}
			if string(appended) != "prefix"+string(got) {
				t.Errorf("AppendJSON = %s, want prefix+MarshalJSON", appended)
			}
		})
	}
}

// TestMarshalJSONKeyOrder checks the seed's key order with encoding/json's
// tokenizer, independently of the golden bytes.
func TestMarshalJSONKeyOrder(t *testing.T) {
	b, err := goldenMessages()["insert"].MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"record", "id", "customer_id", "product", "quantity", "price", "note", "created_at",
		"changes", "action", "metadata", "table_schema", "table_name", "idempotency_key",
		"commit_timestamp", "commit_lsn", "commit_idx", "record_pks", "database_name",
		"consumer", "id", "name", "annotations", "team",
		"database", "id", "name", "annotations", "database", "hostname",
		"transaction_annotations", "request_id", "source", "username", "enrichment",
	}
	if got := objectKeys(t, b); !reflect.DeepEqual(got, want) {
		t.Errorf("keys =\n%q\nwant\n%q", got, want)
	}
}

// objectKeys lists every object key in document order.
func objectKeys(t *testing.T, b []byte) []string {
	t.Helper()
	type level struct{ object, expectKey bool }
	dec := json.NewDecoder(bytes.NewReader(b))
	var keys []string
	var stack []level
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		n := len(stack)
		if tok == json.Delim('}') || tok == json.Delim(']') {
			stack = stack[:n-1]
			continue
		}
		if n > 0 && stack[n-1].object && stack[n-1].expectKey {
			keys = append(keys, tok.(string))
			stack[n-1].expectKey = false
			continue
		}
		if n > 0 && stack[n-1].object {
			stack[n-1].expectKey = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, level{object: true, expectKey: true})
		case json.Delim('['):
			stack = append(stack, level{})
		}
	}
	return keys
}

func recordJSON(t *testing.T, m Message) string {
	t.Helper()
	b, err := m.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	if !json.Valid(b) {
		t.Fatalf("MarshalJSON output is not valid JSON: %s", b)
	}
	s := string(b)
	start := len(`{"record":`)
	end := strings.Index(s, `,"changes":`)
	return s[start:end]
}

type textID struct{ A, B string }

type htmlMarshaler struct{}

func (htmlMarshaler) MarshalJSON() ([]byte, error) { return []byte(`{ "h" : "<&>" }`), nil }

type badUTF8Marshaler struct{}

func (badUTF8Marshaler) MarshalJSON() ([]byte, error) { return []byte("\"a\xffb\""), nil }

func TestValueEncoding(t *testing.T) {
	thousand := "1" + strings.Repeat("234567890", 111) + "1"
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"nil", nil, `null`},
		{"true", true, `true`},
		{"false", false, `false`},
		{"int", int(-42), `-42`},
		{"int8", int8(-128), `-128`},
		{"int16", int16(32767), `32767`},
		{"int32", int32(-2147483648), `-2147483648`},
		{"int64 max", int64(math.MaxInt64), `9223372036854775807`},
		{"int64 min", int64(math.MinInt64), `-9223372036854775808`},
		{"uint", uint(7), `7`},
		{"uint8", uint8(255), `255`},
		{"uint16", uint16(65535), `65535`},
		{"uint32", uint32(4294967295), `4294967295`},
		{"uint64 max", uint64(math.MaxUint64), `18446744073709551615`},
		{"float64", 3.25, `3.25`},
		{"float64 integral", 2.0, `2`},
		{"float64 shortest", func() float64 { a, b := 0.1, 0.2; return a + b }(), `0.30000000000000004`},
		{"float64 negative zero", math.Copysign(0, -1), `-0`},
		{"float64 small", 1e-7, `1e-7`},
		{"float64 large", 1e21, `1e+21`},
		{"float64 below exponent form", 1e20, `100000000000000000000`},
		{"float64 max", math.MaxFloat64, `1.7976931348623157e+308`},
		{"float32", float32(0.1), `0.1`},
		{"float32 small", float32(1e-7), `1e-7`},
		{"NaN", math.NaN(), `"NaN"`},
		{"+Inf", math.Inf(1), `"Infinity"`},
		{"-Inf", math.Inf(-1), `"-Infinity"`},
		{"float32 NaN", float32(math.NaN()), `"NaN"`},
		{"float32 -Inf", float32(math.Inf(-1)), `"-Infinity"`},
		{"number", json.Number("-12.5e+3"), `-12.5e+3`},
		{"number 1000 digits", json.Number(thousand), thousand},
		{"number 1000 digits with fraction", json.Number(thousand + "." + thousand), thousand + "." + thousand},
		{"number NaN", json.Number("NaN"), `"NaN"`},
		{"number Infinity", json.Number("Infinity"), `"Infinity"`},
		{"number invalid", json.Number("01"), `"01"`},
		{"number empty", json.Number(""), `""`},
		{"number trailing dot", json.Number("1."), `"1."`},
		{"raw object", json.RawMessage(` {"b" : 1, "a":[ true ,null ] } `), `{"b":1,"a":[true,null]}`},
		{"raw string kept", json.RawMessage(`" a  b "`), `" a  b "`},
		{"raw escapes kept", json.RawMessage(`"\u00e9\n\"\\\/"`), `"\u00e9\n\"\\\/"`},
		{"raw html", json.RawMessage(`"<&>"`), `"<&>"`},
		{"raw invalid utf8", json.RawMessage("[\"a\xffb\"]"), "[\"a\uFFFDb\"]"},
		{"raw nil", json.RawMessage(nil), `null`},
		{"raw number", json.RawMessage(`1e400`), `1e400`},
		{"string", "hello", `"hello"`},
		{"string empty", "", `""`},
		{"string html", "<a href=\"x\">&amp;</a>", `"<a href=\"x\">&amp;</a>"`},
		{"string control", "a\x00b\x01\x1f\b\f\n\r\t\x7f", `"a\u0000b\u0001\u001f\b\f\n\r\t` + "\x7f" + `"`},
		{"string quote backslash", `"\`, `"\"\\"`},
		{"string unicode", "héllo, 世界 🌍", `"héllo, 世界 🌍"`},
		{"string line separators", "a\u2028b\u2029c", `"a\u2028b\u2029c"`},
		{"string invalid utf8", "a\xffb\xc3", "\"a\uFFFDb\uFFFD\""},
		{"string long plain", strings.Repeat("abcdefgh", 5) + "\n", `"` + strings.Repeat("abcdefgh", 5) + `\n"`},
		{"bytes", []byte("hi\x00\xff"), `"\\x686900ff"`},
		{"bytes empty", []byte{}, `"\\x"`},
		{"numeric", Numeric("12345678901234567890.123456789"), `"12345678901234567890.123456789"`},
		{"numeric scale kept", Numeric("1.5000"), `"1.5000"`},
		{"numeric NaN", Numeric("NaN"), `"NaN"`},
		{"numeric odd text escaped", Numeric("a\"b"), `"a\"b"`},
		{"interval", Interval{Months: -1, Days: -3, Microseconds: -1000000}, `{"days":-3,"microseconds":-1000000,"months":-1}`},
		{"bytes nil", []byte(nil), `null`},
		{"array", []any{int64(1), "two", nil, 3.5}, `[1,"two",null,3.5]`},
		{"array empty", []any{}, `[]`},
		{"array nil", []any(nil), `null`},
		{"array nested", []any{[]any{[]any{int64(1)}, []any{}}, []any{"x"}}, `[[[1],[]],["x"]]`},
		{"map sorted", map[string]any{"b": int64(1), "a": int64(2), "C": nil}, `{"C":null,"a":2,"b":1}`},
		{"map empty", map[string]any{}, `{}`},
		{"map nil", map[string]any(nil), `null`},
		{"map nested", map[string]any{"x": map[string]any{"z": []any{map[string]any{}}, "y": true}}, `{"x":{"y":true,"z":[{}]}}`},
		{"time utc", time.Date(2024, 10, 28, 21, 37, 1, 127470000, time.UTC), `"2024-10-28T21:37:01.127470Z"`},
		{"time zone converted", time.Date(2024, 10, 28, 22, 37, 1, 5000, cet), `"2024-10-28T21:37:01.000005Z"`},
		{"time truncated to micros", time.Date(2024, 1, 2, 3, 4, 5, 999999999, time.UTC), `"2024-01-02T03:04:05.999999Z"`},
		{"time zero", time.Time{}, `"0001-01-01T00:00:00.000000Z"`},
		{"time year 9999", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), `"9999-12-31T23:59:59.000000Z"`},
		{"unchanged toast", UnchangedToast{}, `"` + UnchangedToastJSON + `"`},
		{"fallback struct", textID{A: "<", B: "b"}, `{"A":"<","B":"b"}`},
		{"fallback map of strings", map[string]string{"k": "v"}, `{"k":"v"}`},
		{"fallback slice of strings", []string{"a", "b"}, `["a","b"]`},
		{"fallback marshaler compacted", htmlMarshaler{}, `{"h":"<&>"}`},
		{"fallback marshaler invalid utf8", badUTF8Marshaler{}, "\"a\uFFFDb\""},
		{"fallback pointer", &textID{A: "a"}, `{"A":"a","B":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := recordJSON(t, Message{Record: map[string]any{"v": tt.v}})
			if want := `{"v":` + tt.want + `}`; got != want {
				t.Errorf("record = %s\n          want %s", got, want)
			}
		})
	}
}

type panicMarshaler struct{}

func (panicMarshaler) MarshalJSON() ([]byte, error) { panic("boom") }

type errMarshaler struct{}

var errMarshal = errors.New("marshal failed")

func (errMarshaler) MarshalJSON() ([]byte, error) { return nil, errMarshal }

func TestValueEncodingErrors(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	tests := []struct {
		name string
		m    Message
		want string // substring of the error
	}{
		{"raw invalid", Message{Record: map[string]any{"j": json.RawMessage(`{"a":}`)}}, `record: key "j": invalid raw JSON at offset 5`},
		{"raw empty", Message{Record: map[string]any{"j": json.RawMessage{}}}, "unexpected end"},
		{"raw trailing data", Message{Record: map[string]any{"j": json.RawMessage(`1 2`)}}, "data after the top-level value"},
		{"raw control char", Message{Record: map[string]any{"j": json.RawMessage("\"a\nb\"")}}, "control character"},
		{"raw bad escape", Message{Record: map[string]any{"j": json.RawMessage(`"\x"`)}}, "invalid escape"},
		{"raw bad number", Message{Record: map[string]any{"j": json.RawMessage(`-`)}}, "invalid number"},
		{"raw in changes", Message{Changes: map[string]any{"j": json.RawMessage(`tru`)}}, "changes:"},
		{"raw in column order", Message{
			Record:   map[string]any{"a": int64(1), "j": json.RawMessage(`[`)},
			Metadata: Metadata{columns: []string{"a", "j"}},
		}, `record: column "j"`},
		{"time out of range", Message{Record: map[string]any{"t": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}, "year outside [0,9999]"},
		{"commit timestamp out of range", Message{Metadata: Metadata{CommitTimestamp: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}}, "commit_timestamp"},
		{"unsupported type", Message{Record: map[string]any{"c": make(chan int)}}, "unsupported type"},
		{"marshaler error", Message{Record: map[string]any{"e": errMarshaler{}}}, "marshal failed"},
		{"marshaler panic", Message{Record: map[string]any{"p": panicMarshaler{}}}, "panic: boom"},
		{"cyclic map", Message{Record: map[string]any{"c": cyclic}}, "nested too deeply"},
		{"nested array error", Message{Record: map[string]any{"a": []any{int64(1), json.RawMessage(`x`)}}}, `key "a": index 1:`},
		{"transaction annotations", Message{Metadata: Metadata{TransactionAnnotations: map[string]any{"x": math.Inf(1), "c": make(chan int)}}}, "transaction_annotations"},
		{"consumer annotations", Message{Metadata: Metadata{Consumer: Consumer{Annotations: map[string]any{"c": make(chan int)}}}}, "consumer annotations"},
		{"database annotations", Message{Metadata: Metadata{Database: Database{Annotations: map[string]any{"c": make(chan int)}}}}, "database annotations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.m.MarshalJSON()
			if err == nil {
				t.Fatalf("MarshalJSON = %s, want an error", b)
			}
			if !strings.HasPrefix(err.Error(), "message: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to start with \"message: \" and contain %q", err, tt.want)
			}
			dst := []byte("keep")
			out, err := tt.m.AppendJSON(dst)
			if err == nil || string(out) != "keep" {
				t.Errorf("AppendJSON = %q, %v; want %q and an error", out, err, "keep")
			}
		})
	}
}

func TestValueEncodingErrorsWrap(t *testing.T) {
	_, err := Message{Record: map[string]any{"e": errMarshaler{}}}.MarshalJSON()
	if !errors.Is(err, errMarshal) {
		t.Errorf("error %v does not wrap the marshaler's error", err)
	}
	_, err = Message{Record: map[string]any{"j": json.RawMessage(`[1,]`)}}.MarshalJSON()
	var rawErr *RawJSONError
	if !errors.As(err, &rawErr) || rawErr.Offset != 3 {
		t.Errorf("error %v: want a *RawJSONError at offset 3", err)
	}
}

// TestStringMatchesEncodingJSON compares string escaping with encoding/json
// (HTML escaping off) on valid UTF-8.
func TestStringMatchesEncodingJSON(t *testing.T) {
	var all strings.Builder
	for c := rune(0); c < 0x300; c++ {
		all.WriteRune(c)
	}
	inputs := []string{
		"", "plain", all.String(), "\u2028\u2029", "日本語テキスト", "emoji 🌍🚀",
		strings.Repeat(`x"y\z`, 9), "12345678\x0012345678\"", "tab\tand\nnewline<>&",
	}
	for _, s := range inputs {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(buf.String(), "\n")
		if got := string(appendString(nil, s)); got != want {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

// TestFloatMatchesEncodingJSON compares finite floats with encoding/json.
func TestFloatMatchesEncodingJSON(t *testing.T) {
	floats := []float64{0, 1, -1, 0.5, 1e-6, 9.99e-7, 1e20, 1e21, 123456789.123, 5e-324,
		math.MaxFloat64, -math.SmallestNonzeroFloat64, 1.0 / 3, 1e100, -2.5e-10}
	for _, f := range floats {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendFloat(nil, f, 64); string(got) != string(want) {
			t.Errorf("appendFloat(%v, 64) = %s, want %s", f, got, want)
		}
		f32 := float32(f)
		if math.IsInf(float64(f32), 0) {
			continue
		}
		want, err = json.Marshal(f32)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendFloat(nil, float64(f32), 32); string(got) != string(want) {
			t.Errorf("appendFloat(%v, 32) = %s, want %s", f32, got, want)
		}
	}
}

// TestRawJSONMatchesCompact compares raw JSON compaction with json.Compact on
// valid input.
func TestRawJSONMatchesCompact(t *testing.T) {
	inputs := []string{
		`0`, `-0.5e-3`, `"s"`, `true`, `null`, `[]`, `{}`, ` [ 1 , [ 2 , { } ] ] `,
		"{\n  \"a\": {\"b\": [\"c d\", 1.5E+2, false]},\n  \"e\": \"\\u00e9\\\"\"\n}\r\n",
		`{"html":"<script>&</script>","emoji":"🌍"}`,
	}
	for _, in := range inputs {
		var want bytes.Buffer
		if err := json.Compact(&want, []byte(in)); err != nil {
			t.Fatalf("json.Compact(%q): %v", in, err)
		}
		got, err := appendRawJSON(nil, []byte(in))
		if err != nil {
			t.Fatalf("appendRawJSON(%q): %v", in, err)
		}
		if string(got) != want.String() {
			t.Errorf("appendRawJSON(%q) = %s, want %s", in, got, want.String())
		}
	}
}

func TestIsNumber(t *testing.T) {
	valid := []string{"0", "-0", "1", "-1", "10", "1.5", "0.0", "1e5", "1E+5", "1e-05", "-0.1e0", "123456789012345678901234567890"}
	invalid := []string{"", "-", "+1", "01", "-01", "1.", ".1", "1e", "1e+", "0x10", "1_000", " 1", "1 ", "NaN", "Infinity", "1.5.5", "--1"}
	for _, s := range valid {
		if !isNumber(s) || !json.Valid([]byte(s)) {
			t.Errorf("isNumber(%q) = false, want true", s)
		}
	}
	for _, s := range invalid {
		if isNumber(s) {
			t.Errorf("isNumber(%q) = true, want false", s)
		}
	}
}

func TestRowKeyOrder(t *testing.T) {
	row := map[string]any{"b": int64(1), "a": int64(2), "c": int64(3)}
	tests := []struct {
		name string
		cols []string
		want string
	}{
		{"no columns: sorted", nil, `{"a":2,"b":1,"c":3}`},
		{"columns: table order", []string{"c", "a", "b"}, `{"c":3,"a":2,"b":1}`},
		{"columns superset: table order", []string{"z", "c", "y", "b", "a"}, `{"c":3,"b":1,"a":2}`},
		{"columns miss a key: sorted", []string{"c", "a", "x"}, `{"a":2,"b":1,"c":3}`},
		{"fewer columns than keys: sorted", []string{"c", "a"}, `{"a":2,"b":1,"c":3}`},
		{"duplicate column: sorted", []string{"c", "c", "a", "b"}, `{"a":2,"b":1,"c":3}`},
		{"duplicate column after all keys: table order", []string{"c", "a", "b", "c"}, `{"c":3,"a":2,"b":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Message{Record: row, Changes: row, Metadata: Metadata{columns: tt.cols}}
			b, err := m.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			want := `{"record":` + tt.want + `,"changes":` + tt.want + `,`
			if !strings.HasPrefix(string(b), want) {
				t.Errorf("MarshalJSON = %s\nwant prefix %s", b, want)
			}
		})
	}
}

func TestRowKeyOrderManyColumns(t *testing.T) {
	// More keys than the sort's stack buffer, and enough columns for the
	// duplicate filter to see collisions.
	row := map[string]any{}
	var cols []string
	for i := 99; i >= 0; i-- {
		k := string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		row[k] = int64(i)
		cols = append(cols, k)
	}
	b, err := Message{Record: row, Metadata: Metadata{columns: cols}}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	keys := objectKeys(t, b)[1 : len(cols)+1]
	if !reflect.DeepEqual(keys, cols) {
		t.Errorf("keys = %q\nwant %q", keys, cols)
	}
	b, err = Message{Record: row}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	keys = objectKeys(t, b)[1 : len(cols)+1]
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			t.Fatalf("keys not sorted at %d: %q", i, keys)
		}
	}
}

func TestNullAndEmptyRules(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		want []string // substrings of the JSON
	}{
		{"zero message", Message{}, []string{
			`{"record":null,"changes":null,"action":"",`,
			`"commit_timestamp":"0001-01-01T00:00:00.000000Z","commit_lsn":0,"commit_idx":0,"record_pks":[],"database_name":""`,
			`"consumer":{"id":"","name":"","annotations":{}}`,
			`"database":{"id":"","name":"","annotations":{},"database":"","hostname":""}`,
			`"transaction_annotations":null,"enrichment":null}}`,
		}},
		{"empty maps", Message{
			Record: map[string]any{}, Changes: map[string]any{},
			Metadata: Metadata{
				Consumer:               Consumer{Annotations: map[string]any{}},
				Database:               Database{Annotations: map[string]any{}},
				TransactionAnnotations: map[string]any{},
				columns:                []string{"a"},
			},
		}, []string{
			`{"record":{},"changes":{},`,
			`"annotations":{}}`,
			`"transaction_annotations":{},"enrichment":null}}`,
		}},
		{"database_name mirrors database.name", Message{Metadata: Metadata{Database: Database{Name: "db1"}}}, []string{
			`"database_name":"db1"`, `"database":{"id":"","name":"db1"`,
		}},
		{"database_name kept when set", Message{Metadata: Metadata{DatabaseName: "old", Database: Database{Name: "db1"}}}, []string{
			`"database_name":"old"`, `"database":{"id":"","name":"db1"`,
		}},
		{"max LSN and negative index", Message{Metadata: Metadata{CommitLSN: math.MaxUint64, CommitIdx: -1}}, []string{
			`"commit_lsn":18446744073709551615,"commit_idx":-1`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.m.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatalf("invalid JSON: %s", b)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("MarshalJSON = %s\nmissing %s", b, w)
				}
			}
		})
	}
}

func TestMarshalJSONLargeMessageNotPooledTooBig(t *testing.T) {
	// A message bigger than the pooled buffer limit still encodes fully,
	// and a later small message is unaffected.
	big := strings.Repeat("x", maxPooledBuf+10)
	b, err := Message{Record: map[string]any{"big": big}}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `{"big":"`+big+`"}`) {
		t.Error("big value not encoded in full")
	}
	small, err := Message{Record: map[string]any{"a": int64(1)}}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(small), `{"record":{"a":1},`) {
		t.Errorf("small message = %s", small)
	}
}

func TestAppendJSONAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	m := benchInsert()
	m.Metadata.TransactionAnnotations = map[string]any{"user": "u", "n": int64(1)}
	m.Metadata.Consumer.Annotations = map[string]any{"k": "v"}
	buf := make([]byte, 0, 2048)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = m.AppendJSON(buf[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("AppendJSON with a reused buffer allocates %v times per message, want 0", allocs)
	}
	sorted := m
	sorted.Metadata.columns = nil // keys sorted on a stack buffer instead
	allocs = testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = sorted.AppendJSON(buf[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("AppendJSON with sorted keys allocates %v times per message, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := m.MarshalJSON(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("MarshalJSON allocates %v times per message, want at most 2", allocs)
	}
}

// TestPlainWord checks the eight-byte test against the byte table: every
// byte value at every position, among plain and among extreme neighbours.
func TestPlainWord(t *testing.T) {
	for _, fill := range []byte{'a', 0x20, 0x7f, '#', '[', ']', '!'} {
		for pos := 0; pos < 8; pos++ {
			for c := 0; c < 256; c++ {
				var w [8]byte
				for i := range w {
					w[i] = fill
				}
				w[pos] = byte(c)
				var x uint64
				for i := 7; i >= 0; i-- {
					x = x<<8 | uint64(w[i])
				}
				if got, want := plainWord(x), plainByte[c]; got != want {
					t.Fatalf("plainWord(% x) = %v, want %v", w, got, want)
				}
			}
		}
	}
}

// TestMarshalJSONConcurrent encodes from many goroutines at once; the
// scratch buffers are shared through a pool and must never mix.
func TestMarshalJSONConcurrent(t *testing.T) {
	msgs := goldenMessages()
	want := map[string]string{}
	for name, m := range msgs {
		b, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		want[name] = string(b)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 50 {
				for name, m := range msgs {
					b, err := m.MarshalJSON()
					if err == nil && string(b) != want[name] {
						err = errors.New("concurrent MarshalJSON of " + name + " gave other bytes: " + string(b))
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestRawJSONLongNumberNoAllocation(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	raw := json.RawMessage(`{"n": ` + strings.Repeat("9", 1000) + `}`)
	buf := make([]byte, 0, 2048)
	allocs := testing.AllocsPerRun(50, func() {
		var err error
		if buf, err = appendRawJSON(buf[:0], raw); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("appendRawJSON with a 1000-digit number allocates %v times, want 0", allocs)
	}
}

// TestJSONOptionsNumericNumbers: numerics are strings by default and exact
// JSON numbers with NumericNumbers, in records, changes and arrays; the
// non-finite ones stay strings either way.
func TestJSONOptionsNumericNumbers(t *testing.T) {
	m := Message{
		Record:  map[string]any{"n": Numeric("12345678901234567890.123456789"), "a": []any{Numeric("1.50"), Numeric("NaN"), nil}},
		Changes: map[string]any{"n": Numeric("-0.0000001")},
		Action:  ActionUpdate,
	}
	def, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	num, err := JSONOptions{NumericNumbers: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		got  []byte
		want string
	}{
		{def, `{"record":{"a":["1.50","NaN",null],"n":"12345678901234567890.123456789"},"changes":{"n":"-0.0000001"},`},
		{num, `{"record":{"a":[1.50,"NaN",null],"n":12345678901234567890.123456789},"changes":{"n":-0.0000001},`},
	} {
		if !bytes.HasPrefix(c.got, []byte(c.want)) {
			t.Errorf("got %s\nwant prefix %s", c.got, c.want)
		}
	}
	app, err := JSONOptions{}.Append([]byte("x"), m)
	if err != nil || string(app) != "x"+string(def) {
		t.Errorf("JSONOptions{}.Append = %s, %v; want x+MarshalJSON", app, err)
	}
}

func TestUnchangedToastPredicate(t *testing.T) {
	for _, v := range []any{nil, "unchanged_toast", UnchangedToastJSON, struct{}{}} {
		if IsUnchangedToast(v) {
			t.Errorf("IsUnchangedToast(%#v) = true", v)
		}
	}
	if !IsUnchangedToast(UnchangedToast{}) {
		t.Error("IsUnchangedToast(UnchangedToast{}) = false")
	}
	if b, err := json.Marshal(map[string]any{"c": UnchangedToast{}}); err != nil || string(b) != `{"c":"unchanged_toast"}` {
		t.Errorf("encoding/json: %s, %v", b, err)
	}
}

// TestRawAnnotationsAndRecordPKsRoundTrip: a message decoded from Sequin
// JSON with non-object annotations and record_pks encodes to the same bytes.
func TestRawAnnotationsAndRecordPKsRoundTrip(t *testing.T) {
	for _, ann := range []string{`["not","an","object"]`, `"text"`, `42`} {
		in := `{"record":{"b":"k","a":7},"changes":null,"action":"insert","metadata":{"table_schema":"public","table_name":"t",` +
			`"idempotency_key":"MTox","commit_timestamp":"2024-10-28T21:37:01.127470Z","commit_lsn":1,"commit_idx":1,` +
			`"record_pks":["k","7"],"database_name":"d","consumer":{"id":"c","name":"c","annotations":{}},` +
			`"database":{"id":"d","name":"d","annotations":{},"database":"d","hostname":"h"},"transaction_annotations":` + ann +
			`,"enrichment":{"x":1}}}`
		var m Message
		if err := m.UnmarshalJSON([]byte(in)); err != nil {
			t.Fatal(err)
		}
		if string(m.Metadata.RawTransactionAnnotations) != ann || m.Metadata.TransactionAnnotations != nil {
			t.Errorf("annotations %s decoded to %#v / %s", ann, m.Metadata.TransactionAnnotations, m.Metadata.RawTransactionAnnotations)
		}
		out, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != in {
			t.Errorf("round trip:\n got %s\nwant %s", out, in)
		}
	}
	read := `{"record":{"id":1},"changes":null,"action":"read","metadata":{"commit_lsn":null,"commit_idx":null}}`
	var m Message
	if err := m.UnmarshalJSON([]byte(read)); err != nil || m.Metadata.CommitLSN != 0 || m.Metadata.CommitIdx != 0 {
		t.Errorf("read with null commit: %v, %+v", err, m.Metadata)
	}
}

// TestStdlibEncodingSameBytes checks that encoding/json writes a message as
// the seed bytes of AppendJSON, with only its HTML escaping added (none with
// SetEscapeHTML(false)), alone, by pointer and inside other values. CI runs
// it with and without GOEXPERIMENT=jsonv2, where MarshalJSONTo is used.
func TestStdlibEncodingSameBytes(t *testing.T) {
	msgs := goldenMessages()
	hostile := benchInsert()
	hostile.Record = maps.Clone(hostile.Record)
	hostile.Record["product"] = "<b>a & b</b> \u2028\u2029 bad\xffutf8 \"q\" \\ 日本"
	hostile.Record["attributes"] = json.RawMessage(`{ "h" : "<&>" , "n" : [1, 2.50e3] }`)
	hostile.Record["price"] = Numeric("NaN")
	msgs["hostile"] = hostile
	for name, m := range msgs {
		seed, err := m.AppendJSON(nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var escaped bytes.Buffer
		json.HTMLEscape(&escaped, seed)

		got, err := json.Marshal(m)
		if err != nil || !bytes.Equal(got, escaped.Bytes()) {
			t.Errorf("%s: json.Marshal(m) =\n%s, %v\nwant\n%s", name, got, err, escaped.Bytes())
		}
		if got, err := json.Marshal(&m); err != nil || !bytes.Equal(got, escaped.Bytes()) {
			t.Errorf("%s: json.Marshal(&m) =\n%s, %v", name, got, err)
		}
		wrapped := struct {
			M  Message   `json:"m"`
			MS []Message `json:"ms"`
		}{m, []Message{m, m}}
		want := `{"m":` + escaped.String() + `,"ms":[` + escaped.String() + "," + escaped.String() + "]}"
		if got, err := json.Marshal(wrapped); err != nil || string(got) != want {
			t.Errorf("%s: json.Marshal of a struct holding messages =\n%s, %v\nwant\n%s", name, got, err, want)
		}

		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(m); err != nil || buf.String() != string(seed)+"\n" {
			t.Errorf("%s: json.Encoder without HTML escaping wrote\n%s, %v\nwant\n%s", name, buf.Bytes(), err, seed)
		}
	}
}
