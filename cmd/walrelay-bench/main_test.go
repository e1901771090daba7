package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/walrelay/walrelay/internal/pgtest"
)

func TestMain(m *testing.M) {
	// The peak-RSS measurement re-executes this binary as its child.
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain(os.Stdout))
	}
	os.Exit(m.Run())
}

// TestQuick runs the quick mode end to end and checks that it produces every
// figure. It asserts no speed: speed targets live in the benchmark's output.
func TestQuick(t *testing.T) {
	needServer(t)
	rep, err := run(t.Context(), options{Quick: true, Command: "walrelay-bench -quick"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.TCP == "" || strings.ContainsAny(rep.TCP, " \n") {
		t.Errorf("congestion control %q: want one word, or unknown", rep.TCP)
	}
	if len(rep.Throughput) != 4 {
		t.Fatalf("%d throughput scenarios, want 4", len(rep.Throughput))
	}
	for _, th := range rep.Throughput {
		for name, v := range map[string]float64{
			"pg_recvlogical rows/s": th.Recv.RowsPerSec, "pg_recvlogical MB/s": th.Recv.MBPerSec,
			"null rows/s": th.Null.RowsPerSec, "null MB/s": th.Null.MBPerSec,
			"kafka rows/s": th.Kafka.RowsPerSec, "kafka-discard rows/s": th.KafkaDrop.RowsPerSec,
			"webhook rows/s":   th.Webhook.RowsPerSec,
			"null/recvlogical": th.NullRatio, "kafka/null": th.KafkaRatio, "discarding/null": th.DropRatio,
			"webhook/null":               th.HookRatio,
			"JSON bytes":                 float64(th.JSONBytes),
			"Next + json.Marshal rows/s": th.NextMarshal.RowsPerSec, "Next + AppendJSON rows/s": th.NextAppend.RowsPerSec,
			"marshal/Run": th.MarshalRatio, "append/Run": th.AppendRatio,
		} {
			if !(v > 0) {
				t.Errorf("%s: %s = %v", th.Scenario, name, v)
			}
		}
		// Every row was encoded: at least 100 bytes of JSON each.
		if th.JSONBytes < int64(th.Rows)*100 {
			t.Errorf("%s: %d JSON bytes for %d rows", th.Scenario, th.JSONBytes, th.Rows)
		}
	}
	// Every consumer's walsender cost was measured: CPU times come in 10 ms
	// ticks, so they are summed over the scenarios before being checked.
	walsender := map[string]float64{}
	for _, th := range rep.Throughput {
		if len(th.Costs) != 7 {
			t.Errorf("%s: costs of %d consumers, want 7: %+v", th.Scenario, len(th.Costs), th.Costs)
		}
		for _, c := range th.Costs {
			// Every consumer reads and decodes each row: it cannot have
			// used no CPU at all.
			if c.WalsenderUserUS < 0 || c.WalsenderSysUS < 0 || c.SwitchesPer1k < 0 || !(c.ConsumerUS > 0) || !(c.RowsPerSec > 0) {
				t.Errorf("%s, %s: %+v", th.Scenario, c.Consumer, c)
			}
			walsender[c.Consumer] += (c.WalsenderUserUS + c.WalsenderSysUS) * float64(th.Rows)
		}
	}
	for consumer, us := range walsender {
		if !(us > 0) {
			t.Errorf("%s: no walsender CPU measured in any scenario", consumer)
		}
	}
	if len(rep.Latency) != 3 {
		t.Fatalf("%d latency paths, want 3", len(rep.Latency))
	}
	for _, l := range rep.Latency {
		if l.Commits <= 0 || !(l.P50 > 0) || l.P99 < l.P50 || l.P999 < l.P99 || l.Max < l.P999 {
			t.Errorf("latency %s: %+v", l.Path, l)
		}
	}
	if !(rep.RSS.BigMB > 0) || !(rep.RSS.SmallMB > 0) || !(rep.RSS.Ratio > 0) || rep.RSS.BigRows <= rep.RSS.SmallRows {
		t.Errorf("RSS: %+v", rep.RSS)
	}
	if !(rep.Backfill.CopyRowsPerSec > 0) || len(rep.Backfill.Reads) != len(gcSettings) {
		t.Errorf("backfill: %+v", rep.Backfill)
	}
	for _, rd := range rep.Backfill.Reads {
		if !(rd.RowsPerSec > 0) || !(rd.Ratio > 0) || rd.Setting == "" {
			t.Errorf("backfill read: %+v", rd)
		}
	}

	var out bytes.Buffer
	rep.print(&out)
	for _, want := range []string{"pg_recvlogical rows/s", "Kafka/null", "discarding/null", "webhook/null", "p99.9 ms", "marshal/Run", "walsender system µs/row", "consumer CPU µs/row",
		"100000-row transaction", "iterator/COPY", gcSettings[2].name, "machine:", "clients:  TCP to 127.0.0.1, " + rep.TCP + " congestion control", rep.Throughput[3].Scenario} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestSocketUnix runs one quick throughput scenario with every client on the
// server's Unix-domain socket (run checks with the server that they are).
func TestSocketUnix(t *testing.T) {
	needServer(t)
	if _, err := run(t.Context(), options{Quick: true, Socket: "udp"}); err == nil || !strings.Contains(err.Error(), "want tcp or unix") {
		t.Errorf("-socket udp: %v", err)
	}
	rep, err := run(t.Context(), options{Quick: true, Only: "throughput", Sinks: "null", Scenario: "100 B rows, large", Socket: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Socket != "unix" || len(rep.Throughput) != 1 {
		t.Fatalf("socket %q, %d scenarios", rep.Socket, len(rep.Throughput))
	}
	if th := rep.Throughput[0]; !(th.Recv.RowsPerSec > 0) || !(th.Null.RowsPerSec > 0) {
		t.Errorf("pg_recvlogical %.0f rows/s, walrelay %.0f rows/s", th.Recv.RowsPerSec, th.Null.RowsPerSec)
	}
	var out bytes.Buffer
	rep.print(&out)
	if !strings.Contains(out.String(), "clients:  the server's Unix-domain socket") {
		t.Errorf("report does not name the socket:\n%s", out.String())
	}
}

// needServer skips in -short mode, which starts no Postgres, and without
// pg_recvlogical, unless the tests are required to run (pgtest.Required).
func needServer(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Postgres cluster")
	}
	if _, err := findRecvlogical(); err != nil {
		if pgtest.Required() {
			t.Fatal(err)
		}
		t.Skipf("SKIPPING: %v", err)
	}
}
