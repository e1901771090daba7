package kafka_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/kafka"
)

// produced records, per produce request, the partition and record count of
// each request the cluster receives, without changing how it is handled.
type produced struct {
	mu       sync.Mutex
	requests [][2]int32 // partition, records
}

func observeProduce(t *testing.T, c *kfake.Cluster) *produced {
	t.Helper()
	p := &produced{}
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.ProduceRequest)
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, topic := range req.Topics {
			for _, part := range topic.Partitions {
				var batch kmsg.RecordBatch
				if err := batch.ReadFrom(part.Records); err != nil {
					t.Errorf("produce request to %s/%d: record batch: %v", topic.Topic, part.Partition, err)
				}
				p.requests = append(p.requests, [2]int32{part.Partition, batch.NumRecords})
			}
		}
		return nil, nil, false // observed, not handled
	})
	return p
}

func (p *produced) get() [][2]int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

// failProduce answers produce requests with code instead of writing them:
// the first n requests, or all when n is 0. It returns the count of
// requests answered.
func failProduce(c *kfake.Cluster, code int16, n int32) *atomic.Int32 {
	var failed atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		if n > 0 && failed.Load() >= n {
			return nil, nil, false
		}
		c.KeepControl()
		failed.Add(1)
		req := kreq.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, topic := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = topic.Topic, topic.TopicID
			for _, part := range topic.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = part.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	return &failed
}

func TestPartitionsLearnedFromMetadata(t *testing.T) {
	const partitions = 5
	c := newCluster(t, kfake.SeedTopics(partitions, "sequin.public.many"))
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs()})
	var msgs []message.Message
	for id := range int64(200) {
		msgs = append(msgs, change("many", id))
	}
	if err := s.Write(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	// franz-go's key partitioner hashes keys as the Java client does.
	want := kgo.StickyKeyPartitioner(nil).ForTopic("sequin.public.many")
	used := map[int32]int{}
	for _, r := range consume(t, c.ListenAddrs(), len(msgs), "sequin.public.many") {
		used[r.Partition]++
		if p := int32(want.Partition(&kgo.Record{Key: r.Key}, partitions)); r.Partition != p {
			t.Errorf("key %q on partition %d, murmur2 over %d partitions picks %d", r.Key, r.Partition, partitions, p)
		}
	}
	if len(used) != partitions {
		t.Errorf("records on %d partitions (%v), want all %d", len(used), used, partitions)
	}
}

func TestRequestsSplitKeepOrder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    kafka.Config
		maxRec int32 // records per request at most
	}{
		{"BatchSize", kafka.Config{BatchSize: 4}, 4},
		// Each record is a little over 400 bytes (value, key, headers).
		{"MaxMessageBytes", kafka.Config{MaxMessageBytes: 1000}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const topic = "sequin.public.t"
			c := newCluster(t, kfake.SeedTopics(2, topic))
			seen := observeProduce(t, c)
			cfg := tc.cfg
			cfg.Brokers = c.ListenAddrs()
			cfg.Encoder = func(m message.Message) ([]byte, error) {
				return append([]byte(strconv.Itoa(m.Record["version"].(int))+" "), strings.Repeat("x", 400)...), nil
			}
			s := newSink(t, cfg)
			// Ten versions of each of two rows, interleaved.
			msgs := versions(10, 2)
			if err := s.Write(t.Context(), msgs...); err != nil {
				t.Fatal(err)
			}
			reqs := seen.get()
			total := int32(0)
			for _, r := range reqs {
				total += r[1]
				if r[1] > tc.maxRec {
					t.Errorf("a request to partition %d has %d records, want at most %d", r[0], r[1], tc.maxRec)
				}
			}
			if total != int32(len(msgs)) || len(reqs) < len(msgs)/int(tc.maxRec) {
				t.Errorf("%d records in %d requests %v, want %d records in at least %d", total, len(reqs), reqs, len(msgs), len(msgs)/int(tc.maxRec))
			}
			next := map[string]int{}
			for _, r := range consume(t, c.ListenAddrs(), len(msgs), topic) {
				v, _ := strconv.Atoi(strings.Fields(string(r.Value))[0])
				if v != next[string(r.Key)] {
					t.Errorf("row %s: version %d, want %d", r.Key, v, next[string(r.Key)])
				}
				next[string(r.Key)] = v + 1
			}
		})
	}
}

