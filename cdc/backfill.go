package cdc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/internal/logkey"
	"github.com/walrelay/walrelay/message"
)

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
// (no such table, permission denied: see [IsRetryable]) are returned.
// Progress is saved in the progress table (Config.BackfillTable, a
// [backfill.ProgressStore]) once a chunk's reads are acknowledged; calling
// Backfill again with the same cfg.ID resumes after the last saved chunk,
// or returns at once if that backfill finished. Several backfills may run
// at once, on different tables or IDs.
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
	r := s.newBackfillRun(cfg)
	if err := s.published(ctx, r.cfg.Table); err != nil {
		return err
	}
	started := time.Now()
	defer func() {
		switch {
		case err == nil:
			s.cfg.Logger.Info("backfill finished", logkey.BackfillID, r.cfg.ID, logkey.Table, r.cfg.Table, logkey.Elapsed, time.Since(started).Round(time.Millisecond))
		case s.closed() && !errors.Is(err, ErrClosed):
			// Close closes the query pool too: what failed then (a read,
			// a save of progress) failed because the stream was closed.
			err = fmt.Errorf("cdc: backfill %q: %w (then: %w)", r.cfg.ID, ErrClosed, err)
		}
	}()
	if done, err := r.resume(ctx); done || err != nil {
		return err
	}
	r.emitted = r.cfg.Cursor
	if err := r.open(ctx); err != nil {
		return err
	}
	if err := r.checkIdentity(ctx); err != nil {
		return err
	}
	r.stats = s.st.newBackfill(r.cfg.ID, r.schema+"."+r.table, s.estimateRows(ctx, r.schema, r.table))
	for {
		more, err := r.chunk(ctx)
		if err != nil {
			return err
		}
		if !more {
			return r.finish(ctx)
		}
	}
}

// backfillRun is one call of [Stream.Backfill]: it reads the table a chunk
// at a time through an iterator, hands each chunk to the reader to emit at
// its watermark, and saves the progress of the chunks whose reads are
// acknowledged.
type backfillRun struct {
	s   *Stream
	cfg backfill.Config // with the stream's defaults and the saved cursor

	it            *backfill.Iterator
	schema, table string          // the names changes to the table carry
	emitted       backfill.Cursor // after the last chunk whose reads were emitted
	seen          uint64          // the decoded transactions a chunk's snapshot saw
	queue         []inflight      // chunks emitted, waiting for acknowledgement
	bo            backoff.BackOff // nil until the first retry
	stats         *backfillCounters
}

// inflight is a chunk whose reads were emitted, with the cursor after it.
type inflight struct {
	ch     *chunk
	cursor backfill.Cursor
}

// newBackfillRun fills what cfg leaves to the stream.
func (s *Stream) newBackfillRun(cfg backfill.Config) *backfillRun {
	if cfg.Consumer.ID == "" && cfg.Consumer.Name == "" {
		cfg.Consumer = s.consumer
	}
	if cfg.Database.ID == "" && cfg.Database.Name == "" {
		cfg.Database = s.database
	}
	if cfg.Undecodable == nil && s.cfg.Undecodable == UndecodableText {
		cfg.Undecodable = s.undecodableRead(cfg.Table)
	}
	return &backfillRun{s: s, cfg: cfg}
}

