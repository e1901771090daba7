package cdc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/walrelay/walrelay/internal/pgvalue"
	"github.com/walrelay/walrelay/message"
)

// Open checks the server, the publication and the slot, creates them when
// the Config says so, and starts streaming. With Config.WaitForSlot it
// blocks while another process holds the slot. ctx bounds only Open itself.
func Open(ctx context.Context, cfg Config) (*Stream, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	poolCfg, err := pgxpool.ParseConfig(cfg.ConnString)
	if err != nil {
		return nil, &ConfigError{Err: errors.New("ConnString is not a valid postgres URL or DSN")}
	}
	poolCfg.MaxConns = 4
	defaultAppName(poolCfg.ConnConfig.RuntimeParams)
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
	}
	var id [8]byte
	rand.Read(id[:])
	s.id = binary.LittleEndian.Uint64(id[:]) | 1
	if err := s.prepare(ctx); err != nil {
		cancel0()
		pool.Close()
		return nil, err
	}
	conn, err := s.connect(ctx, cfg.WaitForSlot)
	if err != nil {
		cancel0()
		pool.Close()
		return nil, err
	}
	s.conn = conn
	go s.run()
	// A standby takes no writes: there the slot advances, when nothing
	// is in flight, by acknowledging the keepalives' WAL position alone.
	if cfg.HeartbeatInterval > 0 && !s.fo.standby {
		s.wg.Add(1)
		go s.heartbeat()
	}
	return s, nil
}

// prepare checks wal_level, the publication and the slot (creating them
// when configured), and fills the identity metadata.
func (s *Stream) prepare(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("cdc: connect: %w", err)
	}
	defer conn.Release()
	var walLevel, dbName string
	var version int
	if err := conn.QueryRow(ctx, "select current_setting('wal_level'), current_database(), current_setting('server_version_num')::int, pg_is_in_recovery()").Scan(&walLevel, &dbName, &version, &s.fo.standby); err != nil {
		return fmt.Errorf("cdc: check server: %w", err)
	}
	if s.fo.standby && version < 160000 {
		return fmt.Errorf("%w: the server is a standby (in recovery), and logical decoding on a standby needs PostgreSQL 16 or newer; the server is %d.%d", ErrServerVersion, version/10000, version%10000)
	}
	if walLevel != "logical" {
		return fmt.Errorf("%w: it is %q; set wal_level = logical in postgresql.conf and restart the server", ErrWALLevel, walLevel)
	}
	if s.cfg.Failover && version < 170000 {
		return fmt.Errorf("%w: Config.Failover needs PostgreSQL 17 or newer (failover slots); the server is %d.%d", ErrServerVersion, version/10000, version%10000)
	}
	s.dbName = dbName

	var pubExists bool
	if err := conn.QueryRow(ctx, "select exists(select 1 from pg_publication where pubname = $1)", s.cfg.Publication).Scan(&pubExists); err != nil {
		return fmt.Errorf("cdc: check publication: %w", err)
	}
	if !pubExists {
		if !s.cfg.CreatePublication {
			return fmt.Errorf("%w: %q (create it with CREATE PUBLICATION, or set Config.CreatePublication)", ErrPublicationNotFound, s.cfg.Publication)
		}
		if err := createPublication(ctx, conn.Conn(), s.cfg.Publication, s.cfg.PublicationTables); err != nil {
			return err
		}
	}

	st, err := slotState(ctx, conn.Conn(), s.cfg.Slot)
	if err != nil {
		return err
	}
	if st == nil {
		if !s.cfg.CreateSlot {
			return &SlotError{Slot: s.cfg.Slot, Err: ErrSlotNotFound, Detail: "create it with pg_create_logical_replication_slot(name, 'pgoutput'), or set Config.CreateSlot"}
		}
		create := "select lsn::text from pg_create_logical_replication_slot($1, 'pgoutput')"
		if s.cfg.Failover {
			create = "select lsn::text from pg_create_logical_replication_slot($1, 'pgoutput', failover => true)"
		}
		var lsn string
		err := conn.QueryRow(ctx, create, s.cfg.Slot).Scan(&lsn)
		if pgCode(err) == "42710" { // duplicate_object: created concurrently by another process
			err = nil
		}
		if err != nil {
			return fmt.Errorf("cdc: create slot %q: %w", s.cfg.Slot, err)
		}
		if st, err = slotState(ctx, conn.Conn(), s.cfg.Slot); err != nil {
			return err
		}
		if st == nil {
			return &SlotError{Slot: s.cfg.Slot, Err: ErrSlotNotFound, Detail: "dropped right after creation"}
		}
	}
	if err := st.check(s.cfg.Slot, dbName); err != nil {
		return err
	}
	// A slot created without failover gets it on the replication
	// connection (ALTER_REPLICATION_SLOT has no SQL function).
	s.fo.alterFailover = s.cfg.Failover && !st.failover
	if st.active && !s.cfg.WaitForSlot {
		return &SlotError{Slot: s.cfg.Slot, Err: ErrSlotInUse, Detail: fmt.Sprintf("held by backend pid %d; set Config.WaitForSlot to wait as a standby", st.activePID)}
	}
	s.flushed = st.confirmedFlush

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
	return nil
}

func createPublication(ctx context.Context, conn *pgx.Conn, name string, tables []string) error {
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
	if _, err := conn.Exec(ctx, sql); err != nil && pgCode(err) != "42710" {
		return fmt.Errorf("cdc: create publication %q: %w", name, err)
	}
	return nil
}

type slotInfo struct {
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
func slotState(ctx context.Context, conn *pgx.Conn, slot string) (*slotInfo, error) {
	var st slotInfo
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

func (st *slotInfo) check(slot, db string) error {
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
		s.cfg.Logger.Info("slot in use; waiting as a standby", "slot", s.cfg.Slot, "retry_in", d)
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
	pc, err := pgconn.ParseConfig(s.cfg.ConnString)
	if err != nil {
		return nil, &ConfigError{Err: errors.New("ConnString is not a valid postgres URL or DSN")}
	}
	pc.RuntimeParams["replication"] = "database"
	defaultAppName(pc.RuntimeParams)
	textOutput(pc.RuntimeParams)
	pc.BuildFrontend = replicationFrontend
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("cdc: replication connect: %w", err)
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
		return err
	}
	defer conn.Release()
	st, serr := slotState(cctx, conn.Conn(), s.cfg.Slot)
	if serr != nil {
		return err
	}
	if st == nil && s.fo.promoted != "" {
		return &SlotError{Slot: s.cfg.Slot, Err: ErrSlotNotSynced, Detail: s.fo.promoted + " without the slot (was it created with Config.Failover, and did the standby synchronise it: sync_replication_slots = on); changes after the failover cannot be streamed from here without loss: create a new slot and backfill"}
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
