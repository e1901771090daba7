package cdc

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

func TestInsertUpdateDelete(t *testing.T) {
	e := newEnv(t, "create table users (id int primary key, name text, age int)")
	s := e.open(e.config())
	before := time.Now()
	e.exec("insert into users values (1, 'ann', 30)",
		"update users set age = 31 where id = 1",
		"delete from users where id = 1")
	after := time.Now()
	msgs := next(t, s, 3)

	want := []struct {
		action  message.Action
		record  map[string]any
		changes map[string]any
	}{
		{message.ActionInsert, map[string]any{"id": int64(1), "name": "ann", "age": int64(30)}, nil},
		{message.ActionUpdate, map[string]any{"id": int64(1), "name": "ann", "age": int64(31)}, map[string]any{}},
		// Without FULL, the key and null for the columns Postgres did not send.
		{message.ActionDelete, map[string]any{"id": int64(1), "name": nil, "age": nil}, nil},
	}
	for i, m := range msgs {
		w := want[i]
		if m.Action != w.action || !reflect.DeepEqual(m.Record, w.record) || !reflect.DeepEqual(m.Changes, w.changes) {
			t.Errorf("message %d = %s %v changes %v; want %s %v changes %v", i, m.Action, m.Record, m.Changes, w.action, w.record, w.changes)
		}
		md := m.Metadata
		if md.TableSchema != "public" || md.TableName != "users" {
			t.Errorf("message %d table = %s.%s", i, md.TableSchema, md.TableName)
		}
		if md.CommitIdx != 0 {
			t.Errorf("message %d commit_idx = %d, want 0 (one change per transaction)", i, md.CommitIdx)
		}
		key, _ := base64.StdEncoding.DecodeString(md.IdempotencyKey)
		if string(key) != fmt.Sprintf("%d:%d", md.CommitLSN, md.CommitIdx) {
			t.Errorf("message %d idempotency key decodes to %q; commit_lsn %d idx %d", i, key, md.CommitLSN, md.CommitIdx)
		}
		// Each commit happened between before and after, however long
		// that took (a minute's slack for a server with another clock).
		if md.CommitTimestamp.Before(before.Add(-time.Minute)) || md.CommitTimestamp.After(after.Add(time.Minute)) || md.CommitTimestamp.Location() != time.UTC {
			t.Errorf("message %d commit timestamp %v", i, md.CommitTimestamp)
		}
		if !reflect.DeepEqual(md.PrimaryKey(), []string{"id"}) {
			t.Errorf("primary key = %v", md.PrimaryKey())
		}
		//lint:ignore SA1019 the deprecated mirror is still filled
		if md.Consumer.Name != e.slot || md.Database.Name == "" || md.Database.Database != md.Database.Name || md.DatabaseName != md.Database.Name || md.Database.Hostname != "127.0.0.1" || md.Database.ID == "" {
			//lint:ignore SA1019 the deprecated mirror is still filled
			t.Errorf("identity metadata = %+v %+v %q", md.Consumer, md.Database, md.DatabaseName)
		}
	}
	if !(msgs[0].Metadata.CommitLSN < msgs[1].Metadata.CommitLSN && msgs[1].Metadata.CommitLSN < msgs[2].Metadata.CommitLSN) {
		t.Errorf("commit LSNs not increasing: %v %v %v", msgs[0].Metadata.CommitLSN, msgs[1].Metadata.CommitLSN, msgs[2].Metadata.CommitLSN)
	}
}

func TestCommitIdxAndOrder(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key, v text)")
	s := e.open(e.config())
	e.exec("begin", "insert into t values (1, 'a')", "insert into t values (2, 'b')", "update t set v = 'c' where id = 1", "commit",
		"insert into t values (3, 'd')")
	msgs := next(t, s, 4)
	for i, m := range msgs[:3] {
		if m.Metadata.CommitIdx != i || m.Metadata.CommitLSN != msgs[0].Metadata.CommitLSN {
			t.Errorf("message %d: idx %d lsn %v", i, m.Metadata.CommitIdx, m.Metadata.CommitLSN)
		}
	}
	if msgs[3].Metadata.CommitIdx != 0 || msgs[3].Metadata.CommitLSN <= msgs[0].Metadata.CommitLSN {
		t.Errorf("second transaction: idx %d lsn %v", msgs[3].Metadata.CommitIdx, msgs[3].Metadata.CommitLSN)
	}
	if msgs[2].Record["v"] != "c" || msgs[2].Action != message.ActionUpdate {
		t.Errorf("third message = %v", msgs[2])
	}
}

