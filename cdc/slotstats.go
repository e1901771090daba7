package cdc

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lost reports that the slot is gone or invalidated: the stream cannot
// continue from it.
func (st SlotState) Lost() bool { return !st.Exists || st.WALStatus == "lost" }

// atRisk reports that less than a quarter of max_slot_wal_keep_size is
// left before Postgres may invalidate the slot, or that it already may.
func (st SlotState) atRisk() bool {
	if st.WALStatus == "unreserved" {
		return true
	}
	return st.MaxSlotWALKeepSize > 0 && st.SafeWALSize >= 0 && st.SafeWALSize < st.MaxSlotWALKeepSize/4
}

// slotWatchInterval is how often the stream asks Postgres about its slot.
const slotWatchInterval = time.Minute

// SlotStatus asks Postgres about the stream's slot: its wal_status, the WAL
// it retains and how much more may be written before max_slot_wal_keep_size
// invalidates it. The answer is also kept for [Stream.Stats] (SlotStatus).
//
// With less than a quarter of max_slot_wal_keep_size left (or wal_status
// "unreserved") it logs a warning to Config.Logger, and an error when the
// slot is lost; the stream runs it every minute, so the warning comes well
// before Postgres invalidates the slot.
func (s *Stream) SlotStatus(ctx context.Context) (SlotState, error) {
	st, err := querySlot(ctx, s.pool, s.cfg.Slot)
	if err != nil {
		return SlotState{}, err
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
			_, err := s.SlotStatus(ctx)
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
