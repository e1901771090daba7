package cdc

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// Config configures a [Stream]. Zero values are safe defaults; Open validates it.
type Config struct {
	// ConnString is a postgres:// URL or a key=value DSN. The library adds
	// replication=database for the replication connection. Connections are
	// named application_name=walrelay unless ConnString names them (the
	// name a synchronous_standby_names entry matches). Required.
	ConnString string
	// Slot is the logical replication slot (plugin pgoutput). Required.
	Slot string
	// Publication names the publication whose tables are streamed. Required.
	Publication string

	// CreateSlot creates the slot when it does not exist. A slot that
	// existed and disappeared while the stream ran is never re-created: it
	// is reported as [ErrSlotNotFound], since changes may have been lost.
	CreateSlot bool
	// CreatePublication creates the publication when it does not exist, for
	// PublicationTables, or for every table when PublicationAllTables is
	// set; one of the two is required. Open refuses to create (or extend)
	// a publication with a table that has no primary key and REPLICA
	// IDENTITY DEFAULT: the application's own UPDATEs and DELETEs of such a
	// table would fail once it is published (see [Check]).
	CreatePublication bool
	// PublicationTables are the tables the stream expects in the
	// publication: "schema.table", or "table" in public, written as in SQL
	// (see [message.ParseTable]: Orders is orders; "Orders" keeps its
	// case). When the publication exists, those missing from it are
	// reported by [Check] (a warning), or added with AlterPublication.
	PublicationTables []string
	// PublicationAllTables makes CreatePublication create the publication
	// FOR ALL TABLES, the tables created later included. It needs a
	// superuser, and every table without a primary key then needs REPLICA
	// IDENTITY FULL (or an index), or its UPDATEs fail: never implied.
	PublicationAllTables bool
	// AlterPublication adds the PublicationTables missing from an existing
	// publication (ALTER PUBLICATION ... ADD TABLE).
	AlterPublication bool

	// ConnectTimeout bounds each connection attempt (query pool and
	// replication). 0 = the connection string's connect_timeout, or
	// DefaultConnectTimeout (10s) when it sets none; negative = no bound
	// but the context's.
	ConnectTimeout time.Duration

	// Failover creates the slot with failover = true (PostgreSQL 17+), so
	// that standbys with sync_replication_slots = on keep a synchronised
	// copy and the stream can go on from a promoted standby; an existing
	// slot without it is altered to have it. On an older server Open
	// returns [ErrServerVersion]. See "Failover" in the package docs.
	Failover bool

	// TemporarySlot creates the slot as a temporary one, on the stream's
	// replication connection, when Open connects: Postgres drops it when
	// that connection ends (Close, the process exiting or dying), so the
	// stream leaves no slot and no retained WAL behind. It suits a look at
	// the changes from now on (walrelay tail), not a pipeline: nothing is
	// resumable, and a lost connection ends the stream with
	// [ErrSlotNotFound], since the changes in between are gone with the
	// slot. Slot names it, and no slot of that name may exist. It excludes
	// CreateSlot, Failover and WaitForSlot.
	TemporarySlot bool

	// WaitForSlot makes Open wait, as a standby, while another process holds
	// the slot, and take over when it frees. Without it Open returns
	// [ErrSlotInUse].
	WaitForSlot bool

	// Consumer and Database fill every message's metadata. Empty fields get
	// defaults: Consumer.ID and Consumer.Name the slot name; Database.Name and
	// Database.Database the connected database; Database.Hostname the
	// connection's host; Database.ID the cluster's system identifier.
	Consumer message.Consumer
	Database message.Database

	// BackfillTable is the table ("schema.table", or "table" in public,
	// written as in SQL, see [message.ParseTable]) where Stream.Backfill
	// saves its progress (a [backfill.ProgressStore]); created when
	// missing. Its own changes are never delivered. "" =
	// backfill.DefaultProgressTable, public.walrelay_backfills.
	BackfillTable string

	// Truncate says what a TRUNCATE of a published table becomes: by
	// default nothing (logged at Warn with the tables), as in Sequin.
	Truncate TruncateMode

	// BufferSize bounds the decoded messages waiting for Next. 0 = 1024.
	BufferSize int
	// BufferBytes bounds the same messages by size: the reader stops
	// reading while the messages waiting for Next, counted by the size of
	// the text Postgres sent for them, would exceed it. A single message
	// larger than the budget still passes, alone. Decoded values take more
	// memory than their text (see "Memory" in the package doc). 0 = 64 MiB;
	// negative is an error.
	BufferBytes int64
	// MaxAnnotationBytes caps the size of a transaction-annotations logical
	// message the stream decodes. A larger one is not decoded: the
	// transaction's annotations are cleared (null) and a warning is logged.
	// Any role that can log in may write such messages (see "Hostile input"
	// in the package doc). 0 = 64 KiB; negative is an error.
	MaxAnnotationBytes int
	// Undecodable says what the stream does with a column value it cannot
	// decode. The default, UndecodableFail, stops the stream with a
	// [*DecodeError] naming the table, column and LSN (and a backfill with
	// an error naming the table and column). It applies to backfill reads
	// through [Stream.Backfill] too, unless their backfill.Config sets its
	// own Undecodable.
	Undecodable UndecodablePolicy
	// DeadLetter, when set, receives each value delivered under
	// UndecodableText: the error (table, column, LSN; a backfill read's LSN
	// is zero) and the value's Postgres text, which the callee may keep. It runs on the stream's
	// reader goroutine, so it should be quick; the reader waits for it.
	DeadLetter func(err *DecodeError, text []byte)
	// StatusInterval is how often the stream reports its acknowledged
	// position to Postgres. 0 = 1s. It must stay well below the server's
	// wal_sender_timeout.
	StatusInterval time.Duration
	// HeartbeatInterval is how often the stream writes a heartbeat logical
	// message so that an idle database still advances the slot. 0 = 30s;
	// negative disables heartbeats.
	HeartbeatInterval time.Duration
	// Backoff makes the backoff policy for reconnecting after the
	// replication connection drops (and for polling a busy slot, and for
	// Backfill retrying after the server went away). nil =
	// [sink.DefaultBackoff], retrying until the stream is closed.
	Backoff func() backoff.BackOff
	// Logger receives Info records (the stream started, reconnected, a
	// backfill finished) and warnings (preflight findings, failed
	// reconnects, invalid annotations). nil = silent. See "Logging" in the
	// package docs for the keys.
	Logger *slog.Logger
}