func TestReplicaIdentityFull(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key, a text, b int)", "alter table t replica identity full")
	s := e.open(e.config())
	e.exec("insert into t values (1, 'x', 1)", "update t set b = 2 where id = 1", "update t set id = 5, a = null where id = 1", "delete from t where id = 5")
	msgs := next(t, s, 4)
	if want := map[string]any{"b": int64(1)}; !reflect.DeepEqual(msgs[1].Changes, want) {
		t.Errorf("changes = %v, want %v", msgs[1].Changes, want)
	}
	if want := map[string]any{"id": int64(1), "a": "x"}; !reflect.DeepEqual(msgs[2].Changes, want) {
		t.Errorf("changes = %v, want %v", msgs[2].Changes, want)
	}
	if want := map[string]any{"id": int64(5), "a": nil, "b": int64(2)}; !reflect.DeepEqual(msgs[3].Record, want) {
		t.Errorf("deleted record = %v, want %v", msgs[3].Record, want)
	}
}

func TestKeyChangeDefaultIdentity(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key, a text)")
	s := e.open(e.config())
	e.exec("insert into t values (1, 'x')", "update t set id = 2 where id = 1")
	msgs := next(t, s, 2)
	// Sequin reads changes only from full old rows: {} although the old key is known.
	if want := map[string]any{}; !reflect.DeepEqual(msgs[1].Changes, want) {
		t.Errorf("changes = %v, want %v", msgs[1].Changes, want)
	}
	if want := map[string]any{"id": int64(2), "a": "x"}; !reflect.DeepEqual(msgs[1].Record, want) {
		t.Errorf("record = %v", msgs[1].Record)
	}
}

func TestAnnotations(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	s := e.open(e.config())
	e.exec("begin",
		"insert into t values (1)",
		`select pg_logical_emit_message(true, 'sequin:transaction_annotations.set', '{"user": "ann", "n": 12345678901234567890}')`,
		"insert into t values (2)",
		`select pg_logical_emit_message(true, 'sequin:transaction_annotations.clear', '')`,
		"insert into t values (3)",
		`select pg_logical_emit_message(true, 'sequin:transaction_annotations.set', 'not json')`,
		"insert into t values (4)",
		"commit",
		"insert into t values (5)")
	msgs := next(t, s, 5)
	want := []map[string]any{nil, {"user": "ann", "n": json.Number("12345678901234567890")}, nil, nil, nil}
	for i, m := range msgs {
		if !reflect.DeepEqual(m.Metadata.TransactionAnnotations, want[i]) {
			t.Errorf("message %d annotations = %#v, want %#v", i, m.Metadata.TransactionAnnotations, want[i])
		}
	}
}

// TestTruncateSkippedByDefault: a TRUNCATE is no message (as in Sequin),
// only a warning naming the tables; it still takes a commit_idx.
func TestTruncateSkippedByDefault(t *testing.T) {
	e := newEnv(t, "create table a (id int primary key)", "create table b (id int primary key)")
	cfg := e.config()
	var log pgtest.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
	s := e.open(cfg)
	e.exec("insert into a values (1)", "begin", "truncate a, b", "insert into b values (2)", "commit")
	msgs := next(t, s, 2)
	if msgs[0].Metadata.TableName != "a" || msgs[1].Metadata.TableName != "b" || msgs[1].Action != message.ActionInsert {
		t.Fatalf("messages %s:%s %s:%s", msgs[0].Action, msgs[0].Metadata.TableName, msgs[1].Action, msgs[1].Metadata.TableName)
	}
	if msgs[1].Metadata.CommitIdx != 1 {
		t.Errorf("insert after the truncate: commit_idx %d, want 1", msgs[1].Metadata.CommitIdx)
	}
	if out := log.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "truncate") ||
		!strings.Contains(out, "public.a") || !strings.Contains(out, "public.b") {
		t.Errorf("log = %q, want a warning naming public.a and public.b", out)
	}
}

func TestTruncate(t *testing.T) {
	e := newEnv(t, "create table a (id int primary key)", "create table b (id int primary key)")
	cfg := e.config()
	cfg.Truncate = TruncateEmit
	s := e.open(cfg)
	e.exec("insert into a values (1)", "truncate a, b", "insert into b values (2)")
	msgs := next(t, s, 4)
	got := ""
	for _, m := range msgs {
		got += fmt.Sprintf("%s:%s ", m.Action, m.Metadata.TableName)
	}
	if want := "insert:a truncate:a truncate:b insert:b "; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if msgs[1].Record != nil || msgs[1].Metadata.CommitIdx != 0 || msgs[2].Metadata.CommitIdx != 1 {
		t.Errorf("truncate messages: %+v %+v", msgs[1], msgs[2])
	}
}

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

func TestRollbackAndSavepoints(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)")
	s := e.open(e.config())
	e.exec("begin", "insert into t values (1)", "rollback",
		"begin", "insert into t values (2)", "savepoint a", "insert into t values (3)", "rollback to savepoint a", "insert into t values (4)", "commit")
	msgs := next(t, s, 2)
	if msgs[0].Record["id"] != int64(2) || msgs[1].Record["id"] != int64(4) {
		t.Errorf("got %v, %v; want ids 2 and 4", msgs[0].Record, msgs[1].Record)
	}
	none(t, s, 300*time.Millisecond)
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
