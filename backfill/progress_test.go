package backfill

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walrelay/walrelay/internal/pgtest"
)

func TestProgressStore(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url, `create schema "Odd.Schema"`)
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx := t.Context()
	exists := func(ident string) bool {
		t.Helper()
		var ok bool
		if err := pool.QueryRow(ctx, "select to_regclass($1) is not null", ident).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}

	t.Run("names", func(t *testing.T) {
		for name, want := range map[string][2]string{
			"":                        {"public", "walrelay_backfills"},
			"progress":                {"public", "progress"},
			"Ops.Progress":            {"ops", "progress"},
			`"Odd.Schema"."Progress"`: {"Odd.Schema", "Progress"},
		} {
			ps, err := NewProgressStore(name)
			if err != nil {
				t.Fatalf("NewProgressStore(%q): %v", name, err)
			}
			if s, n := ps.Table(); s != want[0] || n != want[1] {
				t.Errorf("NewProgressStore(%q).Table() = %q, %q; want %q, %q", name, s, n, want[0], want[1])
			}
		}
		if _, err := NewProgressStore("a.b.c"); err == nil {
			t.Error("NewProgressStore(a.b.c): no error")
		}
	})

	t.Run("load creates nothing", func(t *testing.T) {
		for _, name := range []string{"", "no_such_schema.progress"} {
			ps, _ := NewProgressStore(name)
			if p, err := ps.Load(ctx, pool, "x"); p != nil || err != nil {
				t.Fatalf("%q: Load before Create = %+v, %v; want nil, nil", name, p, err)
			}
		}
		if exists("public.walrelay_backfills") {
			t.Fatal("Load created the table")
		}
	})

	t.Run("save and load", func(t *testing.T) {
		ps, _ := NewProgressStore(`"Odd.Schema"."Progress"`)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 { // stores created at once do not fail each other
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- ps.Create(ctx, pool)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent Create: %v", err)
			}
		}
		if !exists(`"Odd.Schema"."Progress"`) {
			t.Fatal("Create made no table")
		}
		if p, err := ps.Load(ctx, pool, "a"); p != nil || err != nil {
			t.Fatalf("Load of an unsaved backfill = %+v, %v; want nil, nil", p, err)
		}
		for _, want := range []Progress{
			{ID: "a", Table: "public.t", Cursor: nil},
			{ID: "a", Table: "public.t", Cursor: Cursor{"7", "x y"}},
			{ID: "a", Table: "public.t", Cursor: Cursor{"9", "z"}, Done: true},
		} {
			if err := ps.Save(ctx, pool, want); err != nil {
				t.Fatal(err)
			}
			got, err := ps.Load(ctx, pool, "a")
			if err != nil || got == nil {
				t.Fatalf("Load after Save(%+v) = %+v, %v", want, got, err)
			}
			if got.UpdatedAt.IsZero() || time.Since(got.UpdatedAt) > time.Hour {
				t.Errorf("UpdatedAt = %v, want the time of the Save", got.UpdatedAt)
			}
			if got.UpdatedAt = (time.Time{}); !reflect.DeepEqual(*got, want) {
				t.Fatalf("Load after Save(%+v) = %+v", want, got)
			}
		}
		if err := ps.Save(ctx, pool, Progress{ID: "0", Table: "public.u", Cursor: Cursor{"1"}}); err != nil {
			t.Fatal(err)
		}
		all, err := ps.List(ctx, pool)
		if err != nil || len(all) != 2 || all[0].ID != "0" || all[0].Table != "public.u" || all[0].Cursor[0] != "1" ||
			all[1].ID != "a" || !all[1].Done || all[1].Cursor[1] != "z" {
			t.Fatalf("List = %+v, %v; want backfills 0 and a, by ID", all, err)
		}

		// Saved in a transaction that rolls back: nothing was saved.
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := ps.Save(ctx, tx, Progress{ID: "b", Table: "t", Cursor: Cursor{"1"}}); err != nil {
			t.Fatal(err)
		}
		if p, err := ps.Load(ctx, tx, "b"); err != nil || p == nil {
			t.Fatalf("Load in the transaction = %+v, %v", p, err)
		}
		tx.Rollback(context.Background())
		if p, err := ps.Load(ctx, pool, "b"); p != nil || err != nil {
			t.Fatalf("Load after the rollback = %+v, %v; want nil, nil", p, err)
		}
	})
}
