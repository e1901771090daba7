package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/kafka"
	"github.com/walrelay/walrelay/sink/webhook"
)

// scenario is one throughput workload.
type scenario struct {
	Name     string
	RowBytes int // about this many bytes per row on disk
	Rows     int
	PerTx    int // rows per transaction
}

func (b *bench) scenarios() []scenario {
	sz := b.sz
	return []scenario{
		{"100 B rows, small tx", 100, sz.SmallRows, sz.SmallTx},
		{"100 B rows, large tx", 100, sz.SmallRows, sz.SmallRows / sz.LargeTxs},
		{"2 KB rows, small tx", 2000, sz.LargeRows, sz.SmallTx},
		{"2 KB rows, large tx", 2000, sz.LargeRows, sz.LargeRows / sz.LargeTxs},
	}
}

// Throughput is one scenario's figures: medians over the rounds.
type Throughput struct {
	Scenario   string
	Rows       int
	PerTx      int
	WALBytes   int64
	JSONBytes  int64   // seed JSON of every row, as the null sink encoded it
	Recv       Rate    // pg_recvlogical, pgoutput to /dev/null
	Null       Rate    // walrelay: cdc.Run, JSON encoding, ack, null sink
	Kafka      Rate    // cdc.Run into the Kafka sink (kfake, storing the records)
	KafkaDrop  Rate    // the same, the broker acknowledging records without storing them
	Webhook    Rate    // cdc.Run into the webhook sink (local receiver), batch mode
	NullRatio  float64 // Null / Recv
	KafkaRatio float64 // Kafka / Null
	DropRatio  float64 // KafkaDrop / Null
	HookRatio  float64 // Webhook / Null

	NextMarshal  Rate    // Stream.Next, json.Marshal(m), Ack
	NextAppend   Rate    // Stream.Next, m.AppendJSON into a reused buffer, Ack
	MarshalRatio float64 // NextMarshal / Null
	AppendRatio  float64 // NextAppend / Null

	Costs []ConsumerCost // every consumer measured, in the order run
}

// ConsumerCost is one consumer's rate and cost (medians over the rounds).
type ConsumerCost struct {
	Consumer   string
	RowsPerSec float64
	Cost
}

// Rate is a measured throughput.
type Rate struct {
	RowsPerSec float64
	MBPerSec   float64 // WAL bytes (pg_wal_lsn_diff) per second, 10^6
	Seconds    float64
}

// tableDDL creates an order-like table of six columns; rowsSQL sizes the
// note so that a row is about 100 bytes or 2 KB.
func tableDDL(name string) string {
	return `create table ` + name + ` (id int8 primary key, account int4 not null,
		amount numeric(12,2) not null, status text not null, note text not null,
		created_at timestamptz not null)`
}

// rowsSQL inserts rows lo..hi (SQL expressions).
func rowsSQL(table string, rowBytes int, lo, hi string) string {
	note := "md5(i::text)" // 32 bytes: a row of about 100 bytes with its header
	if rowBytes > 100 {
		note = "repeat(md5(i::text), 59)" // 1888 bytes: about 2 KB, below the TOAST threshold
	}
	return fmt.Sprintf(`insert into %s select i, i %% 1000, (i %% 100000) / 100.0,
		(array['pending','paid','shipped','cancelled'])[1 + i %% 4], %s,
		'2024-10-28 21:37:01.12747+00'::timestamptz + i * interval '1 second'
		from generate_series(%s, %s) i`, table, note, lo, hi)
}

// workload is generated WAL waiting in a base slot.
type workload struct {
	table, pub, slot string
	rows             int    // rows to count; one marker row follows them
	endpos           string // LSN after the rows, before the marker
	walBytes         int64
}

// generate creates a table, its publication and a base slot, then commits
// sc's rows, then one marker row: pg_recvlogical stops at the marker
// (--endpos), walrelay after receiving it.
func (b *bench) generate(ctx context.Context, rows, rowBytes, perTx int) (*workload, error) {
	w := &workload{table: b.name("t"), rows: rows}
	w.pub, w.slot = w.table+"_pub", w.table+"_slot"
	if err := b.exec(ctx, tableDDL(w.table),
		"create publication "+w.pub+" for table "+w.table,
		"select pg_create_logical_replication_slot('"+w.slot+"', 'pgoutput')",
	); err != nil {
		return nil, err
	}
	// One DO block commits every perTx rows without a round trip each.
	do := fmt.Sprintf(`do $$ begin
		for lo in 1..%d by %d loop
			%s;
			commit;
		end loop; end $$`, rows, perTx, rowsSQL(w.table, rowBytes, "lo", fmt.Sprintf("least(lo + %d, %d)", perTx-1, rows)))
	if err := b.exec(ctx, do); err != nil {
		return nil, err
	}
	if err := b.conn.QueryRow(ctx, "select pg_current_wal_insert_lsn()::text").Scan(&w.endpos); err != nil {
		return nil, err
	}
	marker := strconv.Itoa(rows + 1)
	if err := b.exec(ctx, rowsSQL(w.table, rowBytes, marker, marker)); err != nil {
		return nil, err
	}
	err := b.conn.QueryRow(ctx, "select pg_wal_lsn_diff($1::pg_lsn, confirmed_flush_lsn)::int8 from pg_replication_slots where slot_name = $2",
		w.endpos, w.slot).Scan(&w.walBytes)
	return w, err
}

