package cdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// currentLSN is the server's WAL insert position.
func (e *env) currentLSN() message.LSN {
	e.t.Helper()
	var s string
	if err := e.conn.QueryRow(context.Background(), "select pg_current_wal_insert_lsn()::text").Scan(&s); err != nil {
		e.t.Fatal(err)
	}
	l, err := message.ParseLSN(s)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// Every counter of Stats moves as messages are received, taken and
// acknowledged, and the positions follow the WAL.
func TestStatsCounters(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key, v text)")
	cfg := e.config()
	cfg.HeartbeatInterval = -1
	s := e.open(cfg)
	st0 := s.Stats()
	if st0.Slot != e.slot || !st0.Connected || st0.Stopped || st0.Standby || st0.MessagesIn != 0 || st0.Transactions != 0 || st0.AckedLSN == 0 {
		t.Fatalf("at open: %+v", st0)
	}
	const txs, rows = 5, 4
	for i := range txs {
		e.exec(fmt.Sprintf("insert into t select g, repeat('x', 50) from generate_series(%d, %d) g", i*rows, i*rows+rows-1))
	}
	end := e.currentLSN()
	msgs := next(t, s, txs*rows)
	// A transaction's commit follows its last change: wait for the last one.
	waitFor(t, "the last commit", func() bool { return s.Stats().Transactions == txs })
	st := s.Stats()
	if st.MessagesIn != txs*rows || st.MessagesOut != txs*rows || st.MessagesAcked != 0 {
		t.Fatalf("in/out/acked = %d/%d/%d, want %d/%d/0", st.MessagesIn, st.MessagesOut, st.MessagesAcked, txs*rows, txs*rows)
	}
	// Each change carries at least its 50-byte text, in and out.
	if st.BytesIn < txs*rows*50 || st.BytesOut < txs*rows*50 || st.BytesOut > st.BytesIn {
		t.Fatalf("bytes in %d, out %d", st.BytesIn, st.BytesOut)
	}
	if st.ReceivedLSN < end || st.ServerWALEnd < st.ReceivedLSN {
		t.Fatalf("received %v, server WAL end %v; want ≥ %v", st.ReceivedLSN, st.ServerWALEnd, end)
	}
	if st.AckedLSN != st0.AckedLSN || st.LagBytes == 0 || st.Lag <= 0 {
		t.Fatalf("nothing acknowledged yet: acked %v (was %v), lag %d bytes, %v", st.AckedLSN, st0.AckedLSN, st.LagBytes, st.Lag)
	}
	if st.LastMessageAt.IsZero() || time.Since(st.LastMessageAt) > time.Minute || !st.LastAckAt.IsZero() {
		t.Fatalf("last message at %v, last ack at %v", st.LastMessageAt, st.LastAckAt)
	}
	if st.Buffer.Messages != 0 {
		t.Fatalf("buffer %+v", st.Buffer)
	}
	before := time.Now()
	s.Ack(msgs[len(msgs)-1])
	st = s.Stats()
	if st.MessagesAcked != txs*rows || st.AckedLSN < end || st.Lag != 0 || st.LastAckAt.Before(before) {
		t.Fatalf("after Ack: acked %d, at %v (want ≥ %v), lag %v, last ack %v", st.MessagesAcked, st.AckedLSN, end, st.Lag, st.LastAckAt)
	}
	if st.Reconnects != 0 || st.Delivery != (DeliveryStats{}) || st.Backfills != nil {
		t.Fatalf("%+v", st)
	}
}

// blockingSink holds every Write until release is closed.
type blockingSink struct {
	release chan struct{}
	writes  atomic.Int64
}

