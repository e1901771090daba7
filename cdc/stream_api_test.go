package cdc

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// TestTakeBuffered takes a batch of what is already decoded, in order and
// without waiting, and then the error of a stream that stopped after its
// last buffered message.
func TestTakeBuffered(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	cfg := e.config()
	cfg.Truncate = TruncateFail
	s := e.open(cfg)

	// Nothing is buffered: an empty batch at once, no error.
	got, err := s.TakeBuffered(nil, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("TakeBuffered on an empty buffer = %d messages, %v", len(got), err)
	}

	e.exec("insert into t select generate_series(1, 5)", "truncate t")
	<-s.done // the stream stopped at the TRUNCATE, with five rows buffered
	if n := s.Buffered().Messages; n != 5 {
		t.Fatalf("buffered %d messages, want 5", n)
	}

	first, err := s.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	batch, err := s.TakeBuffered([]message.Message{first}, 2)
	if err != nil || len(batch) != 3 {
		t.Fatalf("TakeBuffered(2) = %d messages, %v; want 3 with the first", len(batch), err)
	}
	batch, err = s.TakeBuffered(batch, 10)
	var te *TruncateError
	if !errors.As(err, &te) {
		t.Fatalf("TakeBuffered after the stop: %v, want the *TruncateError", err)
	}
	if len(batch) != 5 {
		t.Fatalf("batch has %d messages, want the 5 buffered before the stop", len(batch))
	}
	for i, m := range batch {
		if m.Record["id"] != int64(i+1) {
			t.Errorf("message %d: id %v, want %d (commit order)", i, m.Record["id"], i+1)
		}
	}
	if _, err := s.TakeBuffered(nil, 10); !errors.As(err, &te) {
		t.Errorf("TakeBuffered again: %v, want the *TruncateError", err)
	}
	s.Close()
	if _, err := s.TakeBuffered(nil, 10); !errors.Is(err, ErrClosed) {
		t.Errorf("TakeBuffered after Close: %v, want ErrClosed", err)
	}
}

// TestCloseReturnsPermanentFailure: a stream that stopped on a permanent
// error reports it from Close, every time; a running stream's Close
// returns nil.
func TestCloseReturnsPermanentFailure(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	cfg := e.config()
	cfg.Truncate = TruncateFail
	s := e.open(cfg)
	e.exec("insert into t values (1)", "truncate t")
	next(t, s, 1)
	if _, err := s.Next(t.Context()); err == nil {
		t.Fatal("Next after the TRUNCATE returned a message")
	}
	for i := range 2 {
		var te *TruncateError
		if err := s.Close(); !errors.As(err, &te) {
			t.Fatalf("Close #%d = %v, want the *TruncateError that stopped the stream", i+1, err)
		}
	}

	cfg.Slot += "_running"
	r := e.open(cfg)
	if err := r.Close(); err != nil {
		t.Errorf("Close of a running stream = %v, want nil", err)
	}
}

// TestConfigBackoffDefault: a Config without Backoff retries as
// sink.DefaultBackoff says, as Run does.
func TestConfigBackoffDefault(t *testing.T) {
	c := Config{ConnString: "postgres://localhost/db", Slot: "s", Publication: "p"}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	got, ok := c.Backoff().(*backoff.ExponentialBackOff)
	want := sink.DefaultBackoff().(*backoff.ExponentialBackOff)
	if !ok || got.InitialInterval != want.InitialInterval || got.MaxInterval != want.MaxInterval ||
		got.Multiplier != want.Multiplier || got.RandomizationFactor != want.RandomizationFactor || got.MaxElapsedTime != want.MaxElapsedTime {
		t.Errorf("default Config.Backoff = %+v, want sink.DefaultBackoff's %+v", c.Backoff(), want)
	}
}

// TestColumnListsCannotBeCorrupted: a message's column lists are shared
// with the stream's relation cache, yet neither writing into what a message
// hands out nor running the column transforms directly on it (not through
// sink.Map) changes the lists of later messages of the same table.
func TestColumnListsCannotBeCorrupted(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key, name text, secret text)")
	s := e.open(e.config())
	e.exec("insert into t values (1, 'a', 'x')", "insert into t values (2, 'b', 'y')")
	msgs := next(t, s, 2)

	first := msgs[0]
	cols, pk := first.Metadata.Columns(), first.Metadata.PrimaryKey()
	cols[0], pk[0] = "written", "written"
	m, _, err := sink.DropColumns("name")(first)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err = sink.RenameColumns(map[string]string{"id": "key", "secret": "s"})(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Metadata.Columns(); !slices.Equal(got, []string{"key", "s"}) {
		t.Errorf("transformed columns = %q, want [key s]", got)
	}
	if got := m.Metadata.PrimaryKey(); !slices.Equal(got, []string{"key"}) {
		t.Errorf("transformed primary key = %q, want [key]", got)
	}

	e.exec("insert into t values (3, 'c', 'z')")
	later := append(msgs[1:], next(t, s, 1)...)
	for _, m := range append(later, first) {
		if got := m.Metadata.Columns(); !slices.Equal(got, []string{"id", "name", "secret"}) {
			t.Errorf("message %v: columns = %q, want [id name secret]", m.Record["id"], got)
		}
		if got := m.Metadata.PrimaryKey(); !slices.Equal(got, []string{"id"}) {
			t.Errorf("message %v: primary key = %q, want [id]", m.Record["id"], got)
		}
	}
	b, err := later[1].MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `"record":{"id":3,"name":"c","secret":"z"}`; !strings.Contains(string(b), want) {
		t.Errorf("JSON of a later message lacks %s:\n%s", want, b)
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