// drop removes the workload's slot, publication and table.
func (b *bench) drop(ctx context.Context, w *workload) {
	b.exec(ctx, "select pg_drop_replication_slot('"+w.slot+"')",
		"drop publication "+w.pub, "drop table "+w.table)
}

// copySlot makes a consumer's own slot at the base slot's position.
func (b *bench) copySlot(ctx context.Context, w *workload, suffix string) (string, error) {
	name := w.slot + "_" + suffix
	err := b.exec(ctx, "select pg_copy_logical_replication_slot('"+w.slot+"', '"+name+"')")
	return name, err
}

func (b *bench) dropSlot(ctx context.Context, slot string) {
	b.exec(ctx, "select pg_drop_replication_slot('"+slot+"')")
}

func (b *bench) throughput(ctx context.Context, sc scenario) (Throughput, error) {
	b.opts.logf("throughput: %s (%d rows, %d per tx)", sc.Name, sc.Rows, sc.PerTx)
	w, err := b.generate(ctx, sc.Rows, sc.RowBytes, sc.PerTx)
	if err != nil {
		return Throughput{}, err
	}
	defer b.drop(ctx, w)
	res := Throughput{Scenario: sc.Name, Rows: sc.Rows, PerTx: sc.PerTx, WALBytes: w.walBytes}
	// The consumers, alternated within each round.
	type consumer struct {
		name string // as in -sinks; "" = always run
		desc string
		rate *Rate
		time func() (time.Duration, Cost, error)
	}
	var null *nullSink
	consumers := []consumer{
		{"", "pg_recvlogical → /dev/null", &res.Recv, func() (time.Duration, Cost, error) { return b.timeRecvlogical(ctx, w) }},
		{"null", "cdc.Run, null sink (AppendJSON)", &res.Null, func() (time.Duration, Cost, error) {
			null = &nullSink{}
			return b.timeWalrelay(ctx, w, "null", null)
		}},
		{"next-marshal", "Next + json.Marshal(m)", &res.NextMarshal, func() (time.Duration, Cost, error) {
			return b.timeNext(ctx, w, "marshal", func(_ []byte, m message.Message) ([]byte, error) { return json.Marshal(m) })
		}},
		{"next-append", "Next + m.AppendJSON(buf)", &res.NextAppend, func() (time.Duration, Cost, error) {
			return b.timeNext(ctx, w, "append", func(buf []byte, m message.Message) ([]byte, error) { return m.AppendJSON(buf[:0]) })
		}},
		{"kafka", "cdc.Run, Kafka sink", &res.Kafka, func() (time.Duration, Cost, error) { return b.timeKafka(ctx, w, false) }},
		{"kafka-discard", "cdc.Run, Kafka sink, broker discarding", &res.KafkaDrop, func() (time.Duration, Cost, error) { return b.timeKafka(ctx, w, true) }},
		{"webhook", "cdc.Run, webhook sink", &res.Webhook, func() (time.Duration, Cost, error) { return b.timeWebhook(ctx, w) }},
	}
	times := make([][]float64, len(consumers))
	costs := make([][]Cost, len(consumers))
	for round := 0; round < b.opts.Rounds; round++ {
		line := fmt.Sprintf("  round %d:", round+1)
		for i, c := range consumers {
			if c.name != "" && !want(b.opts.Sinks, c.name) {
				continue
			}
			d, cost, err := c.time()
			if err != nil {
				return res, fmt.Errorf("%s: %w", c.desc, err)
			}
			times[i] = append(times[i], d.Seconds())
			costs[i] = append(costs[i], cost)
			line += fmt.Sprintf(" %s %v (walsender %.2f+%.2f µs/row, consumer %.2f µs/row, %.0f switches/1k rows);", c.desc, d.Round(time.Millisecond),
				cost.WalsenderUserUS, cost.WalsenderSysUS, cost.ConsumerUS, cost.SwitchesPer1k)
		}
		b.opts.logf("%s", line)
	}
	if null != nil {
		res.JSONBytes = null.bytes.Load()
	}
	for i, c := range consumers {
		if len(times[i]) == 0 {
			continue // not measured (-sinks)
		}
		secs := median(times[i])
		*c.rate = Rate{RowsPerSec: float64(w.rows) / secs, MBPerSec: float64(w.walBytes) / secs / 1e6, Seconds: secs}
		res.Costs = append(res.Costs, ConsumerCost{Consumer: c.desc, RowsPerSec: c.rate.RowsPerSec, Cost: medianCost(costs[i])})
	}
	ratio := func(a, b Rate) float64 {
		if a.RowsPerSec == 0 || b.RowsPerSec == 0 {
			return 0
		}
		return a.RowsPerSec / b.RowsPerSec
	}
	res.NullRatio = ratio(res.Null, res.Recv)
	res.KafkaRatio = ratio(res.Kafka, res.Null)
	res.DropRatio = ratio(res.KafkaDrop, res.Null)
	res.HookRatio = ratio(res.Webhook, res.Null)
	res.MarshalRatio = ratio(res.NextMarshal, res.Null)
	res.AppendRatio = ratio(res.NextAppend, res.Null)
	return res, nil
}

