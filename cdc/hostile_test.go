package cdc

// What a database user can write must neither stop the stream nor exhaust
// its memory: values Postgres accepts (however deep), logical messages from
// any role that can log in, and rows of any size.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/message"
)

// A jsonb (and json) value nested 15,000 levels deep is valid to Postgres,
// deeper than encoding/json's 10,000-level limit (Postgres accepts up to
// about 14,500 levels with the default max_stack_depth, more when raised). It and the row after it
// arrive, through the stream and through a backfill, and encode.
func TestDeepJSONStreamsAndBackfills(t *testing.T) {
	const depth = 15_000
	e := newEnv(t, "create table docs (id int primary key, b jsonb, j json)")
	cfg := e.config()
	cfg.HeartbeatInterval = -1
	s := e.open(cfg)
	deep := fmt.Sprintf(`repeat('[', %d) || '{"a": 1}' || repeat(']', %d)`, depth, depth)
	// 15,000 levels need more stack than the default 2MB max_stack_depth
	// gives the parser (about 14,500 levels on this build).
	e.exec("set max_stack_depth = '6MB'",
		"insert into docs values (1, ("+deep+")::jsonb, ("+deep+")::json)",
		`insert into docs values (2, '{"after": true}', '[1, 2]')`)

	check := func(m message.Message, id int64) {
		t.Helper()
		if got := m.Record["id"]; got != id {
			t.Fatalf("%s: id = %v, want %d", m.Action, got, id)
		}
		b, err := m.MarshalJSON()
		if err != nil {
			t.Fatalf("%s of row %d: MarshalJSON: %v", m.Action, id, err)
		}
		if id != 1 {
			return
		}
		// The encoder compacts the text of both types.
		want := strings.Repeat("[", depth) + `{"a":1}` + strings.Repeat("]", depth)
		for _, col := range []string{"b", "j"} {
			if !bytes.Contains(b, []byte(`"`+col+`":`+want)) {
				t.Fatalf("%s of row 1: column %s is not the %d-deep document", m.Action, col, depth)
			}
		}
	}
	for i, m := range next(t, s, 2) {
		if m.Action != message.ActionInsert {
			t.Fatalf("message %d: %s, want insert", i, m.Action)
		}
		check(m, int64(i+1))
		s.Ack(m)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Backfill(ctx, backfill.Config{Table: "public.docs", ID: "deep"}) }()
	for i := range 2 {
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if m.Action != message.ActionRead {
			t.Fatalf("read %d: %s, want read", i, m.Action)
		}
		check(m, int64(i+1))
		s.Ack(m)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Backfill: %v", err)
	}
}

// heapPeak samples the heap in use until stop is called, which returns the
// highest sample. The figure is the Go heap of this test process (where
// the stream runs), not its RSS.
func heapPeak() (stop func() uint64) {
	var (
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// recordedLogs is a slog handler keeping what it is given.
type recordedLogs struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordedLogs) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordedLogs) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *recordedLogs) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordedLogs) WithGroup(string) slog.Handler      { return h }

// find returns the attributes of the first record at level whose message
// contains msg.
func (h *recordedLogs) find(level slog.Level, msg string) (map[string]slog.Value, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if r.Level == level && strings.Contains(r.Message, msg) {
			attrs := map[string]slog.Value{}
			r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
			return attrs, true
		}
	}
	return nil, false
}

