package prom_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/walrelay/walrelay/backfill"
	"github.com/walrelay/walrelay/cdc"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/metrics/prom"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/kafka"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// scrape GETs url and parses it with Prometheus' own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("scrape: %s", res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return fams
}

// value is the value of the one series of name whose labels include
// labels, failing when there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
	if f.GetHelp() == "" {
		t.Fatalf("%s has no help", name)
	}
outer:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if got[labels[i]] != labels[i+1] {
				continue outer
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		}
		t.Fatalf("%s: type %v", name, f.GetType())
	}
	t.Fatalf("no series of %s with %v", name, labels)
	return 0
}

// The endpoint serves the stream's, the backfill's, the slot's and the
// Kafka sink's metrics, every one parsed by Prometheus' parser with the
// values Stats and the sink report.
func TestScrape(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url, "create table t (id int primary key, v text)",
		"insert into t select g, 'old' from generate_series(1, 300) g", "analyze t",
		"create publication pub for table t")
	ctx := t.Context()
	s, err := cdc.Open(ctx, cdc.Config{ConnString: url, Slot: pgtest.Name(t, "slot"), Publication: "pub", CreateSlot: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "walrelay"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ks, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs(), Topic: "walrelay"})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close(context.Background())

	srv := httptest.NewServer(prom.Handler(s, prom.Options{Sinks: map[string]sink.StatsReporter{"kafka": ks}}))
	defer srv.Close()
	fams := scrape(t, srv.URL)
	if v := value(t, fams, "walrelay_connected", "slot", s.Stats().Slot); v != 1 {
		t.Fatalf("connected %v", v)
	}
	if v := value(t, fams, "walrelay_sink_writes_total", "sink", "kafka"); v != 0 {
		t.Fatalf("sink writes before %v", v)
	}

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cdc.Run(rctx, s, ks, cdc.RunOptions{}) }()
	defer func() {
		cancel()
		<-done
	}()
	pgtest.Exec(t, url, "insert into t select g, 'new' from generate_series(1001, 1100) g")
	bctx, bcancel := context.WithTimeout(ctx, testtime.Bound(60*time.Second))
	defer bcancel()
	if err := s.Backfill(bctx, backfill.Config{ID: "t1", Table: "t"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testtime.Bound(30 * time.Second))
	for s.Stats().MessagesAcked < 400 || s.Stats().SlotStatus == nil {
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: %+v", s.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The stream keeps counting (heartbeats, keepalives) while the
	// endpoint is scraped: each counter must lie between Stats read just
	// before and just after.
	before := s.Stats()
	fams = scrape(t, srv.URL)
	st, ss := s.Stats(), ks.Stats()
	for name, bounds := range map[string][2]float64{
		"walrelay_received_messages_total":     {float64(before.MessagesIn), float64(st.MessagesIn)},
		"walrelay_acknowledged_messages_total": {float64(before.MessagesAcked), float64(st.MessagesAcked)},
		"walrelay_delivery_messages_total":     {float64(before.Delivery.Messages), float64(st.Delivery.Messages)},
		"walrelay_transactions_total":          {float64(before.Transactions), float64(st.Transactions)},
		"walrelay_reconnects_total":            {0, 0},
		"walrelay_delivery_failing_seconds":    {0, 0},
		"walrelay_standby":                     {0, 0},
	} {
		if got := value(t, fams, name); got < bounds[0] || got > bounds[1] {
			t.Errorf("%s = %v, want between %v and %v (Stats before and after the scrape)", name, got, bounds[0], bounds[1])
		}
	}
	if st.MessagesIn < 400 || st.Transactions == 0 {
		t.Fatalf("stats %+v", st)
	}
	if got := value(t, fams, "walrelay_received_bytes_total"); got < 400*3 {
		t.Errorf("received bytes %v", got)
	}
	if got := value(t, fams, "walrelay_acknowledged_lsn_bytes"); got <= 0 || got > value(t, fams, "walrelay_server_wal_end_lsn_bytes") {
		t.Errorf("acknowledged LSN %v", got)
	}
	if got := value(t, fams, "walrelay_last_message_timestamp_seconds"); got < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last message at %v", got)
	}
	if got := value(t, fams, "walrelay_backfill_rows_read_total", "backfill", "t1", "table", "public.t"); got != 400 {
		t.Errorf("backfill rows read %v", got)
	}
	if got := value(t, fams, "walrelay_backfill_rows_estimated", "backfill", "t1"); got != 300 {
		t.Errorf("backfill estimate %v (analyzed before the inserts)", got)
	}
	if got := value(t, fams, "walrelay_backfill_done", "backfill", "t1"); got != 1 {
		t.Errorf("backfill done %v", got)
	}
	if got := value(t, fams, "walrelay_slot_wal_status", "status", "reserved"); got != 1 {
		t.Errorf("slot reserved %v", got)
	}
	if got := value(t, fams, "walrelay_slot_wal_status", "status", "lost"); got != 0 {
		t.Errorf("slot lost %v", got)
	}
	if got := value(t, fams, "walrelay_slot_exists"); got != 1 {
		t.Errorf("slot exists %v", got)
	}
	if _, ok := fams["walrelay_slot_safe_wal_size_bytes"]; ok {
		t.Errorf("safe_wal_size exported with an unlimited max_slot_wal_keep_size")
	}
	if got := value(t, fams, "walrelay_sink_messages_total", "sink", "kafka"); got != float64(ss.Messages) || ss.Messages < 400 || ss.Writes == 0 {
		t.Errorf("sink messages %v, stats %+v", got, ss)
	}
	if got := value(t, fams, "walrelay_sink_failures_total", "sink", "kafka"); got != 0 {
		t.Errorf("sink failures %v", got)
	}
}

// The collector registers beside others in an application's registry, and
// two streams' collectors coexist (their slot label differs).
func TestRegister(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url, "create table t (id int primary key)", "create publication pub for table t")
	reg := prometheus.NewRegistry()
	for _, name := range []string{"a", "b"} {
		s, err := cdc.Open(t.Context(), cdc.Config{ConnString: url, Slot: pgtest.Name(t, name), Publication: "pub", CreateSlot: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := reg.Register(prom.New(s, prom.Options{})); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "walrelay_connected" && len(f.Metric) != 2 {
			t.Fatalf("walrelay_connected: %d series", len(f.Metric))
		}
	}
}
