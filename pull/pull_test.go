package pull

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/walrelay/walrelay/internal/testtime"
)

const user, pass = "reader", "s3cret"

func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// produce writes n records to topic/partition, keyed "k<i>", valued "v<i>".
func produce(t *testing.T, c *kfake.Cluster, topic string, partition int32, first, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := first; i < first+n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: partition,
			Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i),
			Headers: []kgo.RecordHeader{{Key: "action", Value: []byte("insert")}}})
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

type server struct {
	h   *Handler
	srv *httptest.Server
}

func newServer(t *testing.T, cfg Config) *server {
	t.Helper()
	if cfg.Username == "" && !cfg.InsecureNoAuth {
		cfg.Username, cfg.Password = user, pass
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval, cfg.SessionTimeout = 100*time.Millisecond, 2*time.Second
	}
	if cfg.Topics == nil {
		cfg.Topics = []string{"*"}
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &server{h: h, srv: srv}
}

// do sends a request with the right credentials and returns status and body.
// Headers given as name, value pairs go with the request.
func (s *server) do(t *testing.T, method, path, body string, hdr ...string) (int, []byte) {
	t.Helper()
	return s.doAuth(t, method, path, body, user, pass, hdr...)
}

func (s *server) doAuth(t *testing.T, method, path, body, u, p string, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if u != "" {
		req.SetBasicAuth(u, p)
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (s *server) records(t *testing.T, method, path, body string, hdr ...string) []Record {
	t.Helper()
	status, b := s.do(t, method, path, body, hdr...)
	if status != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, status, b)
	}
	var recs []Record
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatalf("%s %s: %v in %s", method, path, err, b)
	}
	return recs
}

func offsets(recs []Record) []int64 {
	var o []int64
	for _, r := range recs {
		o = append(o, r.Offset)
	}
	return o
}

