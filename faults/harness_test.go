package faults

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
)

// long reports whether the long campaign was asked for.
func long() bool { return os.Getenv("WALRELAY_FAULTS") == "long" }

// pick returns short in CI and long in the long campaign.
func pick[T any](short, long_ T) T {
	if long() {
		return long_
	}
	return short
}

// auditSQL creates the audit machinery: a stamp sequence, the audit table
// (left out of every publication) and the trigger functions.
var auditSQL = []string{
	"create sequence faults_n",
	`create table faults_audit (
		id bigserial primary key, tbl text not null, pk text not null, op text not null,
		n bigint, h text, cols text)`,
	`create function faults_stamp() returns trigger language plpgsql as $$
	begin NEW.n := nextval('faults_n'); return NEW; end $$`,
	`create function faults_cols(r jsonb) returns text language sql immutable as $$
	select string_agg(k, ',' order by k) from jsonb_object_keys(r) k $$`,
	`create function faults_audit() returns trigger language plpgsql as $$
	begin
		if TG_OP = 'DELETE' then
			insert into faults_audit (tbl, pk, op, n, h, cols)
			values (TG_TABLE_NAME, OLD.id::text, 'D', OLD.n, md5(to_jsonb(OLD)->>'pad'), faults_cols(to_jsonb(OLD)));
		else
			insert into faults_audit (tbl, pk, op, n, h, cols)
			values (TG_TABLE_NAME, NEW.id::text, left(TG_OP, 1), NEW.n, md5(to_jsonb(NEW)->>'pad'), faults_cols(to_jsonb(NEW)));
		end if;
		return null;
	end $$`,
	`create function faults_audit_truncate() returns trigger language plpgsql as $$
	begin
		insert into faults_audit (tbl, pk, op, n) values (TG_TABLE_NAME, '', 'T', nextval('faults_n'));
		return null;
	end $$`,
}

// tableSQL creates an audited workload table: id, stamp n, a counter v and
// a large text column pad.
func tableSQL(name string, full bool) []string {
	q := pgx.Identifier{name}.Sanitize()
	s := []string{
		"create table " + q + " (id bigint primary key, n bigint, v bigint not null default 0, pad text)",
		"create trigger faults_stamp before insert or update on " + q + " for each row execute function faults_stamp()",
		"create trigger faults_audit after insert or update or delete on " + q + " for each row execute function faults_audit()",
		"create trigger faults_audit_truncate after truncate on " + q + " for each statement execute function faults_audit_truncate()",
	}
	if full {
		s = append(s, "alter table "+q+" replica identity full")
	}
	return s
}

// env is one fault test's database, publication and slot.
type env struct {
	t      *testing.T
	url    string
	slot   string
	pub    string
	dir    string
	tables map[string]bool // name → replica identity full
}

// newEnv creates a database with audited tables (all with REPLICA IDENTITY
// FULL unless listed in defaultIdentity), a publication of them, and the
// slot, so that every change from now on is in the slot.
func newEnv(t *testing.T, tables []string, defaultIdentity ...string) *env {
	t.Helper()
	e := &env{
		t:      t,
		url:    pgtest.NewDatabase(t),
		slot:   pgtest.Name(t, "slot"),
		pub:    pgtest.Name(t, "pub"),
		dir:    t.TempDir(),
		tables: make(map[string]bool),
	}
	sql := slices.Clone(auditSQL)
	var quoted []string
	for _, name := range tables {
		full := !slices.Contains(defaultIdentity, name)
		e.tables[name] = full
		sql = append(sql, tableSQL(name, full)...)
		quoted = append(quoted, pgx.Identifier{name}.Sanitize())
	}
	sql = append(sql,
		"create publication "+e.pub+" for table "+strings.Join(quoted, ", "),
		"select pg_create_logical_replication_slot('"+e.slot+"', 'pgoutput')")
	pgtest.Exec(t, e.url, sql...)
	return e
}

// addTable creates another audited table (FULL identity) and adds it to the
// publication.
func (e *env) addTable(name string) {
	e.tables[name] = true
	sql := tableSQL(name, true)
	sql = append(sql, "alter publication "+e.pub+" add table "+pgx.Identifier{name}.Sanitize())
	pgtest.Exec(e.t, e.url, sql...)
}

