package message_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/walrelay/walrelay/message"
)

func eventMessage() message.Message {
	m := message.Message{
		Record:  map[string]any{"id": int64(42), "title": "Call \"Ann\"", "due": time.Date(2023, 9, 12, 0, 0, 0, 0, time.UTC), "done": false},
		Changes: map[string]any{"due": time.Date(2023, 8, 30, 0, 0, 0, 0, time.UTC)},
		Action:  message.ActionUpdate,
		Metadata: message.Metadata{
			TableSchema:     "public",
			TableName:       "task",
			IdempotencyKey:  "MTIzNDU2Nzg5OjE=",
			CommitTimestamp: time.Date(2024, 11, 10, 18, 39, 0, 70453000, time.UTC),
			CommitLSN:       123456789,
			CommitIdx:       1,
		},
	}
	m.Metadata.SetPrimaryKey("id")
	m.Metadata.SetColumns("id", "title", "due", "done")
	return m
}

func TestEventJSONGolden(t *testing.T) {
	update := eventMessage()
	insert := eventMessage()
	insert.Action, insert.Changes = message.ActionInsert, nil
	read := insert
	read.Action = message.ActionRead
	del := insert
	del.Action = message.ActionDelete
	del.Record = map[string]any{"id": int64(42)}
	unknownOld := eventMessage()
	unknownOld.Changes = map[string]any{}
	composite := insert
	composite.Metadata.SetPrimaryKey("title", "id")
	noKey := insert
	noKey.Metadata.SetPrimaryKey()
	textKey := insert
	textKey.Record = map[string]any{"id": "a:b/é"}
	textKey.Metadata.SetColumns()

	const data = `{"id":42,"title":"Call \"Ann\"","due":"2023-09-12T00:00:00.000000Z","done":false}`
	const head = `{"collection":"task","created_at":"2024-11-10T18:39:00.070453Z","data":`
	tests := []struct {
		name string
		m    message.Message
		want string
	}{
		{"update", update, head + data + `,"event":"updated","id":"42","task":"public.task","changes":{"due":"2023-08-30T00:00:00.000000Z"}}`},
		{"insert", insert, head + data + `,"event":"inserted","id":"42","task":"public.task","changes":null}`},
		{"read is inserted", read, head + data + `,"event":"inserted","id":"42","task":"public.task","changes":null}`},
		{"delete", del, head + `{"id":42},"event":"deleted","id":"42","task":"public.task","changes":null}`},
		{"update without old row", unknownOld, head + data + `,"event":"updated","id":"42","task":"public.task","changes":{}}`},
		{"composite key", composite, head + data + `,"event":"inserted","id":"Call \"Ann\":42","task":"public.task","changes":null}`},
		{"unknown key", noKey, head + data + `,"event":"inserted","id":null,"task":"public.task","changes":null}`},
		{"text key", textKey, head + `{"id":"a:b/é"},"event":"inserted","id":"a:b/é","task":"public.task","changes":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.m.EventJSON()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("EventJSON\n got %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Fatal("EventJSON produced invalid JSON")
			}
			prefix := []byte("prefix")
			appended, err := tt.m.AppendEventJSON(prefix)
			if err != nil || string(appended) != "prefix"+tt.want {
				t.Fatalf("AppendEventJSON = %s, %v", appended, err)
			}
		})
	}
}

func TestEventJSONErrors(t *testing.T) {
	tests := []struct {
		name, want string
		edit       func(m *message.Message)
	}{
		{"truncate", "truncate", func(m *message.Message) { m.Action = message.ActionTruncate; m.Record = nil }},
		{"unknown action", "upsert", func(m *message.Message) { m.Action = "upsert" }},
		{"key column missing", `"missing"`, func(m *message.Message) { m.Metadata.SetPrimaryKey("missing") }},
		{"time out of range", "created_at", func(m *message.Message) { m.Metadata.CommitTimestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"bad value", "data", func(m *message.Message) { m.Record["bad"] = make(chan int) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := eventMessage()
			tt.edit(&m)
			got, err := m.EventJSON()
			if err == nil {
				t.Fatalf("EventJSON = %s, want an error", got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
			dst := []byte("keep")
			if out, err := m.AppendEventJSON(dst); err == nil || string(out) != "keep" {
				t.Fatalf("AppendEventJSON on error = %q, %v; want dst unchanged", out, err)
			}
		})
	}
}

func TestRecordJSON(t *testing.T) {
	m := eventMessage()
	got, err := m.RecordJSON()
	if err != nil {
		t.Fatal(err)
	}
	full, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var seed struct{ Record json.RawMessage }
	if err := json.Unmarshal(full, &seed); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(seed.Record) {
		t.Fatalf("RecordJSON = %s, want the seed's record %s", got, seed.Record)
	}
	m.Record = nil
	if got, err := m.RecordJSON(); err != nil || string(got) != "null" {
		t.Fatalf("RecordJSON of no record = %s, %v; want null", got, err)
	}
}

func ExampleMessage_EventJSON() {
	m := message.Message{
		Record:  map[string]any{"id": int64(7), "status": "canceled"},
		Changes: map[string]any{"status": "active"},
		Action:  message.ActionUpdate,
		Metadata: message.Metadata{
			TableSchema:     "public",
			TableName:       "subscription",
			CommitTimestamp: time.Date(2024, 11, 10, 18, 39, 0, 70453000, time.UTC),
		},
	}
	m.Metadata.SetPrimaryKey("id")
	m.Metadata.SetColumns("id", "status")
	b, err := m.EventJSON()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(b))
	// Output:
	// {"collection":"subscription","created_at":"2024-11-10T18:39:00.070453Z","data":{"id":7,"status":"canceled"},"event":"updated","id":"7","task":"public.subscription","changes":{"status":"active"}}
}
