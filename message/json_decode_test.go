package message

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// canonicalMessage holds only values in the forms UnmarshalJSON produces.
func canonicalMessage() Message {
	return Message{
		Record: map[string]any{
			"id":      int64(-42),
			"name":    "<Ünïcödé> & \"quotes\"\n",
			"price":   json.Number("199.990"),
			"huge":    json.Number("123456789012345678901234567890"),
			"sci":     json.Number("1.5e-300"),
			"active":  true,
			"deleted": false,
			"nothing": nil,
			"tags":    []any{"a", int64(1), json.Number("2.5"), nil, []any{}, map[string]any{"k": "v"}},
			"doc":     map[string]any{"z": int64(1), "a": map[string]any{"nested": []any{true}}},
		},
		Changes: map[string]any{"price": json.Number("10.5"), "name": "old"},
		Action:  ActionUpdate,
		Metadata: Metadata{
			TableSchema:     "sales",
			TableName:       "line items",
			IdempotencyKey:  "MTIzOjQ=",
			CommitTimestamp: time.Date(2025, 2, 3, 4, 5, 6, 789000, time.UTC),
			CommitLSN:       0x16B374D848,
			CommitIdx:       4,
			DatabaseName:    "prod",
			Consumer: Consumer{
				ID: "c1", Name: "consumer-1",
				Annotations: map[string]any{"team": "core", "tier": int64(1)},
			},
			Database: Database{
				ID: "d1", Name: "prod",
				Annotations: map[string]any{},
				Database:    "proddb", Hostname: "10.0.0.1",
			},
			TransactionAnnotations: map[string]any{"user": "u1", "ids": []any{int64(1), int64(2)}},
			columns:                []string{"id", "name", "price", "huge", "sci", "active", "deleted", "nothing", "tags", "doc"},
		},
	}
}

func TestRoundTripCanonical(t *testing.T) {
	m := canonicalMessage()
	b1, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var got Message
	if err := json.Unmarshal(b1, &got); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("Unmarshal(Marshal(m)) differs from m\n got: %#v\nwant: %#v", got, m)
	}
	b2, err := got.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(b1) != string(b2) {
		t.Errorf("Marshal(Unmarshal(Marshal(m))) differs\n got: %s\nwant: %s", b2, b1)
	}
}

