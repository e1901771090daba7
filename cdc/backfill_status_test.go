package cdc

import (
	"testing"

	"github.com/walrelay/walrelay/backfill"
)

// TestBackfillStatusCreatesNothing checks that BackfillStatus only reads:
// before any backfill it reports none and leaves no progress table behind,
// also for a progress table in a schema that does not exist.
func TestBackfillStatusCreatesNothing(t *testing.T) {
	e := newEnv(t, "create table items (id bigint primary key)", "insert into items values (1)")
	exists := func(name string) bool {
		t.Helper()
		var ok bool
		if err := e.conn.QueryRow(t.Context(), "select to_regclass($1) is not null", name).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	cfg := e.config()
	cfg.BackfillTable = "nowhere.progress"
	s := e.open(cfg)
	if p, err := s.BackfillStatus(t.Context(), "x"); p != nil || err != nil {
		t.Fatalf("BackfillStatus with a missing schema = %+v, %v; want nil, nil", p, err)
	}
	s.Close()

	s = e.open(e.config())
	p, err := s.BackfillStatus(t.Context(), "x")
	if p != nil || err != nil {
		t.Fatalf("BackfillStatus before any backfill = %+v, %v; want nil, nil", p, err)
	}
	if exists("public.walrelay_backfills") {
		t.Fatal("BackfillStatus created the progress table")
	}

	// After a backfill it reports the saved progress.
	ctx := t.Context()
	ackAll(ctx, s)
	if err := s.Backfill(ctx, backfill.Config{Table: "items", ID: "x"}); err != nil {
		t.Fatal(err)
	}
	if p, err := s.BackfillStatus(ctx, "x"); err != nil || p == nil || !p.Done || p.Table != "items" {
		t.Fatalf("BackfillStatus after the backfill = %+v, %v; want it done", p, err)
	}
}
