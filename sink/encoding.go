package sink

import "github.com/walrelay/walrelay/message"

// RecordOnly encodes the record alone ([message.Message.RecordJSON]), like
// Sequin's record_only message format: a JSON object, with no action,
// changes or metadata.
func RecordOnly(m message.Message) ([]byte, error) { return m.RecordJSON() }

// Event encodes the legacy event format of the older Sequin product
// ([message.Message.EventJSON]): collection, created_at, data, event
// (inserted, updated or deleted), id, task and changes.
func Event(m message.Message) ([]byte, error) { return m.EventJSON() }
