package pull

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/walrelay/walrelay/sink/kafka"
)

// Records look the same from fetch and consume: epoch-ms timestamp, key ""
// when none, headers an ordered array keeping repeated keys.
func TestRecordShape(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ts := time.UnixMilli(1637745824883)
	hdrs := []kgo.RecordHeader{{Key: "b", Value: []byte("1")}, {Key: "a", Value: []byte("2")}, {Key: "b", Value: []byte("3")}}
	if err := cl.ProduceSync(t.Context(),
		&kgo.Record{Topic: "t", Value: []byte("no key"), Timestamp: ts, Headers: hdrs},
		&kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("no headers"), Timestamp: ts},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, Config{Brokers: c.ListenAddrs()})
	_, fetched := s.do(t, "POST", "/fetch", `{"topic":"t","partition":0,"offset":0}`)
	var consumed []json.RawMessage
	deadline := time.Now().Add(30 * time.Second)
	for len(consumed) < 2 && time.Now().Before(deadline) {
		_, b := s.do(t, "POST", "/consume/g/i", `{"topic":"t"}`, earliest...)
		var page []json.RawMessage
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatalf("consume: %v in %s", err, b)
		}
		consumed = append(consumed, page...)
	}
	want := `[{"topic":"t","partition":0,"offset":0,"timestamp":1637745824883,"key":"","value":"no key",` +
		`"headers":[{"key":"b","value":"1"},{"key":"a","value":"2"},{"key":"b","value":"3"}]},` +
		`{"topic":"t","partition":0,"offset":1,"timestamp":1637745824883,"key":"k","value":"no headers","headers":[]}]`
	if got := strings.TrimSpace(string(fetched)); got != want {
		t.Errorf("fetch:\n got %s\nwant %s", got, want)
	}
	joined, _ := json.Marshal(consumed)
	if string(joined) != want {
		t.Errorf("consume:\n got %s\nwant %s", joined, want)
	}
}

// A fetch at the end of a partition waits up to timeout for a record.
func TestFetchLongPoll(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	s := newServer(t, Config{Brokers: c.ListenAddrs()})
	started := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(started) })
		s.h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s = &server{h: s.h, srv: srv}
	type result struct {
		status int
		body   []byte
	}
	done := make(chan result, 1)
	go func() {
		status, body := s.do(t, "POST", "/fetch", `{"topic":"t","partition":0,"offset":0,"timeout":20000}`)
		done <- result{status, body}
	}()
	<-started
	// Produce while the call waits at the end of the partition (a later
	// start would not change the answer: the record is there either way).
	time.Sleep(100 * time.Millisecond)
	produce(t, c, "t", 0, 0, 1)
	r := <-done
	var recs []Record
	if r.status != http.StatusOK || json.Unmarshal(r.body, &recs) != nil || len(recs) != 1 || recs[0].Value != "v0" {
		t.Fatalf("long-poll fetch: %d %s, want the record produced during the wait", r.status, r.body)
	}
}

// topicPartitionOffsets reads several partitions in one request, beside
// topic/partition/offset.
func TestFetchSeveralPartitions(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(3, "t"), kfake.SeedTopics(1, "u"))
	produce(t, c, "t", 0, 0, 3)
	produce(t, c, "t", 2, 10, 3)
	produce(t, c, "u", 0, 20, 3)
	s := newServer(t, Config{Brokers: c.ListenAddrs()})
	recs := s.records(t, "POST", "/fetch", `{"topic":"u","partition":0,"offset":1,
		"topicPartitionOffsets":[{"topic":"t","partition":0,"offset":2},{"topic":"t","partition":1,"offset":0},{"topic":"t","partition":2,"offset":0}],
		"timeout":100}`)
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s/%d@%d=%s", r.Topic, r.Partition, r.Offset, r.Value))
	}
	want := []string{"u/0@1=v21", "u/0@2=v22", "t/0@2=v2", "t/2@0=v10", "t/2@1=v11", "t/2@2=v12"}
	if !slices.Equal(got, want) {
		t.Errorf("fetched %v, want %v", got, want)
	}
	// All empty: the call waits for its timeout and answers [].
	if recs := s.records(t, "POST", "/fetch", `{"topicPartitionOffsets":[{"topic":"t","partition":1,"offset":0}],"timeout":50}`); len(recs) != 0 {
		t.Errorf("empty partitions returned %v", recs)
	}
}

