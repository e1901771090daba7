package message

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// wireMessage is the seed shape as encoding/json sees it; the free-form
// parts stay raw so that numbers and key order can be decoded exactly.
type wireMessage struct {
	Record   json.RawMessage `json:"record"`
	Changes  json.RawMessage `json:"changes"`
	Action   Action          `json:"action"`
	Metadata *wireMetadata   `json:"metadata"`
}

type wireMetadata struct {
	TableSchema            string          `json:"table_schema"`
	TableName              string          `json:"table_name"`
	IdempotencyKey         string          `json:"idempotency_key"`
	CommitTimestamp        string          `json:"commit_timestamp"`
	CommitLSN              json.RawMessage `json:"commit_lsn"`
	CommitIdx              *int            `json:"commit_idx"`
	RecordPKs              []string        `json:"record_pks"`
	DatabaseName           string          `json:"database_name"`
	Consumer               wireConsumer    `json:"consumer"`
	Database               wireDatabase    `json:"database"`
	TransactionAnnotations json.RawMessage `json:"transaction_annotations"`
	Enrichment             json.RawMessage `json:"enrichment"`
}

type wireConsumer struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Annotations json.RawMessage `json:"annotations"`
}

type wireDatabase struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Annotations json.RawMessage `json:"annotations"`
	Database    string          `json:"database"`
	Hostname    string          `json:"hostname"`
}

// UnmarshalJSON parses the seed shape (see the package doc) into m,
// replacing its contents; the JSON null leaves m unchanged. Unknown fields
// are ignored and the action is not checked (see [Action.Valid]).
// record_pks is kept in Metadata.RecordPKs; a transaction_annotations value
// that is not an object or null goes to Metadata.RawTransactionAnnotations;
// a null commit_lsn or commit_idx (a read) decodes as 0.
//
// Values decode to: nil, bool, int64 for integers that fit it, json.Number
// for every other number (exact), string, []any and map[string]any. The
// record's key order is kept in Metadata.Columns, so that encoding the
// message again writes the same bytes.
func (m *Message) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	var w wireMessage
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("message: unmarshal: %w", err)
	}
	var out Message
	var err error
	if out.Record, out.Metadata.columns, err = decodeObject(w.Record); err != nil {
		return fmt.Errorf("message: unmarshal record: %w", err)
	}
	if out.Changes, _, err = decodeObject(w.Changes); err != nil {
		return fmt.Errorf("message: unmarshal changes: %w", err)
	}
	out.Action = w.Action
	if w.Metadata != nil {
		if err := w.Metadata.decode(&out.Metadata); err != nil {
			return fmt.Errorf("message: unmarshal metadata: %w", err)
		}
	}
	*m = out
	return nil
}

func (w *wireMetadata) decode(md *Metadata) error {
	md.TableSchema = w.TableSchema
	md.TableName = w.TableName
	md.IdempotencyKey = w.IdempotencyKey
	if w.CommitIdx != nil {
		md.CommitIdx = *w.CommitIdx
	}
	if len(w.RecordPKs) > 0 {
		md.RecordPKs = w.RecordPKs
	}
	md.DatabaseName = w.DatabaseName
	md.Consumer.ID = w.Consumer.ID
	md.Consumer.Name = w.Consumer.Name
	md.Database.ID = w.Database.ID
	md.Database.Name = w.Database.Name
	md.Database.Database = w.Database.Database
	md.Database.Hostname = w.Database.Hostname

	if w.CommitTimestamp != "" {
		t, err := time.Parse(time.RFC3339Nano, w.CommitTimestamp)
		if err != nil {
			return fmt.Errorf("commit_timestamp: %w", err)
		}
		if y := t.UTC().Year(); y < 0 || y > 9999 {
			return fmt.Errorf("commit_timestamp %q: %w", w.CommitTimestamp, errTimeRange)
		}
		md.CommitTimestamp = t.UTC()
	}
	lsn, err := decodeLSN(w.CommitLSN)
	if err != nil {
		return fmt.Errorf("commit_lsn: %w", err)
	}
	md.CommitLSN = lsn

	if md.Consumer.Annotations, _, err = decodeObject(w.Consumer.Annotations); err != nil {
		return fmt.Errorf("consumer annotations: %w", err)
	}
	if md.Database.Annotations, _, err = decodeObject(w.Database.Annotations); err != nil {
		return fmt.Errorf("database annotations: %w", err)
	}
	if ta := bytes.TrimSpace(w.TransactionAnnotations); len(ta) > 0 && ta[0] != '{' && string(ta) != "null" {
		// Valid JSON (json.Unmarshal checked it) that is not an object.
		var c bytes.Buffer
		if err := json.Compact(&c, ta); err != nil {
			return fmt.Errorf("transaction_annotations: %w", err)
		}
		md.RawTransactionAnnotations = c.Bytes()
	} else if md.TransactionAnnotations, _, err = decodeObject(w.TransactionAnnotations); err != nil {
		return fmt.Errorf("transaction_annotations: %w", err)
	}
	if md.Enrichment, _, err = decodeObject(w.Enrichment); err != nil {
		return fmt.Errorf("enrichment: %w", err)
	}
	return nil
}

// decodeLSN accepts the JSON integer this package writes and, leniently, a
// string in Postgres's "16/B374D848" form.
func decodeLSN(raw json.RawMessage) (LSN, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		return ParseLSN(s)
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want an unsigned integer, got %s", raw)
	}
	return LSN(n), nil
}

// decodeObject decodes a JSON object (or null, giving nil) and returns its
// keys in document order, each once.
func decodeObject(raw json.RawMessage) (map[string]any, []string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, fmt.Errorf("want an object or null, got %s", raw)
	}
	obj := make(map[string]any)
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("want an object key, got %v", tok)
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, nil, fmt.Errorf("key %q: %w", key, err)
		}
		if _, dup := obj[key]; !dup {
			keys = append(keys, key)
		}
		obj[key] = normalize(v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	return obj, keys, nil
}

// normalize turns integer json.Numbers that fit an int64 into int64, in place
// through maps and slices.
func normalize(v any) any {
	switch v := v.(type) {
	case json.Number:
		if !strings.ContainsAny(string(v), ".eE") {
			if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				return n
			}
		}
		return v
	case map[string]any:
		for k, e := range v {
			v[k] = normalize(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = normalize(e)
		}
		return v
	}
	return v
}
