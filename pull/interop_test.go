package pull

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/walrelay/walrelay/internal/nodetest"
)

// TestUpstashClientInterop drives the API with Upstash's official client
// (@upstash/kafka, pinned in internal/nodetest): fetch, consume with one
// and several instances, auto-commit on and off, commit/committed, offset
// reset, topic changes, the admin calls, wrong credentials, producing, and
// a consumer calling less often than IdleTimeout. The script asserts each
// call's result and exits non-zero on a mismatch.
func TestUpstashClientInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("interop: not in -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := nodetest.Command(ctx, t, "testdata/upstash_interop.js")

	c := newCluster(t, kfake.SeedTopics(2, "sequin.public.users"), kfake.SeedTopics(1, "sequin.public.orders"),
		kfake.SeedTopics(1, "private"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Five records on each partition of users; the first of each has no
	// key, the rest carry a repeated header.
	for p := range int32(2) {
		for i := range 5 {
			r := &kgo.Record{Topic: "sequin.public.users", Partition: p, Value: fmt.Appendf(nil, "u%d-%d", p, i),
				Headers: []kgo.RecordHeader{{Key: "action", Value: []byte("insert")}}}
			if i > 0 {
				r.Key = fmt.Appendf(nil, "k%d-%d", p, i)
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: "trace", Value: []byte("a")}, kgo.RecordHeader{Key: "trace", Value: []byte("b")})
			}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}

	main := newServer(t, Config{Brokers: c.ListenAddrs(), Topics: []string{DefaultTopicPattern}})
	cron := newServer(t, Config{Brokers: c.ListenAddrs(), Topics: []string{DefaultTopicPattern}, IdleTimeout: 300 * time.Millisecond})

	// The script cannot produce through the API (walrelay writes its
	// topics), so the test serves it a helper that does.
	helper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p, _ := strconv.Atoi(q.Get("partition"))
		n, _ := strconv.Atoi(q.Get("n"))
		var offsets []int64
		for i := range n {
			res, err := cl.ProduceSync(r.Context(), &kgo.Record{Topic: q.Get("topic"), Partition: int32(p),
				Value: fmt.Appendf(nil, "%s-%d", q.Get("tag"), i)}).First()
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			offsets = append(offsets, res.Offset)
		}
		_ = json.NewEncoder(w).Encode(offsets)
	}))
	defer helper.Close()

	cmd.Env = append(cmd.Env, "PULL_URL="+main.srv.URL, "CRON_URL="+cron.srv.URL, "HELPER_URL="+helper.URL,
		"PULL_USER="+user, "PULL_PASS="+pass)
	out, err := cmd.CombinedOutput()
	t.Logf("node output:\n%s", out)
	if err != nil {
		t.Fatalf("the @upstash/kafka interop script failed: %v", err)
	}
}
