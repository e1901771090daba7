package cdc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/walrelay/walrelay/message"
)

// SlotState is a replication slot as Postgres reports it
// (pg_replication_slots), from [SlotStatus] or [Stream.SlotStatus]. It marshals to JSON with
// snake_case keys.
type SlotState struct {
	Slot string `json:"slot"`
	// Exists is false when there is no such slot; the fields below are
	// then zero.
	Exists bool `json:"exists"`
	// Active reports that a process streams from the slot, ActivePID its
	// backend.
	Active    bool  `json:"active"`
	ActivePID int32 `json:"active_pid,omitempty"`
	// Plugin and Database: the output plugin (walrelay's is pgoutput) and
	// the database the slot decodes.
	Plugin   string `json:"plugin"`
	Database string `json:"database"`
	// WALStatus is Postgres' wal_status: "reserved", "extended",
	// "unreserved" (past max_slot_wal_keep_size: removed at the next
	// checkpoint unless the slot catches up) or "lost" (invalidated).
	WALStatus string `json:"wal_status"`
	// Invalidation is why Postgres invalidated the slot (PostgreSQL 17+;
	// "" when valid or not reported).
	Invalidation string `json:"invalidation,omitempty"`
	// ConfirmedFlushLSN is what the consumer confirmed; RestartLSN the
	// oldest WAL the slot keeps; CurrentLSN the server's WAL position (its
	// replay position on a standby) when asked.
	ConfirmedFlushLSN message.LSN `json:"confirmed_flush_lsn"`
	RestartLSN        message.LSN `json:"restart_lsn"`
	CurrentLSN        message.LSN `json:"current_lsn"`
	// LagBytes is the WAL written since ConfirmedFlushLSN: what the
	// consumer has yet to confirm.
	LagBytes int64 `json:"lag_bytes"`
	// FlushLag is Postgres' flush_lag of the slot's walsender
	// (pg_stat_replication): how long the consumer took to confirm the
	// WAL it was last sent. 0 when the slot is inactive or the consumer is
	// caught up and idle, or when the role may not see it
	// (pg_read_all_stats). In JSON, nanoseconds.
	FlushLag time.Duration `json:"flush_lag"`
	// RetainedBytes is the WAL the slot keeps from being removed: from
	// RestartLSN to CurrentLSN.
	RetainedBytes int64 `json:"retained_bytes"`
	// SafeWALSize is how many more bytes of WAL may be written before the
	// slot risks invalidation (Postgres' safe_wal_size); -1 when
	// max_slot_wal_keep_size is unlimited.
	SafeWALSize int64 `json:"safe_wal_size"`
	// MaxSlotWALKeepSize is the server's max_slot_wal_keep_size in bytes,
	// -1 when unlimited.
	MaxSlotWALKeepSize int64 `json:"max_slot_wal_keep_size"`
	// At is when Postgres was asked.
	At time.Time `json:"at"`
}

// SlotStatus reads slot's state from the server at connString without
// streaming from it: whether it is active, how far its consumer confirmed,
// how much WAL it lags and retains, its wal_status and safe_wal_size. A
// slot that does not exist is no error: Exists is false. The role needs no
// REPLICATION attribute (pg_replication_slots is readable by all).
func SlotStatus(ctx context.Context, connString, slot string) (SlotState, error) {
	cfg := Config{ConnString: connString}
	var errs []error
	if connString == "" {
		errs = append(errs, errors.New("ConnString is empty"))
	}
	if err := checkIdent("Slot", slot); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return SlotState{}, &ConfigError{Err: err}
	}
	poolCfg, err := cfg.poolConfig()
	if err != nil {
		return SlotState{}, err
	}
	poolCfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return SlotState{}, fmt.Errorf("cdc: connect: %w", err)
	}
	defer pool.Close()
	st, err := querySlot(ctx, pool, slot)
	if err != nil && pgCode(err) == "" && !errors.Is(err, errSlotParse) {
		return SlotState{}, connectError("slot status from", &poolCfg.ConnConfig.Config, err)
	}
	return st, err
}

// errSlotParse marks an LSN of pg_replication_slots that did not parse.
var errSlotParse = errors.New("unreadable LSN")

// querySlot reads slot's row of pg_replication_slots, with the server's
// WAL position (its replay position on a standby) and
// max_slot_wal_keep_size. A missing slot is no error: Exists is false.
func querySlot(ctx context.Context, q queryRower, slot string) (SlotState, error) {
	st := SlotState{Slot: slot, At: time.Now()}
	var plugin, database, walStatus, invalidation, flush, restart *string
	var current string
	var pid *int32
	var lag, retained, safe *int64
	var keepMB int64
	var flushLag *float64
	err := q.QueryRow(ctx, `select s.active, s.active_pid, s.plugin, s.database, s.wal_status, j->>'invalidation_reason',
			s.confirmed_flush_lsn::text, s.restart_lsn::text, w.lsn::text,
			pg_wal_lsn_diff(w.lsn, s.confirmed_flush_lsn)::int8, pg_wal_lsn_diff(w.lsn, s.restart_lsn)::int8, s.safe_wal_size,
			(select setting::int8 from pg_settings where name = 'max_slot_wal_keep_size'),
			(select extract(epoch from r.flush_lag)::float8 from pg_stat_replication r where r.pid = s.active_pid)
		from (select s.*, to_jsonb(s) j from pg_replication_slots s where slot_name = $1) s,
			(select case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end lsn) w`, slot).
		Scan(&st.Active, &pid, &plugin, &database, &walStatus, &invalidation, &flush, &restart, &current, &lag, &retained, &safe, &keepMB, &flushLag)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return SlotState{}, fmt.Errorf("cdc: slot status %q: %w", slot, err)
	}
	st.Exists = true
	if pid != nil {
		st.ActivePID = *pid
	}
	st.Plugin, st.Database, st.WALStatus, st.Invalidation = deref(plugin), deref(database), deref(walStatus), deref(invalidation)
	for _, p := range []struct {
		s   *string
		lsn *message.LSN
	}{{flush, &st.ConfirmedFlushLSN}, {restart, &st.RestartLSN}, {&current, &st.CurrentLSN}} {
		if p.s == nil {
			continue
		}
		if *p.lsn, err = message.ParseLSN(*p.s); err != nil {
			return SlotState{}, fmt.Errorf("cdc: slot status %q: %w: %w", slot, errSlotParse, err)
		}
	}
	if lag != nil && *lag > 0 {
		st.LagBytes = *lag
	}
	if flushLag != nil && *flushLag > 0 {
		st.FlushLag = time.Duration(*flushLag * float64(time.Second))
	}
	if retained != nil && *retained > 0 {
		st.RetainedBytes = *retained
	}
	st.SafeWALSize, st.MaxSlotWALKeepSize = -1, -1
	if keepMB >= 0 {
		st.MaxSlotWALKeepSize = keepMB << 20
		if safe != nil {
			st.SafeWALSize = *safe
		}
	}
	return st, nil
}
