package cdc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/internal/logkey"
	"github.com/walrelay/walrelay/internal/pgoutput"
	"github.com/walrelay/walrelay/internal/pgvalue"
	"github.com/walrelay/walrelay/message"
)

// Open checks the database as [Check] does, creates the publication and
// the slot when the Config says so, and starts streaming. A blocking
// finding makes it return a [*CheckError] before it creates anything; the
// warnings are logged. When Open fails after it created the publication or
// the slot (or added tables to the publication), it drops them again, so
// a failed Open leaves nothing behind. With Config.WaitForSlot it blocks
// while another process holds the slot. ctx bounds only Open itself.
func Open(ctx context.Context, cfg Config) (*Stream, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	poolCfg, err := cfg.poolConfig()
	if err != nil {
		return nil, err
	}
	progress, err := backfill.NewProgressStore(cfg.BackfillTable)
	if err != nil {
		return nil, &ConfigError{Err: fmt.Errorf("BackfillTable: %w", err)}
	}
	textOutput(poolCfg.ConnConfig.RuntimeParams) // backfill reads decode like the WAL
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("cdc: connect: %w", err)
	}
	ctx0, cancel0 := context.WithCancel(context.Background())
	s := &Stream{
		cfg:     cfg,
		pool:    pool,
		mapper:  pgvalue.NewMapper(),
		out:     make(chan queued, cfg.BufferSize),
		space:   make(chan struct{}, 1),
		closing: make(chan struct{}),
		ctx:     ctx0,
		cancel:  cancel0,
		done:    make(chan struct{}),
		rels:    make(map[uint32]*relation),
		// Every value is decoded into the arena (a copy) before the next
		// receive reuses the buffer the tuples point into.
		parser: pgoutput.Parser{Borrow: true},

		progress: progress,
	}
	var id [8]byte
	rand.Read(id[:])
	s.id = binary.LittleEndian.Uint64(id[:]) | 1
	var made created
	fail := func(err error) (*Stream, error) {
		s.undo(ctx, &made)
		cancel0()
		pool.Close()
		return nil, err
	}
	if err := s.prepare(ctx, &made); err != nil {
		return fail(err)
	}
	conn, err := s.connect(ctx, cfg.WaitForSlot)
	if err != nil {
		return fail(err)
	}
	s.conn = conn
	s.logStart(ctx)
	go s.run()
	// A standby takes no writes: there the slot advances, when nothing
	// is in flight, by acknowledging the keepalives' WAL position alone.
	if cfg.HeartbeatInterval > 0 && !s.fo.standby {
		s.wg.Add(1)
		go s.heartbeat()
	}
	return s, nil
}

// created is what one Open created, for undo.
type created struct {
	publication bool
	tables      []string // quoted, added to an existing publication
	slot        bool
}

// undo drops what a failed Open created, so that it leaves nothing
// behind. It logs what it could not drop.
func (s *Stream) undo(ctx context.Context, made *created) {
	if !made.publication && !made.slot && len(made.tables) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if made.slot {
		if err := dropSlotWaiting(ctx, s.pool, s.cfg.Slot); err != nil {
			s.cfg.Logger.Warn("Open failed and could not drop the slot it created", logkey.Slot, s.cfg.Slot, logkey.Err, err)
		}
	}
	pub := pgx.Identifier{s.cfg.Publication}.Sanitize()
	if made.publication {
		if _, err := s.pool.Exec(ctx, "drop publication if exists "+pub); err != nil {
			s.cfg.Logger.Warn("Open failed and could not drop the publication it created", logkey.Publication, s.cfg.Publication, logkey.Err, err)
		}
	} else if len(made.tables) > 0 {
		if _, err := s.pool.Exec(ctx, "alter publication "+pub+" drop table "+strings.Join(made.tables, ", ")); err != nil {
			s.cfg.Logger.Warn("Open failed and could not remove the tables it added to the publication", logkey.Publication, s.cfg.Publication, logkey.Tables, made.tables, logkey.Err, err)
		}
	}
}

