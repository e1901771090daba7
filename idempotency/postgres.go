package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walrelay/walrelay/message"
)

// DefaultTable is the table a [PostgresStore] uses when its config names none.
const DefaultTable = "walrelay_idempotency"

// Querier runs SQL. *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it. A
// [PostgresStore] given a *pgx.Conn must not be used concurrently, as the
// connection cannot be.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// PostgresConfig configures a [PostgresStore]. The zero value is valid.
type PostgresConfig struct {
	// Table holds the claimed keys: "name" or "schema.name", written as in
	// SQL (see [message.ParseTable]: unquoted names are folded to lower
	// case, so Keys is the table keys; "Keys" in double quotes keeps its
	// case). It is created if missing, with the columns
	// key text primary key and claimed_at timestamptz. Empty means
	// [DefaultTable] in the connection's search_path.
	Table string

	// Retention is how long keys are kept. When positive, Claim and
	// ClaimAll delete keys older than Retention, at most once every
	// Retention/16 (and at least every hour), before claiming. Zero keeps
	// keys until [PostgresStore.Prune] deletes them; the claims made only
	// through ClaimTx never prune, so call Prune periodically then.
	Retention time.Duration

	// Logger receives a warning when an automatic prune fails (the claim
	// itself still succeeds). Nil is silent.
	Logger *slog.Logger
}

// PostgresStore is a [Store] kept in a Postgres table, shared by every
// process using that table and surviving restarts.
//
// Its ClaimTx and ClaimAllTx methods claim inside the caller's own
// transaction: when that transaction also applies the change, the effect
// and the claim commit together or not at all, so a crash can never leave
// an effect applied but unclaimed (it would be applied twice) or claimed
// but unapplied (it would be lost). That is how a consumer turns
// at-least-once delivery into exactly-once effects in its database.
type PostgresStore struct {
	db     Querier
	table  string // quoted, possibly schema-qualified
	logger *slog.Logger

	retention  time.Duration
	pruneEvery time.Duration

	claimSQL, claimAllSQL, seenSQL, pruneSQL string

	pruneMu   sync.Mutex
	lastPrune time.Time
}

var _ Store = (*PostgresStore)(nil)

// NewPostgresStore validates cfg, creates the table (and an index on its
// claimed_at column) if missing, checks its columns, and returns a store
// using db.
func NewPostgresStore(ctx context.Context, db Querier, cfg PostgresConfig) (*PostgresStore, error) {
	if db == nil {
		return nil, errors.New("idempotency: postgres store: nil Querier")
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("idempotency: postgres store: negative Retention %v", cfg.Retention)
	}
	name := cfg.Table
	if name == "" {
		name = DefaultTable
	}
	schema, tname, err := message.ParseTable(name)
	if err != nil {
		return nil, fmt.Errorf("idempotency: postgres store: Table: %w", err)
	}
	ident := pgx.Identifier{tname}
	if schema != "" {
		ident = pgx.Identifier{schema, tname}
	}
	table := ident.Sanitize()
	idx := pgx.Identifier{indexName(tname)}.Sanitize()

	s := &PostgresStore{
		db:          db,
		table:       table,
		logger:      cfg.Logger,
		retention:   cfg.Retention,
		claimSQL:    "insert into " + table + " (key) values ($1) on conflict (key) do nothing",
		claimAllSQL: "insert into " + table + " (key) select k from unnest($1::text[]) as u(k) order by k on conflict (key) do nothing returning key",
		seenSQL:     "select key from " + table + " where key = any($1::text[])",
		pruneSQL:    "delete from " + table + " where claimed_at <= now() - $1::bigint * interval '1 microsecond'",
	}
	if s.retention > 0 {
		s.pruneEvery = min(s.retention/16, time.Hour)
	}
	create := []string{
		"create table if not exists " + table + " (key text primary key, claimed_at timestamptz not null default now())",
		"create index if not exists " + idx + " on " + table + " (claimed_at)",
	}
	for _, q := range create {
		if err := execCreate(ctx, db, q); err != nil {
			return nil, fmt.Errorf("idempotency: create table %s: %w", table, err)
		}
	}
	var key string
	var at time.Time
	err = db.QueryRow(ctx, "select key, claimed_at from "+table+" limit 0").Scan(&key, &at)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("idempotency: check table %s: %w", table, err)
	}
	return s, nil
}

// execCreate runs an "if not exists" statement, retrying when a concurrent
// creator won the race (Postgres then reports a duplicate object).
func execCreate(ctx context.Context, db Querier, q string) error {
	var err error
	for range 3 {
		if _, err = db.Exec(ctx, q); err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			return err
		}
		switch pgErr.Code {
		case "23505", "42P07", "42710": // unique_violation (pg_type), duplicate_table, duplicate_object
		default:
			return err
		}
	}
	return err
}

// Table returns the store's table name, quoted and ready for SQL.
func (s *PostgresStore) Table() string { return s.table }

// Claim implements [Store], in a transaction of its own.
func (s *PostgresStore) Claim(ctx context.Context, key string) (bool, error) {
	if err := checkKeys(key); err != nil {
		return false, err
	}
	s.maybePrune(ctx)
	return s.claim(ctx, s.db, key)
}