// TruncateMode says how a stream surfaces TRUNCATE.
type TruncateMode int

const (
	// TruncateSkip, the default, delivers nothing for a TRUNCATE, as Sequin
	// and Debezium do, and logs a warning naming the tables. A backfill in
	// flight still drops the rows it read from them.
	TruncateSkip TruncateMode = iota
	// TruncateEmit emits one message with [message.ActionTruncate] per
	// truncated table, with nil Record and Changes.
	TruncateEmit
	// TruncateFail stops the stream: Next returns a [*TruncateError].
	TruncateFail
)

// UndecodablePolicy says what a stream does with a column value it cannot
// decode. Values Postgres stores decode; this covers what the mapping does
// not foresee (an output format a setting or extension changed, say).
type UndecodablePolicy int

const (
	// UndecodableFail stops the stream: Next returns a [*DecodeError] naming
	// the table, column and LSN. Opening the stream again stops at the same
	// change, so the slot keeps its WAL until the policy is changed. The
	// default.
	UndecodableFail UndecodablePolicy = iota
	// UndecodableText delivers the value as its Postgres text (a string),
	// logs a warning naming the table, column and LSN, and hands the value
	// to Config.DeadLetter when set. The stream goes on.
	UndecodableText
)

// Defaults of the memory limits.
const (
	DefaultBufferBytes        = 64 << 20
	DefaultMaxAnnotationBytes = 64 << 10
)

// Validate reports what Open would reject in c without connecting: a
// missing or malformed ConnString, slot or publication name, table name,
// negative size, or conflicting options. The error is a [*ConfigError].
// Open, Check and Drop validate too; Validate is for checking a
// configuration ahead of time (a deploy step, a config file's linter).
func (c Config) Validate() error {
	if err := c.validate(); err != nil {
		return err
	}
	_, err := c.poolConfig()
	return err
}

func (c *Config) validate() error {
	errs := c.identityProblems()
	errs = append(errs, c.limitProblems()...)
	errs = append(errs, c.publicationProblems()...)
	if err := errors.Join(errs...); err != nil {
		return &ConfigError{Err: err}
	}
	c.setDefaults()
	return nil
}