// logStart logs, at Info, what the stream streams and from where.
func (s *Stream) logStart(ctx context.Context) {
	if !s.cfg.Logger.Enabled(ctx, slog.LevelInfo) {
		return
	}
	const most = 50
	var tables []string
	var n int
	rows, err := s.pool.Query(ctx, "select format('%I.%I', schemaname, tablename) from pg_publication_tables where pubname = $1 order by 1", s.cfg.Publication)
	if err == nil {
		var t string
		pgx.ForEachRow(rows, []any{&t}, func() error {
			if n++; n <= most {
				tables = append(tables, t)
			}
			return nil
		})
	}
	s.cfg.Logger.Info("stream started", logkey.Slot, s.cfg.Slot, logkey.Publication, s.cfg.Publication,
		logkey.Tables, tables, logkey.TableCount, n, logkey.StartLSN, s.flushed.String())
}

// prepare runs the preflight checks, creates the publication and the slot
// when configured (recording them in made), and fills the identity
// metadata.
func (s *Stream) prepare(ctx context.Context, made *created) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return connectError("connect to", &s.pool.Config().ConnConfig.Config, err)
	}
	defer conn.Release()
	p, err := inspect(ctx, conn.Conn(), &s.cfg)
	if err != nil {
		return err
	}
	if len(blocking(p.findings)) > 0 {
		return &CheckError{Findings: p.findings}
	}
	for _, f := range p.findings {
		if f.Code != FindingSlotInUse { // Open's own concern, below
			s.cfg.Logger.Warn(f.Message, logkey.Code, string(f.Code), logkey.Object, f.Object, logkey.Fix, f.Fix)
		}
	}
	s.dbName, s.fo.standby = p.dbName, p.standby

	if !p.pubExists {
		ok, err := createPublication(ctx, conn.Conn(), s.cfg.Publication, s.cfg.PublicationTables)
		if err != nil {
			return err
		}
		made.publication = ok
	} else if len(p.add) > 0 {
		_, err := conn.Exec(ctx, "alter publication "+pgx.Identifier{s.cfg.Publication}.Sanitize()+" add table "+strings.Join(p.add, ", "))
		if err != nil {
			return fmt.Errorf("cdc: add tables to publication %q: %w", s.cfg.Publication, err)
		}
		made.tables = p.add
		s.cfg.Logger.Info("tables added to the publication", logkey.Publication, s.cfg.Publication, logkey.Tables, p.add)
	}

	st := p.slot
	if s.cfg.TemporarySlot {
		// Created by connectOnce, on the replication connection it lives
		// and dies with (inspect refused a slot of that name).
		s.tempSlot = true
	} else if st == nil {
		var err error
		if st, err = s.createSlot(ctx, conn.Conn(), p.dbName, made); err != nil {
			return err
		}
	}
	if st != nil {
		// A slot created without failover gets it on the replication
		// connection (ALTER_REPLICATION_SLOT has no SQL function).
		s.fo.alterFailover = s.cfg.Failover && !st.failover
		if st.active && !s.cfg.WaitForSlot {
			return &SlotError{Slot: s.cfg.Slot, Err: ErrSlotInUse, Detail: fmt.Sprintf("held by backend pid %d; set Config.WaitForSlot to wait as a standby", st.activePID)}
		}
		s.flushed = st.confirmedFlush
	}

	s.fillMetadata(p.dbName)
	return nil
}

// createSlot creates the slot (with failover when configured), and
// returns its state.
func (s *Stream) createSlot(ctx context.Context, conn *pgx.Conn, dbName string, made *created) (*slotRow, error) {
	create := "select lsn::text from pg_create_logical_replication_slot($1, 'pgoutput')"
	if s.cfg.Failover {
		create = "select lsn::text from pg_create_logical_replication_slot($1, 'pgoutput', failover => true)"
	}
	var lsn string
	err := conn.QueryRow(ctx, create, s.cfg.Slot).Scan(&lsn)
	made.slot = err == nil
	if pgCode(err) == "42710" { // duplicate_object: created concurrently by another process
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("cdc: create slot %q: %w", s.cfg.Slot, err)
	}
	st, err := slotState(ctx, conn, s.cfg.Slot)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, &SlotError{Slot: s.cfg.Slot, Err: ErrSlotNotFound, Detail: "dropped right after creation"}
	}
	if err := st.check(s.cfg.Slot, dbName); err != nil {
		return nil, err
	}
	return st, nil
}

