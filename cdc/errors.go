package cdc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walrelay/walrelay/internal/tlserr"
	"github.com/walrelay/walrelay/message"
)

// Errors for the states of a stream's slot, publication and server.
var (
	// ErrClosed is returned by Next after Close.
	ErrClosed = errors.New("cdc: stream closed")
	// ErrSlotInUse means another process is streaming from the slot.
	ErrSlotInUse = errors.New("cdc: replication slot is in use by another process")
	// ErrSlotNotFound means the slot does not exist (and Config.CreateSlot
	// is off, or the slot vanished while the stream ran).
	ErrSlotNotFound = errors.New("cdc: replication slot does not exist")
	// ErrSlotInvalidated means Postgres removed WAL the slot still needed
	// (wal_status = lost): changes were lost and the slot must be recreated
	// and the tables backfilled.
	ErrSlotInvalidated = errors.New("cdc: replication slot is invalidated (wal_status = lost)")
	// ErrSlotMismatch means the slot belongs to another output plugin or
	// database, or is a physical slot.
	ErrSlotMismatch = errors.New("cdc: replication slot does not fit this stream")
	// ErrPublicationNotFound means the publication does not exist, or was
	// created after the slot (the slot cannot see it).
	ErrPublicationNotFound = errors.New("cdc: publication does not exist")
	// ErrWALLevel means the server's wal_level is not logical.
	ErrWALLevel = errors.New("cdc: wal_level is not logical")
	// ErrServerVersion means Config asks for something the server's
	// PostgreSQL version cannot do (Config.Failover before 17).
	ErrServerVersion = errors.New("cdc: the server's PostgreSQL version does not support this")
	// ErrSlotSyncing means the slot is a copy that a standby synchronises
	// from its primary (pg_replication_slots.synced on a server in
	// recovery): it cannot be streamed from until the standby is promoted.
	// A stream that reconnects to such a standby waits for the promotion.
	ErrSlotSyncing = errors.New("cdc: replication slot is being synchronised from the primary (this server is a standby)")
	// ErrSlotNotSynced means the server was promoted from a standby that
	// did not have the slot, synchronised, at the moment of promotion: the
	// changes from the failover on cannot be streamed without loss.
	ErrSlotNotSynced = errors.New("cdc: server was promoted before the replication slot was synchronised to it")
	// ErrHistoryDiverged means the server's WAL history is not a
	// continuation of the one the stream received: it delivered a
	// transaction the promoted server does not have (the primary let the
	// stream run ahead of its standby; see synchronized_standby_slots), or
	// the server is on an older timeline than the stream already followed
	// (a former primary that came back after a failover).
	ErrHistoryDiverged = errors.New("cdc: server's WAL history diverged from what the stream received")
	// ErrPrivilege means the role lacks what walrelay needs: REPLICATION
	// (see [Check]), or superuser for a publication FOR ALL TABLES.
	// [IsAuthError] reports it.
	ErrPrivilege = errors.New("cdc: the role lacks a privilege walrelay needs")
	// ErrReplicaIdentity means a table's replica identity does not identify
	// its rows as walrelay needs: a table that is, or would be, published
	// has no primary key and REPLICA IDENTITY DEFAULT (or NOTHING), so
	// Postgres refuses its UPDATEs and DELETEs while it is published; or a
	// backfill's key columns are missing from an identity index, so an
	// update would not say which row it moved.
	ErrReplicaIdentity = errors.New("cdc: the table's replica identity does not identify its rows")
	// ErrTableNotFound means a table named in Config does not exist.
	ErrTableNotFound = errors.New("cdc: table does not exist")
	// ErrTableNotPublished means a table is not in the stream's
	// publication: its changes are not streamed (and [Stream.Backfill]
	// refuses it).
	ErrTableNotPublished = errors.New("cdc: table is not in the publication")
)

// ConfigError is an invalid [Config].
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return "cdc: invalid config: " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// SlotError gives the slot's name and details with one of the slot
// sentinels, which it wraps.
type SlotError struct {
	Slot   string
	Detail string
	Err    error
}

func (e *SlotError) Error() string {
	s := fmt.Sprintf("%v: %q", e.Err, e.Slot)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}
func (e *SlotError) Unwrap() error { return e.Err }

// DecodeError is a replication message that could not be turned into a
// [message.Message].
type DecodeError struct {
	// LSN is the WAL position of the message.
	LSN message.LSN
	// Relation is "schema.table" when known.
	Relation string
	// Column is the column whose value could not be decoded, when the
	// problem is a value.
	Column string
	Err    error
}

func (e *DecodeError) Error() string {
	s := "cdc: decode at " + e.LSN.String()
	if e.Relation != "" {
		s += " (" + e.Relation + ")"
	}
	if e.Column != "" {
		s += ": column " + strconv.Quote(e.Column)
	}
	return s + ": " + e.Err.Error()
}
func (e *DecodeError) Unwrap() error { return e.Err }

// TruncateError reports a TRUNCATE when Config.Truncate is TruncateFail.
type TruncateError struct {
	Tables    []string
	CommitLSN message.LSN
}