func span(from, to int64) []int64 {
	var o []int64
	for i := from; i < to; i++ {
		o = append(o, i)
	}
	return o
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testtime.WaitFor(t, 20*time.Second, what, cond)
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Username: "u", Password: "p"}, "no brokers"},
		{Config{Brokers: []string{"127.0.0.1:9092"}}, "Username and Password are required"},
		{Config{Brokers: []string{"127.0.0.1:9092"}, Username: "u"}, "Username and Password are required"},
		{Config{Brokers: []string{"127.0.0.1:9092"}, InsecureNoAuth: true, MaxLimit: -1}, "MaxLimit is negative"},
	} {
		if _, err := NewHandler(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewHandler(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	h, err := NewHandler(Config{Brokers: []string{"127.0.0.1:9092"}, InsecureNoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAuth(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	s := newServer(t, Config{Brokers: c.ListenAddrs()})
	for _, tc := range []struct {
		name, user, pass string
		want             int
	}{
		{"missing", "", "", http.StatusUnauthorized},
		{"wrong password", user, "nope", http.StatusUnauthorized},
		{"wrong user", "other", pass, http.StatusUnauthorized},
		{"right", user, pass, http.StatusOK},
	} {
		for _, path := range []string{"/fetch?topic=t", "/consume/g/i/t?timeout=0", "/nowhere"} {
			status, body := s.doAuth(t, http.MethodGet, path, "", tc.user, tc.pass)
			want := tc.want
			if path == "/nowhere" && want == http.StatusOK {
				want = http.StatusNotFound
			}
			if status != want {
				t.Errorf("%s: GET %s = %d %s, want %d", tc.name, path, status, body, want)
			}
			if want == http.StatusUnauthorized && !json.Valid(body) {
				t.Errorf("%s: 401 body is not JSON: %s", tc.name, body)
			}
		}
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.srv.URL+"/fetch?topic=t", nil)
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="walrelay"`) {
		t.Errorf("WWW-Authenticate = %q", got)
	}
}

func TestFetchPaging(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "t"))
	produce(t, c, "t", 1, 0, 25)
	s := newServer(t, Config{Brokers: c.ListenAddrs()})

	var all []Record
	next := int64(0)
	for {
		recs := s.records(t, http.MethodGet, fmt.Sprintf("/fetch?topic=t&partition=1&offset=%d&limit=10", next), "")
		if len(recs) == 0 {
			break
		}
		if len(recs) > 10 {
			t.Fatalf("limit 10 returned %d records", len(recs))
		}
		all = append(all, recs...)
		next = recs[len(recs)-1].Offset + 1
	}
	if got := offsets(all); !slices.Equal(got, span(0, 25)) {
		t.Fatalf("paged offsets %v", got)
	}
	r := all[7]
	if r.Topic != "t" || r.Partition != 1 || r.Key != "k7" || r.Value != "v7" ||
		!slices.Equal(r.Headers, []Header{{"action", "insert"}}) {
		t.Errorf("record 7 = %+v", r)
	}
	if ts := time.UnixMilli(r.Timestamp); time.Since(ts) > time.Hour || time.Since(ts) < 0 {
		t.Errorf("record 7 timestamp %d", r.Timestamp)
	}

	posted := s.records(t, http.MethodPost, "/fetch", `{"topic":"t","partition":1,"offset":20,"limit":3}`)
	if got := offsets(posted); !slices.Equal(got, span(20, 23)) {
		t.Errorf("POST /fetch offsets %v", got)
	}
	if recs := s.records(t, http.MethodGet, "/fetch?topic=t&partition=0", ""); len(recs) != 0 {
		t.Errorf("empty partition returned %d records", len(recs))
	}
}

func TestFetchLimitCaps(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	produce(t, c, "t", 0, 0, 150)
	s := newServer(t, Config{Brokers: c.ListenAddrs(), MaxLimit: 120})
	if recs := s.records(t, http.MethodGet, "/fetch?topic=t", ""); len(recs) != DefaultLimit {
		t.Errorf("default limit returned %d records, want %d", len(recs), DefaultLimit)
	}
	if recs := s.records(t, http.MethodGet, "/fetch?topic=t&limit=100000", ""); len(recs) != 120 {
		t.Errorf("limit over MaxLimit returned %d records, want 120", len(recs))
	}
	if recs := s.records(t, http.MethodGet, "/fetch?topic=t&offset=148&limit=100", ""); !slices.Equal(offsets(recs), []int64{148, 149}) {
		t.Errorf("tail offsets %v", offsets(recs))
	}
}

func TestBadParameters(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	produce(t, c, "t", 0, 0, 3)
	s := newServer(t, Config{Brokers: c.ListenAddrs()})
	for _, tc := range []struct {
		method, path, body string
		want               int
		mention            string
	}{
		{"GET", "/fetch", "", 400, "topic is required"},
		{"GET", "/fetch?topic=t&partition=-1", "", 400, "partition"},
		{"GET", "/fetch?topic=t&offset=abc", "", 400, "offset"},
		{"GET", "/fetch?topic=t&limit=0", "", 400, "limit"},
		{"POST", "/fetch", "{not json", 400, "JSON"},
		{"POST", "/fetch", `{"topic":5}`, 400, "topic must be a string"},
		{"GET", "/fetch?topic=nope", "", 404, "nope"},
		{"GET", "/fetch?topic=t&partition=7", "", 404, "partition 7"},
		{"GET", "/fetch?topic=t&offset=100", "", 416, "offset 100"},
		{"GET", "/consume/g/i", "", 400, "does not exist"},
		{"GET", "/consume/g/i/t?timeout=soon", "", 400, "timeout"},
		{"POST", "/consume/g/i", `{"topics":"t"}`, 400, "topics must be an array"},
		{"POST", "/consume/g/i", `{"topic":"nope"}`, 404, "nope"},
		{"DELETE", "/consume/g/none", "", 404, "does not exist"},
		{"POST", "/delete-consumer/g/none", "", 404, "does not exist"},
		{"POST", "/commit/g/none", "", 404, "does not exist"},
		{"PUT", "/fetch", "", 405, ""},
		// Values that do not fit.
		{"GET", "/fetch?topic=t&partition=2147483648", "", 400, "partition"},
		{"GET", "/fetch?topic=t&timeout=9223372036854775807", "", 400, "timeout"},
		{"GET", "/fetch?topic=t&timeout=9223372036855", "", 400, "timeout"},
		{"POST", "/fetch", `{"topicPartitionOffsets":{"topic":"t"}}`, 400, "topicPartitionOffsets"},
		{"POST", "/fetch", `{"topicPartitionOffsets":[{"topic":"t","partition":-1}]}`, 400, "partition"},
		{"POST", "/fetch", `{"topicPartitionOffsets":[{"partition":0}]}`, 400, "topic is required"},
		{"POST", "/consume/g/i", `{"topic":"t","timeout":-5}`, 400, "timeout"},
		{"POST", "/commit/g/i", `{"topic":"t","partition":0}`, 400, "offset is required"},
		{"POST", "/commit/g/i", `[{"topic":"t","partition":0,"offset":"x"}]`, 400, "offset"},
		{"POST", "/committed/g/i", ``, 400, "topic, partition"},
		{"POST", "/committed/g/i", `[{"topic":"t","partition":4294967296}]`, 400, "partition"},
		{"POST", "/commit/g/i?timeout=9223372036855", `{"topic":"t","partition":0,"offset":1}`, 400, "timeout"},
		{"POST", "/offsets/yesterday", `{"topic":"t","partition":0}`, 400, "earliest, latest"},
		// Producing is walrelay's job.
		{"POST", "/produce", `{"topic":"t","value":"x"}`, 403, "producing"},
		{"GET", "/produce/t/hello", "", 403, "producing"},
		{"POST", "/webhook?topic=t", `x`, 403, "producing"},
	} {
		status, body := s.do(t, tc.method, tc.path, tc.body)
		if status != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, status, body, tc.want)
			continue
		}
		var e errorBody
		if json.Unmarshal(body, &e) != nil || e.Status != tc.want || !strings.Contains(e.Error, tc.mention) {
			t.Errorf("%s %s: body %s should be {\"error\": …, \"status\": %d} mentioning %q", tc.method, tc.path, body, tc.want, tc.mention)
		}
	}
}

// committed returns the group's committed offset of topic/partition.
func committed(t *testing.T, c *kfake.Cluster, group, topic string, partition int) int64 {
	t.Helper()
	client := &kafkago.Client{Addr: kafkago.TCP(c.ListenAddrs()...)}
	res, err := client.OffsetFetch(t.Context(), &kafkago.OffsetFetchRequest{GroupID: DefaultGroupPrefix + group, Topics: map[string][]int{topic: {partition}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Topics[topic] {
		if p.Partition == partition {
			return p.CommittedOffset
		}
	}
	return -1
}

// consumeUntil calls consume until it has n records.
func (s *server) consumeUntil(t *testing.T, method, path, body string, n int, hdr ...string) []Record {
	t.Helper()
	var got []Record
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s %s: %d records after 30 s, want %d", method, path, len(got), n)
		}
		got = append(got, s.records(t, method, path, body, hdr...)...)
	}
	return got
}

// earliest is the header pair that starts a new group at the first offset.
var earliest = []string{"Kafka-Auto-Offset-Reset", "earliest"}

func TestConsumeProgress(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	produce(t, c, "t", 0, 0, 10)
	s := newServer(t, Config{Brokers: c.ListenAddrs()})
	// Auto-commit on every call: each call commits what the previous ones
	// returned.
	hdr := append([]string{"Kafka-Auto-Commit-Interval", "0"}, earliest...)

	first := s.consumeUntil(t, "GET", "/consume/g/a/t?limit=4&timeout=5000", "", 1, hdr...)
	second := s.consumeUntil(t, "POST", "/consume/g/a", `{"topics":["t"],"limit":4,"timeout":5000}`, 1, hdr...)
	all := append(first, second...)
	if got := offsets(all); !slices.Equal(got, span(0, int64(len(all)))) {
		t.Fatalf("two calls returned offsets %v", got)
	}
	if got := committed(t, c, "g", "t", 0); got != int64(len(first)) {
		t.Errorf("after the second call the group committed %d, want %d", got, len(first))
	}
	// Deleting commits what was delivered; a new instance continues after it.
	status, body := s.do(t, "POST", "/delete-consumer/g/a", "")
	if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"result":"Success","status":200}` {
		t.Fatalf("delete-consumer: %d %s", status, body)
	}
	if got := committed(t, c, "g", "t", 0); got != int64(len(all)) {
		t.Errorf("after delete-consumer the group committed %d, want %d", got, len(all))
	}
	rest := s.consumeUntil(t, "GET", "/consume/g/b?topic=t&timeout=5000", "", 10-len(all), hdr...)
	if got := offsets(rest); !slices.Equal(got, span(int64(len(all)), 10)) {
		t.Errorf("new instance returned offsets %v, want %d..9", got, len(all))
	}
	if recs := s.records(t, "GET", "/consume/g/b?timeout=50", ""); len(recs) != 0 {
		t.Errorf("drained consumer returned %d records", len(recs))
	}
	// The old DELETE form answers the same way.
	status, body = s.do(t, "DELETE", "/consume/g/b", "")
	if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"result":"Success","status":200}` {
		t.Fatalf("DELETE: %d %s", status, body)
	}
	if got := committed(t, c, "g", "t", 0); got != 10 {
		t.Errorf("after DELETE the group committed %d, want 10", got)
	}
}

func TestInstancesSharePartitions(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "t"))
	s := newServer(t, Config{Brokers: c.ListenAddrs()})
	s.records(t, "GET", "/consume/g/a/t?timeout=0", "")
	s.records(t, "GET", "/consume/g/b/t?timeout=0", "")
	waitStableMembers(t, c, "g", 2)
	produce(t, c, "t", 0, 0, 10)
	produce(t, c, "t", 1, 10, 10)

	got := map[string][]Record{}
	waitFor(t, "all 20 records", func() bool {
		for _, inst := range []string{"a", "b"} {
			got[inst] = append(got[inst], s.records(t, "GET", "/consume/g/"+inst+"/t?timeout=100", "")...)
		}
		return len(got["a"])+len(got["b"]) >= 20
	})
	parts := map[string]map[int]bool{}
	for inst, recs := range got {
		parts[inst] = map[int]bool{}
		for _, r := range recs {
			parts[inst][r.Partition] = true
		}
	}
	if len(parts["a"]) != 1 || len(parts["b"]) != 1 || fmt.Sprint(parts["a"]) == fmt.Sprint(parts["b"]) {
		t.Errorf("instances did not split the partitions: a read %v, b read %v", parts["a"], parts["b"])
	}
	if n := len(got["a"]) + len(got["b"]); n != 20 {
		t.Errorf("read %d records, want 20", n)
	}
}

func (h *Handler) numInstances() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.instances)
}

// An instance idle past IdleTimeout is closed. With auto-commit on (the
// default) it commits what it delivered first, so a client calling less
// often than IdleTimeout still advances on every call; with auto-commit
// off the group redelivers.
func TestIdleInstancesAreReaped(t *testing.T) {
	for _, autoCommit := range []string{"true", "false"} {
		t.Run("auto-commit="+autoCommit, func(t *testing.T) {
			c := newCluster(t, kfake.SeedTopics(1, "t"))
			produce(t, c, "t", 0, 0, 5)
			s := newServer(t, Config{Brokers: c.ListenAddrs(), IdleTimeout: 200 * time.Millisecond})
			hdr := append([]string{"Kafka-Enable-Auto-Commit", autoCommit}, earliest...)
			first := s.consumeUntil(t, "GET", "/consume/g/a/t?limit=3&timeout=5000", "", 1, hdr...)
			waitFor(t, "the idle instance to be reaped", func() bool { return s.h.numInstances() == 0 })
			client := &kafkago.Client{Addr: kafkago.TCP(c.ListenAddrs()...)}
			waitFor(t, "the reaped instance to leave its group", func() bool {
				res, err := client.DescribeGroups(t.Context(), &kafkago.DescribeGroupsRequest{GroupIDs: []string{DefaultGroupPrefix + "g"}})
				return err == nil && len(res.Groups) == 1 && len(res.Groups[0].Members) == 0
			})
			again := s.consumeUntil(t, "GET", "/consume/g/a/t?limit=3&timeout=5000", "", 1, hdr...)
			want := offsets(first)[0] // redelivered
			if autoCommit == "true" {
				want = first[len(first)-1].Offset + 1 // continues
			}
			if again[0].Offset != want {
				t.Errorf("after reaping, offsets %v follow %v, want %d first", offsets(again), offsets(first), want)
			}
		})
	}
}

func TestClientDisconnectMidWait(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	before := runtime.NumGoroutine()

	h, err := NewHandler(Config{Brokers: c.ListenAddrs(), Username: user, Password: pass, Topics: []string{"*"},
		HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	started, returned := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := false
		once.Do(func() { first = true })
		if first {
			close(started)
			defer close(returned)
		}
		h.ServeHTTP(w, r)
	}))
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/consume/g/a/t?timeout=30000", nil)
	req.SetBasicAuth(user, pass)
	req.Header.Set("Kafka-Auto-Offset-Reset", "earliest")
	errc := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; err == nil {
		t.Error("the cancelled request got a response")
	}
	select {
	case <-returned:
	case <-time.After(testtime.Bound(30 * time.Second)):
		t.Fatal("the handler kept waiting after the client left")
	}

	// A record produced now reaches the instance's next call.
	produce(t, c, "t", 0, 0, 1)
	recs := (&server{h: h, srv: srv}).consumeUntil(t, "GET", "/consume/g/a/t?timeout=5000", "", 1, earliest...)
	if recs[0].Key != "k0" {
		t.Errorf("record after reconnect: %+v", recs[0])
	}

	srv.Close()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestClosedHandler(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	s := newServer(t, Config{Brokers: c.ListenAddrs()})
	if err := s.h.Close(); err != nil {
		t.Fatal(err)
	}
	if status, body := s.do(t, "GET", "/consume/g/a/t", ""); status != http.StatusServiceUnavailable {
		t.Errorf("consume after Close: %d %s", status, body)
	}
}

// waitStableMembers waits until the consumer group walrelay names for group
// is Stable with n members.
func waitStableMembers(t *testing.T, c *kfake.Cluster, group string, n int) {
	t.Helper()
	client := &kafkago.Client{Addr: kafkago.TCP(c.ListenAddrs()...)}
	waitFor(t, fmt.Sprintf("%d stable members", n), func() bool {
		res, err := client.DescribeGroups(t.Context(), &kafkago.DescribeGroupsRequest{GroupIDs: []string{DefaultGroupPrefix + group}})
		return err == nil && len(res.Groups) == 1 && res.Groups[0].GroupState == "Stable" && len(res.Groups[0].Members) == n
	})
}