// At-least-once across reaped instances: a client calling less often than
// IdleTimeout gets every record once, in order — nothing the reaper
// committed is replayed, and nothing prefetched but undelivered is
// skipped.
func TestAtLeastOnceAcrossReapedInstances(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	produce(t, c, "t", 0, 0, 40)
	s := newServer(t, Config{Brokers: c.ListenAddrs(), IdleTimeout: 100 * time.Millisecond, Prefetch: 8,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	var got []int64
	reaped := 0
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < 40 {
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s got offsets %v", got)
		}
		recs := s.records(t, "GET", "/consume/g/a/t?limit=3&timeout=5000", "", earliest...)
		got = append(got, offsets(recs)...)
		if len(recs) > 0 {
			// The reaper takes the instance out of the handler's map, then
			// commits what it delivered and closes it: wait for the commit.
			next := recs[len(recs)-1].Offset + 1
			waitFor(t, "the instance to be reaped and commit what it delivered", func() bool {
				return s.h.numInstances() == 0 && committed(t, c, "g", "t", 0) == next
			})
			reaped++
		}
	}
	if !slices.Equal(got, span(0, 40)) {
		t.Errorf("offsets across %d reaped instances: %v, want 0..39 once each", reaped, got)
	}
	if reaped < 14 {
		t.Errorf("only %d instances were reaped", reaped)
	}
	if n := committed(t, c, "g", "t", 0); n != 40 {
		t.Errorf("committed %d, want 40", n)
	}
}

// Explicit commits: committed returns exactly the offset given to commit;
// a commit without a body commits what was delivered; with auto-commit off
// nothing else is committed, not even by delete-consumer.
func TestCommitAndCommitted(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "t"))
	produce(t, c, "t", 0, 0, 6)
	s := newServer(t, Config{Brokers: c.ListenAddrs()})
	hdr := append([]string{"Kafka-Enable-Auto-Commit", "false"}, earliest...)
	committedOf := func() string {
		t.Helper()
		status, body := s.do(t, "POST", "/committed/g/a", `[{"topic":"t","partition":0},{"topic":"t","partition":1}]`)
		if status != http.StatusOK {
			t.Fatalf("committed: %d %s", status, body)
		}
		return strings.TrimSpace(string(body))
	}
	recs := s.consumeUntil(t, "POST", "/consume/g/a", `{"topic":"t","limit":2}`, 2, hdr...)
	if got := committedOf(); got != `[{"topic":"t","partition":0,"offset":-1},{"topic":"t","partition":1,"offset":-1}]` {
		t.Errorf("before any commit: %s", got)
	}
	for _, body := range []string{`{"topic":"t","partition":0,"offset":4}`, `[{"topic":"t","partition":0,"offset":1},{"topic":"t","partition":1,"offset":0}]`} {
		if status, b := s.do(t, "POST", "/commit/g/a", body); status != http.StatusOK || strings.TrimSpace(string(b)) != `{"result":"Success","status":200}` {
			t.Fatalf("commit %s: %d %s", body, status, b)
		}
	}
	if got := committedOf(); got != `[{"topic":"t","partition":0,"offset":1},{"topic":"t","partition":1,"offset":0}]` {
		t.Errorf("after explicit commits: %s", got)
	}
	// Without a body: what was delivered.
	if status, b := s.do(t, "POST", "/commit/g/a", ""); status != http.StatusOK {
		t.Fatalf("commit: %d %s", status, b)
	}
	last := recs[len(recs)-1].Offset
	if got := committed(t, c, "g", "t", 0); got != last+1 {
		t.Errorf("commit without a body committed %d, want %d", got, last+1)
	}
	more := s.consumeUntil(t, "POST", "/consume/g/a", `{"topic":"t","limit":2}`, 1, hdr...)
	if status, b := s.do(t, "POST", "/delete-consumer/g/a", ""); status != http.StatusOK {
		t.Fatalf("delete-consumer: %d %s", status, b)
	}
	if got := committed(t, c, "g", "t", 0); got != last+1 {
		t.Errorf("delete-consumer with auto-commit off committed %d, want %d still", got, last+1)
	}
	again := s.consumeUntil(t, "POST", "/consume/g/b", `{"topic":"t","limit":2}`, 1, hdr...)
	if again[0].Offset != more[0].Offset {
		t.Errorf("a new instance started at %d, want the uncommitted %d", again[0].Offset, more[0].Offset)
	}
	// No instance and an empty group: offsets are still committed.
	s.do(t, "POST", "/delete-consumer/g/b", "")
	if status, b := s.do(t, "POST", "/commit/g/gone", `{"topic":"t","partition":1,"offset":7}`); status != http.StatusOK {
		t.Fatalf("commit without an instance: %d %s", status, b)
	}
	if got := committed(t, c, "g", "t", 1); got != 7 {
		t.Errorf("commit without an instance: committed %d, want 7", got)
	}
}

