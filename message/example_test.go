package message_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/walrelay/walrelay/message"
)

func ExampleMessage_MarshalJSON() {
	m := message.Message{
		Record: map[string]any{
			"id":      int64(1),
			"price":   message.Numeric("19.990"), // numeric: exact text
			"ratio":   math.NaN(),
			"tags":    json.RawMessage(`["a", "b"]`), // jsonb
			"avatar":  `\xdead`,                      // bytea: Postgres hex text
			"notes":   message.UnchangedToast{},
			"deleted": nil,
		},
		Changes: map[string]any{}, // an update whose old row is unknown
		Action:  message.ActionUpdate,
		Metadata: message.Metadata{
			TableSchema:     "public",
			TableName:       "items",
			IdempotencyKey:  "MTIzOjA=",
			CommitTimestamp: time.Date(2024, 10, 28, 21, 37, 1, 127470000, time.UTC),
			CommitLSN:       123,
			Database:        message.Database{Name: "shop"},
		},
	}
	m.Metadata.SetPrimaryKey("id")
	m.Metadata.SetColumns("id", "price", "ratio", "tags", "avatar", "notes", "deleted")
	b, err := m.MarshalJSON()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(b))
	// Output:
	// {"record":{"id":1,"price":"19.990","ratio":"NaN","tags":["a","b"],"avatar":"\\xdead","notes":"unchanged_toast","deleted":null},"changes":{},"action":"update","metadata":{"table_schema":"public","table_name":"items","idempotency_key":"MTIzOjA=","commit_timestamp":"2024-10-28T21:37:01.127470Z","commit_lsn":123,"commit_idx":0,"record_pks":["1"],"database_name":"shop","consumer":{"id":"","name":"","annotations":{}},"database":{"id":"","name":"shop","annotations":{},"database":"","hostname":""},"transaction_annotations":null,"enrichment":null}}
}

// Numerics are JSON strings by default, as Sequin writes them; JSONOptions
// can write them as exact JSON numbers.
func ExampleJSONOptions() {
	m := message.Message{
		Record: map[string]any{"price": message.Numeric("12.50"), "ratio": message.Numeric("NaN")},
		Action: message.ActionInsert,
	}
	def, _ := m.RecordJSON()
	num, _ := message.JSONOptions{NumericNumbers: true}.Marshal(m)
	fmt.Println(string(def))
	fmt.Println(string(num[:strings.Index(string(num), `,"changes"`)]))
	// Output:
	// {"price":"12.50","ratio":"NaN"}
	// {"record":{"price":12.50,"ratio":"NaN"}
}

func ExampleMessage_AppendJSON() {
	msgs := []message.Message{
		{Record: map[string]any{"id": int64(1)}, Action: message.ActionInsert},
		{Record: map[string]any{"id": int64(2)}, Action: message.ActionDelete},
	}
	// One buffer for every message: no allocation once it is large enough.
	var buf []byte
	for _, m := range msgs {
		var err error
		buf, err = m.AppendJSON(buf[:0])
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(string(buf[:40]))
	}
	// Output:
	// {"record":{"id":1},"changes":null,"actio
	// {"record":{"id":2},"changes":null,"actio
}

func ExampleMessage_UnmarshalJSON() {
	in := `{"record":{"id":7,"big":18446744073709551616,"price":9.50,"name":"x"},
		"changes":null,"action":"insert",
		"metadata":{"commit_lsn":97500744,"commit_timestamp":"2024-10-28T21:37:01.127470Z"}}`
	var m message.Message
	if err := json.Unmarshal([]byte(in), &m); err != nil {
		fmt.Println(err)
		return
	}
	for _, col := range m.Metadata.Columns() {
		fmt.Printf("%s: %T %v\n", col, m.Record[col], m.Record[col])
	}
	fmt.Println(m.Action, m.Metadata.CommitLSN, m.Metadata.CommitTimestamp)
	// Output:
	// id: int64 7
	// big: json.Number 18446744073709551616
	// price: json.Number 9.50
	// name: string x
	// insert 0/5CFBE48 2024-10-28 21:37:01.12747 +0000 UTC
}

func ExampleLSN_String() {
	fmt.Println(message.LSN(0x16B374D848))
	fmt.Println(message.LSN(0))
	// Output:
	// 16/B374D848
	// 0/0
}

func ExampleParseLSN() {
	lsn, err := message.ParseLSN("16/B374D848")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(uint64(lsn), lsn)
	_, err = message.ParseLSN("16B374D848")
	fmt.Println(err)
	// Output:
	// 97500059720 16/B374D848
	// message: parse LSN "16B374D848": want XXX/XXX
}

// Write messages as JSON lines: the fast way to a file, a pipe or a socket.
func ExampleEncoder() {
	enc := message.NewEncoder(os.Stdout)
	for i := range 2 {
		m := message.Message{
			Record: map[string]any{"id": int64(i + 1)},
			Action: message.ActionInsert,
			Metadata: message.Metadata{
				TableSchema: "public", TableName: "t",
				CommitTimestamp: time.Date(2024, 10, 28, 21, 37, 1, 0, time.UTC),
				CommitLSN:       100, CommitIdx: i,
			},
		}
		m.Metadata.SetPrimaryKey("id")
		m.Metadata.SetColumns("id")
		if err := enc.Encode(m); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// {"record":{"id":1},"changes":null,"action":"insert","metadata":{"table_schema":"public","table_name":"t","idempotency_key":"","commit_timestamp":"2024-10-28T21:37:01.000000Z","commit_lsn":100,"commit_idx":0,"record_pks":["1"],"database_name":"","consumer":{"id":"","name":"","annotations":{}},"database":{"id":"","name":"","annotations":{},"database":"","hostname":""},"transaction_annotations":null,"enrichment":null}}
	// {"record":{"id":2},"changes":null,"action":"insert","metadata":{"table_schema":"public","table_name":"t","idempotency_key":"","commit_timestamp":"2024-10-28T21:37:01.000000Z","commit_lsn":100,"commit_idx":1,"record_pks":["2"],"database_name":"","consumer":{"id":"","name":"","annotations":{}},"database":{"id":"","name":"","annotations":{},"database":"","hostname":""},"transaction_annotations":null,"enrichment":null}}
}

func decodeKey(key string) string {
	b, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return "invalid: " + err.Error()
	}
	return string(b)
}

func ExampleChangeKey() {
	lsn, _ := message.ParseLSN("16/B374D848")
	key := message.ChangeKey(lsn, 3)
	fmt.Println(key)
	fmt.Println(decodeKey(key))
	// Output:
	// OTc1MDAwNTk3MjA6Mw==
	// 97500059720:3
}

func ExampleReadKey() {
	key := message.ReadKey("backfill-7", int64(42), "eu")
	fmt.Println(key)
	fmt.Println(decodeKey(key))
	// Output:
	// YmFja2ZpbGwtNzo0MjpldQ==
	// backfill-7:42:eu
}