// again waits before the work that failed with err is tried again. It
// returns err itself when a retry cannot help ([IsRetryable]) or the
// stream's Backoff policy gives up, and the stream's or ctx's error when
// they end first.
func (r *backfillRun) again(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !IsRetryable(err) {
		return err
	}
	if r.bo == nil {
		r.bo = r.s.cfg.Backoff()
	}
	d := r.bo.NextBackOff()
	if d == backoff.Stop {
		return err
	}
	r.s.cfg.Logger.Warn("backfill: retrying after an error", logkey.BackfillID, r.cfg.ID, logkey.Err, err, logkey.RetryIn, d)
	select {
	case <-time.After(d):
		return nil
	case <-r.s.done:
		return r.s.stopErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// resume creates the progress table if need be and loads the backfill's
// saved progress: it resumes after the saved cursor unless cfg.Cursor is
// set. done reports that the backfill finished before.
func (r *backfillRun) resume(ctx context.Context) (done bool, err error) {
	s := r.s
	var prog *backfill.Progress
	for {
		err := s.progress.Create(ctx, s.pool)
		if err == nil {
			prog, err = s.progress.Load(ctx, s.pool, r.cfg.ID)
		}
		if err == nil {
			break
		}
		if err := r.again(ctx, err); err != nil {
			return false, fmt.Errorf("cdc: %w", err)
		}
	}
	if prog == nil {
		return false, nil
	}
	if !sameTable(prog.Table, r.cfg.Table) {
		return false, fmt.Errorf("cdc: backfill %q: saved progress is for table %q, not %q", r.cfg.ID, prog.Table, r.cfg.Table)
	}
	if r.cfg.Cursor == nil {
		r.cfg.Cursor = prog.Cursor
	}
	return prog.Done, nil
}

// open (re)starts the iterator after the last chunk emitted: a chunk that
// failed may have moved it past rows it never emitted.
func (r *backfillRun) open(ctx context.Context) error {
	for {
		c := r.cfg
		c.Cursor = r.emitted
		it, err := backfill.New(ctx, r.s.pool, c)
		if err == nil {
			r.it = it
			r.schema, r.table = it.Table()
			return nil
		}
		if err := r.again(ctx, err); err != nil {
			return fmt.Errorf("cdc: %w", err)
		}
	}
}

// checkIdentity waits out failures a retry may fix, then checks the
// table's replica identity (see [Stream.checkIdentity]).
func (r *backfillRun) checkIdentity(ctx context.Context) error {
	for {
		err := r.s.checkIdentity(ctx, r.schema, r.table, r.it.PrimaryKey())
		if err == nil {
			return nil
		}
		if err := r.again(ctx, err); err != nil {
			return fmt.Errorf("cdc: backfill %q: %w", r.cfg.ID, err)
		}
	}
}

// chunk reads the next chunk, has the reader emit its reads at its
// watermark, and saves the progress of the chunks acknowledged by then.
// After a failure a retry may fix it reopens the iterator after the last
// chunk emitted, to read the chunk again. more is false, and nothing was
// read, when the table is done.
func (r *backfillRun) chunk(ctx context.Context) (more bool, err error) {
	s := r.s
	ch, reg := r.register()
	rows, snap, err := r.read(ctx, reg)
	if errors.Is(err, io.EOF) {
		s.chunks.remove(ch.id)
		return false, nil
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
			return false, fmt.Errorf("cdc: backfill %q: %w", r.cfg.ID, s.stopErr())
		case <-ctx.Done():
			return false, ctx.Err()
		}
		if ch.lost {
			err = errChunkLost
		}
	}
	if err != nil {
		s.chunks.remove(ch.id)
		if err := r.again(ctx, err); err != nil {
			return false, fmt.Errorf("cdc: backfill %q: %w", r.cfg.ID, err)
		}
		return true, r.open(ctx)
	}
	r.stats.rows.Add(uint64(len(rows)))
	if r.bo != nil {
		r.bo.Reset()
	}
	r.emitted = r.it.Cursor()
	r.queue = append(r.queue, inflight{ch, r.emitted})
	acked, _ := s.acks()
	return true, r.saveAcked(ctx, acked)
}

// register registers a new chunk of the table with the reader, which
// records the changes to the table against it from here on; reg counts the
// transactions decoded before, whose changes it did not record.
func (r *backfillRun) register() (ch *chunk, reg uint64) {
	s := r.s
	ch = &chunk{
		id:      fmt.Sprintf("%x-%d", s.id, s.chunks.seq.Add(1)),
		schema:  r.schema,
		table:   r.table,
		keyCols: r.it.PrimaryKey(),
		dirty:   make(map[string][]uint32),
		done:    make(chan struct{}),
	}
	s.chunks.register(ch)
	return ch, s.decoded.count()
}

// saveAcked saves the cursor of the last chunk whose reads are all
// acknowledged (up to sequence number acked). A failure a retry may fix is
// logged: a later save covers it.
func (r *backfillRun) saveAcked(ctx context.Context, acked uint64) error {
	var last *inflight
	for len(r.queue) > 0 && acked >= r.queue[0].ch.lastSeq {
		last = &r.queue[0]
		r.queue = r.queue[1:]
	}
	if last == nil {
		return nil
	}
	err := r.s.progress.Save(ctx, r.s.pool, backfill.Progress{ID: r.cfg.ID, Table: r.cfg.Table, Cursor: last.cursor})
	if err != nil && IsRetryable(err) && ctx.Err() == nil {
		r.s.cfg.Logger.Warn("backfill: progress not saved; a later chunk's will be", logkey.BackfillID, r.cfg.ID, logkey.Err, err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("cdc: %w", err)
	}
	return nil
}

// finish waits for the last reads to be acknowledged, saving progress as
// they are, then marks the backfill done.
func (r *backfillRun) finish(ctx context.Context) error {
	for len(r.queue) > 0 {
		acked, wake := r.s.acks()
		if err := r.saveAcked(ctx, acked); err != nil {
			return err
		}
		if len(r.queue) == 0 {
			break
		}
		select {
		case <-wake:
		case <-r.s.done:
			return fmt.Errorf("cdc: backfill %q: %w", r.cfg.ID, r.s.stopErr())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		err := r.s.progress.Save(ctx, r.s.pool, backfill.Progress{ID: r.cfg.ID, Table: r.cfg.Table, Cursor: r.it.Cursor(), Done: true})
		if err == nil {
			r.stats.done.Store(true)
			return nil
		}
		if err := r.again(ctx, err); err != nil {
			return fmt.Errorf("cdc: %w", err)
		}
	}
}

// read reads the next page in a REPEATABLE READ transaction, together
// with that transaction's snapshot. The snapshot must see the transactions
// the stream decoded before the chunk was registered (the reg-th), whose
// changes the chunk did not record: while one is still invisible, it waits
// and takes a newer snapshot. r.seen counts the decoded transactions an
// earlier snapshot of this backfill saw, which later ones see too.
func (r *backfillRun) read(ctx context.Context, reg uint64) ([]message.Message, snapshot, error) {
	s := r.s
	wait := time.Millisecond
	start, warned := time.Now(), false
	for {
		rows, snap, xid, retry, err := r.readOnce(ctx, reg)
		if err != nil || !retry {
			if err == nil {
				r.seen = reg
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

// readOnce is one attempt of read: retry reports that the snapshot does
// not see transaction xid, decoded before the chunk was registered, and
// nothing was read.
func (r *backfillRun) readOnce(ctx context.Context, reg uint64) (rows []message.Message, snap snapshot, xid uint32, retry bool, err error) {
	tx, err := r.s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
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
	if xid, unseen := r.s.decoded.unseen(r.seen, reg, snap); unseen {
		return nil, snapshot{}, xid, true, nil
	}
	if rows, err = r.it.NextChunk(ctx, tx); err != nil {
		return nil, snapshot{}, 0, false, err
	}
	return rows, snap, 0, false, tx.Commit(ctx)
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
	case err != nil && IsRetryable(err):
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

// qualifiedTable parses a table name from the user (see
// [message.ParseTable]); a name without a schema is in public.
func qualifiedTable(name string) (schema, table string, err error) {
	schema, table, err = message.ParseTable(name)
	if schema == "" && err == nil {
		schema = "public"
	}
	return schema, table, err
}

// BackfillStatus returns the saved progress of backfill id, or nil when it
// never saved any (also when the progress table does not exist yet: it
// reads, and creates nothing).
func (s *Stream) BackfillStatus(ctx context.Context, id string) (*backfill.Progress, error) {
	p, err := s.progress.Load(ctx, s.pool, id)
	if err != nil {
		return nil, fmt.Errorf("cdc: %w", err)
	}
	return p, nil
}