// auditRow is one committed change, as the trigger saw it.
type auditRow struct {
	tbl, pk, op string
	n           int64
	h, cols     *string
}

func (a auditRow) identity() string {
	return a.tbl + "|" + a.pk + "|" + a.op + "|" + strconv.FormatInt(a.n, 10)
}

func (e *env) audit(ctx context.Context) ([]auditRow, error) {
	conn, err := connect(ctx, e.url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "select tbl, pk, op, n, h, cols from faults_audit")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (auditRow, error) {
		var a auditRow
		err := r.Scan(&a.tbl, &a.pk, &a.op, &a.n, &a.h, &a.cols)
		return a, err
	})
}

// connect retries for a while: the server may be restarting.
func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, testtime.Bound(90*time.Second))
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// delivery is one delivered message, parsed from its JSON.
type delivery struct {
	table, pk, action, key string
	n                      string // the record's stamp, "" when absent
	lsn                    uint64
	idx                    int
	pad                    *string // nil: column absent; "\x00null": JSON null
	cols                   string
	end                    int64 // position in its source just after it
	source                 int
}

func (d delivery) op() string {
	switch d.action {
	case "insert":
		return "I"
	case "update":
		return "U"
	case "delete":
		return "D"
	case "truncate":
		return "T"
	}
	return "?" + d.action
}

func (d delivery) identity() string { return d.table + "|" + d.pk + "|" + d.op() + "|" + d.n }

const jsonNull = "\x00null"