func TestRetriableErrorRetried(t *testing.T) {
	const topic = "sequin.public.t"
	c := newCluster(t, kfake.SeedTopics(1, topic))
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), MaxAttempts: 3})
	if err := s.Write(t.Context(), change("t", 1)); err != nil { // partitions learned
		t.Fatal(err)
	}
	const notLeaderForPartition = 6
	failed := failProduce(c, notLeaderForPartition, 2)
	if err := s.Write(t.Context(), change("t", 2), change("t", 3)); err != nil {
		t.Fatalf("Write with two failed tries of three: %v", err)
	}
	if n := failed.Load(); n != 2 {
		t.Errorf("%d produce requests failed, want 2", n)
	}
	var keys []string
	for _, r := range consume(t, c.ListenAddrs(), 3, topic) {
		keys = append(keys, string(r.Key))
	}
	if !slices.Equal(keys, []string{"1", "2", "3"}) {
		t.Errorf("keys %v, want [1 2 3] (each once, in order)", keys)
	}

	// With fewer tries than failures the Write fails, and a retry of the
	// whole batch may fix it: not permanent.
	failed = failProduce(c, notLeaderForPartition, 2)
	s2 := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), MaxAttempts: 2})
	err := s2.Write(t.Context(), change("t", 4))
	if err == nil || sink.IsPermanent(err) || !strings.Contains(err.Error(), topic) {
		t.Errorf("Write after two failed tries = %v, want an error naming %s, not permanent", err, topic)
	}
	if n := failed.Load(); n != 2 {
		t.Errorf("%d produce requests failed, want 2", n)
	}
}

func TestNonRetriableErrorFailsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name      string
		code      int16
		permanent bool
		want      string
	}{
		{"TopicAuthorizationFailed", 29, false, "Topic Authorization Failed"},
		{"InvalidTopic", 17, true, "Invalid Topic"},
		{"MessageSizeTooLarge", 10, true, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const topic = "sequin.public.t"
			c := newCluster(t, kfake.SeedTopics(3, topic))
			s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), MaxAttempts: 5})
			failed := failProduce(c, tc.code, 0)
			var msgs []message.Message
			for id := range int64(30) { // all three partitions
				msgs = append(msgs, change("t", id))
			}
			err := s.Write(t.Context(), msgs...)
			if err == nil {
				t.Fatal("Write succeeded")
			}
			t.Logf("%s: %v", tc.name, err)
			if sink.IsPermanent(err) != tc.permanent {
				t.Errorf("permanent = %v, want %v", sink.IsPermanent(err), tc.permanent)
			}
			if !strings.Contains(err.Error(), topic) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q should name %s and say %q", err, topic, tc.want)
			}
			if errors.Is(err, sink.ErrClosed) {
				t.Errorf("error %q is ErrClosed", err)
			}
			// One try per partition at most: none of them retried.
			if n := failed.Load(); n < 1 || n > 3 {
				t.Errorf("%d produce requests answered with the error, want 1 to 3 (no retries)", n)
			}
		})
	}
}

// Partitions added to a topic are used once the cached count expires.
func TestPartitionsAddedAreUsed(t *testing.T) {
	defer kafka.SetPartitionsTTL(50 * time.Millisecond)()
	const topic = "sequin.public.grows"
	c := newCluster(t, kfake.SeedTopics(1, topic))
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs()})
	batch := func(from int64) []message.Message {
		var msgs []message.Message
		for id := from; id < from+50; id++ {
			msgs = append(msgs, change("grows", id))
		}
		return msgs
	}
	if err := s.Write(t.Context(), batch(0)...); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = topic, 4
	req.Topics = append(req.Topics, rt)
	res, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := res.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create partitions: error code %d", code)
	}
	// kafka-go's transport learns of them within its metadata TTL (6s).
	written := 50
	for deadline := time.Now().Add(testtime.Bound(30 * time.Second)); ; {
		if err := s.Write(t.Context(), batch(int64(written))...); err != nil {
			t.Fatal(err)
		}
		written += 50
		used := map[int32]bool{}
		for _, r := range consume(t, c.ListenAddrs(), written, topic) {
			used[r.Partition] = true
		}
		if len(used) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d records, partitions used: %v; want all 4", written, used)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAbandonedTryKeepsMemory: a Write whose first produce try times out and
// whose retry succeeds keeps its memory from the next Write, since the
// abandoned request may still be sending from it; a Write answered at the
// first try gives it back.
func TestAbandonedTryKeepsMemory(t *testing.T) {
	var released atomic.Int32
	defer kafka.OnRelease(func() { released.Add(1) })()
	c := newCluster(t, kfake.SeedTopics(1, "sequin.public.t"))
	var slept atomic.Bool
	// A try answered at once must be answered within the timeout, also on
	// a busy machine; the delayed one comes long after it.
	timeout := testtime.Bound(time.Second)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if slept.CompareAndSwap(false, true) {
			c.SleepControl(func() { time.Sleep(3 * timeout) })
		}
		return nil, nil, false // then handled as usual
	})
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), WriteTimeout: timeout})
	if err := s.Write(t.Context(), change("t", 1)); err != nil {
		t.Fatalf("Write, first try timed out: %v", err)
	}
	if !slept.Load() {
		t.Fatal("no produce request was delayed")
	}
	if n := released.Load(); n != 0 {
		t.Fatalf("a Write with an abandoned try gave its memory back (%d)", n)
	}
	if err := s.Write(t.Context(), change("t", 2)); err != nil {
		t.Fatal(err)
	}
	if n := released.Load(); n != 1 {
		t.Fatalf("a Write answered at once gave its memory back %d times, want 1", n)
	}
}
