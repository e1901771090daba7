package cdc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/walrelay/walrelay/message"
)

// The reader's side of Stream.Backfill (the watermark method): the chunks
// waiting for their high watermark, the changes each records, the
// snapshot its rows were read in, and the watermark that emits them.

const prefixWatermark = "walrelay:backfill.watermark"

// chunk is a page of a backfill waiting for its high watermark. The reader
// goroutine records the keys (and transaction ids) of live changes to the
// table from the moment the chunk is registered, before its rows are
// selected. The rows are selected together with the snapshot they were read
// in; at the watermark a row is dropped when a change to its key came from a
// transaction that snapshot does not see — that change is newer than the
// read, and is delivered itself. Changes the snapshot saw (say, old ones the
// stream was still catching up on) are older than the read and drop nothing.
type chunk struct {
	id       string
	schema   string
	table    string
	keyCols  []string
	dirty    map[string][]uint32 // key → ids of the transactions that changed it
	truncate []uint32            // ids of transactions that truncated the table
	snap     snapshot            // the snapshot the rows were read in
	rows     []message.Message   // set, with snap, before the watermark is written
	lastSeq  uint64              // sequence number of the last read emitted
	lost     bool                // set before done closes: the reads were not emitted
	done     chan struct{}       // closed when the reads were emitted, or lost
}

// snapshot is a transaction snapshot (pg_current_snapshot) in 32-bit
// transaction ids, as pgoutput sends them.
type snapshot struct {
	xmin, xmax uint32
	xip        map[uint32]bool
}

// parseSnapshot parses "xmin:xmax:xip,…" (pg_snapshot text).
func parseSnapshot(s string) (snapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return snapshot{}, fmt.Errorf("snapshot %q: want xmin:xmax:xip", s)
	}
	xmin, err1 := strconv.ParseUint(parts[0], 10, 64)
	xmax, err2 := strconv.ParseUint(parts[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return snapshot{}, fmt.Errorf("snapshot %q: %w", s, err)
	}
	snap := snapshot{xmin: uint32(xmin), xmax: uint32(xmax), xip: map[uint32]bool{}}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			v, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return snapshot{}, fmt.Errorf("snapshot %q: %w", s, err)
			}
			snap.xip[uint32(v)] = true
		}
	}
	return snap, nil
}

// sees reports whether a committed transaction's changes are visible in the
// snapshot (ids compare modulo 2^32, as Postgres compares them).
func (sn snapshot) sees(xid uint32) bool {
	if int32(xid-sn.xmin) < 0 {
		return true
	}
	if int32(xid-sn.xmax) >= 0 {
		return false
	}
	return !sn.xip[xid]
}

// newer reports whether any of xids is a transaction the snapshot does not see.
func (sn snapshot) newer(xids []uint32) bool {
	for _, x := range xids {
		if !sn.sees(x) {
			return true
		}
	}
	return false
}

// xidLog records the ids of the transactions the stream decoded, the last
// xidLogSize of them, in order.
//
// A committing backend writes its commit record before it leaves the set of
// running transactions, and may wait in between (for a synchronous standby,
// or for the CPU). The stream can decode and deliver such a transaction
// while a snapshot taken at that moment does not see it yet. A chunk
// registered after the stream decoded it did not record its changes, so its
// rows would read older than changes already delivered. Backfill checks its
// snapshot against this log and reads in a newer one when that happens.
type xidLog struct {
	mu   sync.Mutex
	n    uint64 // transactions recorded so far
	xids [xidLogSize]uint32
}

// xidLogSize bounds the log: a transaction this many transactions older
// than the snapshot is taken to be visible in it.
const xidLogSize = 1 << 14

func (l *xidLog) add(xid uint32) {
	l.mu.Lock()
	l.xids[l.n%xidLogSize] = xid
	l.n++
	l.mu.Unlock()
}

// count returns the number of transactions recorded so far.
func (l *xidLog) count() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// unseen returns a transaction among those recorded from the from-th to
// before the to-th that snap does not see.
func (l *xidLog) unseen(from, to uint64, snap snapshot) (uint32, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n > xidLogSize {
		from = max(from, l.n-xidLogSize)
	}
	for i := from; i < to; i++ {
		if x := l.xids[i%xidLogSize]; !snap.sees(x) {
			return x, true
		}
	}
	return 0, false
}

// chunks is the stream's set of registered chunks, shared by Backfill
// goroutines and the reader.
type chunks struct {
	active atomic.Int32 // fast path for the reader: no chunk registered
	mu     sync.Mutex
	byID   map[string]*chunk
	seq    atomic.Uint64
}