// Kafka-Auto-Offset-Reset: earliest reads what was there, latest (the
// default) only what comes after, none refuses a group without offsets.
func TestOffsetReset(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	produce(t, c, "t", 0, 0, 5)
	s := newServer(t, Config{Brokers: c.ListenAddrs()})

	if recs := s.consumeUntil(t, "POST", "/consume/e/a", `{"topic":"t"}`, 5, earliest...); recs[0].Offset != 0 {
		t.Errorf("earliest started at %d", recs[0].Offset)
	}

	// latest: produce markers until one arrives; none of the first five
	// may ever show up.
	var seen []int64
	next := 5
	waitFor(t, "a record produced after the latest consumer joined", func() bool {
		produce(t, c, "t", 0, next, 1)
		next++
		seen = append(seen, offsets(s.records(t, "POST", "/consume/l/a", `{"topic":"t","timeout":200}`))...)
		return len(seen) > 0
	})
	if seen[0] < 5 {
		t.Errorf("latest returned old offsets %v", seen)
	}

	status, body := s.do(t, "POST", "/consume/n/a", `{"topic":"t"}`, "Kafka-Auto-Offset-Reset", "none")
	if status != http.StatusConflict || !strings.Contains(string(body), "no committed offset") {
		t.Errorf("none without offsets: %d %s", status, body)
	}
	if status, body := s.do(t, "POST", "/commit/n/a", `{"topic":"t","partition":0,"offset":3}`); status != http.StatusOK {
		t.Fatalf("commit: %d %s", status, body)
	}
	if recs := s.consumeUntil(t, "POST", "/consume/n/a", `{"topic":"t"}`, 1, "Kafka-Auto-Offset-Reset", "none"); recs[0].Offset != 3 {
		t.Errorf("none with a committed offset started at %d, want 3", recs[0].Offset)
	}
	if status, body := s.do(t, "POST", "/consume/x/a", `{"topic":"t"}`, "Kafka-Auto-Offset-Reset", "smallest"); status != http.StatusBadRequest {
		t.Errorf("bad reset: %d %s", status, body)
	}
}

// An instance asked for other topics resubscribes, as a Kafka consumer
// does, instead of refusing.
func TestTopicChange(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"), kfake.SeedTopics(1, "u"))
	produce(t, c, "t", 0, 0, 2)
	produce(t, c, "u", 0, 10, 2)
	s := newServer(t, Config{Brokers: c.ListenAddrs()})
	if recs := s.consumeUntil(t, "POST", "/consume/g/a", `{"topic":"t"}`, 2, earliest...); recs[0].Topic != "t" {
		t.Errorf("first topic: %+v", recs)
	}
	recs := s.consumeUntil(t, "POST", "/consume/g/a", `{"topics":["u"]}`, 2)
	for _, r := range recs {
		if r.Topic != "u" {
			t.Errorf("after the change a record of %s", r.Topic)
		}
	}
	// The delivered records of t were committed when it moved.
	if got := committed(t, c, "g", "t", 0); got != 2 {
		t.Errorf("t committed %d, want 2", got)
	}
}

