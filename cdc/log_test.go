package cdc

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
)

// records returns the JSON log records with message msg.
func records(logs *pgtest.Buffer, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(l), &r) == nil && r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// TestInfoLogs: at Info, a stream says where it starts (slot,
// publication, tables, start LSN), when it reconnects and when a backfill
// finishes.
func TestInfoLogs(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)", "insert into t values (1), (2)")
	var logs pgtest.Buffer
	cfg := e.config()
	cfg.Publication = pgtest.Name(t, "pub")
	cfg.CreatePublication, cfg.PublicationTables = true, []string{"t"}
	cfg.Backoff = quickBackoff
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s := e.open(cfg)
	start := records(&logs, "stream started")
	if len(start) != 1 {
		t.Fatalf("no start record:\n%s", logs.String())
	}
	r := start[0]
	if r["level"] != "INFO" || r["slot"] != cfg.Slot || r["publication"] != cfg.Publication || r["table_count"] != float64(1) ||
		r["start_lsn"] != e.confirmedFlush().String() {
		t.Errorf("start record %v", r)
	}
	if tables, _ := r["tables"].([]any); len(tables) != 1 || tables[0] != "public.t" {
		t.Errorf("start record tables %v", r["tables"])
	}

	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(60*time.Second))
	defer cancel()
	ackAll(ctx, s)
	if err := s.Backfill(ctx, backfill.Config{Table: "t", ID: "b1"}); err != nil {
		t.Fatal(err)
	}
	if b := records(&logs, "backfill finished"); len(b) != 1 || b[0]["backfill_id"] != "b1" || b[0]["table"] != "t" || b[0]["level"] != "INFO" {
		t.Errorf("backfill records %v", b)
	}

	e.exec("select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = '" + cfg.Slot + "'")
	waitFor(t, "a reconnect record", func() bool { return len(records(&logs, "replication reconnected")) == 1 })
	if r := records(&logs, "replication reconnected")[0]; r["level"] != "INFO" || r["slot"] != cfg.Slot {
		t.Errorf("reconnect record %v", r)
	}
}
