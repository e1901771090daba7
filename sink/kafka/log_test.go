package kafka_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/sink/kafka"
)

// TestRetriesLoggedAtWarn: each retried produce request is a Warn record
// with the topic, partition, attempt and error under the library's keys,
// so a retrying sink is not silent at the default level.
func TestRetriesLoggedAtWarn(t *testing.T) {
	const topic = "sequin.public.t"
	c := newCluster(t, kfake.SeedTopics(1, topic))
	var logs pgtest.Buffer
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), MaxAttempts: 3,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err := s.Write(t.Context(), change("t", 1)); err != nil {
		t.Fatal(err)
	}
	const notLeaderForPartition = 6
	failProduce(c, notLeaderForPartition, 2)
	if err := s.Write(t.Context(), change("t", 2)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log records at Warn, want 2 (one per retry):\n%s", len(lines), logs.String())
	}
	for i, l := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r["level"] != "WARN" || r["topic"] != topic || r["attempt"] != float64(i+1) || r["err"] == nil || r["partition"] != float64(0) {
			t.Errorf("record %d: %s", i, l)
		}
	}
}