// timeRecvlogical runs pg_recvlogical on a copy of the slot up to endpos.
func (b *bench) timeRecvlogical(ctx context.Context, w *workload) (time.Duration, Cost, error) {
	slot, err := b.copySlot(ctx, w, "recv")
	if err != nil {
		return 0, Cost{}, err
	}
	defer b.dropSlot(ctx, slot)
	cmd := exec.CommandContext(ctx, b.recvlogical, "-d", b.url,
		"--slot", slot, "--start", "--no-loop", "--endpos", w.endpos,
		"-o", "proto_version=1", "-o", "publication_names="+w.pub, "-f", "/dev/null")
	meter, err := b.startCost()
	if err != nil {
		return 0, Cost{}, err
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, Cost{}, fmt.Errorf("%w: %s", err, out)
	}
	var used usage
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		used = usageOf(ru)
	}
	cost, err := b.stopCost(meter, w.rows, used)
	if err != nil {
		return 0, Cost{}, err
	}
	// It must have read everything up to endpos, not given up early.
	var behind bool
	if err := b.conn.QueryRow(ctx, "select confirmed_flush_lsn < $1::pg_lsn from pg_replication_slots where slot_name = $2",
		w.endpos, slot).Scan(&behind); err != nil {
		return 0, Cost{}, err
	}
	if behind {
		return 0, Cost{}, errors.New("stopped before the end position")
	}
	return d, cost, nil
}

// timeWalrelay streams a copy of the slot through cdc.Run into sk until the
// rows and the marker arrived.
func (b *bench) timeWalrelay(ctx context.Context, w *workload, suffix string, sk sink.Sink) (time.Duration, Cost, error) {
	slot, err := b.copySlot(ctx, w, suffix)
	if err != nil {
		return 0, Cost{}, err
	}
	defer b.dropSlot(ctx, slot)
	meter, err := b.startCost()
	if err != nil {
		return 0, Cost{}, err
	}
	cs := &countingSink{next: sk, want: int64(w.rows + 1), done: make(chan struct{})}
	u0 := selfUsage()
	start := time.Now()
	s, err := cdc.Open(ctx, cdc.Config{ConnString: b.url, Slot: slot, Publication: w.pub, HeartbeatInterval: -1})
	if err != nil {
		return 0, Cost{}, err
	}
	defer s.Close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- cdc.Run(rctx, s, cs, cdc.RunOptions{}) }()
	select {
	case <-cs.done:
	case err := <-runErr:
		return 0, Cost{}, fmt.Errorf("run stopped after %d messages: %w", cs.n.Load(), err)
	}
	d := time.Since(start)
	used := selfUsage().since(u0)
	cancel()
	<-runErr
	s.Close()
	cost, err := b.stopCost(meter, w.rows, used)
	if err != nil {
		return 0, Cost{}, err
	}
	b.opts.logf("    %s: %v, process CPU %v (%.2f µs/row)", suffix, d.Round(time.Millisecond), used.cpu.Round(time.Millisecond), cost.ConsumerUS)
	return d, cost, nil
}

