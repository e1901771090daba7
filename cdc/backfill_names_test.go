package cdc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/message"
)

// TestBackfillQuotedNamesUnderWrites backfills tables whose names need
// quotes — dots, double quotes, upper case — while their rows are updated,
// and checks the watermark guarantee: every update raises a row's n, so a
// read carrying a lower n than a change of that row delivered before it
// overtook the newer change. Each table ends equal to its replica. The
// chunk in flight must be matched to the table's changes by the names the
// catalog (and so every change) carries.
func TestBackfillQuotedNamesUnderWrites(t *testing.T) {
	const rows, chunk = 1500, 50
	tables := []struct{ sql, name, schema, table string }{
		{`"my.schema"."Line ""Items"""`, `"my.schema"."Line ""Items"""`, "my.schema", `Line "Items"`},
		{`"Sales".orders`, `"Sales".ORDERS`, "Sales", "orders"},
		{`"a.b"`, `"a.b"`, "public", "a.b"},
	}
	setup := []string{`create schema "my.schema"`, `create schema "Sales"`, "create table marker (id bigint primary key)"}
	for _, tb := range tables {
		setup = append(setup,
			"create table "+tb.sql+" (id bigint primary key, n bigint not null)",
			fmt.Sprintf("insert into %s select g, 0 from generate_series(1, %d) g", tb.sql, rows))
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
			cfg := backfill.Config{Table: tb.name, ID: fmt.Sprintf("q%d", i), ChunkSize: chunk}
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