func (b *blockingSink) Write(ctx context.Context, msgs ...message.Message) error {
	select {
	case <-b.release:
		b.writes.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *blockingSink) Close(context.Context) error { return nil }

// While the sink is blocked the lag grows, in time and in bytes, and the
// slot keeps the WAL; once it is released the lag drops to nothing.
func TestStatsLagWhileSinkBlocked(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key, v text)")
	cfg := e.config()
	cfg.StatusInterval = 100 * time.Millisecond
	s := e.open(cfg)
	bs := &blockingSink{release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, s, bs, RunOptions{}) }()
	defer func() {
		cancel()
		<-done
	}()

	e.exec("insert into t select g, repeat('y', 1000) from generate_series(1, 100) g")
	end := e.currentLSN()
	waitFor(t, "a lag", func() bool { st := s.Stats(); return st.Lag > 0 && st.ReceivedLSN >= end })
	first := s.Stats()
	if first.LagBytes < uint64(end-first.AckedLSN) || first.AckedLSN >= end {
		t.Fatalf("lag %d bytes, acked %v, end %v", first.LagBytes, first.AckedLSN, end)
	}
	waitFor(t, "the lag to grow", func() bool { return s.Stats().Lag >= first.Lag+200*time.Millisecond })
	// More WAL behind the blocked transaction: the lag in bytes grows too,
	// and Postgres agrees that the slot retains it.
	e.exec("insert into t select g, repeat('z', 1000) from generate_series(101, 200) g")
	waitFor(t, "the lag in bytes to grow", func() bool { return s.Stats().LagBytes > first.LagBytes })
	sl, err := s.SlotStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !sl.Exists || !sl.Active || sl.ConfirmedFlushLSN >= end || sl.RetainedBytes < int64(end-sl.ConfirmedFlushLSN) {
		t.Fatalf("slot while blocked: %+v (end %v)", sl, end)
	}
	blocked := s.Stats()
	if blocked.Delivery.Writes != 0 || blocked.MessagesOut == 0 {
		t.Fatalf("while blocked: %+v", blocked.Delivery)
	}

	close(bs.release)
	waitFor(t, "the lag to drop", func() bool {
		st := s.Stats()
		return st.Lag == 0 && st.MessagesAcked == 200 && st.LagBytes < blocked.LagBytes
	})
	st := s.Stats()
	if st.Delivery.Messages != 200 || st.Delivery.Writes == 0 || st.Delivery.Failures != 0 || !st.Delivery.FailingSince.IsZero() {
		t.Fatalf("delivery %+v", st.Delivery)
	}
	waitFor(t, "the slot to advance", func() bool { return e.confirmedFlush() >= end })
	sl, err = s.SlotStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sl.ConfirmedFlushLSN < end {
		t.Fatalf("slot after: %+v", sl)
	}
}

// A lost connection counts a reconnect; the stream is not ready while it
// is down (with no grace) and ready again after.
func TestStatsReconnectAndHealth(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	cfg := e.config()
	cfg.Backoff = func() backoff.BackOff { return backoff.NewConstantBackOff(300 * time.Millisecond) }
	s := e.open(cfg)
	h := NewHealth(s, HealthOptions{})
	if p := h.Ready(); p != nil {
		t.Fatalf("ready at start: %v", p)
	}
	waitFor(t, "the first slot stats", func() bool { return s.Stats().SlotStatus != nil })
	e.exec("select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = '" + e.slot + "'")
	sawDown := false
	waitFor(t, "a reconnect", func() bool {
		st := s.Stats()
		if !st.Connected && len(h.Ready()) > 0 && !st.DisconnectedAt.IsZero() {
			sawDown = true
		}
		return st.Reconnects == 1 && st.Connected
	})
	if !sawDown {
		t.Log("the reconnect was faster than the polling: not ready while down not observed")
	}
	if p := h.Ready(); p != nil {
		t.Fatalf("ready after reconnect: %v", p)
	}
	e.exec("insert into t values (1)")
	s.Ack(next(t, s, 1)[0])

	// A grace period longer than the outage: ready throughout.
	hg := NewHealth(s, HealthOptions{Disconnected: time.Hour})
	e.exec("select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = '" + e.slot + "'")
	waitFor(t, "a second reconnect", func() bool {
		if p := hg.Ready(); p != nil {
			t.Fatalf("not ready within the grace period: %v", p)
		}
		return s.Stats().Reconnects == 2
	})
}

// failingSink fails while failing is set.
type failingSink struct {
	failing atomic.Bool
	calls   atomic.Int64
}

var errSinkDown = errors.New("sink down")

func (f *failingSink) Write(ctx context.Context, msgs ...message.Message) error {
	f.calls.Add(1)
	if f.failing.Load() {
		return errSinkDown
	}
	return nil
}

func (f *failingSink) Close(context.Context) error { return nil }

func getProbe(t *testing.T, h http.Handler) (int, HealthReport) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var rep HealthReport
	if err := json.NewDecoder(res.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, rep
}

