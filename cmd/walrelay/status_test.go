package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

type statusJSON struct {
	Slots []struct {
		Slot          string `json:"slot"`
		Active        bool   `json:"active"`
		Plugin        string `json:"plugin"`
		WALStatus     string `json:"wal_status"`
		LagBytes      int64  `json:"lag_bytes"`
		RetainedBytes int64  `json:"retained_bytes"`
		SafeWALSize   int64  `json:"safe_wal_size"`
	} `json:"slots"`
	Publications []struct {
		Name   string   `json:"name"`
		Tables []string `json:"tables"`
	} `json:"publications"`
	Backfills []struct {
		ID     string    `json:"id"`
		Table  string    `json:"table"`
		Done   bool      `json:"done"`
		Cursor []string  `json:"cursor"`
		Saved  time.Time `json:"saved_at"`
	} `json:"backfills"`
	Missing []string `json:"missing_slots"`
}

func parseStatus(t *testing.T, r result) statusJSON {
	t.Helper()
	var out statusJSON
	if r.code != exitOK {
		t.Fatalf("status: %v", r)
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("status -json output does not parse: %v\n%v", err, r)
	}
	return out
}

// TestStatus: status lists the pgoutput slots with their lag, which grows
// with writes nobody confirmed, the publications with their tables, and
// the backfills with their progress; -slot filters; a physical slot is
// not walrelay's.
func TestStatus(t *testing.T) {
	d := newDB(t, "create table orders (id int primary key, v text)", "insert into orders select g, 'x' from generate_series(1, 10) g")
	r := run(t, d.url, "status")
	if r.code != exitOK || strings.Count(r.stdout, "(none)") != 3 {
		t.Fatalf("status of an empty database: %v", r)
	}

	// A slot, a publication and a finished backfill, made with the library.
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(60*time.Second))
	defer cancel()
	s := d.openOrders(ctx)
	// Everything delivered to nowhere and acknowledged, while it streams.
	go cdc.Run(ctx, s, sink.Func(func(context.Context, ...message.Message) error { return nil }), cdc.RunOptions{})
	if err := s.Backfill(ctx, backfill.Config{Table: "orders", ID: "orders-1"}); err != nil {
		t.Fatal(err)
	}
	out := parseStatus(t, run(t, d.url, "status", "-json"))
	if len(out.Slots) != 1 || out.Slots[0].Slot != "orders_cdc" || !out.Slots[0].Active || out.Slots[0].Plugin != "pgoutput" {
		t.Fatalf("slots while streaming: %+v", out.Slots)
	}
	s.Close()
	// A backfill that stopped half way, as the progress table keeps it.
	d.exec(`insert into walrelay_backfills (id, table_name, cursor, done) values ('orders-2', 'orders', '["5"]', false)`,
		"select pg_create_physical_replication_slot('standby1')")

	before := parseStatus(t, run(t, d.url, "status", "-json"))
	d.exec("insert into orders select g, repeat('y', 1000) from generate_series(11, 1010) g")
	out = parseStatus(t, run(t, d.url, "status", "-json"))
	if len(out.Slots) != 1 || out.Slots[0].Active || out.Slots[0].WALStatus != "reserved" || out.Slots[0].SafeWALSize != -1 ||
		out.Slots[0].LagBytes < before.Slots[0].LagBytes+1000*1000 || out.Slots[0].RetainedBytes < out.Slots[0].LagBytes {
		t.Fatalf("slots after 1 MB of writes (before: %+v): %+v", before.Slots, out.Slots)
	}
	if len(out.Publications) != 1 || out.Publications[0].Name != "orders_pub" || strings.Join(out.Publications[0].Tables, ",") != "public.orders" {
		t.Fatalf("publications: %+v", out.Publications)
	}
	if len(out.Backfills) != 2 || out.Backfills[0].ID != "orders-1" || !out.Backfills[0].Done ||
		out.Backfills[1].ID != "orders-2" || out.Backfills[1].Done || strings.Join(out.Backfills[1].Cursor, ",") != "5" {
		t.Fatalf("backfills: %+v", out.Backfills)
	}
	for _, b := range out.Backfills {
		if b.Saved.IsZero() || time.Since(b.Saved) > time.Hour {
			t.Errorf("backfill %s saved_at %v, want when its progress was saved", b.ID, b.Saved)
		}
	}

	r = run(t, d.url, "status")
	for _, want := range []string{"orders_cdc", "no ", " MB", "reserved", "unlimited", "orders_pub", "public.orders",
		"orders-1", "done", "orders-2", "in progress, resumes after key 5"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q: %v", want, r)
		}
	}
	if r.code != exitOK || strings.Contains(r.stdout, "standby1") {
		t.Fatalf("status: %v", r)
	}

	out = parseStatus(t, run(t, d.url, "status", "-json", "-slot", "other,orders_cdc"))
	if len(out.Slots) != 1 || strings.Join(out.Missing, ",") != "other" {
		t.Fatalf("status -slot: %+v", out)
	}
	out = parseStatus(t, run(t, d.url, "status", "-json", "-slot", "other"))
	if len(out.Slots) != 0 {
		t.Fatalf("status -slot other: %+v", out.Slots)
	}
}