func parseDelivery(line []byte) (delivery, error) {
	var doc struct {
		Record   map[string]json.RawMessage `json:"record"`
		Action   string                     `json:"action"`
		Metadata struct {
			TableName      string `json:"table_name"`
			IdempotencyKey string `json:"idempotency_key"`
			CommitLSN      uint64 `json:"commit_lsn"`
			CommitIdx      int    `json:"commit_idx"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(line, &doc); err != nil {
		return delivery{}, fmt.Errorf("parse delivery: %w: %.200s", err, line)
	}
	d := delivery{
		table: doc.Metadata.TableName, action: doc.Action, key: doc.Metadata.IdempotencyKey,
		lsn: doc.Metadata.CommitLSN, idx: doc.Metadata.CommitIdx,
	}
	d.pk = string(doc.Record["id"])
	d.n = string(doc.Record["n"])
	if raw, ok := doc.Record["pad"]; ok {
		var s *string
		if err := json.Unmarshal(raw, &s); err != nil {
			return delivery{}, fmt.Errorf("parse delivery: pad: %w", err)
		}
		if s == nil {
			null := jsonNull
			s = &null
		}
		d.pad = s
	}
	keys := make([]string, 0, len(doc.Record))
	for k := range doc.Record {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d.cols = strings.Join(keys, ",")
	return d, nil
}

// source is somewhere deliveries are durably recorded: its size only grows.
type source interface {
	size() int64
	read() ([]delivery, error)
}

// fileSource is a consumer process's JSON-lines output.
type fileSource struct{ path string }

func (f fileSource) size() int64 {
	st, err := os.Stat(f.path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func (f fileSource) read() ([]delivery, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []delivery
	off := int64(0)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break // a line cut short by a kill was never acknowledged
		}
		d, err := parseDelivery(b[:i])
		if err != nil {
			return nil, err
		}
		off += int64(i + 1)
		d.end = off
		out = append(out, d)
		b = b[i+1:]
	}
	return out, nil
}

// memSource records messages acknowledged in this process (a webhook
// receiver, or a wrapper around a sink).
type memSource struct {
	mu    sync.Mutex
	lines [][]byte
}

func (m *memSource) add(lines ...[]byte) {
	m.mu.Lock()
	m.lines = append(m.lines, lines...)
	m.mu.Unlock()
}

func (m *memSource) size() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.lines))
}

func (m *memSource) read() ([]delivery, error) {
	m.mu.Lock()
	lines := slices.Clone(m.lines)
	m.mu.Unlock()
	out := make([]delivery, 0, len(lines))
	for i, l := range lines {
		d, err := parseDelivery(l)
		if err != nil {
			return nil, err
		}
		d.end = int64(i + 1)
		out = append(out, d)
	}
	return out, nil
}

// deliveries is the ordered list of sources of one test: the union of what
// was acknowledged, in delivery order.
type deliveries struct {
	mu      sync.Mutex
	sources []source
}

func (ds *deliveries) add(s source) int {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	ds.sources = append(ds.sources, s)
	return len(ds.sources) - 1
}

func (ds *deliveries) sizes() []int64 {
	ds.mu.Lock()
	srcs := slices.Clone(ds.sources)
	ds.mu.Unlock()
	out := make([]int64, len(srcs))
	for i, s := range srcs {
		out[i] = s.size()
	}
	return out
}

func (ds *deliveries) all() ([]delivery, error) {
	ds.mu.Lock()
	srcs := slices.Clone(ds.sources)
	ds.mu.Unlock()
	var out []delivery
	for i, s := range srcs {
		got, err := s.read()
		if err != nil {
			return nil, err
		}
		for j := range got {
			got[j].source = i
		}
		out = append(out, got...)
	}
	return out, nil
}

// distinct counts the distinct changes delivered so far.
func (ds *deliveries) distinct() (int, error) {
	all, err := ds.all()
	if err != nil {
		return 0, err
	}
	seen := make(map[string]bool, len(all))
	for _, d := range all {
		seen[d.key] = true
	}
	return len(seen), nil
}

// sample is one observation of the slot: its confirmed_flush_lsn, then the
// sizes of the delivery sources right after.
type sample struct {
	lsn   message.LSN
	sizes []int64
	epoch int // incremented by allowRegression
}

// monitor samples a slot's confirmed_flush_lsn throughout a test.
type monitor struct {
	url, slot string
	ds        *deliveries
	stop      chan struct{}
	done      chan struct{}

	mu      sync.Mutex
	samples []sample
	epoch   int
}

func startMonitor(t *testing.T, e *env, ds *deliveries) *monitor {
	m := &monitor{url: e.url, slot: e.slot, ds: ds, stop: make(chan struct{}), done: make(chan struct{})}
	go m.run()
	t.Cleanup(m.halt)
	return m
}

func (m *monitor) halt() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}

// allowRegression marks the start and, called again, the end of a server
// restart: Postgres restores the slot position it last saved, which may be
// older than the one it had.
func (m *monitor) allowRegression() {
	m.mu.Lock()
	m.epoch++
	m.mu.Unlock()
}

func (m *monitor) run() {
	defer close(m.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-m.stop; cancel() }()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	// A sample every 5ms, but on a busy machine, where a sample takes
	// long, sampling at most half the time: the monitor must not take the
	// CPU from what it watches.
	var took time.Duration
	for {
		select {
		case <-m.stop:
			return
		case <-time.After(max(5*time.Millisecond, took)):
		}
		started := time.Now()
		// A sample that takes long is only a missed sample: these bounds
		// free the monitor from a connection to a restarting server.
		if conn == nil || conn.IsClosed() {
			cctx, ccancel := context.WithTimeout(ctx, testtime.Bound(5*time.Second))
			c, err := pgx.Connect(cctx, m.url)
			ccancel()
			if err != nil {
				continue
			}
			conn = c
		}
		var lsn *string
		qctx, qcancel := context.WithTimeout(ctx, testtime.Bound(5*time.Second))
		err := conn.QueryRow(qctx, "select confirmed_flush_lsn::text from pg_replication_slots where slot_name = $1", m.slot).Scan(&lsn)
		qcancel()
		if err != nil {
			if !errors.Is(err, pgx.ErrNoRows) {
				conn.Close(context.Background())
				conn = nil
			}
			continue
		}
		if lsn == nil {
			continue
		}
		pos, err := message.ParseLSN(*lsn)
		if err != nil {
			continue
		}
		sizes := m.ds.sizes()
		m.mu.Lock()
		m.samples = append(m.samples, sample{lsn: pos, sizes: sizes, epoch: m.epoch})
		m.mu.Unlock()
		took = time.Since(started)
	}
}

// check compares the samples with the transactions delivered: the slot is
// never past a transaction whose changes were not all acknowledged at the
// time, and never moves backwards within an epoch.
func (m *monitor) check(all []delivery) (n int, ahead, backwards int, firstProblem string) {
	m.mu.Lock()
	samples := slices.Clone(m.samples)
	m.mu.Unlock()
	// The first copy of each change of each transaction.
	txs := make(map[uint64]map[string]delivery)
	for _, d := range all {
		if d.action == "read" {
			continue
		}
		if txs[d.lsn] == nil {
			txs[d.lsn] = make(map[string]delivery)
		}
		if _, ok := txs[d.lsn][d.key]; !ok {
			txs[d.lsn][d.key] = d
		}
	}
	durableAt := func(d delivery) int { // index of the first sample seeing d
		return sort.Search(len(samples), func(i int) bool {
			s := samples[i]
			return d.source < len(s.sizes) && s.sizes[d.source] >= d.end
		})
	}
	lsns := make([]uint64, 0, len(txs))
	for l := range txs {
		lsns = append(lsns, l)
	}
	slices.Sort(lsns)
	for _, l := range lsns {
		at := 0
		for _, d := range txs[l] {
			at = max(at, durableAt(d))
		}
		for i := 0; i < at && i < len(samples); i++ {
			if uint64(samples[i].lsn) > l {
				ahead++
				if firstProblem == "" {
					firstProblem = fmt.Sprintf("slot at %v while transaction %v was not fully acknowledged", samples[i].lsn, message.LSN(l))
				}
				break
			}
		}
	}
	regressed := 0
	// allowRegression is called in pairs around each restart, so an odd
	// epoch is a restart window: a sample taken in it may come from before
	// the shutdown or after the start, and a step back across the window is
	// the server's.
	acrossRestart := func(a, b sample) bool { return a.epoch != b.epoch || a.epoch%2 == 1 }
	for i := 1; i < len(samples); i++ {
		if samples[i].lsn < samples[i-1].lsn && acrossRestart(samples[i-1], samples[i]) {
			regressed++
		}
		if samples[i].lsn < samples[i-1].lsn && !acrossRestart(samples[i-1], samples[i]) {
			backwards++
			if firstProblem == "" {
				firstProblem = fmt.Sprintf("slot moved back from %v to %v", samples[i-1].lsn, samples[i].lsn)
			}
		}
	}
	if regressed > 0 && firstProblem == "" {
		firstProblem = fmt.Sprintf("the server restored an older slot position after %d of its restarts", regressed)
	}
	return len(samples), ahead, backwards, firstProblem
}

// result is one fault's outcome.
type result struct {
	Fault, Name           string
	Runs                  int
	Changes               int // committed changes in the audit
	Delivered             int // deliveries, duplicates included
	Lost, Duplicates      int
	KeyMismatches         int
	OrderViolations       int
	Extra                 int // delivered but never committed
	ValueMismatches       int // large column wrong or NULL
	ShapeMismatches       int // record columns differ from the row's
	ToastSentinels        int // unchanged TOAST values marked (default identity)
	Samples, Ahead, Backs int
	Note                  string
}

func (r result) fields() string {
	return fmt.Sprintf("runs=%d changes=%d delivered=%d lost=%d duplicates=%d key_mismatches=%d order_violations=%d "+
		"extra=%d value_mismatches=%d shape_mismatches=%d toast_sentinels=%d slot_samples=%d slot_ahead=%d slot_backwards=%d",
		r.Runs, r.Changes, r.Delivered, r.Lost, r.Duplicates, r.KeyMismatches, r.OrderViolations,
		r.Extra, r.ValueMismatches, r.ShapeMismatches, r.ToastSentinels, r.Samples, r.Ahead, r.Backs)
}

var (
	summaryMu sync.Mutex
	summary   []result
)

func record(t *testing.T, r result) {
	t.Helper()
	t.Logf("%s %s: %s", r.Fault, r.Name, r.fields())
	if r.Note != "" {
		t.Logf("%s %s: %s", r.Fault, r.Name, r.Note)
	}
	summaryMu.Lock()
	summary = append(summary, r)
	summaryMu.Unlock()
}

func printSummary() {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	if len(summary) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nfault campaign (%s):\n", pick("short", "long"))
	fmt.Fprintf(&b, "%-4s %-34s %5s %8s %9s %5s %10s %13s %16s %7s\n", "id", "scenario", "runs", "changes", "delivered", "lost", "duplicates", "key_mismatch", "order_violations", "slot_ok")
	rows := slices.Clone(summary)
	f4 := result{Fault: "F4", Name: "slot monitor, all faults above"}
	for _, r := range rows {
		if r.Samples > 0 {
			f4.Runs++
			f4.Samples += r.Samples
			f4.Ahead += r.Ahead
			f4.Backs += r.Backs
		}
	}
	rows = append(rows, f4)
	slices.SortStableFunc(rows, func(a, b result) int {
		na, _ := strconv.Atoi(strings.TrimPrefix(a.Fault, "F"))
		nb, _ := strconv.Atoi(strings.TrimPrefix(b.Fault, "F"))
		return na - nb
	})
	for _, r := range rows {
		ok := "yes"
		if r.Ahead+r.Backs > 0 {
			ok = "NO"
		}
		fmt.Fprintf(&b, "%-4s %-34s %5d %8d %9d %5d %10d %13d %16d %7s\n", r.Fault, r.Name, r.Runs, r.Changes, r.Delivered, r.Lost, r.Duplicates, r.KeyMismatches, r.OrderViolations, ok)
	}
	fmt.Fprintf(&b, "F4: %d samples of confirmed_flush_lsn over %d faults; ahead of the sink %d, backwards %d\n", f4.Samples, f4.Runs, f4.Ahead, f4.Backs)
	os.Stdout.WriteString(b.String())
}

// compareOpts tune compare.
type compareOpts struct {
	commitOrder bool // the sink preserves commit order across rows
}

// compare checks the deliveries against the audit and the slot samples,
// records the result and fails the test on any loss, key mismatch, order
// violation, wrong value or shape, or slot violation.
func compare(t *testing.T, e *env, ds *deliveries, mon *monitor, r result, opts compareOpts) result {
	t.Helper()
	ctx := context.Background()
	audit, err := e.audit(ctx)
	if err != nil {
		t.Fatalf("read audit: %v", err)
	}
	all, err := ds.all()
	if err != nil {
		t.Fatalf("read deliveries: %v", err)
	}
	r = tally(e, audit, all, r, opts)
	if mon != nil {
		mon.halt()
		var first string
		r.Samples, r.Ahead, r.Backs, first = mon.check(all)
		if first != "" {
			r.Note = strings.TrimSpace(r.Note + " " + first)
		}
	}
	record(t, r)
	if r.Lost+r.KeyMismatches+r.OrderViolations+r.Extra+r.ValueMismatches+r.ShapeMismatches+r.Ahead+r.Backs > 0 {
		t.Errorf("%s failed: %s", r.Fault, r.fields())
	}
	if r.Samples == 0 && mon != nil {
		t.Errorf("%s: the slot monitor took no samples", r.Fault)
	}
	return r
}

// tally computes the numbers of a result from the audit and deliveries.
func tally(e *env, audit []auditRow, all []delivery, r result, opts compareOpts) result {
	r.Changes = len(audit)
	r.Delivered = len(all)
	byID := make(map[string]auditRow, len(audit))
	truncates := 0
	for _, a := range audit {
		if a.op == "T" {
			truncates++
			continue
		}
		byID[a.identity()] = a
	}
	type first struct {
		pos int
		key string
	}
	firsts := make(map[string]first, len(all))
	keyOwner := make(map[string]string, len(all))
	truncKeys := make(map[string]bool)
	mismatched := make(map[string]bool)
	var lastLSN uint64
	lastIdx := -1
	for i, d := range all {
		if d.action == "read" {
			continue // backfill reads are checked by the backfill faults
		}
		if d.key != message.ChangeKey(message.LSN(d.lsn), d.idx) {
			r.KeyMismatches++
			mismatched[d.key] = true
		}
		if d.action == "truncate" {
			if truncKeys[d.key] {
				r.Duplicates++
			}
			truncKeys[d.key] = true
			continue
		}
		id := d.identity()
		if owner, ok := keyOwner[d.key]; ok && owner != id {
			r.KeyMismatches++ // two changes, one key
		}
		keyOwner[d.key] = id
		f, seen := firsts[id]
		if seen {
			r.Duplicates++
			if f.key != d.key {
				r.KeyMismatches++
			}
			continue
		}
		firsts[id] = first{pos: i, key: d.key}
		if opts.commitOrder {
			if d.lsn < lastLSN || d.lsn == lastLSN && d.idx <= lastIdx {
				r.OrderViolations++
			}
			lastLSN, lastIdx = d.lsn, d.idx
		}
		a, ok := byID[id]
		if !ok {
			r.Extra++
			continue
		}
		full := e.tables[a.tbl]
		if a.op != "D" || full {
			if a.cols != nil && *a.cols != d.cols {
				r.ShapeMismatches++
			}
			switch {
			case d.pad == nil:
				if a.h != nil {
					r.ValueMismatches++
				}
			case *d.pad == message.UnchangedToastJSON:
				if full || a.op != "U" {
					r.ValueMismatches++
				} else {
					r.ToastSentinels++
				}
			case *d.pad == jsonNull:
				if a.h != nil {
					r.ValueMismatches++
				}
			default:
				sum := md5.Sum([]byte(*d.pad))
				if a.h == nil || hex.EncodeToString(sum[:]) != *a.h {
					r.ValueMismatches++
				}
			}
		}
	}
	if len(truncKeys) < truncates {
		r.Lost += truncates - len(truncKeys)
	} else {
		r.Extra += len(truncKeys) - truncates
	}
	// Per row, in commit order (stamps increase with each change of a row,
	// and a delete carries the stamp of the change before it).
	rows := make(map[string][]auditRow)
	for _, a := range audit {
		if a.op == "T" {
			continue
		}
		if _, ok := firsts[a.identity()]; !ok {
			r.Lost++
			continue
		}
		rows[a.tbl+"|"+a.pk] = append(rows[a.tbl+"|"+a.pk], a)
	}
	for _, changes := range rows {
		sort.Slice(changes, func(i, j int) bool {
			if changes[i].n != changes[j].n {
				return changes[i].n < changes[j].n
			}
			return changes[i].op != "D" && changes[j].op == "D"
		})
		for i := 1; i < len(changes); i++ {
			if firsts[changes[i].identity()].pos < firsts[changes[i-1].identity()].pos {
				r.OrderViolations++
			}
		}
	}
	return r
}

// waitDelivered waits until every audited change has been delivered. It
// fails when the consumer stops, or when no further change is delivered for
// stall (scaled by testtime): it waits on progress, however slow.
func waitDelivered(t *testing.T, e *env, ds *deliveries, stall time.Duration, alive func() error) {
	t.Helper()
	ctx := context.Background()
	conn, err := connect(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var want int
	if err := conn.QueryRow(ctx, "select count(*) from faults_audit").Scan(&want); err != nil {
		t.Fatal(err)
	}
	stall = testtime.Bound(stall)
	got, last := 0, -1
	var progress time.Time
	for {
		polled := time.Now()
		if got, err = ds.distinct(); err != nil {
			t.Fatal(err)
		}
		if got >= want {
			return
		}
		if got > last {
			last, progress = got, time.Now()
		}
		if alive != nil {
			if err := alive(); err != nil {
				t.Fatalf("consumer stopped with %d of %d changes delivered: %v", got, want, err)
			}
		}
		if time.Since(progress) > stall {
			t.Errorf("no progress for %v: %d of %d changes delivered", stall, got, want)
			return
		}
		// Reading every delivery takes long on a busy machine: poll at
		// most a third of the time, to leave the consumer the CPU.
		time.Sleep(max(20*time.Millisecond, 2*time.Since(polled)))
	}
}

func outPath(e *env, name string) string { return filepath.Join(e.dir, name) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
