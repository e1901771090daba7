package cdc

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
)

func keys(msgs []message.Message) []string {
	var ks []string
	for _, m := range msgs {
		ks = append(ks, m.Metadata.IdempotencyKey)
	}
	return ks
}

func TestAckCloseRestartRedeliversNothing(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	cfg := e.config()
	s := e.open(cfg)
	e.exec("insert into t values (1)", "insert into t values (2)", "insert into t values (3)")
	msgs := next(t, s, 3)
	s.Ack(msgs[2])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := e.confirmedFlush(), s.Acked(); got != want {
		t.Fatalf("after Close confirmed_flush_lsn = %v, want the acknowledged %v", got, want)
	}
	e.exec("insert into t values (4)")
	s2 := e.open(cfg)
	m := next(t, s2, 1)[0]
	if m.Record["id"] != int64(4) {
		t.Fatalf("after ack + close, restart delivered %v first; want only the new row 4", m.Record)
	}
}

func TestNoAckRestartRedeliversSameKeys(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key, v text)")
	cfg := e.config()
	s := e.open(cfg)
	e.exec("begin", "insert into t values (1, 'a')", "insert into t values (2, 'b')", "commit", "update t set v = 'c' where id = 1")
	first := next(t, s, 3)
	s.Ack(first[0]) // half of the first transaction: nothing may be confirmed
	s.Close()
	s2 := e.open(cfg)
	again := next(t, s2, 3)
	if a, b := strings.Join(keys(first), ","), strings.Join(keys(again), ","); a != b {
		t.Fatalf("redelivered keys differ:\n first %s\n again %s", a, b)
	}
	for i := range first {
		if fmt.Sprint(first[i].Record) != fmt.Sprint(again[i].Record) {
			t.Errorf("redelivered record %d = %v, first %v", i, again[i].Record, first[i].Record)
		}
	}
}

// TestFlushNeverPassesUnacked samples the slot while messages are held
// unacknowledged, then acknowledges them one by one.
func TestFlushNeverPassesUnacked(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	cfg := e.config()
	cfg.StatusInterval = 20 * time.Millisecond
	s := e.open(cfg)
	start := e.confirmedFlush()
	e.exec("begin", "insert into t values (1)", "insert into t values (2)", "commit",
		"insert into t values (3)", "insert into t values (4)")
	msgs := next(t, s, 4)

	var mu sync.Mutex
	limit := start // the highest position the slot may have reached
	var violations []string
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var prev message.LSN
		for {
			select {
			case <-stop:
				return
			default:
			}
			got := e2flush(t, e)
			mu.Lock()
			if got > limit {
				violations = append(violations, fmt.Sprintf("confirmed_flush_lsn %v passed the acknowledged limit %v", got, limit))
			}
			if got < prev {
				violations = append(violations, fmt.Sprintf("confirmed_flush_lsn moved backwards %v -> %v", prev, got))
			}
			mu.Unlock()
			prev = got
			time.Sleep(5 * time.Millisecond)
		}
	}()
	setLimit := func(l message.LSN) {
		mu.Lock()
		limit = l
		mu.Unlock()
	}
	time.Sleep(200 * time.Millisecond) // ten status intervals with nothing acknowledged
	s.Ack(msgs[0])                     // half a transaction
	time.Sleep(200 * time.Millisecond)
	// The first transaction ends before the second one's commit.
	setLimit(msgs[2].Metadata.CommitLSN)
	s.Ack(msgs[1])
	waitFor(t, "flush of the first transaction", func() bool { return e.confirmedFlush() > msgs[0].Metadata.CommitLSN })
	setLimit(msgs[3].Metadata.CommitLSN)
	s.Ack(msgs[2])
	time.Sleep(100 * time.Millisecond)
	setLimit(1 << 62)
	s.Ack(msgs[3])
	waitFor(t, "flush of everything", func() bool { return e.confirmedFlush() > msgs[3].Metadata.CommitLSN })
	close(stop)
	<-done
	for _, v := range violations {
		t.Error(v)
	}
}

// e2flush reads the slot position on its own connection (the sampler runs
// concurrently with the test's connection).
func e2flush(t *testing.T, e *env) message.LSN {
	ctx, cancel := context.WithTimeout(context.Background(), testtime.Bound(30*time.Second))
	defer cancel()
	conn, err := e.pool(ctx)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer conn.Release()
	var s *string
	if err := conn.QueryRow(ctx, "select confirmed_flush_lsn::text from pg_replication_slots where slot_name = $1", e.slot).Scan(&s); err != nil || s == nil {
		return 0
	}
	l, _ := message.ParseLSN(*s)
	return l
}