// fillMetadata sets the consumer and database every message carries, with
// the defaults Config.Consumer and Config.Database document.
func (s *Stream) fillMetadata(dbName string) {
	s.consumer = s.cfg.Consumer
	if s.consumer.ID == "" {
		s.consumer.ID = s.cfg.Slot
	}
	if s.consumer.Name == "" {
		s.consumer.Name = s.cfg.Slot
	}
	s.database = s.cfg.Database
	if s.database.Name == "" {
		s.database.Name = dbName
	}
	if s.database.Database == "" {
		s.database.Database = dbName
	}
	if s.database.Hostname == "" {
		s.database.Hostname = s.pool.Config().ConnConfig.Host
	}
}

// createPublication creates the publication for tables, or for all tables
// when there are none (Config.validate allows that only with
// PublicationAllTables). It reports whether this call created it (false
// when another process did, concurrently).
func createPublication(ctx context.Context, conn *pgx.Conn, name string, tables []string) (bool, error) {
	sql := "create publication " + pgx.Identifier{name}.Sanitize()
	if len(tables) == 0 {
		sql += " for all tables"
	} else {
		quoted := make([]string, len(tables))
		for i, t := range tables {
			schema, table, _ := qualifiedTable(t) // Config.validate checked it
			quoted[i] = pgx.Identifier{schema, table}.Sanitize()
		}
		sql += " for table " + strings.Join(quoted, ", ")
	}
	// Changes to partitions are published as changes to their root table.
	sql += " with (publish_via_partition_root = true)"
	_, err := conn.Exec(ctx, sql)
	if pgCode(err) == "42710" {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cdc: create publication %q: %w", name, err)
	}
	return true, nil
}