func (e *TruncateError) Error() string {
	return fmt.Sprintf("cdc: truncate of %v in transaction %v", e.Tables, e.CommitLSN)
}

// IsAuthError reports whether err is an authentication or authorization
// failure (bad password, no such role, missing privilege). Such errors are
// never retried.
func IsAuthError(err error) bool {
	if errors.Is(err, ErrPrivilege) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 28xxx: invalid authorization specification; 42501: insufficient privilege.
		return len(pe.Code) == 5 && pe.Code[:2] == "28" || pe.Code == "42501"
	}
	return false
}

// errStreamEnded: the server ended the replication stream (a CopyDone, as
// when a walsender shuts down).
var errStreamEnded = errors.New("cdc: server ended the replication stream")

// IsRetryable reports whether work that failed with err may succeed when
// it is tried again, later, unchanged: the one policy of this package. A
// [Stream] reconnects after such an error and [Stream.Backfill] reads its
// chunk again, after waits from Config.Backoff; any other error stops them
// and is returned. Call it in loops of your own — around [Open], or a
// Backfill that returned — as pgconn.SafeToRetry is called around pgx.
//
// Not retryable:
//   - nil, and a cancelled context;
//   - what needs a change first: a [*ConfigError], a [*CheckError], a
//     [*DecodeError], a [*TruncateError], a [*SlotError] other than
//     [ErrSlotInUse] and [ErrSlotSyncing], [ErrWALLevel],
//     [ErrPublicationNotFound], [ErrHistoryDiverged], [ErrServerVersion],
//     [ErrReplicaIdentity], [ErrTableNotFound], [ErrTableNotPublished],
//     authentication and privilege failures ([IsAuthError]), and a server
//     certificate that fails verification;
//   - a Postgres error (*pgconn.PgError) whose SQLSTATE class says the
//     request itself is at fault: 0A (feature not supported), 22 (data
//     exception), 23 (integrity constraint), 28 (authorization), 3D (no
//     such database), 3F (no such schema), 42 (syntax error or access rule
//     violation: no such table or column, permission denied), 44 (check
//     option), P0 (raised in PL/pgSQL);
//   - any other error it does not recognise as one of the retryable kinds
//     below (say, backfill.ErrTableNotFound, or [ErrClosed]).
//
// Retryable:
//   - the slot in use by another process, or still synchronising on a
//     standby;
//   - any other Postgres error: the server shutting down, starting or in
//     recovery, a serialization failure or deadlock, too many connections,
//     out of memory or disk, an I/O or internal error;
//   - a lost, refused or timed-out connection: a *pgconn.ConnectError, a
//     net.Error (context.DeadlineExceeded is one: a loop checks its own ctx
//     first, as Backfill does), an error pgconn.SafeToRetry accepts, an
//     unexpected EOF, ECONNRESET, ECONNREFUSED or EPIPE.
//
// Errors from a [sink.Sink] follow the opposite convention, and are not
// classified here: a sink's error is retried unless it is marked with
// sink.Permanent (see sink.IsPermanent); sink.Retryable marks the error of
// a sink.Transform as one a retry may fix.
func IsRetryable(err error) bool {
	var ce *ConfigError
	var ke *CheckError
	if err == nil || errors.Is(err, context.Canceled) || errors.As(err, &ce) || errors.As(err, &ke) {
		return false
	}
	if errors.Is(err, ErrSlotInUse) || errors.Is(err, ErrSlotSyncing) ||
		errors.Is(err, errChunkLost) || errors.Is(err, errStreamEnded) || errors.Is(err, errUndiagnosed) {
		return true
	}
	if needsChange(err) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return !requestAtFault(pe.Code)
	}
	return connectionLost(err)
}

// needsChange reports whether err is one of this package's errors (or an
// authentication or certificate failure) that no retry fixes.
func needsChange(err error) bool {
	var se *SlotError
	var de *DecodeError
	var te *TruncateError
	return IsAuthError(err) || tlserr.VerifyFailed(err) ||
		errors.As(err, &se) || errors.As(err, &de) || errors.As(err, &te) ||
		errors.Is(err, ErrWALLevel) || errors.Is(err, ErrPublicationNotFound) ||
		errors.Is(err, ErrHistoryDiverged) || errors.Is(err, ErrServerVersion) ||
		errors.Is(err, ErrReplicaIdentity) || errors.Is(err, ErrTableNotFound) ||
		errors.Is(err, ErrTableNotPublished)
}

// requestAtFault reports whether SQLSTATE code says the statement or the
// request itself is wrong, so that sending it again fails again.
func requestAtFault(code string) bool {
	if len(code) != 5 {
		return false
	}
	switch code[:2] {
	case "0A", "22", "23", "28", "3D", "3F", "42", "44", "P0":
		return true
	}
	return false
}

// connectionLost reports whether err is a connection that failed, closed
// or timed out.
func connectionLost(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// errUndiagnosed marks a replication error the stream could not explain,
// because the catalog could not be read to look at the slot (as after a
// failover, while the query pool still reconnects): it is tried again, and
// explained then.
var errUndiagnosed = errors.New("cdc: could not look at the slot to explain a replication error")
