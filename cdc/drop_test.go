package cdc

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/idempotency"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
)

// TestDrop: Drop removes the slot, the publication, the backfill progress
// table and the idempotency tables it is given; it refuses an active slot
// and skips what does not exist.
func TestDrop(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key)", "insert into t values (1), (2)")
	cfg := e.config()
	cfg.Publication = "drop_pub"
	cfg.CreatePublication, cfg.PublicationTables = true, []string{"t"}
	s := e.open(cfg)
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(60*time.Second))
	defer cancel()
	ackAll(ctx, s)
	if err := s.Backfill(ctx, backfill.Config{Table: "t", ID: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := idempotency.NewPostgresStore(ctx, e.p, idempotency.PostgresConfig{}); err != nil {
		t.Fatal(err)
	}
	opts := DropOptions{IdempotencyTables: []string{idempotency.DefaultTable}}

	_, err := Drop(ctx, cfg, opts)
	if !errors.Is(err, ErrSlotInUse) {
		t.Fatalf("Drop of an active slot = %v, want ErrSlotInUse", err)
	}
	if !e.exists("slot", cfg.Slot) || !e.exists("publication", cfg.Publication) {
		t.Fatal("a refused Drop dropped something")
	}
	s.Close()
	cancel()

	dropped, err := Drop(t.Context(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"slot " + cfg.Slot, "publication drop_pub", "table walrelay_backfills", "table walrelay_idempotency"}
	if !slices.Equal(dropped, want) {
		t.Fatalf("dropped %q, want %q", dropped, want)
	}
	if e.exists("slot", cfg.Slot) || e.exists("publication", cfg.Publication) {
		t.Fatal("slot or publication still there")
	}
	var n int
	e.conn.QueryRow(context.Background(), "select count(*) from pg_class where relname in ('walrelay_backfills', 'walrelay_idempotency')").Scan(&n)
	if n != 0 {
		t.Fatalf("%d tables left", n)
	}
	if dropped, err := Drop(t.Context(), cfg, opts); err != nil || len(dropped) != 0 {
		t.Fatalf("second Drop = %q, %v; want nothing, nil", dropped, err)
	}
}

// TestSlotStatus: SlotStatus reads a slot without streaming from it: the
// lag grows with writes nobody confirmed, and shrinks to nothing once a
// stream confirms them.
func TestSlotStatus(t *testing.T) {
	e := newEnv(t, "create table t (id int primary key, v text)")
	st, err := SlotStatus(t.Context(), e.url, e.slot)
	if err != nil || st.Exists {
		t.Fatalf("missing slot: %+v, %v", st, err)
	}
	if _, err := SlotStatus(t.Context(), e.url, "Bad-Name"); !errors.As(err, new(*ConfigError)) {
		t.Fatalf("bad slot name: %v", err)
	}
	s := e.open(e.config())
	s.Close()
	e.exec("insert into t select g, repeat('x', 1000) from generate_series(1, 1000) g")
	st, err = SlotStatus(t.Context(), e.url, e.slot)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Exists || st.Active || st.Plugin != "pgoutput" || st.WALStatus != "reserved" || st.SafeWALSize != -1 ||
		st.LagBytes < 1000*1000 || st.RetainedBytes < st.LagBytes || st.CurrentLSN != st.ConfirmedFlushLSN+message.LSN(st.LagBytes) {
		t.Fatalf("after 1 MB unconfirmed: %+v", st)
	}
	if b, err := json.Marshal(st); err != nil || !json.Valid(b) {
		t.Fatalf("JSON: %s %v", b, err)
	}

	s = e.open(e.config())
	msgs := next(t, s, 1000)
	waitFor(t, "the slot to be active", func() bool {
		st, err = SlotStatus(t.Context(), e.url, e.slot)
		return err == nil && st.Active && st.ActivePID != 0
	})
	// Acknowledge everything: the stream confirms it.
	s.Ack(msgs[len(msgs)-1])
	waitFor(t, "the lag to shrink", func() bool {
		st, err = SlotStatus(t.Context(), e.url, e.slot)
		return err == nil && st.LagBytes < 1000*1000/10
	})
}