// dropSlotWaiting drops the slot, waiting a little while it is still active: the
// walsender of a connection just closed may not have released it yet. A
// slot that is gone already is not an error.
func dropSlotWaiting(ctx context.Context, pool *pgxpool.Pool, slot string) error {
	for {
		_, err := pool.Exec(ctx, "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1", slot)
		if pgCode(err) != "55006" { // object_in_use
			return err
		}
		select {
		case <-ctx.Done():
			return &SlotError{Slot: slot, Err: ErrSlotInUse, Detail: err.Error()}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type slotRow struct {
	slotType, plugin, database, walStatus string
	active                                bool
	activePID                             int32
	confirmedFlush                        message.LSN
	// invalidation is why Postgres invalidated the slot (17+:
	// invalidation_reason; 16: "conflicting" for a slot on a standby that
	// conflicted with recovery); "" when valid.
	invalidation string
	// failover and synced are 17+ (false before); standby: the server is
	// in recovery.
	failover, synced, standby bool
}

// slotState reads the slot's row of pg_replication_slots, nil when there
// is none. Columns that only some versions have are read through to_jsonb,
// so one query serves 14 to 18.
func slotState(ctx context.Context, conn *pgx.Conn, slot string) (*slotRow, error) {
	var st slotRow
	var plugin, database, walStatus, flush, invalidation *string
	var pid *int32
	var conflicting, failover, synced *bool
	err := conn.QueryRow(ctx, `select slot_type, plugin, database, active, active_pid, wal_status, confirmed_flush_lsn::text,
			j->>'invalidation_reason', (j->>'conflicting')::bool, (j->>'failover')::bool, (j->>'synced')::bool, pg_is_in_recovery()
		from (select s.*, to_jsonb(s) j from pg_replication_slots s where slot_name = $1) s`, slot).
		Scan(&st.slotType, &plugin, &database, &st.active, &pid, &walStatus, &flush,
			&invalidation, &conflicting, &failover, &synced, &st.standby)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cdc: check slot %q: %w", slot, err)
	}
	st.plugin, st.database, st.walStatus = deref(plugin), deref(database), deref(walStatus)
	st.invalidation = deref(invalidation)
	if st.invalidation == "" && conflicting != nil && *conflicting {
		st.invalidation = "conflict with recovery"
	}
	st.failover = failover != nil && *failover
	st.synced = synced != nil && *synced
	if pid != nil {
		st.activePID = *pid
	}
	if flush != nil {
		if st.confirmedFlush, err = message.ParseLSN(*flush); err != nil {
			return nil, fmt.Errorf("cdc: check slot %q: %w", slot, err)
		}
	}
	return &st, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (st *slotRow) check(slot, db string) error {
	switch {
	case st.slotType != "logical":
		return &SlotError{Slot: slot, Err: ErrSlotMismatch, Detail: "it is a " + st.slotType + " slot, not a logical one"}
	case st.plugin != "pgoutput":
		return &SlotError{Slot: slot, Err: ErrSlotMismatch, Detail: fmt.Sprintf("it uses plugin %q, not pgoutput", st.plugin)}
	case st.database != db:
		return &SlotError{Slot: slot, Err: ErrSlotMismatch, Detail: fmt.Sprintf("it belongs to database %q, not %q", st.database, db)}
	case st.walStatus == "lost":
		return &SlotError{Slot: slot, Err: ErrSlotInvalidated, Detail: "Postgres removed WAL it needed (max_slot_wal_keep_size); drop it, create a new one and backfill"}
	case st.invalidation != "":
		return &SlotError{Slot: slot, Err: ErrSlotInvalidated, Detail: "Postgres invalidated it (" + st.invalidation + "); drop it, create a new one and backfill"}
	case st.synced && st.standby:
		return &SlotError{Slot: slot, Err: ErrSlotSyncing, Detail: "this server is a standby whose copy of the slot follows the primary; stream from the primary, or from this server once it is promoted"}
	}
	return nil
}

// connect opens the replication connection and starts streaming from the
// slot. While the slot is held by another process it waits (wait=true) or
// returns ErrSlotInUse.
func (s *Stream) connect(ctx context.Context, wait bool) (*pgconn.PgConn, error) {
	var b backoff.BackOff
	for {
		conn, err := s.connectOnce(ctx)
		if err == nil {
			return conn, nil
		}
		if !errors.Is(err, ErrSlotInUse) || !wait {
			return nil, err
		}
		if b == nil {
			b = s.cfg.Backoff()
		}
		d := b.NextBackOff()
		if d == backoff.Stop {
			return nil, err
		}
		s.cfg.Logger.Info("slot in use; waiting as a standby", logkey.Slot, s.cfg.Slot, logkey.RetryIn, d)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cdc: waiting for slot %q: %w", s.cfg.Slot, context.Cause(ctx))
		case <-s.closing:
			return nil, ErrClosed
		case <-time.After(d):
		}
	}
}

// defaultAppName names walrelay's connections "walrelay" unless the
// connection string names them.
func defaultAppName(params map[string]string) {
	if params["application_name"] == "" {
		params["application_name"] = "walrelay"
	}
}

// textOutput sets the session settings that shape values' text to what
// the value mapper expects, whatever the role's or database's defaults (a
// database with DateStyle 'SQL, DMY' would otherwise print timestamps the
// mapper cannot read).
func textOutput(params map[string]string) {
	params["DateStyle"] = "ISO, MDY"
	params["IntervalStyle"] = "postgres"
	params["TimeZone"] = "UTC"
	params["extra_float_digits"] = "3"
}

func (s *Stream) connectOnce(ctx context.Context) (*pgconn.PgConn, error) {
	pc, err := s.cfg.replicationConfig()
	if err != nil {
		return nil, err
	}
	textOutput(pc.RuntimeParams)
	pc.BuildFrontend = replicationFrontend
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, connectError("replication connect to", pc, err)
	}
	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("cdc: identify system: %w", err)
	}
	if s.database.ID == "" {
		s.database.ID = sys.SystemID
	}
	if err := s.followTimeline(ctx, conn, sys.Timeline); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	if s.fo.alterFailover {
		_, err := conn.Exec(ctx, "ALTER_REPLICATION_SLOT "+pgx.Identifier{s.cfg.Slot}.Sanitize()+" ( FAILOVER true )").ReadAll()
		if err != nil {
			conn.Close(context.Background())
			return nil, s.diagnose(ctx, fmt.Errorf("cdc: set failover on slot %q: %w", s.cfg.Slot, err))
		}
		s.fo.alterFailover = false
	}
	if s.tempSlot {
		// Once only: a later connection finds the slot gone with the
		// first one, and diagnose says so.
		s.tempSlot = false
		res, err := pglogrepl.CreateReplicationSlot(ctx, conn, s.cfg.Slot, "pgoutput",
			pglogrepl.CreateReplicationSlotOptions{Temporary: true, Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
		if err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("cdc: create temporary slot %q: %w", s.cfg.Slot, err)
		}
		lsn, err := message.ParseLSN(res.ConsistentPoint)
		if err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("cdc: create temporary slot %q: %w", s.cfg.Slot, err)
		}
		s.mu.Lock()
		s.flushed = lsn
		s.mu.Unlock()
	}
	s.mu.Lock()
	start := s.received
	s.mu.Unlock()
	err = pglogrepl.StartReplication(ctx, conn, s.cfg.Slot, pglogrepl.LSN(start), pglogrepl.StartReplicationOptions{
		PluginArgs: []string{
			"proto_version '1'",
			"publication_names " + quoteLiteral(s.cfg.Publication),
			"messages 'true'",
		},
	})
	if err != nil {
		conn.Close(context.Background())
		return nil, s.diagnose(ctx, fmt.Errorf("cdc: start replication: %w", err))
	}
	return conn, nil
}