// TestRoundTripGolden checks every golden message: decoding and encoding
// again gives the same bytes after one pass, and JSON-equal bytes at once.
func TestRoundTripGolden(t *testing.T) {
	for name, m := range goldenMessages() {
		t.Run(name, func(t *testing.T) {
			b1, err := m.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			var m2 Message
			if err := m2.UnmarshalJSON(b1); err != nil {
				t.Fatalf("UnmarshalJSON: %v", err)
			}
			b2, err := m2.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, b1, b2) {
				t.Errorf("not JSON-equal\n got: %s\nwant: %s", b2, b1)
			}
			var m3 Message
			if err := m3.UnmarshalJSON(b2); err != nil {
				t.Fatalf("UnmarshalJSON: %v", err)
			}
			b3, err := m3.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if string(b3) != string(b2) {
				t.Errorf("second round trip changed the bytes\n got: %s\nwant: %s", b3, b2)
			}
			if m2.Metadata.CommitTimestamp.Format(time.RFC3339Nano) != m.Metadata.CommitTimestamp.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano) {
				t.Errorf("commit timestamp = %v, want %v", m2.Metadata.CommitTimestamp, m.Metadata.CommitTimestamp)
			}
			if m2.Metadata.CommitLSN != m.Metadata.CommitLSN || m2.Metadata.CommitIdx != m.Metadata.CommitIdx {
				t.Errorf("LSN/idx = %v/%d, want %v/%d", m2.Metadata.CommitLSN, m2.Metadata.CommitIdx, m.Metadata.CommitLSN, m.Metadata.CommitIdx)
			}
			if m2.Action != m.Action {
				t.Errorf("action = %q, want %q", m2.Action, m.Action)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("invalid JSON %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func TestUnmarshalValues(t *testing.T) {
	in := `{"record":{"b":1,"a":-9223372036854775808,"big":9223372036854775808,"neg0":-0,
		"float":1.0,"exp":1e2,"s":"x\u00e9\ud83c\udf0d","t":true,"n":null,
		"arr":[1,1.5,[2],{"k":3}],"obj":{"x":{"y":12345678901234567890}},"b":2},
		"changes":{},"action":"update"}`
	var m Message
	if err := json.Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"b":     int64(2), // the last duplicate wins, as in encoding/json
		"a":     int64(-9223372036854775808),
		"big":   json.Number("9223372036854775808"),
		"neg0":  int64(0),
		"float": json.Number("1.0"),
		"exp":   json.Number("1e2"),
		"s":     "xé🌍",
		"t":     true,
		"n":     nil,
		"arr":   []any{int64(1), json.Number("1.5"), []any{int64(2)}, map[string]any{"k": int64(3)}},
		"obj":   map[string]any{"x": map[string]any{"y": json.Number("12345678901234567890")}},
	}
	if !reflect.DeepEqual(m.Record, want) {
		t.Errorf("Record = %#v\nwant %#v", m.Record, want)
	}
	wantCols := []string{"b", "a", "big", "neg0", "float", "exp", "s", "t", "n", "arr", "obj"}
	if !reflect.DeepEqual(m.Metadata.columns, wantCols) {
		t.Errorf("Columns = %q, want %q", m.Metadata.columns, wantCols)
	}
	if m.Changes == nil || len(m.Changes) != 0 {
		t.Errorf("Changes = %#v, want an empty non-nil map", m.Changes)
	}
	if m.Action != ActionUpdate {
		t.Errorf("Action = %q", m.Action)
	}
}

// sequinExample is the insert example of Sequin's message reference, with
// its extra "enrichment" field.
const sequinExample = `{
  "record": {"id": 1234, "customer_id": 789, "product": "Wireless Headphones", "quantity": 1,
    "price": 199.99, "status": "pending",
    "created_at": "2024-10-28T21:37:01.127470Z", "updated_at": "2024-10-28T21:37:01.127470Z"},
  "changes": null,
  "action": "insert",
  "metadata": {
    "table_schema": "public", "table_name": "orders",
    "idempotency_key": "c2VxdWluc3RyZWFtLmNvbS9jYXJlZXJz",
    "commit_timestamp": "2024-10-28T21:37:01.127470Z",
    "commit_lsn": 123456789, "commit_idx": 1, "database_name": "myapp-prod",
    "consumer": {"id": "f47ac10b-58cc-4372-a567-0e02b2c3d479", "name": "orders_kafka",
      "annotations": {"my-custom-key": "my-custom-value"}},
    "database": {"id": "12345678-9abc-def0-1234-56789abcdef0", "name": "myapp-prod",
      "annotations": {"my-custom-key": "my-custom-value"}, "database": "myapp-prod",
      "hostname": "db.example.com"},
    "enrichment": {"account_name": "Acme, Inc."},
    "transaction_annotations": {"username": "paul.atreides", "source": "web_ui", "request_id": "req_123"}
  }
}`

func TestUnmarshalSequinExample(t *testing.T) {
	var m Message
	if err := m.UnmarshalJSON([]byte(sequinExample)); err != nil {
		t.Fatal(err)
	}
	md := m.Metadata
	want := Metadata{
		TableSchema:     "public",
		TableName:       "orders",
		IdempotencyKey:  "c2VxdWluc3RyZWFtLmNvbS9jYXJlZXJz",
		CommitTimestamp: time.Date(2024, 10, 28, 21, 37, 1, 127470000, time.UTC),
		CommitLSN:       123456789,
		CommitIdx:       1,
		DatabaseName:    "myapp-prod",
		Consumer: Consumer{
			ID: "f47ac10b-58cc-4372-a567-0e02b2c3d479", Name: "orders_kafka",
			Annotations: map[string]any{"my-custom-key": "my-custom-value"},
		},
		Database: Database{
			ID: "12345678-9abc-def0-1234-56789abcdef0", Name: "myapp-prod",
			Annotations: map[string]any{"my-custom-key": "my-custom-value"},
			Database:    "myapp-prod", Hostname: "db.example.com",
		},
		TransactionAnnotations: map[string]any{"username": "paul.atreides", "source": "web_ui", "request_id": "req_123"},
		Enrichment:             map[string]any{"account_name": "Acme, Inc."},
		columns:                []string{"id", "customer_id", "product", "quantity", "price", "status", "created_at", "updated_at"},
	}
	if !reflect.DeepEqual(md, want) {
		t.Errorf("Metadata = %#v\nwant %#v", md, want)
	}
	if m.Action != ActionInsert || m.Changes != nil || m.Record["price"] != json.Number("199.99") || m.Record["id"] != int64(1234) {
		t.Errorf("message = %#v", m)
	}
	b, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	// Encoding again adds only record_pks, which the example lacks (it is
	// derived from a primary key the JSON does not name: []).
	var orig map[string]any
	if err := json.Unmarshal([]byte(sequinExample), &orig); err != nil {
		t.Fatal(err)
	}
	orig["metadata"].(map[string]any)["record_pks"] = []any{}
	wantJSON, err := json.Marshal(orig)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, b, wantJSON) {
		t.Errorf("re-encoded = %s\nwant JSON-equal to %s", b, wantJSON)
	}
}

func TestUnmarshalLenient(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want func(Message) bool
	}{
		{"LSN as Postgres text", `{"metadata":{"commit_lsn":"16/B374D848"}}`,
			func(m Message) bool { return m.Metadata.CommitLSN == 0x16B374D848 }},
		{"LSN null", `{"metadata":{"commit_lsn":null}}`,
			func(m Message) bool { return m.Metadata.CommitLSN == 0 }},
		{"timestamp with offset becomes UTC", `{"metadata":{"commit_timestamp":"2024-10-28T22:37:53+01:00"}}`,
			func(m Message) bool {
				return m.Metadata.CommitTimestamp.Equal(time.Date(2024, 10, 28, 21, 37, 53, 0, time.UTC)) &&
					m.Metadata.CommitTimestamp.Location() == time.UTC
			}},
		{"timestamp without fraction", `{"metadata":{"commit_timestamp":"2024-10-28T21:37:53Z"}}`,
			func(m Message) bool {
				return m.Metadata.CommitTimestamp.Equal(time.Date(2024, 10, 28, 21, 37, 53, 0, time.UTC))
			}},
		{"empty object", `{}`,
			func(m Message) bool { return reflect.DeepEqual(m, Message{}) }},
		{"null metadata", `{"metadata":null,"record":null,"changes":null}`,
			func(m Message) bool { return reflect.DeepEqual(m, Message{}) }},
		{"null annotations", `{"metadata":{"consumer":{"annotations":null}}}`,
			func(m Message) bool { return m.Metadata.Consumer.Annotations == nil }},
		{"unknown action kept", `{"action":"upsert"}`,
			func(m Message) bool { return m.Action == "upsert" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			if err := m.UnmarshalJSON([]byte(tt.in)); err != nil {
				t.Fatalf("UnmarshalJSON(%s): %v", tt.in, err)
			}
			if !tt.want(m) {
				t.Errorf("UnmarshalJSON(%s) = %#v", tt.in, m)
			}
		})
	}
}