func TestIdleStreamAdvancesSlot(t *testing.T) {
	e := newEnv(t, "create table published (id int primary key)", "create table other (id int primary key)")
	e.exec("drop publication pub", "create publication pub for table published")
	cfg := e.config()
	cfg.StatusInterval = 50 * time.Millisecond
	s := e.open(cfg)
	_ = s
	// Changes the publication filters out: nothing is delivered, yet the
	// slot must not pin their WAL.
	e.exec("insert into other select generate_series(1, 1000)")
	var lsn string
	if err := e.conn.QueryRow(context.Background(), "select pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	target, _ := message.ParseLSN(lsn)
	waitFor(t, "slot to pass the filtered writes", func() bool { return e.confirmedFlush() >= target })
	none(t, s, 100*time.Millisecond)
}

func TestHeartbeat(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	// A second slot (test_decoding) lets the test see the heartbeat messages.
	peek := pgtest.Name(t, "peek")
	e.exec("select pg_create_logical_replication_slot('" + peek + "', 'test_decoding')")
	cfg := e.config()
	cfg.HeartbeatInterval = 50 * time.Millisecond
	cfg.StatusInterval = 50 * time.Millisecond
	s := e.open(cfg)
	heartbeats := func() (n int, last message.LSN) {
		rows, err := e.conn.Query(context.Background(),
			"select lsn::text from pg_logical_slot_peek_changes($1, null, null) where data like '%prefix: walrelay:heartbeat%'", peek)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				t.Fatal(err)
			}
			last, _ = message.ParseLSN(l)
			n++
		}
		return n, last
	}
	var last message.LSN
	waitFor(t, "three heartbeat messages", func() bool {
		var n int
		n, last = heartbeats()
		return n >= 3
	})
	// The idle stream acknowledges the WAL the heartbeats wrote, and
	// delivers nothing for them.
	waitFor(t, "the slot to pass the heartbeats", func() bool { return e.confirmedFlush() > last })
	none(t, s, 200*time.Millisecond)
}

func TestTerminatedWalsenderLosesNothing(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	s := e.open(e.config())
	c := &collector{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go Run(ctx, s, c, RunOptions{Backoff: fastBackoff})

	const rows = 3000
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 1; i <= rows; i += 100 {
			if _, err := e.p.Exec(ctx, fmt.Sprintf("insert into t select g from generate_series(%d, %d) g", i, i+99)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	terminations := 0
	for {
		select {
		case <-writerDone:
		default:
			var n int
			e.conn.QueryRow(ctx, "select count(pg_terminate_backend(active_pid)) from pg_replication_slots where slot_name = $1 and active_pid is not null", e.slot).Scan(&n)
			terminations += n
			time.Sleep(30 * time.Millisecond)
			continue
		}
		break
	}
	if terminations == 0 {
		t.Fatal("no walsender was terminated")
	}
	waitFor(t, "every row after reconnects", func() bool {
		seen := map[int64]bool{}
		for _, id := range c.ids() {
			seen[id] = true
		}
		return len(seen) == rows
	})
	ids := c.ids()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	t.Logf("terminations %d, delivered %d (duplicates %d)", terminations, len(ids), len(ids)-rows)
}

// TestCloseWithFullBufferReportsAcks closes a stream whose reader is
// blocked on a full buffer: the final status update must still carry what
// was acknowledged.
func TestCloseWithFullBufferReportsAcks(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	cfg := e.config()
	cfg.BufferSize = 2
	cfg.StatusInterval = time.Hour // only Close reports
	s := e.open(cfg)
	e.exec("insert into t values (1)", "insert into t values (2)", "insert into t select generate_series(3, 50)")
	msgs := next(t, s, 2)
	s.Ack(msgs[1])
	// Two taken; the reader refills the buffer only once it is empty (its
	// low mark for a buffer of 2), so it blocks again with one or two
	// buffered and the next one waiting for room.
	waitFor(t, "the reader to block on the full buffer", func() bool {
		s.mu.Lock()
		emitted := s.emitted
		s.mu.Unlock()
		return emitted >= 4 && s.Buffered().Blocked
	})
	t.Logf("before Close: slot %v, acked %v", e.confirmedFlush(), s.Acked())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := e.confirmedFlush(); got <= msgs[1].Metadata.CommitLSN {
		t.Fatalf("after Close confirmed_flush_lsn = %v, want past the acknowledged commit %v", got, msgs[1].Metadata.CommitLSN)
	}
}
