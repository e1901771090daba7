package message

import (
	"encoding/json"
	"testing"
	"time"
)

// benchInsert is a typical 10-column insert.
func benchInsert() Message {
	return Message{
		Record: map[string]any{
			"id":          int64(1234),
			"customer_id": int64(789),
			"product":     "Wireless Headphones",
			"quantity":    int32(1),
			"price":       Numeric("199.99"),
			"in_stock":    true,
			"discount":    nil,
			"attributes":  json.RawMessage(`{"color":"black","sizes":[1,2,3]}`),
			"created_at":  "2024-10-28T21:37:01.127470Z",
			"status":      "pending",
		},
		Action: ActionInsert,
		Metadata: Metadata{
			TableSchema:     "public",
			TableName:       "orders",
			IdempotencyKey:  "MTIzNDU2Nzg5OjE=",
			CommitTimestamp: time.Date(2024, 10, 28, 21, 37, 1, 127470000, time.UTC),
			CommitLSN:       123456789,
			CommitIdx:       1,
			Consumer:        Consumer{ID: "f47ac10b-58cc-4372-a567-0e02b2c3d479", Name: "orders_kafka"},
			Database: Database{
				ID: "12345678-9abc-def0-1234-56789abcdef0", Name: "myapp-prod",
				Database: "myapp-prod", Hostname: "db.example.com",
			},
			primaryKey: []string{"id"},
			columns: []string{"id", "customer_id", "product", "quantity", "price",
				"in_stock", "discount", "attributes", "created_at", "status"},
		},
	}
}

func BenchmarkMarshalJSON(b *testing.B) {
	m := benchInsert()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	m := benchInsert()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = m.AppendJSON(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkAppendJSONNumerics compares numerics written as strings (the
// default, Sequin's form) with JSONOptions.NumericNumbers: the string form
// must not cost more.
func BenchmarkAppendJSONNumerics(b *testing.B) {
	m := benchInsert()
	m.Record = map[string]any{
		"id": int64(1), "amount": Numeric("1234567.89"), "tax": Numeric("0.0000001"),
		"total": Numeric("12345678901234567890.123456789"), "rate": Numeric("1.5000"),
		"history": []any{Numeric("1.50"), Numeric("NaN"), Numeric("99.99")},
	}
	m.Metadata.columns = []string{"id", "amount", "tax", "total", "rate", "history"}
	for _, bc := range []struct {
		name string
		o    JSONOptions
	}{{"string", JSONOptions{}}, {"number", JSONOptions{NumericNumbers: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = bc.o.Append(buf[:0], m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
