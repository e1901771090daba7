package cdc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/message"
)

// TestBackfillQuotedNamesUnderWrites backfills tables whose names need
// quotes — dots, double quotes, upper case — while their rows are updated
// (see backfillUnderUpdates). The chunk in flight must be matched to the
// table's changes by the names the catalog (and so every change) carries.
func TestBackfillQuotedNamesUnderWrites(t *testing.T) {
	backfillUnderUpdates(t, []string{`create schema "my.schema"`, `create schema "Sales"`}, []updatedTable{
		{sql: `"my.schema"."Line ""Items"""`, name: `"my.schema"."Line ""Items"""`, schema: "my.schema", table: `Line "Items"`},
		{sql: `"Sales".orders`, name: `"Sales".ORDERS`, schema: "Sales", table: "orders"},
		{sql: `"a.b"`, name: `"a.b"`, schema: "public", table: "a.b"},
	})
}

// TestBackfillOrderByUnderWrites backfills tables paged by OrderBy — one
// without a primary key (REPLICA IDENTITY FULL), one with a primary key
// paged by another column — while their rows are updated.
func TestBackfillOrderByUnderWrites(t *testing.T) {
	backfillUnderUpdates(t, nil, []updatedTable{
		{sql: "nopk", name: "nopk", schema: "public", table: "nopk", orderBy: []string{"id"},
			create: "create table nopk (id bigint not null unique, n bigint not null); alter table nopk replica identity full"},
		{sql: "bypos", name: "bypos", schema: "public", table: "bypos", orderBy: []string{"pos"},
			create: "create table bypos (id bigint primary key, n bigint not null, pos bigint not null unique)"},
	})
}

// TestBackfillReplicaIdentityCheck checks that Backfill refuses a table whose
// replica identity does not carry its key columns: an update changing them
// would not say which row it changed.
func TestBackfillReplicaIdentityCheck(t *testing.T) {
	e := newEnv(t,
		"create table t (id bigint not null unique, other bigint not null unique)",
		"create unique index t_other on t (other)",
		"alter table t replica identity using index t_other",
		"insert into t values (1, 1)",
	)
	s := e.open(e.config())
	err := s.Backfill(t.Context(), backfill.Config{Table: "t", ID: "x", OrderBy: []string{"id"}})
	if !errors.Is(err, ErrReplicaIdentity) {
		t.Fatalf("Backfill by id with the identity on other = %v, want ErrReplicaIdentity", err)
	}
	ackAll(t.Context(), s)
	if err := s.Backfill(t.Context(), backfill.Config{Table: "t", ID: "y", OrderBy: []string{"other"}}); err != nil {
		t.Fatalf("Backfill by the identity column: %v", err)
	}
}

// updatedTable is a table for backfillUnderUpdates: sql names it in SQL,
// name in backfill.Config, schema and table as messages carry them. Its
// rows have a bigint id and n.
type updatedTable struct {
	sql, name, schema, table string
	orderBy                  []string
	create                   string // default: id primary key, n
}