// identityProblems checks what the stream connects to: the connection
// string, the slot and the publication.
func (c *Config) identityProblems() []error {
	var errs []error
	if c.ConnString == "" {
		errs = append(errs, errors.New("ConnString is empty"))
	} else if _, err := pgconn.ParseConfig(c.ConnString); err != nil {
		// pgconn's parse errors can quote the connection string; say less.
		errs = append(errs, errors.New("ConnString is not a valid postgres URL or DSN"))
	}
	if err := checkIdent("Slot", c.Slot); err != nil {
		errs = append(errs, err)
	}
	if err := checkIdent("Publication", c.Publication); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// limitProblems checks the sizes, intervals and policies.
func (c *Config) limitProblems() []error {
	var errs []error
	if c.BufferSize < 0 {
		errs = append(errs, fmt.Errorf("BufferSize %d is negative", c.BufferSize))
	}
	if c.BufferBytes < 0 {
		errs = append(errs, fmt.Errorf("BufferBytes %d is negative", c.BufferBytes))
	}
	if c.MaxAnnotationBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxAnnotationBytes %d is negative", c.MaxAnnotationBytes))
	}
	if c.Undecodable < UndecodableFail || c.Undecodable > UndecodableText {
		errs = append(errs, fmt.Errorf("Undecodable %d is not an UndecodablePolicy", c.Undecodable))
	}
	if c.DeadLetter != nil && c.Undecodable != UndecodableText {
		errs = append(errs, errors.New("DeadLetter is set but Undecodable is not UndecodableText"))
	}
	if c.StatusInterval < 0 {
		errs = append(errs, fmt.Errorf("StatusInterval %v is negative", c.StatusInterval))
	}
	if c.Truncate < TruncateSkip || c.Truncate > TruncateFail {
		errs = append(errs, fmt.Errorf("Truncate %d is not a TruncateMode", c.Truncate))
	}
	return errs
}

// publicationProblems checks the options for the publication, the slot
// and the tables.
func (c *Config) publicationProblems() []error {
	var errs []error
	switch {
	case c.PublicationAllTables && len(c.PublicationTables) > 0:
		errs = append(errs, errors.New("PublicationAllTables and PublicationTables are both set"))
	case c.PublicationAllTables && !c.CreatePublication:
		errs = append(errs, errors.New("PublicationAllTables is set but CreatePublication is not"))
	case c.CreatePublication && !c.PublicationAllTables && len(c.PublicationTables) == 0:
		errs = append(errs, errors.New("CreatePublication needs PublicationTables, or PublicationAllTables for a publication FOR ALL TABLES"))
	}
	if c.TemporarySlot {
		for _, o := range []struct {
			set  bool
			name string
		}{{c.CreateSlot, "CreateSlot"}, {c.Failover, "Failover"}, {c.WaitForSlot, "WaitForSlot"}} {
			if o.set {
				errs = append(errs, fmt.Errorf("TemporarySlot and %s are both set", o.name))
			}
		}
	}
	if c.AlterPublication && len(c.PublicationTables) == 0 {
		errs = append(errs, errors.New("AlterPublication is set but PublicationTables is empty"))
	}
	for _, t := range c.PublicationTables {
		if _, _, err := message.ParseTable(t); err != nil {
			errs = append(errs, fmt.Errorf("PublicationTables: %w", err))
		}
	}
	if c.BackfillTable != "" {
		if _, _, err := message.ParseTable(c.BackfillTable); err != nil {
			errs = append(errs, fmt.Errorf("BackfillTable: %w", err))
		}
	}
	return errs
}

// setDefaults fills the fields left zero.
func (c *Config) setDefaults() {
	if c.BackfillTable == "" {
		c.BackfillTable = backfill.DefaultProgressTable
	}
	if c.BufferSize == 0 {
		c.BufferSize = 1024
	}
	if c.BufferBytes == 0 {
		c.BufferBytes = DefaultBufferBytes
	}
	if c.MaxAnnotationBytes == 0 {
		c.MaxAnnotationBytes = DefaultMaxAnnotationBytes
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = time.Second
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 30 * time.Second
	}
	if c.Backoff == nil {
		c.Backoff = sink.DefaultBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// checkIdent accepts what Postgres accepts as a replication slot name:
// the rule for slot names, applied to publication names too, so that a
// name is the same in SQL, in the catalog and in the logs.
func checkIdent(field, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", field)
	}
	if len(s) > 63 {
		return fmt.Errorf("%s %q is longer than 63 bytes", field, s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("%s %q may contain only lower-case letters, digits and underscores", field, s)
		}
	}
	return nil
}