// diagnose turns a replication error into the typed error that explains it,
// by looking at the slot and publication in the catalog.
func (s *Stream) diagnose(ctx context.Context, err error) error {
	code := pgCode(err)
	if code == "55006" { // object_in_use
		return &SlotError{Slot: s.cfg.Slot, Err: ErrSlotInUse, Detail: err.Error()}
	}
	if IsAuthError(err) || code == "" {
		return err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	conn, aerr := s.pool.Acquire(cctx)
	if aerr != nil {
		return fmt.Errorf("%w: %w (%v)", errUndiagnosed, err, aerr)
	}
	defer conn.Release()
	st, serr := slotState(cctx, conn.Conn(), s.cfg.Slot)
	if serr != nil {
		return fmt.Errorf("%w: %w (%v)", errUndiagnosed, err, serr)
	}
	if st == nil && s.fo.promoted != "" {
		return &SlotError{Slot: s.cfg.Slot, Err: ErrSlotNotSynced, Detail: s.fo.promoted + " without the slot (was it created with Config.Failover, and did the standby synchronise it: sync_replication_slots = on); changes after the failover cannot be streamed from here without loss: create a new slot and backfill"}
	}
	if st == nil && s.cfg.TemporarySlot {
		return &SlotError{Slot: s.cfg.Slot, Err: ErrSlotNotFound, Detail: "it was a temporary slot, gone with the replication connection that was lost; the changes since cannot be streamed from it"}
	}
	if st == nil {
		return &SlotError{Slot: s.cfg.Slot, Err: ErrSlotNotFound, Detail: "it was dropped; it is not re-created because changes may have been lost"}
	}
	if cerr := st.check(s.cfg.Slot, s.dbName); cerr != nil {
		return cerr
	}
	if code == "55000" && st.walStatus == "unreserved" {
		return &SlotError{Slot: s.cfg.Slot, Err: ErrSlotInvalidated, Detail: err.Error()}
	}
	if code == "42704" { // undefined_object, slot present: the publication
		return publicationMissing(cctx, conn.Conn(), s.cfg.Publication, err)
	}
	return err
}

// publicationMissing is the error for a publication that the slot cannot
// see at the position it decodes: dropped, or created after the slot.
func publicationMissing(ctx context.Context, conn *pgx.Conn, pub string, cause error) error {
	var exists bool
	conn.QueryRow(ctx, "select exists(select 1 from pg_publication where pubname = $1)", pub).Scan(&exists)
	detail := "it was dropped"
	if exists {
		detail = "it was created after the slot, which cannot see it; drop and re-create the slot after the publication"
	}
	return fmt.Errorf("%w: %q: %s: %w", ErrPublicationNotFound, pub, detail, cause)
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
