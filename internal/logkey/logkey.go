// Package logkey holds the keys of walrelay's log records: one set for
// every package, so that a log pipeline can filter on "slot" or "err"
// whichever package wrote the line. Library code logs only with these keys
// (a test checks every call); the cdc package documentation lists them for
// users ("Logging").
package logkey

// Keys naming the stream and what it reads.
const (
	Slot        = "slot"        // replication slot name
	Publication = "publication" // publication name
	Table       = "table"       // "schema.table"
	Tables      = "tables"      // []string of "schema.table"
	TableCount  = "table_count" // number of tables, when Tables is cut short
	Column      = "column"      // column name
	LSN         = "lsn"         // WAL position of the record, "16/B374D848"
	CommitLSN   = "commit_lsn"  // commit LSN of the transaction
	StartLSN    = "start_lsn"   // position a stream starts from
	XID         = "xid"         // transaction id
	BackfillID  = "backfill_id" // backfill.Config.ID
	Rows        = "rows"        // a count of rows
	Elapsed     = "elapsed"     // how long something took
	Waited      = "waited"      // how long something has been waiting
	Prefix      = "prefix"      // logical message prefix
	Bytes       = "bytes"       // a size in bytes
	MaxBytes    = "max_bytes"   // the limit a size is held to
)

// Keys of failures and retries.
const (
	Err     = "err"      // the error
	Attempt = "attempt"  // 1-based attempt number
	RetryIn = "retry_in" // wait before the next attempt
	Batch   = "batch"    // messages in the batch
)

// Keys of the server and the slot.
const (
	Timeline           = "timeline"
	PreviousTimeline   = "previous_timeline"
	Fork               = "fork" // LSN where a timeline forked
	Severity           = "severity"
	Code               = "code"    // SQLSTATE, or a cdc.FindingCode
	Message            = "message" // the server's message
	Object             = "object"  // what a cdc.Finding is about
	Fix                = "fix"     // SQL that fixes a cdc.Finding
	WALStatus          = "wal_status"
	RetainedBytes      = "retained_bytes"
	SafeWALSize        = "safe_wal_size"
	MaxSlotWALKeepSize = "max_slot_wal_keep_size"
)

// Keys of sinks and the pull API.
const (
	URL        = "url"        // webhook endpoint
	WebhookID  = "webhook_id" // the webhook-id header of a request
	Topic      = "topic"      // Kafka topic
	Partition  = "partition"  // Kafka partition
	Topics     = "topics"     // []string of Kafka topics
	Group      = "group"      // consumer group
	Instance   = "instance"   // consumer instance
	AutoCommit = "auto_commit"
	Reset      = "reset" // offset reset policy
)
