package cdc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/message"
)

// SlotStats is a replication slot as Postgres describes it
// (pg_replication_slots), from [Stream.SlotStats].
type SlotStats struct {
	Slot string
	// Exists is false when the slot is gone (dropped); the other fields
	// are then zero.
	Exists bool
	// Active reports that a process (normally this stream) streams from it.
	Active bool
	// WALStatus is Postgres' wal_status: "reserved" (within max_wal_size),
	// "extended" (beyond it, kept for the slot), "unreserved" (beyond
	// max_slot_wal_keep_size: removed at the next checkpoint unless the
	// slot catches up) or "lost" (invalidated: the slot is unusable).
	WALStatus string
	// RestartLSN is the oldest WAL the slot keeps, ConfirmedFlushLSN the
	// position its consumer confirmed.
	RestartLSN, ConfirmedFlushLSN message.LSN
	// RetainedBytes is the WAL the slot holds back: from RestartLSN to the
	// server's current WAL position.
	RetainedBytes int64
	// SafeWALSize is how many more bytes of WAL can be written before the
	// slot is in danger of invalidation (Postgres' safe_wal_size), -1 when
	// max_slot_wal_keep_size is unlimited.
	SafeWALSize int64
	// MaxSlotWALKeepSize is the server's max_slot_wal_keep_size in bytes,
	// -1 when unlimited.
	MaxSlotWALKeepSize int64
	// At is when Postgres was asked.
	At time.Time
}

// Lost reports that the slot is gone or invalidated: the stream cannot
// continue from it.
func (st SlotStats) Lost() bool { return !st.Exists || st.WALStatus == "lost" }

// atRisk reports that less than a quarter of max_slot_wal_keep_size is
// left before Postgres may invalidate the slot, or that it already may.
func (st SlotStats) atRisk() bool {
	if st.WALStatus == "unreserved" {
		return true
	}
	return st.MaxSlotWALKeepSize > 0 && st.SafeWALSize >= 0 && st.SafeWALSize < st.MaxSlotWALKeepSize/4
}

// slotWatchInterval is how often the stream asks Postgres about its slot.
const slotWatchInterval = time.Minute

// SlotStats asks Postgres about the stream's slot: its wal_status, the WAL
// it retains and how much more may be written before max_slot_wal_keep_size
// invalidates it. The answer is also kept for [Stream.Stats] (SlotStatus).
//
// With less than a quarter of max_slot_wal_keep_size left (or wal_status
// "unreserved") it logs a warning to Config.Logger, and an error when the
// slot is lost; the stream runs it every minute, so the warning comes well
// before Postgres invalidates the slot.
func (s *Stream) SlotStats(ctx context.Context) (SlotStats, error) {
	st, err := querySlotStats(ctx, s.pool, s.cfg.Slot)
	if err != nil {
		return SlotStats{}, err
	}
	s.st.slot.Store(&st)
	switch {
	case !st.Exists:
		s.cfg.Logger.Error("replication slot is gone", "slot", s.cfg.Slot)
	case st.WALStatus == "lost":
		s.cfg.Logger.Error("replication slot was invalidated: Postgres removed WAL it needed; drop it, create a new one and backfill", "slot", s.cfg.Slot, "wal_status", st.WALStatus)
	case st.atRisk():
		s.cfg.Logger.Warn("replication slot is close to max_slot_wal_keep_size and will be invalidated if its consumer does not catch up",
			"slot", s.cfg.Slot, "wal_status", st.WALStatus, "retained_bytes", st.RetainedBytes,
			"safe_wal_size", st.SafeWALSize, "max_slot_wal_keep_size", st.MaxSlotWALKeepSize)
	}
	return st, nil
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// querySlotStats reads slot's row of pg_replication_slots with the
// server's WAL position (its replay position on a standby).
func querySlotStats(ctx context.Context, q queryRower, slot string) (SlotStats, error) {
	st := SlotStats{Slot: slot, At: time.Now()}
	var walStatus, restart, flush *string
	var retained, safe *int64
	var keepMB int64
	err := q.QueryRow(ctx, `select s.active, s.wal_status, s.restart_lsn::text, s.confirmed_flush_lsn::text,
			pg_wal_lsn_diff(case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end, s.restart_lsn)::int8,
			s.safe_wal_size, (select setting::int8 from pg_settings where name = 'max_slot_wal_keep_size')
		from pg_replication_slots s where s.slot_name = $1`, slot).
		Scan(&st.Active, &walStatus, &restart, &flush, &retained, &safe, &keepMB)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return SlotStats{}, fmt.Errorf("cdc: slot stats %q: %w", slot, err)
	}
	st.Exists = true
	st.WALStatus = deref(walStatus)
	for _, p := range []struct {
		s   *string
		lsn *message.LSN
	}{{restart, &st.RestartLSN}, {flush, &st.ConfirmedFlushLSN}} {
		if p.s == nil {
			continue
		}
		if *p.lsn, err = message.ParseLSN(*p.s); err != nil {
			return SlotStats{}, fmt.Errorf("cdc: slot stats %q: %w", slot, err)
		}
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

// watchSlot starts the goroutine that asks Postgres about the slot every
// slotWatchInterval, until the stream closes.
func (s *Stream) watchSlot() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(slotWatchInterval)
		defer t.Stop()
		for {
			ctx, cancel := s.closingContext(10 * time.Second)
			_, err := s.SlotStats(ctx)
			cancel()
			if err != nil && !s.closed() {
				s.cfg.Logger.Warn("slot stats query failed", "slot", s.cfg.Slot, "err", err)
			}
			select {
			case <-s.closing:
				return
			case <-t.C:
			}
		}
	}()
}

// estimateRows is Postgres' estimate of the rows of schema.table, -1 when
// it has none.
func (s *Stream) estimateRows(ctx context.Context, schema, table string) int64 {
	var n float64
	err := s.pool.QueryRow(ctx, "select c.reltuples::float8 from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2", schema, table).Scan(&n)
	if err != nil || n < 0 {
		return -1
	}
	return int64(n)
}