// A sink failing longer than the threshold makes the stream not ready (503
// with the sink's error); it is ready again once a write succeeds; closed,
// it is neither live nor ready.
func TestHealthSinkFailing(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	s := e.open(e.config())
	fs := &failingSink{}
	fs.failing.Store(true)
	h := NewHealth(s, HealthOptions{SinkFailure: 300 * time.Millisecond})
	if code, rep := getProbe(t, h.ReadyHandler()); code != 200 || rep.Status != "ok" {
		t.Fatalf("ready before: %d %+v", code, rep)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, s, fs, RunOptions{Backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(20 * time.Millisecond) }})
	}()
	defer func() {
		cancel()
		<-done
	}()
	e.exec("insert into t values (1)")
	waitFor(t, "failures", func() bool { return s.Stats().Delivery.Failures >= 2 })
	st := s.Stats().Delivery
	if !errors.Is(st.LastError, errSinkDown) || st.FailingSince.IsZero() || st.LastErrorAt.Before(st.FailingSince) || st.Retries == 0 || st.Writes != 0 {
		t.Fatalf("delivery while failing: %+v", st)
	}
	waitFor(t, "not ready", func() bool { return len(h.Ready()) > 0 })
	code, rep := getProbe(t, h.ReadyHandler())
	if code != http.StatusServiceUnavailable || rep.Status != "fail" || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "sink writes failing") || !strings.Contains(rep.Problems[0], errSinkDown.Error()) {
		t.Fatalf("ready while failing: %d %+v", code, rep)
	}
	if code, rep := getProbe(t, h.LiveHandler()); code != 200 {
		t.Fatalf("live while the sink fails: %d %+v", code, rep)
	}
	fs.failing.Store(false)
	waitFor(t, "a write", func() bool { return s.Stats().Delivery.Writes == 1 })
	st = s.Stats().Delivery
	if !st.FailingSince.IsZero() || !errors.Is(st.LastError, errSinkDown) || st.Messages != 1 {
		t.Fatalf("delivery after: %+v", st)
	}
	if code, rep := getProbe(t, h.ReadyHandler()); code != 200 {
		t.Fatalf("ready after: %d %+v", code, rep)
	}
	cancel()
	<-done
	done <- nil
	s.Close()
	if code, rep := getProbe(t, h.LiveHandler()); code != http.StatusServiceUnavailable || rep.Problems[0] != "stream closed" {
		t.Fatalf("live after Close: %d %+v", code, rep)
	}
	if code, _ := getProbe(t, h.ReadyHandler()); code != http.StatusServiceUnavailable {
		t.Fatalf("ready after Close: %d", code)
	}
	if st := s.Stats(); !st.Stopped || st.Connected || st.Err != nil {
		t.Fatalf("after Close: %+v", st)
	}
}

// TestRecordWrite: a delivery loop of the caller's own reports its writes
// and retries; Stats.Delivery counts them and the ready check judges them
// as it judges Run's.
func TestRecordWrite(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	s := e.open(e.config())
	h := NewHealth(s, HealthOptions{SinkFailure: time.Nanosecond})

	s.RecordWrite(3, nil)
	d := s.Stats().Delivery
	if d.Writes != 1 || d.Messages != 3 || d.Failures != 0 || !d.FailingSince.IsZero() {
		t.Fatalf("after a write of 3: %+v", d)
	}
	if p := h.Ready(); len(p) != 0 {
		t.Fatalf("ready after a good write: %v", p)
	}

	refused := errors.New("destination refused")
	s.RecordRetry()
	s.RecordWrite(2, refused)
	d = s.Stats().Delivery
	if d.Writes != 1 || d.Failures != 1 || d.Retries != 1 || !errors.Is(d.LastError, refused) || d.FailingSince.IsZero() {
		t.Fatalf("after a failed write: %+v", d)
	}
	if p := h.Ready(); !slices.ContainsFunc(p, func(s string) bool {
		return strings.HasPrefix(s, "sink writes failing") && strings.Contains(s, "destination refused")
	}) {
		t.Fatalf("ready with writes failing past SinkFailure: %v", p)
	}

	s.RecordWrite(2, nil)
	d = s.Stats().Delivery
	if d.Writes != 2 || d.Messages != 5 || !d.FailingSince.IsZero() {
		t.Fatalf("after a good write again: %+v", d)
	}
	if p := h.Ready(); len(p) != 0 {
		t.Fatalf("ready after writes recovered: %v", p)
	}
}

