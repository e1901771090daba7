package cdc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/walrelay/walrelay/message"
)

// failoverState is what the stream knows of the server's role: to follow a
// promoted standby, and to stream from a standby.
type failoverState struct {
	// timeline is the server timeline of the last replication connection
	// (0 before the first). Reader-only.
	timeline int32
	// promoted describes the last timeline switch, for errors ("" when none).
	promoted string
	// alterFailover: the slot must be given failover = true on the next
	// replication connection.
	alterFailover bool
	// committed is the end of the last transaction received in full, not
	// counting positions taken from keepalives. Guarded by Stream.mu.
	committed message.LSN
	// standby: the server was in recovery at Open (decoding on a standby,
	// PostgreSQL 16+): no heartbeat writes.
	standby bool
}

// followTimeline runs on every replication connection, with the server's
// current timeline. When it changed since the last connection — a standby
// was promoted and the connection string led to it — the stream's
// positions are checked against the point where the new timeline forked
// from the one the stream read:
//
//   - a transaction received past that point is not in the new server's
//     history: the stream delivered changes that the failover undid
//     ([ErrHistoryDiverged]; synchronized_standby_slots prevents it);
//   - a position past it that came only from a keepalive (nothing for this
//     stream in between) is brought back to the fork point: on the new
//     timeline the same LSNs hold new transactions, which a start position
//     past the fork would skip, and a confirmed position past it would
//     tell the new primary they were delivered.
func (s *Stream) followTimeline(ctx context.Context, conn *pgconn.PgConn, tli int32) error {
	prev := s.fo.timeline
	if prev == 0 || tli == prev {
		s.fo.timeline = tli
		return nil
	}
	if tli < prev {
		return fmt.Errorf("%w: the server is on timeline %d, older than timeline %d the stream already read (a former primary back after a failover?)", ErrHistoryDiverged, tli, prev)
	}
	h, err := pglogrepl.TimelineHistory(ctx, conn, tli)
	if err != nil {
		return fmt.Errorf("cdc: timeline history %d: %w", tli, err)
	}
	fork, ok := forkPoint(h.Content, prev)
	if !ok {
		return fmt.Errorf("%w: timeline %d does not descend from timeline %d the stream read", ErrHistoryDiverged, tli, prev)
	}
	if err := s.rebase(prev, tli, fork); err != nil {
		return err
	}
	s.fo.promoted = fmt.Sprintf("the server was promoted (timeline %d forked from %d at %v)", tli, prev, fork)
	s.fo.timeline = tli
	s.cfg.Logger.Warn("replication continues on a promoted server", "slot", s.cfg.Slot, "timeline", tli, "previous_timeline", prev, "fork", fork)
	return nil
}

// rebase brings the stream's positions back to fork, where timeline tli
// forked from prev, or fails when a transaction past it was received.
func (s *Stream) rebase(prev, tli int32, fork message.LSN) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fo.committed > fork {
		return fmt.Errorf("%w: a transaction ending at %v was received, but the server's timeline %d forked from timeline %d at %v (set synchronized_standby_slots on the primary)", ErrHistoryDiverged, s.fo.committed, tli, prev, fork)
	}
	s.received = min(s.received, fork)
	s.flushed = min(s.flushed, fork)
	return nil
}

// forkPoint finds, in a timeline history file, where timeline tli ended
// (its lines read "<timeline>\t<switch LSN>\t<reason>").
func forkPoint(history []byte, tli int32) (message.LSN, bool) {
	sc := bufio.NewScanner(bytes.NewReader(history))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 32)
		if err != nil || int32(n) != tli {
			continue
		}
		lsn, err := message.ParseLSN(fields[1])
		if err != nil {
			return 0, false
		}
		return lsn, true
	}
	return 0, false
}

// notice handles a NoticeResponse on the replication connection. From
// PostgreSQL 18, pgoutput no longer fails when a publication does not exist
// at the WAL position it decodes (a publication created after the slot): it
// warns and skips the publication, which would silently drop the changes
// before it. That warning stops the stream with the same error that older
// servers give. Other notices are logged.
func (s *Stream) notice(msg *pgproto3.NoticeResponse) error {
	pe := pgconn.ErrorResponseToPgError((*pgproto3.ErrorResponse)(msg))
	// 55000 object_not_in_prerequisite_state, from pgoutput's
	// LoadPublications: "skipped loading publication".
	if pe.SeverityUnlocalized == "WARNING" && pe.Code == "55000" && pe.Routine == "LoadPublications" {
		ctx, cancel := s.closingContext(10 * time.Second)
		defer cancel()
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("%w: %q: %w", ErrPublicationNotFound, s.cfg.Publication, pe)
		}
		defer conn.Release()
		return publicationMissing(ctx, conn.Conn(), s.cfg.Publication, pe)
	}
	s.cfg.Logger.Warn("server notice on the replication connection", "slot", s.cfg.Slot, "severity", pe.Severity, "code", pe.Code, "message", pe.Message)
	return nil
}