// pg_logical_emit_message is executable by PUBLIC: a role with nothing but
// LOGIN can write a 40 MB transaction-annotations message (and one of a
// prefix walrelay does not handle). The stream does not decode them, warns,
// keeps running, and its heap grows by far less than 100 MB.
func TestHugeAnnotationFromLoginRole(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	role := pgtest.Name(t, "emitter")
	e.exec("create role " + role + " login")
	t.Cleanup(func() { pgtest.Exec(t, pgtest.URL(t), "drop role if exists "+role) })
	logs := &recordedLogs{}
	cfg := e.config()
	cfg.HeartbeatInterval = -1
	cfg.Logger = slog.New(logs)
	s := e.open(cfg)

	// 40,000,007 bytes of JSON that would decode into 20 million values,
	// built by the server so that this process never holds it.
	const elems = 20_000_000
	payload := fmt.Sprintf(`'{"a":[' || repeat('1,', %d) || '1]}'`, elems-1)
	const size = 6 + 2*(elems-1) + 3
	as := withUser(e.url, role)

	// Each phase: the role's message, then a row; the row's arrival shows
	// the stream read past the message.
	phase := func(id int, annotation string, emit ...string) {
		t.Helper()
		base := heapInUse()
		stop := heapPeak()
		pgtest.Exec(t, as, emit...)
		e.exec("begin")
		if annotation != "" {
			e.exec("select pg_logical_emit_message(true, 'sequin:transaction_annotations.set', '" + annotation + "')")
		}
		e.exec(fmt.Sprintf("insert into t values (%d)", id), "commit")
		m := next(t, s, 1)[0]
		peak := stop()
		t.Logf("row %d: heap in use %d MB before, peak %d MB", id, base>>20, peak>>20)
		if m.Record["id"] != int64(id) {
			t.Fatalf("got id %v, want %d", m.Record["id"], id)
		}
		if annotation == "" && m.Metadata.TransactionAnnotations != nil {
			t.Fatalf("row %d: annotations %v, want none", id, m.Metadata.TransactionAnnotations)
		}
		if annotation != "" && m.Metadata.TransactionAnnotations["ok"] != true {
			t.Fatalf("row %d: annotations %v, want {ok: true}", id, m.Metadata.TransactionAnnotations)
		}
		s.Ack(m)
		if peak > base && peak-base >= 100<<20 {
			t.Fatalf("row %d: heap grew by %d MB, want < 100 MB", id, (peak-base)>>20)
		}
	}
	phase(1, "", "begin",
		"select pg_logical_emit_message(true, 'sequin:transaction_annotations.set', "+payload+")",
		"commit")
	attrs, ok := logs.find(slog.LevelWarn, "MaxAnnotationBytes")
	if !ok {
		t.Fatal("no warning about the dropped annotations")
	}
	if got := attrs["bytes"].Int64(); got != size {
		t.Errorf("warning says %d bytes, want %d", got, size)
	}
	// A prefix the stream does not handle is skipped undecoded; small
	// annotations still apply.
	phase(2, `{"ok": true}`, "begin", "select pg_logical_emit_message(true, 'app:bulk', "+payload+")", "commit")
}