// A backfill reports the rows it read against Postgres' estimate, and done.
func TestStatsBackfill(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key, v text)",
		"insert into t select g, 'v' from generate_series(1, 2500) g", "analyze t")
	s := e.open(e.config())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, s, sink.Func(func(context.Context, ...message.Message) error { return nil }), RunOptions{})
	}()
	defer func() {
		cancel()
		<-done
	}()
	bctx, bcancel := context.WithTimeout(context.Background(), testtime.Bound(60*time.Second))
	defer bcancel()
	if err := s.Backfill(bctx, backfill.Config{ID: "stats", Table: "public.t", ChunkSize: 1000}); err != nil {
		t.Fatal(err)
	}
	bs := s.Stats().Backfills
	if len(bs) != 1 {
		t.Fatalf("backfills %+v", bs)
	}
	b := bs[0]
	if b.ID != "stats" || b.Table != "public.t" || b.RowsRead != 2500 || b.RowsEstimated != 2500 || !b.Done || b.StartedAt.IsZero() {
		t.Fatalf("backfill %+v", b)
	}
	if d := s.Stats().Delivery; d.Messages < 2500 {
		t.Fatalf("delivery %+v", d)
	}
}

// The slot watch warns while the slot nears max_slot_wal_keep_size, and
// reports it lost once Postgres invalidated it: the stream is then neither
// ready nor live. Runs on a cluster of its own.
func TestSlotStatusWarnAndLost(t *testing.T) {
	if pgtest.Shared() == nil {
		pgtest.URL(t)
		t.Skip("needs local PostgreSQL binaries to start a cluster with max_slot_wal_keep_size")
	}
	ctx := t.Context()
	cl, err := pgtest.Start(ctx, pgtest.Options{Settings: []string{"max_slot_wal_keep_size = '64MB'", "max_wal_size = '32MB'", "min_wal_size = '32MB'"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	e := newEnvAt(t, cl.URL, "create table t (id int primary key, v text)")
	var logs pgtest.Buffer
	cfg := e.config()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.StatusInterval = 200 * time.Millisecond
	s := e.open(cfg)
	// Read every message and acknowledge none: the slot stays behind. (A
	// reader that stopped reading would leave the walsender blocked on a
	// full socket, and the checkpoint that invalidates its slot waiting for
	// it.)
	go func() {
		for {
			if _, err := s.Next(ctx); err != nil {
				return
			}
		}
	}()
	h := NewHealth(s, HealthOptions{})
	sl, err := s.SlotStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sl.Exists || sl.WALStatus != "reserved" || sl.MaxSlotWALKeepSize != 64<<20 || sl.SafeWALSize <= 48<<20 || sl.Lost() {
		t.Fatalf("at start: %+v", sl)
	}
	if strings.Contains(logs.String(), "max_slot_wal_keep_size") {
		t.Fatalf("warned at start: %s", logs.String())
	}
	// About 1 MB of WAL a round, until less than a quarter is left.
	write := func() {
		e.exec("insert into t select g, repeat(md5(g::text), 30) from generate_series(1, 1000) g", "delete from t")
	}
	for sl.SafeWALSize >= 16<<20 {
		write()
		if sl, err = s.SlotStatus(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "close to max_slot_wal_keep_size") {
		t.Fatalf("no warning with %+v: %s", sl, logs.String())
	}
	if p := h.Ready(); p != nil {
		t.Fatalf("not ready before the slot is lost: %v", p)
	}
	deadline := time.Now().Add(testtime.Bound(120 * time.Second))
	for !sl.Lost() {
		write()
		e.exec("select pg_switch_wal()", "checkpoint")
		if sl, err = s.SlotStatus(ctx); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not lost: %+v", sl)
		}
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "invalidated") {
		t.Fatalf("no error logged: %s", logs.String())
	}
	if st := s.Stats().SlotStatus; st == nil || !st.Lost() {
		t.Fatalf("Stats().SlotStatus %+v", st)
	}
	p := h.Ready()
	if len(p) == 0 || !strings.Contains(strings.Join(p, "; "), "is lost") {
		t.Fatalf("ready with a lost slot: %v", p)
	}
	// The invalidation ended the walsender; the stream stops for good.
	waitFor(t, "the stream to stop", func() bool { return s.Stats().Stopped })
	if st := s.Stats(); !errors.Is(st.Err, ErrSlotInvalidated) || len(h.Live()) == 0 {
		t.Fatalf("after: err %v, live %v", st.Err, h.Live())
	}
}
