package kafka_test

import (
	"errors"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/kafka"
)

// Stats counts writes and messages, each failed produce request, the
// retries, and the last error; it is a sink.StatsReporter.
func TestStats(t *testing.T) {
	const topic = "sequin.public.t"
	c := newCluster(t, kfake.SeedTopics(1, topic))
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), MaxAttempts: 3})
	var _ sink.StatsReporter = s
	if st := s.Stats(); st != (kafka.Stats{}) {
		t.Fatalf("new sink: %+v", st)
	}
	if err := s.Write(t.Context(), change("t", 1)); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Writes != 1 || st.Messages != 1 || st.Failures != 0 || st.Retries != 0 || st.LastError != nil {
		t.Fatalf("after a write: %+v", st)
	}
	const notLeaderForPartition = 6
	failProduce(c, notLeaderForPartition, 2)
	before := time.Now()
	if err := s.Write(t.Context(), change("t", 2), change("t", 3)); err != nil {
		t.Fatalf("Write with two failed tries of three: %v", err)
	}
	st := s.Stats()
	if st.Writes != 2 || st.Messages != 3 || st.Failures != 2 || st.Retries != 2 {
		t.Fatalf("after two retried failures: %+v", st)
	}
	if !errors.Is(st.LastError, kafkago.NotLeaderForPartition) || st.LastErrorAt.Before(before) {
		t.Fatalf("last error %v at %v", st.LastError, st.LastErrorAt)
	}
	// A Write that fails for good counts its attempts and no write.
	failProduce(c, notLeaderForPartition, 0)
	if err := s.Write(t.Context(), change("t", 4)); err == nil {
		t.Fatal("Write succeeded against a broker refusing every request")
	}
	st = s.Stats()
	if st.Writes != 2 || st.Messages != 3 || st.Failures != 5 || st.Retries != 4 {
		t.Fatalf("after a failed write: %+v", st)
	}
}