// Rows far larger than the byte budget, and a consumer that does not read:
// the stream buffers at most Config.BufferBytes plus one message, and holds
// one more it waits to buffer — never the eight 64 MiB rows at once.
func TestBufferBytesBoundsStalledConsumer(t *testing.T) {
	const (
		rows    = 8
		rowSize = 64 << 20
		budget  = 100 << 20
	)
	e := newEnv(t, "create table big (id int primary key, body text)")
	cfg := e.config()
	cfg.HeartbeatInterval = -1
	cfg.BufferBytes = budget
	s := e.open(cfg)
	base := heapInUse()
	e.exec(fmt.Sprintf("insert into big select g, repeat('x', %d) from generate_series(1, %d) g", rowSize, rows))

	// waitFull waits until the reader holds a message it cannot buffer
	// while one is buffered, or until want messages are buffered (the last
	// ones fit).
	waitFull := func(want int) BufferStats {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			st := s.Buffered()
			if st.Blocked && st.Messages > 0 || st.Messages >= want {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 2 minutes: %+v; want the buffer full or %d messages", st, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var largest int64
	for got := 0; got < rows; got++ {
		st := waitFull(rows - got)
		// Each message is more than half the budget: one fits, a second
		// does not.
		if st.Messages != 1 {
			t.Fatalf("after %d read: %d messages buffered (%d bytes), want 1", got, st.Messages, st.Bytes)
		}
		if got == 0 {
			largest = st.Bytes
			live := heapInUse()
			t.Logf("stalled: %+v; heap in use %d MB over the %d MB before", st, (live-base)>>20, base>>20)
			// One buffered, one held, and receive buffers: not eight rows.
			if live > base && live-base > budget+3*rowSize {
				t.Fatalf("heap in use grew by %d MB with the consumer stalled", (live-base)>>20)
			}
		}
		largest = max(largest, st.Bytes)
		if st.Bytes > budget+largest {
			t.Fatalf("after %d read: %d bytes buffered, over the budget %d plus one message", got, st.Bytes, budget)
		}
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Record["id"] != int64(got+1) || len(m.Record["body"].(string)) != rowSize {
			t.Fatalf("message %d: id %v, want %d with a %d-byte body", got, m.Record["id"], got+1, rowSize)
		}
		s.Ack(m)
	}
	if st := s.Buffered(); st.Messages != 0 || st.Bytes != 0 {
		t.Fatalf("after reading everything: %+v, want empty", st)
	}
}

// A value the mapping cannot decode stops the stream with an error naming
// table, column and LSN by default; with UndecodableText it is delivered as
// its text, logged, and handed to DeadLetter, and the stream goes on. No
// value Postgres itself sends is known to fail, so the text is scripted
// here, on the wire protocol.
func TestUndecodableValuePolicy(t *testing.T) {
	bad := ptrs("1234567", "not-an-int4", "1234.50", "shipped", "x", "2024-10-28 21:37:01.12747+00")
	data := tuple([]byte{'I', 0, 0, 0x40, 0x07, 'N'}, bad)
	const lsn = message.LSN(0x16B374D000)

	s, _ := benchStream()
	s.cfg.Logger = slog.New(slog.DiscardHandler)
	err := s.handle(lsn, data)
	var de *DecodeError
	if !errors.As(err, &de) || de.LSN != lsn || de.Relation != "public.orders" || de.Column != "account" {
		t.Fatalf("default policy: err = %#v, want a DecodeError at %v naming public.orders and column account", err, lsn)
	}
	for _, want := range []string{lsn.String(), "public.orders", `column "account"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if IsRetryable(err) {
		t.Error("the error is retried: reopening would stop at the same change")
	}

	s, _ = benchStream()
	logs := &recordedLogs{}
	s.cfg.Logger = slog.New(logs)
	s.cfg.Undecodable = UndecodableText
	var dead []string
	s.cfg.DeadLetter = func(err *DecodeError, text []byte) {
		dead = append(dead, fmt.Sprintf("%v|%s|%s|%s", err.LSN, err.Relation, err.Column, text))
	}
	if err := s.handle(lsn, data); err != nil {
		t.Fatalf("UndecodableText: %v", err)
	}
	m := s.took(<-s.out)
	if m.Record["account"] != "not-an-int4" || m.Record["id"] != int64(1234567) {
		t.Fatalf("record = %v, want account as its text and the other values decoded", m.Record)
	}
	if want := lsn.String() + "|public.orders|account|not-an-int4"; len(dead) != 1 || dead[0] != want {
		t.Fatalf("dead letters = %q, want [%q]", dead, want)
	}
	if attrs, ok := logs.find(slog.LevelWarn, "undecodable"); !ok || attrs["column"].String() != "account" || attrs["table"].String() != "public.orders" {
		t.Fatalf("warning = %v, %v; want one naming the table and column", attrs, ok)
	}
	// Backfill reads get the same policy, without an LSN.
	v, err := s.undecodableRead("public.orders")("account", []byte("also-not-an-int4"), errors.New("bad"))
	if err != nil || v != "also-not-an-int4" || len(dead) != 2 || dead[1] != "0/0|public.orders|account|also-not-an-int4" {
		t.Fatalf("backfill read: %v, %v; dead letters %q", v, err, dead)
	}
	// The next row decodes as usual.
	if err := s.handle(lsn+100, tuple([]byte{'I', 0, 0, 0x40, 0x07, 'N'}, benchRow)); err != nil {
		t.Fatal(err)
	}
	if m := s.took(<-s.out); m.Record["account"] != int64(789) {
		t.Fatalf("next record = %v", m.Record)
	}
}

func TestConfigPrintsNoPassword(t *testing.T) {
	for _, cs := range []string{
		"postgres://app:s3cret@db.example:5432/app?sslmode=verify-full",
		"postgresql://app:s3cret@h1:5432,h2:5432/app",
		"postgres://app@db/app?password=s3cret&sslpassword=s3cret&application_name=x",
		"host=db user=app password=s3cret dbname=app",
		"host=db password = 's3 cret \\' s3cret' sslpassword=s3cret dbname=app",
	} {
		cfg := Config{ConnString: cs, Slot: "s", Publication: "p"}
		var logged bytes.Buffer
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg)
		for _, out := range []string{
			fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%v", &cfg),
			logged.String(),
		} {
			if strings.Contains(out, "s3") {
				t.Errorf("%q printed as %s", cs, out)
			}
			if !strings.Contains(out, redacted) {
				t.Errorf("%q printed as %s, without the mask", cs, out)
			}
		}
	}
	// What is not secret is kept.
	got := redactConnString("postgres://app:pw@db:5432/app?sslmode=require&password=pw")
	if want := "postgres://app:xxxxx@db:5432/app?sslmode=require&password=xxxxx"; got != want {
		t.Errorf("redactConnString = %q, want %q", got, want)
	}
	got = redactConnString("host=db password='a b' port=5432")
	if want := "host=db password=xxxxx port=5432"; got != want {
		t.Errorf("redactConnString = %q, want %q", got, want)
	}
}

// withUser returns the connection string rawURL for another role (the test
// clusters trust local connections).
func withUser(rawURL, role string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return rawURL + " user=" + role
	}
	u.User = url.User(role)
	return u.String()
}

// The statement the package doc gives to revoke pg_logical_emit_message
// from PUBLIC works: a role without the grant is refused, a granted one is
// not.
func TestRevokeEmitMessageAsDocumented(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	for _, line := range strings.Split(string(doc), "\n") {
		code, ok := strings.CutPrefix(line, "//\t")
		if ok && (strings.HasPrefix(code, "DO $$") || len(block) > 0) {
			block = append(block, code)
			if strings.HasPrefix(code, "END $$;") {
				break
			}
		}
	}
	if len(block) == 0 {
		t.Fatal("no DO block in doc.go")
	}
	e := newEnv(t)
	stranger, annotator := pgtest.Name(t, "stranger"), pgtest.Name(t, "annotator")
	e.exec("create role "+stranger+" login", "create role "+annotator+" login")
	t.Cleanup(func() {
		pgtest.Exec(t, e.url, "drop owned by "+annotator) // the grants, in this database
		pgtest.Exec(t, pgtest.URL(t), "drop role "+stranger, "drop role "+annotator)
	})
	sql := strings.Join(block, "\n")
	sql = strings.Replace(sql, "TO walrelay, app", "TO "+annotator, 1)
	e.exec(sql)

	emit := "select pg_logical_emit_message(true, 'sequin:transaction_annotations.set', '{}')"
	err = pgtest.ExecURL(t.Context(), withUser(e.url, stranger), emit)
	if pgCode(err) != "42501" {
		t.Fatalf("a role without the grant: %v, want insufficient_privilege", err)
	}
	if err := pgtest.ExecURL(t.Context(), withUser(e.url, annotator), emit); err != nil {
		t.Fatalf("the granted role: %v", err)
	}
}

// A database whose settings print values in another format (DateStyle SQL,
// IntervalStyle sql_standard) streams and backfills the same values as any
// other: the stream's connections set the output format they decode.
func TestDatabaseOutputSettingsDoNotChangeValues(t *testing.T) {
	url := pgtest.NewDatabase(t)
	db := url[strings.LastIndexByte(url, '/')+1:]
	if i := strings.IndexByte(db, '?'); i >= 0 {
		db = db[:i]
	}
	pgtest.Exec(t, url, "alter database "+db+" set DateStyle = 'SQL, DMY'",
		"alter database "+db+" set IntervalStyle = 'sql_standard'",
		"alter database "+db+" set TimeZone = 'Asia/Kolkata'")
	e := newEnvAt(t, url, "create table ev (id int primary key, at timestamptz, local timestamp, d date, span interval)")
	cfg := e.config()
	cfg.HeartbeatInterval = -1
	s := e.open(cfg)
	e.exec(`insert into ev values (1, '2024-10-28 21:37:01.12747+00', '2024-10-28 21:37:01', '2024-10-28', '1 day 2 hours')`)
	want := map[string]any{"at": "2024-10-28T21:37:01.127470Z", "local": "2024-10-28T21:37:01.000000"}
	check := func(m message.Message) {
		t.Helper()
		for k, v := range want {
			if m.Record[k] != v {
				t.Fatalf("%s: %s = %#v, want %#v", m.Action, k, m.Record[k], v)
			}
		}
		if _, err := m.MarshalJSON(); err != nil {
			t.Fatalf("%s: %v", m.Action, err)
		}
	}
	m := next(t, s, 1)[0]
	check(m)
	s.Ack(m)
	// The interval and date as the stream sees them are what the backfill
	// must see too.
	want["d"], want["span"] = m.Record["d"], m.Record["span"]

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Backfill(ctx, backfill.Config{Table: "public.ev", ID: "styles"}) }()
	got := make(chan message.Message, 1)
	go func() {
		if r, err := s.Next(ctx); err == nil {
			got <- r
		}
	}()
	var r message.Message
	select {
	case err := <-errc:
		t.Fatalf("Backfill ended before its read arrived: %v", err)
	case r = <-got:
	case <-ctx.Done():
		t.Fatal("no read within a minute")
	}
	check(r)
	s.Ack(r)
	if err := <-errc; err != nil {
		t.Fatalf("Backfill: %v", err)
	}
}

// The tuples of a row borrow the receive buffer, which the connection
// overwrites with the next message: what a message holds must not change
// with it. An update of a REPLICA IDENTITY FULL table carries the most
// (record, changes, old key); each is checked after the buffer is cleared,
// then again after more rows were decoded.
func TestMessageOutlivesReceiveBuffer(t *testing.T) {
	s, _ := benchStream()
	old := ptrs("1234567", "789", "1234.50", "paid", "e10adc3949ba59abbe56e057f20f883e", "2024-10-28 21:37:01.12747+00")
	data := tuple(append(tuple([]byte{'U', 0, 0, 0x40, 0x07, 'O'}, old), 'N'), benchRow)
	if err := s.handle(1, data); err != nil {
		t.Fatal(err)
	}
	clear(data)
	m := s.took(<-s.out)
	want := map[string]any{"id": int64(1234567), "account": int64(789), "amount": message.Numeric("1234.50"),
		"status": "shipped", "note": "e10adc3949ba59abbe56e057f20f883e", "created_at": "2024-10-28T21:37:01.127470Z"}
	key := message.ChangeKey(s.tx.commitLSN, 0)
	check := func(when string) {
		t.Helper()
		if !reflect.DeepEqual(m.Record, want) {
			t.Errorf("%s: record = %#v, want %#v", when, m.Record, want)
		}
		if !reflect.DeepEqual(m.Changes, map[string]any{"status": "paid"}) {
			t.Errorf("%s: changes = %#v, want status paid", when, m.Changes)
		}
		if m.Metadata.IdempotencyKey != key {
			t.Errorf("%s: idempotency key %q, want %q", when, m.Metadata.IdempotencyKey, key)
		}
	}
	check("buffer cleared")
	other := ptrs("7654321", "987", "99.99", "lost", "ffffffffffffffffffffffffffffffff", "2025-01-01 00:00:00+00")
	for range 5000 { // more than a block of the arena's text
		data := tuple([]byte{'I', 0, 0, 0x40, 0x07, 'N'}, other)
		if err := s.handle(1, data); err != nil {
			t.Fatal(err)
		}
		clear(data)
		s.took(<-s.out)
	}
	check("after 5,000 more rows")
}