func (c *chunks) register(ch *chunk) {
	c.mu.Lock()
	if c.byID == nil {
		c.byID = make(map[string]*chunk)
	}
	c.byID[ch.id] = ch
	c.active.Add(1)
	c.mu.Unlock()
}

func (c *chunks) remove(id string) *chunk {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.byID[id]
	if !ok {
		return nil
	}
	delete(c.byID, id)
	c.active.Add(-1)
	return ch
}

// abortAll ends every registered chunk without emitting its reads, when the
// replication connection is lost: what the chunk recorded may be incomplete
// and its watermark may come again or not at all. Backfill reads those
// chunks again.
func (c *chunks) abortAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, ch := range c.byID {
		delete(c.byID, id)
		c.active.Add(-1)
		ch.lost = true
		close(ch.done)
	}
}

// observe records a live change (or truncate) of transaction xid against
// the registered chunks of its table. oldKey holds, for an update, the key
// values of the row before it when Postgres sent them (nil otherwise).
func (c *chunks) observe(m *message.Message, xid uint32, oldKey map[string]any) {
	if c.active.Load() == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.byID {
		if ch.schema != m.Metadata.TableSchema || ch.table != m.Metadata.TableName {
			continue
		}
		if m.Action == message.ActionTruncate {
			ch.truncate = append(ch.truncate, xid)
			continue
		}
		k := rowKey(ch.keyCols, m.Record)
		ch.dirty[k] = append(ch.dirty[k], xid)
		// A primary-key update: the row's old key is stale too.
		if old, ok := movedFrom(ch.keyCols, m, oldKey); ok && old != k {
			ch.dirty[old] = append(ch.dirty[old], xid)
		}
	}
}

// rowKey is the canonical text of a row's key values (as in read keys).
func rowKey(cols []string, rec map[string]any) string {
	vals := make([]any, len(cols))
	for i, c := range cols {
		vals[i] = rec[c]
	}
	return message.ReadKey("", vals...)
}

// movedFrom is the key an update moved the row away from, when Postgres
// sent it (a key change, or REPLICA IDENTITY FULL).
func movedFrom(cols []string, m *message.Message, oldKey map[string]any) (string, bool) {
	if m.Action != message.ActionUpdate || len(oldKey) == 0 {
		return "", false
	}
	old := make(map[string]any, len(cols))
	for _, c := range cols {
		v, ok := oldKey[c]
		if !ok {
			return "", false
		}
		old[c] = v
	}
	return rowKey(cols, old), true
}

// watermark emits the surviving reads of the chunk whose high watermark
// arrived at lsn. Called by the reader goroutine.
func (s *Stream) watermark(lsn message.LSN, id string) error {
	ch := s.chunks.remove(id)
	if ch == nil {
		return nil // another stream's, or a chunk from before a restart
	}
	defer close(ch.done)
	for _, m := range ch.rows {
		if ch.snap.newer(ch.truncate) {
			break // truncated after the read: every row is stale
		}
		if ch.snap.newer(ch.dirty[rowKey(ch.keyCols, m.Record)]) {
			continue
		}
		if err := s.emit(m, recordSize(m.Record)); err != nil {
			return err
		}
	}
	s.mu.Lock()
	ch.lastSeq = s.emitted
	s.mu.Unlock()
	// The watermark is outside any transaction: once the reads before it
	// are acknowledged, the slot may pass it.
	s.commit(lsn)
	return nil
}

// errChunkLost: the replication connection was lost while a chunk waited
// for its watermark.
var errChunkLost = errors.New("replication connection lost before the chunk's watermark arrived")

// writeWatermark writes chunk id's high watermark, a non-transactional
// logical message, and flushes it. The stream receives only WAL that is
// flushed, and nothing else flushes a message written outside a transaction
// before the WAL writer does (up to wal_writer_delay, 200ms by default,
// later) — on an idle database every chunk would wait that long. A
// transaction that takes an id and commits with synchronous_commit = local
// flushes the WAL up to its commit, past the message, without waiting for
// any standby. (pgoutput sends nothing for it: it changes no table.) It
// returns the message's LSN, as text.
func (s *Stream) writeWatermark(ctx context.Context, id string) (lsn string, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "set local synchronous_commit = local"); err != nil {
		return "", err
	}
	if err := tx.QueryRow(ctx, "select pg_logical_emit_message(false, $1, $2)::text from pg_current_xact_id()", prefixWatermark, id).Scan(&lsn); err != nil {
		return "", err
	}
	return lsn, tx.Commit(ctx)
}