// backfillUnderUpdates backfills every table at once while writers update
// their rows, and checks the watermark guarantee: every update raises a
// row's n, so a read carrying a lower n than a change of that row
// delivered before it overtook the newer change. Each table ends equal to
// its replica.
func backfillUnderUpdates(t *testing.T, setup []string, tables []updatedTable) {
	const rows, chunk = 1500, 50
	setup = append(setup, "create table marker (id bigint primary key)")
	for _, tb := range tables {
		create := tb.create
		if create == "" {
			create = "create table " + tb.sql + " (id bigint primary key, n bigint not null)"
		}
		cols, vals := "id, n", "g, 0"
		if slices.Contains(tb.orderBy, "pos") {
			cols, vals = "id, n, pos", "g, 0, (g * 7919) % 1500"
		}
		setup = append(setup, create,
			fmt.Sprintf("insert into %s (%s) select %s from generate_series(1, %d) g", tb.sql, cols, vals, rows))
	}
	e := newEnv(t, setup...)
	s := e.open(e.config())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	// The consumer: per table and row, the last n delivered, and the
	// reads that came after a newer change.
	type key struct {
		table string
		id    int64
	}
	var (
		mu       sync.Mutex
		last     = map[key]int64{}
		reads    = map[string]int{}
		overtook []string
		markers  = make(chan int64, 16)
		// The highest id read per table: the next chunk reads the rows
		// after it, and the writers aim there.
		maxRead = make([]atomic.Int64, len(tables))
	)
	go func() {
		for {
			m, err := s.Next(ctx)
			if err != nil {
				return
			}
			md := m.Metadata
			if md.TableName == "marker" {
				markers <- m.Record["id"].(int64)
			} else if m.Record != nil {
				k := key{md.TableSchema + "|" + md.TableName, m.Record["id"].(int64)}
				n := m.Record["n"].(int64)
				mu.Lock()
				if m.Action == message.ActionRead {
					for i, tb := range tables {
						if tb.schema == md.TableSchema && tb.table == md.TableName && k.id > maxRead[i].Load() {
							maxRead[i].Store(k.id)
						}
					}
					reads[k.table]++
					if prev, ok := last[k]; ok && n < prev {
						overtook = append(overtook, fmt.Sprintf("%s row %d: read n=%d after a change to n=%d", k.table, k.id, n, prev))
					}
				}
				if prev, ok := last[k]; !ok || n > prev || m.Action != message.ActionRead {
					last[k] = n
				}
				mu.Unlock()
			}
			s.Ack(m)
		}
	}()

	// Writers update rows of every table until the backfills end, mostly
	// those the next chunk reads.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes [2]int
	for w := range writes {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := rand.IntN(len(tables))
				id := maxRead[i].Load() + 1 + rand.Int64N(2*chunk)
				if id > rows || rand.IntN(4) == 0 {
					id = rand.Int64N(rows) + 1
				}
				if _, err := e.p.Exec(ctx, "update "+tables[i].sql+" set n = n + 1 where id = $1", id); err != nil {
					if ctx.Err() == nil {
						t.Error(err)
					}
					return
				}
				writes[w]++
			}
		})
	}
	var bwg sync.WaitGroup
	for i, tb := range tables {
		bwg.Go(func() {
			cfg := backfill.Config{Table: tb.name, ID: fmt.Sprintf("q%d", i), ChunkSize: chunk, OrderBy: tb.orderBy}
			if err := s.Backfill(ctx, cfg); err != nil {
				t.Errorf("Backfill %s: %v", tb.name, err)
			}
		})
	}
	bwg.Wait()
	close(stop)
	wg.Wait()
	e.exec("insert into marker values (1)")
	select {
	case <-markers:
	case <-time.After(60 * time.Second):
		t.Fatal("the consumer did not reach the marker")
	}
	t.Logf("concurrent updates: %d", writes[0]+writes[1])

	mu.Lock()
	defer mu.Unlock()
	for i, o := range overtook {
		if i < 5 {
			t.Error(o)
		}
	}
	if len(overtook) > 0 {
		t.Fatalf("%d reads overtook a newer change of their row", len(overtook))
	}
	for _, tb := range tables {
		qual := tb.schema + "|" + tb.table
		if reads[qual] == 0 {
			t.Errorf("%s: no reads delivered as %q.%q", tb.name, tb.schema, tb.table)
		}
		got, err := e.p.Query(ctx, "select id, n from "+tb.sql)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for got.Next() {
			var id, n int64
			if err := got.Scan(&id, &n); err != nil {
				t.Fatal(err)
			}
			want++
			if r, ok := last[key{qual, id}]; !ok || r != n {
				t.Errorf("%s row %d: table n=%d, replica n=%d (delivered: %v)", tb.name, id, n, r, ok)
			}
		}
		if err := got.Err(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d rows, %d reads delivered", tb.name, want, reads[qual])
	}
}