func TestUnmarshalReplacesAndNull(t *testing.T) {
	m := canonicalMessage()
	if err := m.UnmarshalJSON([]byte(" null ")); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, canonicalMessage()) {
		t.Error("null changed the message")
	}
	if err := m.UnmarshalJSON([]byte(`{"action":"delete"}`)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, Message{Action: ActionDelete}) {
		t.Errorf("UnmarshalJSON did not replace the message: %#v", m)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not JSON", `{"record":`, "message: unmarshal"},
		{"array", `[1]`, "message: unmarshal"},
		{"record array", `{"record":[1]}`, "message: unmarshal record: want an object"},
		{"record string", `{"record":"x"}`, "message: unmarshal record"},
		{"changes number", `{"changes":1}`, "message: unmarshal changes"},
		{"action number", `{"action":1}`, "message: unmarshal"},
		{"metadata string", `{"metadata":"x"}`, "message: unmarshal"},
		{"bad timestamp", `{"metadata":{"commit_timestamp":"yesterday"}}`, "commit_timestamp"},
		{"timestamp past year 9999 in UTC", `{"metadata":{"commit_timestamp":"9999-12-31T23:59:59-01:00"}}`, "year outside"},
		{"negative LSN", `{"metadata":{"commit_lsn":-1}}`, "commit_lsn"},
		{"fractional LSN", `{"metadata":{"commit_lsn":1.5}}`, "commit_lsn"},
		{"bad LSN text", `{"metadata":{"commit_lsn":"16-B3"}}`, "commit_lsn"},
		{"LSN object", `{"metadata":{"commit_lsn":{}}}`, "commit_lsn"},
		{"fractional idx", `{"metadata":{"commit_idx":1.5}}`, "message: unmarshal"},
		{"annotations array", `{"metadata":{"database":{"annotations":[]}}}`, "database annotations"},
		{"consumer annotations string", `{"metadata":{"consumer":{"annotations":"x"}}}`, "consumer annotations"},
		{"enrichment array", `{"metadata":{"enrichment":[1]}}`, "enrichment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			err := m.UnmarshalJSON([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("UnmarshalJSON(%s) error = %v, want one containing %q", tt.in, err, tt.want)
			}
		})
	}
}