func TestAdminEndpoints(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(3, "sequin.public.a"), kfake.SeedTopics(1, "sequin.public.b"), kfake.SeedTopics(1, "other"))
	produce(t, c, "sequin.public.b", 0, 0, 4)
	s := newServer(t, Config{Brokers: c.ListenAddrs(), Topics: []string{DefaultTopicPattern}})

	status, body := s.do(t, "GET", "/topics", "")
	if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"sequin.public.a":3,"sequin.public.b":1}` {
		t.Errorf("/topics: %d %s", status, body)
	}
	for path, want := range map[string]string{
		"/offsets/earliest":       `[{"topic":"sequin.public.b","partition":0,"offset":0}]`,
		"/offsets/latest":         `[{"topic":"sequin.public.b","partition":0,"offset":4}]`,
		"/offsets/0":              `[{"topic":"sequin.public.b","partition":0,"offset":0}]`,
		"/offsets/32503680000000": `[{"topic":"sequin.public.b","partition":0,"offset":-1}]`,
	} {
		status, body := s.do(t, "POST", path, `{"topic":"sequin.public.b","partition":0}`)
		if status != http.StatusOK || strings.TrimSpace(string(body)) != want {
			t.Errorf("%s: %d %s, want %s", path, status, body, want)
		}
	}
	if status, body := s.do(t, "POST", "/offsets/latest", `{"topic":"other","partition":0}`); status != http.StatusForbidden {
		t.Errorf("offsets of a topic outside the allow-list: %d %s", status, body)
	}

	s.records(t, "POST", "/consume/g/a", `{"topic":"sequin.public.a","timeout":0}`)
	s.records(t, "POST", "/consume/g/b", `{"topic":"sequin.public.a","timeout":0}`)
	var groups []groupAssignments
	waitFor(t, "both instances to hold partitions", func() bool {
		status, body := s.do(t, "GET", "/consumers", "")
		if status != http.StatusOK || json.Unmarshal(body, &groups) != nil || len(groups) != 1 || len(groups[0].Instances) != 2 {
			return false
		}
		n := 0
		for _, inst := range groups[0].Instances {
			if len(inst.Topics) != 1 {
				return false
			}
			n += len(inst.Topics[0].Partitions)
		}
		return n == 3
	})
	if groups[0].Name != "g" || groups[0].Instances[0].Name != "a" || groups[0].Instances[1].Name != "b" {
		t.Errorf("/consumers: %+v", groups)
	}
}

// Limits: the byte budget (always at least one record), the instance cap,
// the topic allow-list and the group prefix.
func TestLimits(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "sequin.public.big"), kfake.SeedTopics(1, "private"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerBatchMaxBytes(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 4 {
		big := strings.Repeat(fmt.Sprint(i), 300<<10)
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "sequin.public.big", Value: []byte(big)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	s := newServer(t, Config{Brokers: c.ListenAddrs(), Topics: []string{DefaultTopicPattern}, MaxResponseBytes: 700 << 10,
		MaxInstances: 2, GroupPrefix: "mine."})

	if recs := s.records(t, "GET", "/fetch?topic=sequin.public.big", ""); !slices.Equal(offsets(recs), []int64{0, 1}) {
		t.Errorf("a 700 KiB budget fetched offsets %v, want 0 and 1", offsets(recs))
	}
	tiny := newServer(t, Config{Brokers: c.ListenAddrs(), MaxResponseBytes: 1})
	if recs := tiny.records(t, "GET", "/fetch?topic=sequin.public.big&offset=2", ""); !slices.Equal(offsets(recs), []int64{2}) {
		t.Errorf("a 1-byte budget fetched offsets %v, want one record", offsets(recs))
	}
	consumed := s.consumeUntil(t, "POST", "/consume/g/a", `{"topic":"sequin.public.big"}`, 1, earliest...)
	if len(consumed) > 2 {
		t.Errorf("a 700 KiB budget consumed %d records", len(consumed))
	}
	all := s.consumeUntil(t, "POST", "/consume/g/a", `{"topic":"sequin.public.big"}`, 4-len(consumed))
	if got := offsets(append(consumed, all...)); !slices.Equal(got, span(0, 4)) {
		t.Errorf("consumed offsets %v", got)
	}

	s.records(t, "POST", "/consume/g/b", `{"topic":"sequin.public.big","timeout":0}`)
	status, body := s.do(t, "POST", "/consume/g/c", `{"topic":"sequin.public.big","timeout":0}`)
	if status != http.StatusTooManyRequests {
		t.Errorf("a third instance over MaxInstances 2: %d %s", status, body)
	}
	if status, _ := s.do(t, "POST", "/delete-consumer/g/b", ""); status != http.StatusOK {
		t.Fatal("delete-consumer failed")
	}
	if status, body := s.do(t, "POST", "/consume/g/c", `{"topic":"sequin.public.big","timeout":0}`); status != http.StatusOK {
		t.Errorf("after a deletion: %d %s", status, body)
	}

	for _, path := range []string{"/fetch?topic=private", "/consume/g/d/private"} {
		if status, body := s.do(t, "GET", path, ""); status != http.StatusForbidden {
			t.Errorf("%s outside the allow-list: %d %s", path, status, body)
		}
	}
	// The group's offsets live under the prefix.
	s.do(t, "POST", "/commit/g/a", "")
	client := &kafkago.Client{Addr: kafkago.TCP(c.ListenAddrs()...)}
	res, err := client.ListGroups(t.Context(), &kafkago.ListGroupsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range res.Groups {
		if !strings.HasPrefix(g.GroupID, "mine.") {
			t.Errorf("group %q is not under the prefix", g.GroupID)
		}
	}
}

func TestConfigMasksSecrets(t *testing.T) {
	cfg := Config{Brokers: []string{"b:9092"}, Username: "reader", Password: "hunter2",
		SASL: &kafka.SASL{Mechanism: kafka.SASLPlain, Username: "svc", Password: "s4sl-secret"}}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg)
	for _, out := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprint(&cfg), logged.String()} {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "s4sl-secret") {
			t.Errorf("a password is printed: %s", out)
		}
		if !strings.Contains(out, "reader") || !strings.Contains(out, "svc") {
			t.Errorf("the usernames are missing: %s", out)
		}
	}
	if cfg.Password != "hunter2" || cfg.SASL.Password != "s4sl-secret" {
		t.Error("printing changed the config")
	}
}

// Consume calls of one instance are serialized; concurrent instances of
// one group do not share records.
func TestConcurrentInstances(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "t"))
	s := newServer(t, Config{Brokers: c.ListenAddrs()})
	s.records(t, "GET", "/consume/g/a/t?timeout=0", "")
	s.records(t, "GET", "/consume/g/b/t?timeout=0", "")
	waitStableMembers(t, c, "g", 2)
	produce(t, c, "t", 0, 0, 20)
	produce(t, c, "t", 1, 20, 20)
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for _, inst := range []string{"a", "b"} {
		wg.Go(func() {
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				status, body := s.do(t, "GET", "/consume/g/"+inst+"/t?timeout=200", "")
				var recs []Record
				if status != http.StatusOK || json.Unmarshal(body, &recs) != nil {
					t.Errorf("consume %s: %d %s", inst, status, body)
					return
				}
				mu.Lock()
				for _, r := range recs {
					seen[r.Value]++
				}
				n := len(seen)
				mu.Unlock()
				if n == 40 {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Errorf("saw %d of 40 records", len(seen))
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", v, n)
		}
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestConsumeHeadersValidated(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	s := newServer(t, Config{Brokers: c.ListenAddrs()})
	for _, hdr := range [][]string{
		{"Kafka-Enable-Auto-Commit", "sometimes"},
		{"Kafka-Auto-Commit-Interval", "-1"},
		{"Kafka-Auto-Commit-Interval", "9223372036855"},
		{"Kafka-Auto-Offset-Reset", "smallest"},
		{"Kafka-Session-Timeout-Ms", "0"},
		{"Kafka-Session-Timeout-Ms", "3600001"},
		{"Kafka-Session-Timeout-Ms", "soon"},
	} {
		status, body := s.do(t, "POST", "/consume/g/i", `{"topic":"t","timeout":0}`, hdr...)
		var e errorBody
		if status != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, hdr[0]) {
			t.Errorf("%s: %s: %d %s, want 400 naming the header", hdr[0], hdr[1], status, body)
		}
	}
	if n := s.h.numInstances(); n != 0 {
		t.Errorf("rejected calls created %d instances", n)
	}
	// A valid session timeout is the instance's.
	if status, body := s.do(t, "POST", "/consume/g/i", `{"topic":"t","timeout":0}`, "Kafka-Session-Timeout-Ms", "1500"); status != http.StatusOK {
		t.Fatalf("%d %s", status, body)
	}
	s.h.mu.Lock()
	got := s.h.instances[instanceKey{"g", "i"}].opts.sessionTimeout
	s.h.mu.Unlock()
	if got != 1500*time.Millisecond {
		t.Errorf("session timeout %v", got)
	}
}

// With auto-commit on, what an instance returned is committed in the
// background once the interval has passed, without another call, and
// when the handler closes.
func TestAutoCommitInBackgroundAndAtClose(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	produce(t, c, "t", 0, 0, 6)
	s := newServer(t, Config{Brokers: c.ListenAddrs()})
	hdr := append([]string{"Kafka-Auto-Commit-Interval", "100"}, earliest...)
	recs := s.consumeUntil(t, "POST", "/consume/bg/a", `{"topic":"t","limit":3}`, 1, hdr...)
	want := recs[len(recs)-1].Offset + 1
	waitFor(t, "the background commit", func() bool { return committed(t, c, "bg", "t", 0) == want })
	if s.h.numInstances() != 1 {
		t.Error("the instance is gone")
	}

	// A long interval: nothing in the background, but Close commits.
	recs = s.consumeUntil(t, "POST", "/consume/cl/a", `{"topic":"t","limit":2}`, 1,
		append([]string{"Kafka-Auto-Commit-Interval", "3600000"}, earliest...)...)
	if got := committed(t, c, "cl", "t", 0); got != -1 {
		t.Errorf("committed %d before Close", got)
	}
	if err := s.h.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := committed(t, c, "cl", "t", 0), recs[len(recs)-1].Offset+1; got != want {
		t.Errorf("after Close committed %d, want %d", got, want)
	}
}
