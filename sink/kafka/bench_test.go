package kafka_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink/kafka"
)

// BenchmarkWrite is cdc.Run's use of the sink: Writes of 500 six-column
// rows with the default encoder, to an in-process broker (whose work is
// part of the figure). Reported per message.
func BenchmarkWrite(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "sequin.public.orders"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(b.Context())
	const batch = 500
	msgs := make([]message.Message, batch)
	for i := range msgs {
		m := change("orders", int64(i))
		m.Record["account"] = int64(i % 1000)
		m.Record["status"] = "shipped"
		m.Record["note"] = "e10adc3949ba59abbe56e057f20f883e"
		m.Record["created_at"] = time.Date(2024, 10, 28, 21, 37, 1, 127470000, time.UTC)
		m.Metadata.SetColumns("id", "name", "account", "status", "note", "created_at")
		msgs[i] = m
	}
	if err := s.Write(b.Context(), msgs...); err != nil { // metadata, connections
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		if err := s.Write(b.Context(), msgs...); err != nil {
			b.Fatal(err)
		}
	}
}
