package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/kafka"
)

// change returns an insert of row id into public.<table>.
func change(table string, id int64) message.Message {
	m := message.Message{
		Record: map[string]any{"id": id, "name": "row " + strconv.FormatInt(id, 10)},
		Action: message.ActionInsert,
		Metadata: message.Metadata{
			TableSchema:     "public",
			TableName:       table,
			IdempotencyKey:  message.ChangeKey(message.LSN(1000+id), int(id)),
			CommitTimestamp: time.Date(2024, 10, 28, 21, 37, 1, 127470000, time.UTC),
			CommitLSN:       message.LSN(1000 + id),
			CommitIdx:       int(id),
		},
	}
	m.Metadata.SetPrimaryKey("id")
	m.Metadata.SetColumns("id", "name")
	return m
}

// testEncoder is a deterministic encoder independent of the JSON encoding.
func testEncoder(m message.Message) ([]byte, error) {
	return fmt.Appendf(nil, "%s %s.%s %v", m.Action, m.Metadata.TableSchema, m.Metadata.TableName, m.Record["id"]), nil
}

// versions returns n versions of each of rows rows of table t, interleaved:
// version 0 of every row, then version 1, and so on.
func versions(n int, rows int64) []message.Message {
	var msgs []message.Message
	for v := range n {
		for id := range rows {
			m := change("t", id)
			m.Record["version"] = v
			msgs = append(msgs, m)
		}
	}
	return msgs
}

func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func newSink(t *testing.T, cfg kafka.Config) *kafka.Sink {
	t.Helper()
	if cfg.Encoder == nil {
		cfg.Encoder = testEncoder
	}
	s, err := kafka.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// consume reads n records from the start of topics.
func consume(t *testing.T, brokers []string, n int, topics ...string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(30*time.Second))
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %v: %v", len(recs), n, topics, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return "<missing>"
}

func TestRoutingKeysHeadersPayloads(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(3, "sequin.public.users", "sequin.public.orders"))
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs()})

	var msgs []message.Message
	for i := range int64(10) {
		table := "users"
		if i%2 == 1 {
			table = "orders"
		}
		msgs = append(msgs, change(table, i))
	}
	if err := s.Write(t.Context(), msgs...); err != nil {
		t.Fatalf("Write: %v", err)
	}

	recs := consume(t, c.ListenAddrs(), len(msgs), "sequin.public.users", "sequin.public.orders")
	if len(recs) != len(msgs) {
		t.Fatalf("read %d records, want %d", len(recs), len(msgs))
	}
	for _, r := range recs {
		id, err := strconv.ParseInt(string(r.Key), 10, 64)
		if err != nil {
			t.Fatalf("key %q is not the id: %v", r.Key, err)
		}
		want := msgs[id]
		if wantTopic := "sequin.public." + want.Metadata.TableName; r.Topic != wantTopic {
			t.Errorf("record %d in topic %s, want %s", id, r.Topic, wantTopic)
		}
		wantValue, _ := testEncoder(want)
		if string(r.Value) != string(wantValue) {
			t.Errorf("record %d value %q, want %q", id, r.Value, wantValue)
		}
		if got := header(r, "idempotency-key"); got != want.Metadata.IdempotencyKey {
			t.Errorf("record %d idempotency-key %q, want %q", id, got, want.Metadata.IdempotencyKey)
		}
		if got := header(r, "action"); got != "insert" {
			t.Errorf("record %d action %q", id, got)
		}
		if got := header(r, "table"); got != "public."+want.Metadata.TableName {
			t.Errorf("record %d table %q", id, got)
		}
	}
}

func TestFixedTopicAndTopicFunc(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "all", "custom-users"))
	fixed := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), Topic: "all"})
	byFunc := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), TopicFunc: func(m message.Message) string {
		return "custom-" + m.Metadata.TableName
	}})
	if err := fixed.Write(t.Context(), change("users", 1), change("orders", 2)); err != nil {
		t.Fatal(err)
	}
	if err := byFunc.Write(t.Context(), change("users", 3)); err != nil {
		t.Fatal(err)
	}
	if recs := consume(t, c.ListenAddrs(), 2, "all"); len(recs) != 2 {
		t.Errorf("topic all has %d records, want 2", len(recs))
	}
	recs := consume(t, c.ListenAddrs(), 1, "custom-users")
	if string(recs[0].Key) != "3" {
		t.Errorf("custom-users record key %q, want 3", recs[0].Key)
	}
	if got := fixed.Topic(change("orders", 1)); got != "all" {
		t.Errorf("Topic = %q", got)
	}
}