// ClaimAll implements [Store], in a transaction of its own.
func (s *PostgresStore) ClaimAll(ctx context.Context, keys ...string) ([]bool, error) {
	if err := checkKeys(keys...); err != nil {
		return nil, err
	}
	s.maybePrune(ctx)
	return s.claimAll(ctx, s.db, keys)
}

// ClaimTx claims key inside tx: the claim commits or rolls back with tx.
// Claim first, then apply the change only when first is true, then commit.
//
// While another open transaction holds a claim of key, ClaimTx waits for it
// to end: if it commits, first is false; if it rolls back, this claim can be
// first. Under REPEATABLE READ or SERIALIZABLE isolation, a claim committed
// by another transaction after tx began is a serialization failure
// (SQLSTATE 40001): retry the whole transaction.
func (s *PostgresStore) ClaimTx(ctx context.Context, tx pgx.Tx, key string) (bool, error) {
	if err := checkKeys(key); err != nil {
		return false, err
	}
	return s.claim(ctx, tx, key)
}

// ClaimAllTx claims keys inside tx, as [PostgresStore.ClaimTx] does one key;
// first[i] reports whether keys[i] was claimed by this call.
func (s *PostgresStore) ClaimAllTx(ctx context.Context, tx pgx.Tx, keys ...string) ([]bool, error) {
	if err := checkKeys(keys...); err != nil {
		return nil, err
	}
	return s.claimAll(ctx, tx, keys)
}

// Seen implements [Store].
func (s *PostgresStore) Seen(ctx context.Context, keys ...string) ([]bool, error) {
	if err := checkKeys(keys...); err != nil {
		return nil, err
	}
	seen := make([]bool, len(keys))
	if len(keys) == 0 {
		return seen, ctxErr(ctx, "seen")
	}
	rows, err := s.db.Query(ctx, s.seenSQL, keys)
	if err != nil {
		return nil, fmt.Errorf("idempotency: seen: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("idempotency: seen: %w", err)
	}
	set := make(map[string]struct{}, len(found))
	for _, k := range found {
		set[k] = struct{}{}
	}
	for i, k := range keys {
		_, seen[i] = set[k]
	}
	return seen, nil
}

// Prune deletes the keys claimed more than olderThan ago, by the database
// server's clock, and returns how many it deleted. Prune(ctx, 0) deletes
// every key claimed by a committed transaction. A pruned key can be claimed
// again: keep keys longer than a message can take to be redelivered.
func (s *PostgresStore) Prune(ctx context.Context, olderThan time.Duration) (int64, error) {
	if olderThan < 0 {
		return 0, fmt.Errorf("idempotency: prune: negative age %v", olderThan)
	}
	tag, err := s.db.Exec(ctx, s.pruneSQL, olderThan.Microseconds())
	if err != nil {
		return 0, fmt.Errorf("idempotency: prune: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (s *PostgresStore) claim(ctx context.Context, q Querier, key string) (bool, error) {
	tag, err := q.Exec(ctx, s.claimSQL, key)
	if err != nil {
		return false, fmt.Errorf("idempotency: claim: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s *PostgresStore) claimAll(ctx context.Context, q Querier, keys []string) ([]bool, error) {
	first := make([]bool, len(keys))
	if len(keys) == 0 {
		return first, ctxErr(ctx, "claim")
	}
	// Send each key once, sorted: concurrent batches then lock their keys
	// in the same order and cannot deadlock on each other.
	uniq := slices.Clone(keys)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)
	rows, err := q.Query(ctx, s.claimAllSQL, uniq)
	if err != nil {
		return nil, fmt.Errorf("idempotency: claim: %w", err)
	}
	claimed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("idempotency: claim: %w", err)
	}
	set := make(map[string]bool, len(claimed))
	for _, k := range claimed {
		set[k] = true
	}
	for i, k := range keys {
		if set[k] {
			first[i] = true
			delete(set, k) // a repeated key is first only once
		}
	}
	return first, nil
}

// maybePrune deletes expired keys when Retention is set and the last prune
// is older than pruneEvery. Only one caller prunes at a time; the others go
// on claiming.
func (s *PostgresStore) maybePrune(ctx context.Context) {
	if s.retention <= 0 || !s.pruneMu.TryLock() {
		return
	}
	defer s.pruneMu.Unlock()
	now := time.Now()
	if now.Sub(s.lastPrune) < s.pruneEvery {
		return
	}
	if _, err := s.Prune(ctx, s.retention); err != nil {
		if s.logger != nil {
			s.logger.WarnContext(ctx, "idempotency: automatic prune failed", "table", s.table, "err", err)
		}
		return
	}
	s.lastPrune = now
}

func ctxErr(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("idempotency: %s: %w", op, err)
	}
	return nil
}

// indexName names the claimed_at index of table, within
// message.MaxIdentifierLength bytes, and differently for tables whose names
// Postgres would truncate to the same index name: a long table name is cut
// (at a character boundary) and followed by a hash of the whole name. The
// index lives in the table's schema, so names only need to differ there.
func indexName(table string) string {
	const suffix = "_claimed_at_idx"
	if len(table)+len(suffix) <= message.MaxIdentifierLength {
		return table + suffix
	}
	sum := sha256.Sum256([]byte(table))
	tag := "_" + hex.EncodeToString(sum[:4])
	cut := message.MaxIdentifierLength - len(suffix) - len(tag)
	for cut > 0 && !utf8.RuneStart(table[cut]) {
		cut--
	}
	return table[:cut] + tag + suffix
}
