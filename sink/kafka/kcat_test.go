package kafka_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/kafka"
)

// TestKcatReadsWhatTheSinkProduced checks interoperability with librdkafka:
// kcat consumes what the sink produced (compressed, with headers) and sees
// the same keys, headers and payloads.
func TestKcatReadsWhatTheSinkProduced(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("WALRELAY_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("kcat is required (WALRELAY_REQUIRE_POSTGRES=1): %v", err)
		}
		t.Skipf("SKIP (no kcat on PATH; install the kcat package): %v", err)
	}
	const topic = "sequin.public.users"
	c := newCluster(t, kfake.SeedTopics(3, topic))
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), Compression: kafka.CompressionLz4, Encoder: sink.JSON})
	msgs := []message.Message{change("users", 1), change("users", 2), change("users", 3)}
	msgs[1].Action = message.ActionUpdate
	msgs[2].Record["id"] = "tenant-a" // a text key
	if err := s.Write(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(30*time.Second))
	defer cancel()
	// -e exits at the end of every partition; %h prints headers as
	// name=value pairs separated by commas.
	cmd := exec.CommandContext(ctx, kcat, "-b", c.ListenAddrs()[0], "-C", "-t", topic,
		"-o", "beginning", "-e", "-q", "-f", "%k|%h|%s\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(lines)
	var want []string
	for _, m := range msgs {
		value, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, string(kafka.Key(m))+"|idempotency-key="+m.Metadata.IdempotencyKey+
			",action="+string(m.Action)+",table=public.users|"+string(value))
	}
	slices.Sort(want)
	if !slices.Equal(lines, want) {
		t.Errorf("kcat read:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
