package cdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/internal/logkey"
	"github.com/walrelay/walrelay/internal/tlserr"
	"github.com/walrelay/walrelay/message"
)

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

// BackfillProgress is a backfill's saved state, in the progress table.
type BackfillProgress struct {
	ID     string
	Table  string
	Cursor backfill.Cursor
	Done   bool
}

// Backfill reads the existing rows of cfg.Table and delivers them as
// [message.ActionRead] messages through [Stream.Next], interleaved with the
// live changes so that a read never overtakes a newer change of its row
// (the watermark method): for each chunk the stream starts watching the
// table's keys, selects the chunk in primary-key order (noting the
// transaction snapshot it read in), and writes a high-watermark logical
// message; when the stream reaches the watermark it drops the rows changed by
// transactions that snapshot did not see (their live changes are newer) and
// emits the rest. Older changes the stream was still catching up on drop
// nothing, so every row unchanged since is read. A transaction the stream
// has already decoded can still be invisible to new snapshots for a moment
// (its backend has written the commit but not yet finished it; with the
// stream as a synchronous standby, until the stream confirms it): a chunk
// waits until its snapshot sees every transaction decoded before the chunk
// started, and tells Config.Logger when that takes more than 10 seconds.
//
// Backfill blocks until every chunk has been handed to the stream and every
// read acknowledged, so run it in its own goroutine while another consumes
// the stream (with [Run], or Next and Ack). It rides through a server
// restart or a lost connection as the stream does: the chunk in flight is
// read again, after waits from Config.Backoff; errors a retry cannot fix
// (no such table, permission denied) are returned. Progress is saved in the
// progress table (Config.BackfillTable) once a chunk's reads are
// acknowledged; calling Backfill again with the same cfg.ID resumes after the
// last saved chunk, or returns at once if that backfill finished. Several
// backfills may run at once, on different tables or IDs.
//
// cfg.Table is written as in SQL (see [message.ParseTable]). cfg.ChunkSize
// 0 sizes chunks adaptively (see backfill.DefaultChunkSize: from 1,000 rows
// toward about 200ms of reading per chunk). Rows are paged by the primary
// key, or by cfg.OrderBy, and matched to changes by their primary key or,
// in a table without one, by the cfg.OrderBy columns. A change must tell
// which key it moved a row away from, so the table's replica identity must
// carry those columns: the default (the primary key), FULL, or an index
// holding all of them; otherwise Backfill returns [ErrReplicaIdentity]. A
// TRUNCATE of the table while a chunk is in flight drops that chunk's rows
// (the truncate message follows the reads already delivered); an update of
// a row's key makes both its old and new key stale for the chunk in flight.
func (s *Stream) Backfill(ctx context.Context, cfg backfill.Config) (err error) {
	if cfg.Consumer.ID == "" && cfg.Consumer.Name == "" {
		cfg.Consumer = s.consumer
	}
	if cfg.Database.ID == "" && cfg.Database.Name == "" {
		cfg.Database = s.database
	}
	if cfg.Undecodable == nil && s.cfg.Undecodable == UndecodableText {
		cfg.Undecodable = s.undecodableRead(cfg.Table)
	}
	if err := s.published(ctx, cfg.Table); err != nil {
		return err
	}
	started := time.Now()
	defer func() {
		if err == nil {
			s.cfg.Logger.Info("backfill finished", logkey.BackfillID, cfg.ID, logkey.Table, cfg.Table, logkey.Elapsed, time.Since(started).Round(time.Millisecond))
		}
	}()
	var bo backoff.BackOff
	// again waits before the work that failed with err is tried again. It
	// returns err itself when a retry cannot help or the stream's Backoff
	// policy gives up, and the stream's or ctx's error when they end first.
	again := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !transient(err) {
			return err
		}
		if bo == nil {
			bo = s.cfg.Backoff()
		}
		d := bo.NextBackOff()
		if d == backoff.Stop {
			return err
		}
		s.cfg.Logger.Warn("backfill: retrying after an error", logkey.BackfillID, cfg.ID, logkey.Err, err, logkey.RetryIn, d)
		select {
		case <-time.After(d):
			return nil
		case <-s.done:
			return s.stopErr()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var prog *BackfillProgress
	for {
		err := s.ensureProgressTable(ctx)
		if err == nil {
			prog, err = s.loadProgress(ctx, cfg.ID)
		}
		if err == nil {
			break
		}
		if err := again(err); err != nil {
			return err
		}
	}
	if prog != nil {
		if !sameTable(prog.Table, cfg.Table) {
			return fmt.Errorf("cdc: backfill %q: saved progress is for table %q, not %q", cfg.ID, prog.Table, cfg.Table)
		}
		if prog.Done {
			return nil
		}
		if cfg.Cursor == nil {
			cfg.Cursor = prog.Cursor
		}
	}
	q := &chunkQuerier{q: s.pool}
	emitted := cfg.Cursor // after the last chunk whose reads were emitted
	var it *backfill.Iterator
	// open (re)starts the iterator after emitted: a chunk that failed may
	// have moved it past rows it never emitted.
	open := func() error {
		for {
			c := cfg
			c.Cursor = emitted
			var err error
			if it, err = backfill.New(ctx, q, c); err == nil {
				return nil
			}
			if err := again(err); err != nil {
				return fmt.Errorf("cdc: %w", err)
			}
		}
	}
	if err := open(); err != nil {
		return err
	}
	schema, table := it.Table() // the names changes to the table carry
	for {
		err := s.checkIdentity(ctx, schema, table, it.PrimaryKey())
		if err == nil {
			break
		}
		if err := again(err); err != nil {
			return fmt.Errorf("cdc: backfill %q: %w", cfg.ID, err)
		}
	}
	bst := s.st.newBackfill(cfg.ID, schema+"."+table, s.estimateRows(ctx, schema, table))
	type inflight struct {
		ch     *chunk
		cursor backfill.Cursor
	}
	var queue []inflight // chunks emitted, waiting for acknowledgement
	var seen uint64      // the decoded transactions a chunk's snapshot saw
	// saveAcked saves the cursor of the last chunk whose reads are all
	// acknowledged. A failure a retry may fix is logged: a later save
	// covers it.
	saveAcked := func() error {
		var last *inflight
		for len(queue) > 0 && s.ackedSeq() >= queue[0].ch.lastSeq {
			last = &queue[0]
			queue = queue[1:]
		}
		if last == nil {
			return nil
		}
		err := s.saveProgress(ctx, BackfillProgress{ID: cfg.ID, Table: cfg.Table, Cursor: last.cursor})
		if err != nil && transient(err) && ctx.Err() == nil {
			s.cfg.Logger.Warn("backfill: progress not saved; a later chunk's will be", logkey.BackfillID, cfg.ID, logkey.Err, err)
			return nil
		}
		return err
	}
	for {
		ch := &chunk{
			id:      fmt.Sprintf("%x-%d", s.id, s.chunks.seq.Add(1)),
			keyCols: it.PrimaryKey(),
			dirty:   make(map[string][]uint32),
			done:    make(chan struct{}),
		}
		ch.schema, ch.table = schema, table
		s.chunks.register(ch)
		reg := s.decoded.count() // decoded from here on: recorded by ch
		rows, snap, err := readChunk(ctx, s, q, it, &seen, reg)
		if errors.Is(err, io.EOF) {
			s.chunks.remove(ch.id)
			break
		}
		if err == nil {
			s.chunks.mu.Lock()
			ch.rows, ch.snap = rows, snap
			s.chunks.mu.Unlock()
			if _, err = s.writeWatermark(ctx, ch.id); err != nil {
				err = fmt.Errorf("write watermark: %w", err)
			}
		}
		if err == nil {
			select {
			case <-ch.done:
			case <-s.done:
				return fmt.Errorf("cdc: backfill %q: %w", cfg.ID, s.stopErr())
			case <-ctx.Done():
				return ctx.Err()
			}
			if ch.lost {
				err = errChunkLost
			} else {
				bst.rows.Add(uint64(len(rows)))
			}
		}
		if err != nil {
			s.chunks.remove(ch.id)
			if err := again(err); err != nil {
				return fmt.Errorf("cdc: backfill %q: %w", cfg.ID, err)
			}
			if err := open(); err != nil {
				return err
			}
			continue
		}
		if bo != nil {
			bo.Reset()
		}
		emitted = it.Cursor()
		queue = append(queue, inflight{ch, emitted})
		if err := saveAcked(); err != nil {
			return err
		}
	}
	// Wait for the last reads to be acknowledged, then mark it done.
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for len(queue) > 0 {
		if err := saveAcked(); err != nil {
			return err
		}
		if len(queue) == 0 {
			break
		}
		select {
		case <-t.C:
		case <-s.done:
			return fmt.Errorf("cdc: backfill %q: %w", cfg.ID, s.stopErr())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		err := s.saveProgress(ctx, BackfillProgress{ID: cfg.ID, Table: cfg.Table, Cursor: it.Cursor(), Done: true})
		if err == nil {
			bst.done.Store(true)
			return nil
		}
		if err := again(err); err != nil {
			return err
		}
	}
}

// checkIdentity checks that every update of the table that changes the
// key columns carries their old values: the replica identity is the
// default one (the primary key, which is then the key: a table without one
// publishes no updates), FULL, NOTHING (no updates either), or an index
// holding every key column.
func (s *Stream) checkIdentity(ctx context.Context, schema, table string, key []string) error {
	var ident string
	var cols []string
	err := s.pool.QueryRow(ctx, `select c.relreplident::text, coalesce((select array_agg(a.attname::text)
			from pg_catalog.pg_index i
			join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
			where i.indrelid = c.oid and i.indisreplident), '{}')
		from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
		where n.nspname = $1 and c.relname = $2`, schema, table).Scan(&ident, &cols)
	if err != nil {
		return fmt.Errorf("check replica identity: %w", err)
	}
	if ident != "i" {
		return nil
	}
	for _, k := range key {
		if !slices.Contains(cols, k) {
			return fmt.Errorf("%w: %s: the backfill's key column %q is not in it (set REPLICA IDENTITY FULL, or page by the primary key)", ErrReplicaIdentity, pgx.Identifier{schema, table}.Sanitize(), k)
		}
	}
	return nil
}

// published returns an error wrapping [ErrTableNotPublished] when table
// is not in the stream's publication (directly or through a partitioned
// table it belongs to): the backfill's reads would not be merged with the
// table's changes, which the stream never sees. A table that does not exist
// passes here; the backfill reports it.
func (s *Stream) published(ctx context.Context, table string) error {
	schema, name, err := qualifiedTable(table)
	if err != nil {
		return fmt.Errorf("cdc: backfill: %w", err)
	}
	ident := pgx.Identifier{schema, name}.Sanitize()
	var in *bool
	err = s.pool.QueryRow(ctx, `select exists(select 1 from pg_publication_tables pt
			join pg_namespace n on n.nspname = pt.schemaname
			join pg_class c on c.relnamespace = n.oid and c.relname = pt.tablename
			where pt.pubname = $1 and (c.oid = to_regclass($2) or c.oid in (select relid from pg_partition_ancestors(to_regclass($2)))))
		where to_regclass($2) is not null`, s.cfg.Publication, ident).Scan(&in)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil && transient(err):
		return nil // the backfill waits for the server, and fails on its own if it must
	case err != nil:
		return fmt.Errorf("cdc: backfill of %s: check the publication: %w", ident, err)
	case in != nil && !*in:
		return fmt.Errorf("%w: backfill of %s: the table is not in publication %q, so its changes are not streamed; add it (ALTER PUBLICATION %s ADD TABLE %s, or Config.PublicationTables with AlterPublication)",
			ErrTableNotPublished, ident, s.cfg.Publication, pgx.Identifier{s.cfg.Publication}.Sanitize(), ident)
	}
	return nil
}

// sameTable reports whether two table names name the same table.
func sameTable(a, b string) bool {
	as, at, aerr := qualifiedTable(a)
	bs, bt, berr := qualifiedTable(b)
	if aerr != nil || berr != nil {
		return a == b
	}
	return as == bs && at == bt
}

// errChunkLost: the replication connection was lost while a chunk waited
// for its watermark.
var errChunkLost = errors.New("replication connection lost before the chunk's watermark arrived")

// transient reports whether err may pass when the same work is tried
// again: the connection or the server went away (a restart, a failover), or
// Postgres ended the transaction to resolve a conflict.
func transient(err error) bool {
	if errors.Is(err, errChunkLost) {
		return true
	}
	if tlserr.VerifyFailed(err) {
		return false // a connection error, but not one a retry fixes
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03", // admin shutdown, crash shutdown, cannot connect now
			"40001", "40P01", // serialization failure, deadlock
			"53300": // too many connections
			return true
		}
		return strings.HasPrefix(pe.Code, "08") // connection exception
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

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

// chunkQuerier sends the iterator's queries to the chunk's transaction
// while one is open, else to the pool.
type chunkQuerier struct {
	q  backfill.Querier
	tx pgx.Tx
}

func (c *chunkQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if c.tx != nil {
		return c.tx.Query(ctx, sql, args...)
	}
	return c.q.Query(ctx, sql, args...)
}

// readChunk reads the next page in a REPEATABLE READ transaction, together
// with that transaction's snapshot. The snapshot must see the transactions
// the stream decoded before the chunk was registered (the reg-th), whose
// changes the chunk did not record: while one is still invisible, it waits
// and takes a newer snapshot. *seen counts the decoded transactions an
// earlier snapshot of this backfill saw, which later ones see too.
func readChunk(ctx context.Context, s *Stream, q *chunkQuerier, it *backfill.Iterator, seen *uint64, reg uint64) ([]message.Message, snapshot, error) {
	wait := time.Millisecond
	start, warned := time.Now(), false
	for {
		rows, snap, xid, retry, err := readChunkOnce(ctx, s, q, it, *seen, reg)
		if err != nil || !retry {
			if err == nil {
				*seen = reg
			}
			return rows, snap, err
		}
		if !warned && time.Since(start) >= backfillWaitWarning {
			warned = true
			s.cfg.Logger.Warn("backfill waiting: a transaction the stream delivered is not yet visible to new snapshots (is its backend waiting for a synchronous standby?)",
				"slot", s.cfg.Slot, "xid", xid, "waited", time.Since(start).Round(time.Second))
		}
		select {
		case <-time.After(wait):
		case <-s.done:
			return nil, snapshot{}, s.stopErr()
		case <-ctx.Done():
			return nil, snapshot{}, ctx.Err()
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// backfillWaitWarning is how long a chunk waits for a decoded transaction
// to become visible before the stream's Logger is told.
var backfillWaitWarning = 10 * time.Second

// readChunkOnce is one attempt of readChunk: retry reports that the
// snapshot does not see transaction xid, decoded before the chunk was
// registered, and nothing was read.
func readChunkOnce(ctx context.Context, s *Stream, q *chunkQuerier, it *backfill.Iterator, seen, reg uint64) (rows []message.Message, snap snapshot, xid uint32, retry bool, err error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, snapshot{}, 0, false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var text string
	if err := tx.QueryRow(ctx, "select pg_current_snapshot()::text").Scan(&text); err != nil {
		return nil, snapshot{}, 0, false, err
	}
	if snap, err = parseSnapshot(text); err != nil {
		return nil, snapshot{}, 0, false, err
	}
	if xid, unseen := s.decoded.unseen(seen, reg, snap); unseen {
		return nil, snapshot{}, xid, true, nil
	}
	q.tx = tx
	rows, err = it.NextChunk(ctx)
	q.tx = nil
	if err != nil {
		return nil, snapshot{}, 0, false, err
	}
	return rows, snap, 0, false, tx.Commit(ctx)
}

func (s *Stream) ackedSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// progressTable returns the schema and name of the progress table.
// Config.validate checked the name.
func (s *Stream) progressTable() (string, string) {
	schema, table, _ := qualifiedTable(s.cfg.BackfillTable)
	return schema, table
}

// qualifiedTable parses a table name from the user (see
// [message.ParseTable]); a name without a schema is in public.
func qualifiedTable(name string) (schema, table string, err error) {
	schema, table, err = message.ParseTable(name)
	if schema == "" && err == nil {
		schema = "public"
	}
	return schema, table, err
}

func (s *Stream) progressIdent() string {
	schema, table := s.progressTable()
	return pgx.Identifier{schema, table}.Sanitize()
}

func (s *Stream) ensureProgressTable(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `create table if not exists `+s.progressIdent()+` (
		id text primary key,
		table_name text not null,
		cursor jsonb,
		done boolean not null default false,
		updated_at timestamptz not null default now())`)
	switch pgCode(err) {
	case "23505", "42P07", "42710": // created concurrently: unique_violation (pg_type), duplicate_table, duplicate_object
		err = nil
	}
	if err != nil {
		return fmt.Errorf("cdc: backfill progress table %s: %w", s.progressIdent(), err)
	}
	return nil
}

func (s *Stream) loadProgress(ctx context.Context, id string) (*BackfillProgress, error) {
	var p BackfillProgress
	var cursor []byte
	err := s.pool.QueryRow(ctx, `select id, table_name, cursor, done from `+s.progressIdent()+` where id = $1`, id).
		Scan(&p.ID, &p.Table, &cursor, &p.Done)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cdc: backfill %q: load progress: %w", id, err)
	}
	if len(cursor) > 0 && string(cursor) != "null" {
		if err := json.Unmarshal(cursor, &p.Cursor); err != nil {
			return nil, fmt.Errorf("cdc: backfill %q: saved cursor: %w", id, err)
		}
	}
	return &p, nil
}

func (s *Stream) saveProgress(ctx context.Context, p BackfillProgress) error {
	cursor, err := json.Marshal(p.Cursor)
	if err != nil {
		return fmt.Errorf("cdc: backfill %q: %w", p.ID, err)
	}
	_, err = s.pool.Exec(ctx, `insert into `+s.progressIdent()+` (id, table_name, cursor, done) values ($1, $2, $3, $4)
		on conflict (id) do update set cursor = excluded.cursor, done = excluded.done, updated_at = now()`,
		p.ID, p.Table, string(cursor), p.Done)
	if err != nil {
		return fmt.Errorf("cdc: backfill %q: save progress: %w", p.ID, err)
	}
	return nil
}

// BackfillStatus returns the saved progress of backfill id, or nil when it
// never saved any (also when the progress table does not exist yet: it
// reads, and creates nothing).
func (s *Stream) BackfillStatus(ctx context.Context, id string) (*BackfillProgress, error) {
	p, err := s.loadProgress(ctx, id)
	if c := pgCode(err); c == "42P01" || c == "3F000" { // undefined_table or _schema: no backfill has run
		return nil, nil
	}
	return p, err
}