// timeNext reads a copy of the slot with Stream.Next, encodes each message
// with enc (given a buffer it may reuse) and acknowledges it, until the rows
// and the marker arrived.
func (b *bench) timeNext(ctx context.Context, w *workload, suffix string, enc func([]byte, message.Message) ([]byte, error)) (time.Duration, Cost, error) {
	slot, err := b.copySlot(ctx, w, "next_"+suffix)
	if err != nil {
		return 0, Cost{}, err
	}
	defer b.dropSlot(ctx, slot)
	meter, err := b.startCost()
	if err != nil {
		return 0, Cost{}, err
	}
	u0 := selfUsage()
	start := time.Now()
	s, err := cdc.Open(ctx, cdc.Config{ConnString: b.url, Slot: slot, Publication: w.pub, HeartbeatInterval: -1})
	if err != nil {
		return 0, Cost{}, err
	}
	defer s.Close()
	var buf []byte
	var n int64
	for got := 0; got < w.rows+1; got++ {
		m, err := s.Next(ctx)
		if err != nil {
			return 0, Cost{}, fmt.Errorf("next after %d messages: %w", got, err)
		}
		if buf, err = enc(buf, m); err != nil {
			return 0, Cost{}, err
		}
		n += int64(len(buf))
		s.Ack(m)
	}
	d := time.Since(start)
	used := selfUsage().since(u0)
	s.Close()
	cost, err := b.stopCost(meter, w.rows, used)
	if err != nil {
		return 0, Cost{}, err
	}
	b.opts.logf("    next+%s: %v, process CPU %v (%.2f µs/row), %d JSON bytes", suffix, d.Round(time.Millisecond), used.cpu.Round(time.Millisecond), cost.ConsumerUS, n)
	return d, cost, nil
}

// timeKafka times cdc.Run into the Kafka sink, producing to an in-process
// kfake broker (see newBroker).
func (b *bench) timeKafka(ctx context.Context, w *workload, discard bool) (time.Duration, Cost, error) {
	const topic = "walrelay-bench"
	name := "kafka"
	if discard {
		name = "kafka_discard"
	}
	kc, stop, err := newBroker(topic, discard)
	if err != nil {
		return 0, Cost{}, err
	}
	defer stop()
	sk, err := kafka.New(kafka.Config{Brokers: kc.ListenAddrs(), Topic: topic})
	if err != nil {
		return 0, Cost{}, err
	}
	defer sk.Close(context.Background())
	return b.timeWalrelay(ctx, w, name, sk)
}

// newBroker starts a one-broker kfake cluster with a 4-partition topic. It
// stores its log as Kafka does, appending each batch to segment files (in a
// temporary directory, through the page cache, with no fsync per batch);
// kfake's default in-memory log grows one buffer by doubling and copying it,
// a cost of the fake broker that no real one has. With discard the broker
// acknowledges produce requests without storing the records
// (kfake.BlackholeProduce): the log then takes none of the two cores, as a
// remote broker's would not. stop closes the cluster and removes its files.
func newBroker(topic string, discard bool) (kc *kfake.Cluster, stop func(), err error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(4, topic)}
	dir := ""
	if discard {
		opts = append(opts, kfake.BlackholeProduce())
	} else {
		if dir, err = os.MkdirTemp("", "walrelay-bench-kafka-"); err != nil {
			return nil, nil, err
		}
		opts = append(opts, kfake.DataDir(dir))
	}
	if kc, err = kfake.NewCluster(opts...); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return kc, func() {
		kc.Close()
		os.RemoveAll(dir)
	}, nil
}

func (b *bench) timeWebhook(ctx context.Context, w *workload) (time.Duration, Cost, error) {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		rw.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	sk, err := webhook.New(webhook.Config{URL: srv.URL, Batch: true, MaxBatchSize: 500})
	if err != nil {
		return 0, Cost{}, err
	}
	defer sk.Close(context.Background())
	return b.timeWalrelay(ctx, w, "hook", sk)
}

// nullSink encodes every message to the seed JSON and drops it.
type nullSink struct {
	buf   []byte
	bytes atomic.Int64
}

func (s *nullSink) Write(_ context.Context, msgs ...message.Message) error {
	for _, m := range msgs {
		var err error
		if s.buf, err = m.AppendJSON(s.buf[:0]); err != nil {
			return sink.Permanent(err)
		}
		s.bytes.Add(int64(len(s.buf)))
	}
	return nil
}

func (s *nullSink) Close(context.Context) error { return nil }

// countingSink passes writes on and closes done once want messages were
// written.
type countingSink struct {
	next sink.Sink
	want int64
	n    atomic.Int64
	once sync.Once
	done chan struct{}
}

func (c *countingSink) Write(ctx context.Context, msgs ...message.Message) error {
	if err := c.next.Write(ctx, msgs...); err != nil {
		return err
	}
	if c.n.Add(int64(len(msgs))) >= c.want {
		c.once.Do(func() { close(c.done) })
	}
	return nil
}

func (c *countingSink) Close(context.Context) error { return nil }