func TestPerRowOrder(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(4, "sequin.public.t"))
	// Five versions of each of four rows, interleaved, over two Writes.
	msgs := versions(5, 4)
	enc := func(m message.Message) ([]byte, error) { return fmt.Appendf(nil, "%v", m.Record["version"]), nil }
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), BatchSize: 3, Encoder: enc})
	if err := s.Write(t.Context(), msgs[:9]...); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), msgs[9:]...); err != nil {
		t.Fatal(err)
	}
	recs := consume(t, c.ListenAddrs(), len(msgs), "sequin.public.t")
	next := map[string]int{}
	for _, r := range recs {
		v, _ := strconv.Atoi(string(r.Value))
		if v != next[string(r.Key)] {
			t.Errorf("row %s: version %d, want %d", r.Key, v, next[string(r.Key)])
		}
		next[string(r.Key)] = v + 1
	}
}

// Java's org.apache.kafka.common.utils.Utils.murmur2 of these keys, from
// Kafka's own test suite (UtilsTest.testMurmur2).
var javaMurmur2 = map[string]int32{
	"21":                         -973932308,
	"foobar":                     -790332482,
	"a-little-bit-long-string":   -985981536,
	"a-little-bit-longer-string": -1486304829,
	"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
	"abc": 479470107,
}

func TestPartitioningMatchesJavaClient(t *testing.T) {
	const partitions = 7
	c := newCluster(t, kfake.SeedTopics(partitions, "sequin.public.keys"))
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs()})
	var msgs []message.Message
	for key := range javaMurmur2 {
		m := change("keys", 0)
		m.Record["id"] = key
		msgs = append(msgs, m)
	}
	if err := s.Write(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	for _, r := range consume(t, c.ListenAddrs(), len(msgs), "sequin.public.keys") {
		// Java's DefaultPartitioner: toPositive(murmur2(key)) % numPartitions.
		want := int32((uint32(javaMurmur2[string(r.Key)]) & 0x7fffffff) % partitions)
		if r.Partition != want {
			t.Errorf("key %q on partition %d, the Java client picks %d", r.Key, r.Partition, want)
		}
	}
}

func TestMessageTooLargeForSink(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "sequin.public.big"))
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), MaxMessageBytes: 1000,
		Encoder: func(message.Message) ([]byte, error) { return make([]byte, 5000), nil }})
	err := s.Write(t.Context(), change("big", 1))
	if err == nil || !sink.IsPermanent(err) {
		t.Fatalf("Write = %v, want a permanent error", err)
	}
	for _, want := range []string{`"sequin.public.big"`, "1000-byte limit", "5"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestMessageTooLargeForBroker(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "sequin.public.big"),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": "2000"}))
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(),
		Encoder: func(message.Message) ([]byte, error) { return make([]byte, 5000), nil }})
	err := s.Write(t.Context(), change("big", 1))
	if err == nil || !sink.IsPermanent(err) {
		t.Fatalf("Write = %v, want a permanent error", err)
	}
	t.Logf("too large: %v", err)
	if !strings.Contains(err.Error(), "sequin.public.big") || !strings.Contains(err.Error(), "too large") {
		t.Errorf("error %q should name the topic and say too large", err)
	}
}

func TestUnknownTopic(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "sequin.public.known"))
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs()})
	err := s.Write(t.Context(), change("known", 1), change("missing", 2))
	if err == nil || !sink.IsPermanent(err) {
		t.Fatalf("Write = %v, want a permanent error", err)
	}
	t.Logf("unknown topic: %v", err)
	if !strings.Contains(err.Error(), `unknown topic "sequin.public.missing"`) {
		t.Errorf("error %q should name the missing topic", err)
	}
	if strings.Contains(err.Error(), `"sequin.public.known"`) {
		t.Errorf("error %q names a topic that exists", err)
	}
}

func TestAutoTopicCreation(t *testing.T) {
	c := newCluster(t, kfake.AllowAutoTopicCreation())
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), AllowAutoTopicCreation: true})
	if err := s.Write(t.Context(), change("fresh", 1)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if recs := consume(t, c.ListenAddrs(), 1, "sequin.public.fresh"); string(recs[0].Key) != "1" {
		t.Errorf("key %q", recs[0].Key)
	}
}

func TestBrokerDownThenBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	dir := t.TempDir()
	start := func() *kfake.Cluster {
		return newCluster(t, kfake.Ports(port), kfake.DataDir(dir), kfake.SeedTopics(1, "sequin.public.t"))
	}
	c := start()
	addrs := c.ListenAddrs()
	s := newSink(t, kafka.Config{Brokers: addrs, MaxAttempts: 2, WriteTimeout: 2 * time.Second, DialTimeout: time.Second})
	if err := s.Write(t.Context(), change("t", 1)); err != nil {
		t.Fatalf("Write while up: %v", err)
	}

	c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(30*time.Second))
	defer cancel()
	err = s.Write(ctx, change("t", 2))
	if err == nil {
		t.Fatal("Write with the broker down succeeded")
	}
	t.Logf("broker down: %v", err)
	if sink.IsPermanent(err) {
		t.Errorf("broker down is permanent: %v", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Write with the broker down only returned when ctx expired: %v", err)
	}

	start() // closed by the test's cleanup
	var werr error
	for range 20 { // metadata and connections recover over a few tries
		if werr = s.Write(t.Context(), change("t", 2)); werr == nil {
			break
		}
	}
	if werr != nil {
		t.Fatalf("Write after the broker came back: %v", werr)
	}
	recs := consume(t, addrs, 2, "sequin.public.t")
	var keys []string
	for _, r := range recs {
		keys = append(keys, string(r.Key))
	}
	if !slices.Contains(keys, "1") || !slices.Contains(keys, "2") {
		t.Errorf("keys after restart %v, want 1 and 2", keys)
	}
}

func TestContextCancelled(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "sequin.public.t"))
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs()})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Write(ctx, change("t", 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Write(cancelled ctx) = %v, want context.Canceled", err)
	}
}

func TestCloseIdempotentAndWriteAfterClose(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "sequin.public.t"))
	s, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs(), Encoder: testEncoder})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), change("t", 1)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Close(t.Context()); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if err := s.Write(t.Context(), change("t", 2)); !errors.Is(err, sink.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
}

func TestCompression(t *testing.T) {
	codecs := []kafka.Compression{"", kafka.CompressionNone, kafka.CompressionGzip, kafka.CompressionSnappy, kafka.CompressionLz4, kafka.CompressionZstd}
	var topics []string
	for i := range codecs {
		topics = append(topics, "c"+strconv.Itoa(i))
	}
	c := newCluster(t, kfake.SeedTopics(1, topics...))
	for i, codec := range codecs {
		s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), Topic: topics[i], Compression: codec})
		if err := s.Write(t.Context(), change("t", 1), change("t", 2)); err != nil {
			t.Fatalf("%q: Write: %v", codec, err)
		}
		recs := consume(t, c.ListenAddrs(), 2, topics[i])
		if string(recs[1].Value) != "insert public.t 2" {
			t.Errorf("%q: value %q", codec, recs[1].Value)
		}
	}
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c := newCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, "walrelay", "s3cret,="),
				kfake.SeedTopics(1, "sequin.public.t"))
			ctx, cancel := context.WithTimeout(t.Context(), testtime.Bound(30*time.Second))
			defer cancel()
			good := newSink(t, kafka.Config{Brokers: c.ListenAddrs(),
				SASL: &kafka.SASL{Mechanism: strings.ToLower(mech), Username: "walrelay", Password: "s3cret,="}})
			if err := good.Write(ctx, change("t", 1)); err != nil {
				t.Fatalf("Write with the right password: %v", err)
			}
			bad := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), MaxAttempts: 1,
				SASL: &kafka.SASL{Mechanism: mech, Username: "walrelay", Password: "wrong"}})
			if err := bad.Write(ctx, change("t", 2)); err == nil {
				t.Fatal("Write with a wrong password succeeded")
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	ok := []string{"127.0.0.1:9092"}
	for _, tc := range []struct {
		name string
		cfg  kafka.Config
		want string
	}{
		{"no brokers", kafka.Config{}, "no brokers"},
		{"bad broker", kafka.Config{Brokers: []string{"localhost"}}, `"localhost" is not host:port`},
		{"topic and func", kafka.Config{Brokers: ok, Topic: "t", TopicFunc: func(message.Message) string { return "" }}, "exclusive"},
		{"compression", kafka.Config{Brokers: ok, Compression: "brotli"}, `unknown compression "brotli"`},
		{"negative", kafka.Config{Brokers: ok, BatchSize: -1}, "BatchSize is negative"},
		{"sasl mechanism", kafka.Config{Brokers: ok, SASL: &kafka.SASL{Mechanism: "GSSAPI", Username: "u", Password: "p"}}, `unknown mechanism "GSSAPI"`},
		{"sasl password", kafka.Config{Brokers: ok, SASL: &kafka.SASL{Mechanism: "PLAIN", Username: "u"}}, "username and password are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kafka.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestNoTopic(t *testing.T) {
	s := newSink(t, kafka.Config{Brokers: []string{"127.0.0.1:1"}, TopicFunc: func(message.Message) string { return "" }})
	if err := s.Write(t.Context(), change("t", 1)); !sink.IsPermanent(err) {
		t.Errorf("Write with no topic = %v, want permanent", err)
	}
}
