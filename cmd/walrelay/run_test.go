package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/sink/webhook"
)

// change is what a delivered message is about.
type change struct {
	table, action string
	id            int64
}

// deliveries records the messages one destination received, by change and
// by idempotency key.
type deliveries struct {
	mu     sync.Mutex
	n      int
	byKey  map[string]change
	seen   map[change]int
	masked map[change]bool // the record's email was masked
	bad    []string        // problems: a key for two changes, a bad signature
}

func newDeliveries() *deliveries {
	return &deliveries{byKey: map[string]change{}, seen: map[change]int{}, masked: map[change]bool{}}
}

// add records one message in Sequin's JSON shape.
func (d *deliveries) add(raw []byte) {
	var m struct {
		Record   map[string]any `json:"record"`
		Action   string         `json:"action"`
		Metadata struct {
			TableSchema    string `json:"table_schema"`
			TableName      string `json:"table_name"`
			IdempotencyKey string `json:"idempotency_key"`
		} `json:"metadata"`
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := json.Unmarshal(raw, &m); err != nil {
		d.bad = append(d.bad, fmt.Sprintf("not a message: %v: %s", err, raw))
		return
	}
	id, _ := m.Record["id"].(float64)
	c := change{table: m.Metadata.TableSchema + "." + m.Metadata.TableName, action: m.Action, id: int64(id)}
	if m.Metadata.IdempotencyKey == "" {
		d.bad = append(d.bad, fmt.Sprintf("no idempotency key: %s", raw))
	}
	if prev, ok := d.byKey[m.Metadata.IdempotencyKey]; ok && prev != c {
		d.bad = append(d.bad, fmt.Sprintf("idempotency key %s for %v and %v", m.Metadata.IdempotencyKey, prev, c))
	}
	d.byKey[m.Metadata.IdempotencyKey] = c
	d.seen[c]++
	d.n++
	if m.Record["email"] == "********" {
		d.masked[c] = true
	}
}

// addBatch records the messages of a webhook request's body ({"data":
// [...]}).
func (d *deliveries) addBatch(body []byte) error {
	var batch struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &batch); err != nil {
		return err
	}
	for _, m := range batch.Data {
		d.add(m)
	}
	return nil
}

func (d *deliveries) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// missing returns the changes of want not delivered.
func (d *deliveries) missing(want []change) []change {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []change
	for _, c := range want {
		if d.seen[c] == 0 {
			out = append(out, c)
		}
	}
	return out
}

// keys returns the idempotency key of each change delivered once or more.
func (d *deliveries) keys() map[change]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[change]string{}
	for k, c := range d.byKey {
		out[c] = k
	}
	return out
}

// waitDelivered waits until d has every change of want, and on timeout
// says which are missing.
func waitDelivered(t *testing.T, where string, d *deliveries, want []change) {
	t.Helper()
	var m []change
	if !testtime.Poll(2*time.Minute, func() bool { m = d.missing(want); return len(m) == 0 }) {
		t.Fatalf("%d of %d changes never reached %s (%d messages there); first missing: %v", len(m), len(want), where, d.count(), m[:min(len(m), 10)])
	}
}

// webhookReceiver is an endpoint that records the messages of each
// request, after verifying its signature with secret (unless secret is "")
// and taking delay to answer.
func webhookReceiver(t *testing.T, secret string, delay time.Duration, got *deliveries) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if secret != "" {
			if err := webhook.Verify(secret, r.Header, body); err != nil {
				got.mu.Lock()
				got.bad = append(got.bad, "signature: "+err.Error())
				got.mu.Unlock()
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
		time.Sleep(delay)
		if err := got.addBatch(body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// consumeKafka records every message of topics in got until the test ends.
func consumeKafka(t *testing.T, brokers []string, got *deliveries, topics ...string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				got.add(r.Value)
				for _, h := range r.Headers {
					if h.Key == "idempotency-key" {
						var m struct {
							Metadata struct {
								IdempotencyKey string `json:"idempotency_key"`
							} `json:"metadata"`
						}
						if json.Unmarshal(r.Value, &m) == nil && m.Metadata.IdempotencyKey != string(h.Value) {
							got.mu.Lock()
							got.bad = append(got.bad, "idempotency-key header differs from the message's key")
							got.mu.Unlock()
						}
					}
				}
			})
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
}

// workload writes orders (inserts, updates of the previous order, deletes
// of the one before) and updates customers until stop is closed, and
// returns every change it committed.
func workload(ctx context.Context, url string, stop <-chan struct{}, progress func(int)) ([]change, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	var out []change
	for i := int64(1); ; i++ {
		select {
		case <-stop:
			return out, nil
		default:
		}
		batch := []change{{"public.orders", "insert", i}}
		sql := fmt.Sprintf("insert into orders values (%d, %d, %d);", i, i%200+1, i)
		if i%3 == 0 {
			sql += fmt.Sprintf("update orders set amount = amount + 1 where id = %d;", i-1)
			batch = append(batch, change{"public.orders", "update", i - 1})
		}
		if i%5 == 0 {
			sql += fmt.Sprintf("delete from orders where id = %d;", i-2)
			batch = append(batch, change{"public.orders", "delete", i - 2})
		}
		if i%7 == 0 {
			sql += fmt.Sprintf("update customers set name = 'n%d' where id = %d;", i, i%200+1)
			batch = append(batch, change{"public.customers", "update", i%200 + 1})
		}
		if _, err := conn.Exec(ctx, "begin;"+sql+"commit;"); err != nil {
			return out, err
		}
		out = append(out, batch...)
		progress(int(i))
		time.Sleep(2 * time.Millisecond)
	}
}

// writeStreamConfig writes a config whose stream reads table from the slot and
// the publication name, creating both, and whose other sections are rest;
// it returns the file's path.
func writeStreamConfig(t *testing.T, name, table, rest string) string {
	t.Helper()
	return writeConfig(t, "c.yaml", fmt.Sprintf(`stream:
  slot: %s
  publication: %s
  tables: [%s]
  create_slot: true
  create_publication: true
`, name, name, table)+rest)
}

func randomSecret(t *testing.T) string {
	key := make([]byte, 24)
	rand.Read(key)
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// TestRunExampleSurvivesSignals runs walrelay.example.yaml itself against
// a real Postgres, a kfake cluster and a webhook receiver, while rows keep
// being written: stopped with SIGTERM (exit 0) and restarted, killed with
// SIGKILL and restarted; every change committed reaches both the webhook
// and Kafka at least once, redeliveries with the same idempotency key, and
// the configured backfill delivers its reads.
func TestRunExampleSurvivesSignals(t *testing.T) {
	d := newDB(t,
		"create table customers (id bigint primary key, name text not null, email text)",
		"create table orders (id bigint primary key, customer_id bigint not null, amount bigint not null)",
		"insert into customers select g, 'c' || g, 'c' || g || '@example.com' from generate_series(1, 200) g")

	secret := randomSecret(t)
	hooks, kafkaGot := newDeliveries(), newDeliveries()
	srv := webhookReceiver(t, secret, 0, hooks)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "sequin.public.orders", "sequin.public.customers"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	consumeKafka(t, kc.ListenAddrs(), kafkaGot, "sequin.public.orders", "sequin.public.customers")

	env := []string{
		"DATABASE_URL=" + d.url, "WEBHOOK_URL=" + srv.URL + "/hooks", "WEBHOOK_SECRET=" + secret,
		"KAFKA_BROKER=" + kc.ListenAddrs()[0], "HTTP_LISTEN=127.0.0.1:0", "PULL_LISTEN=127.0.0.1:0",
		"PULL_PASSWORD=pull-secret",
	}
	args := []string{"run", "-config", "walrelay.example.yaml"}
	const slot = "app_walrelay"

	p1 := startWalrelay(t, env, args...)
	p1.logged(t, `msg="walrelay run started"`)

	stop := make(chan struct{})
	var mu sync.Mutex
	written := 0
	type result struct {
		changes []change
		err     error
	}
	wrote := make(chan result, 1)
	go func() {
		c, err := workload(context.Background(), d.url, stop, func(n int) { mu.Lock(); written = n; mu.Unlock() })
		wrote <- result{c, err}
	}()
	rows := func() int { mu.Lock(); defer mu.Unlock(); return written }

	// SIGTERM mid-stream: exit 0 after delivering what it took.
	waitFor(t, "the webhook to receive 300 messages", func() bool { return hooks.count() >= 300 })
	p1.term(t)
	if !strings.Contains(p1.stderr.String(), "walrelay run stopped") {
		t.Errorf("no graceful stop logged:\n%s", p1.stderr.String())
	}
	at := rows()
	d.slotReleased(slot)

	// SIGKILL mid-stream.
	p2 := startWalrelay(t, env, args...)
	p2.logged(t, `msg="walrelay run started"`)
	before := hooks.count()
	waitFor(t, "the restarted walrelay to deliver", func() bool { return hooks.count() >= before+300 && rows() > at+100 })
	// After a graceful stop, a restart delivers again at most the changes
	// of the transaction the last batch ended in (four at most here):
	// what was taken was delivered and acknowledged.
	if dups := hooks.count() - len(hooks.keys()); dups > 3 {
		t.Errorf("%d messages delivered twice to the webhook across a SIGTERM and restart, want at most 3", dups)
	}
	p2.cmd.Process.Kill()
	p2.wait(t)
	d.slotReleased(slot)

	p3 := startWalrelay(t, env, args...)
	p3.logged(t, `msg="walrelay run started"`)
	before = hooks.count()
	waitFor(t, "the second restart to deliver", func() bool { return hooks.count() >= before+200 })
	close(stop)
	res := <-wrote
	if res.err != nil {
		t.Fatalf("workload: %v", res.err)
	}

	// What each sink must have: the webhook the orders' changes, Kafka
	// every change and the customers' backfill reads, stdout the deletes.
	var orders, deletes []change
	for _, c := range res.changes {
		if c.table == "public.orders" {
			orders = append(orders, c)
		}
		if c.action == "delete" {
			deletes = append(deletes, c)
		}
	}
	// A customer the workload updated while the backfill read it may come
	// as that update alone: the backfill drops a read that a newer change
	// of its row overtook (the watermark method). Every other customer is
	// read.
	all := append([]change(nil), res.changes...)
	updated := map[int64]bool{}
	for _, c := range res.changes {
		if c.table == "public.customers" {
			updated[c.id] = true
		}
	}
	var reads []change
	for id := int64(1); id <= 200; id++ {
		if !updated[id] {
			reads = append(reads, change{"public.customers", "read", id})
		}
	}
	all = append(all, reads...)
	waitDelivered(t, "the webhook", hooks, orders)
	waitDelivered(t, "Kafka", kafkaGot, all)

	// The endpoints of the running process.
	httpAddr := p3.logged(t, `msg="serving metrics and health" addr=(\S+)`)
	for path, want := range map[string]string{"/readyz": `"status":"ok"`, "/livez": `"status":"ok"`, "/metrics": `walrelay_sink_messages_total{sink="orders-webhook",slot="app_walrelay"}`} {
		body, code := httpGet(t, "http://"+httpAddr+path, "", "")
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d %s, want 200 with %s", path, code, body, want)
		}
	}
	pullAddr := p3.logged(t, `msg="serving the pull API" addr=(\S+)`)
	if body, code := httpGet(t, "http://"+pullAddr+"/topics", "reader", "pull-secret"); code != http.StatusOK || !strings.Contains(body, "sequin.public.orders") {
		t.Errorf("pull API /topics = %d %s", code, body)
	}
	if _, code := httpGet(t, "http://"+pullAddr+"/topics", "reader", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("pull API with a wrong password = %d, want 401", code)
	}

	p3.term(t)

	// Idempotency keys: one change per key (checked as they arrived), and
	// the same key for a change at both sinks.
	for _, d := range []*deliveries{hooks, kafkaGot} {
		if len(d.bad) > 0 {
			t.Errorf("%d problems, first: %s", len(d.bad), d.bad[0])
		}
	}
	kk := kafkaGot.keys()
	for c, k := range hooks.keys() {
		if kk[c] != "" && kk[c] != k && c.action != "update" { // an order is updated once; customers many times
			t.Errorf("%v has key %s at the webhook and %s in Kafka", c, k, kk[c])
		}
	}
	for _, r := range reads {
		if !kafkaGot.masked[r] {
			t.Errorf("%v reached Kafka with its email unmasked", r)
			break
		}
	}
	if n := len(hooks.missing(reads)); n != len(reads) {
		t.Errorf("the webhook, filtered to orders, received %d customer reads", len(reads)-n)
	}
	for _, p := range []*proc{p1, p2, p3} {
		for _, secret := range []string{secret, "pull-secret"} {
			if strings.Contains(p.stderr.String()+p.stdout.String(), secret) {
				t.Errorf("walrelay printed a secret")
			}
		}
	}
	// The stdout sink of the three processes printed every delete.
	printed := newDeliveries()
	for _, p := range []*proc{p1, p2, p3} {
		for _, line := range strings.Split(p.stdout.String(), "\n") {
			if strings.HasPrefix(line, "{") && strings.HasSuffix(line, "}") {
				printed.add([]byte(line))
			}
		}
	}
	if m := printed.missing(deletes); len(m) > 0 {
		t.Errorf("%d of %d deletes not printed on stdout, first %v", len(m), len(deletes), m[0])
	}
	t.Logf("%d rows written (%d changes); webhook %d messages (%d duplicates), Kafka %d (%d duplicates), stdout %d deletes",
		rows(), len(res.changes), hooks.count(), hooks.count()-len(hooks.byKey), kafkaGot.count(), kafkaGot.count()-len(kafkaGot.byKey), printed.count())
}

func httpGet(t *testing.T, url, user, password string) (string, int) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// TestRunConfigErrorsExit2 runs the binary on broken configs: exit status
// 2 and a message naming the key or variable and its line.
func TestRunConfigErrorsExit2(t *testing.T) {
	example := strings.Replace(exampleConfig, "  publication: app_walrelay ", "  publicaton: app_walrelay  ", 1)
	if example == exampleConfig {
		t.Fatal("the example config changed: fix this test's typo")
	}
	typo := writeConfig(t, "typo.yaml", example)
	env := []string{"WEBHOOK_SECRET=" + randomSecret(t), "PULL_PASSWORD=x"}
	p := startWalrelay(t, env, "run", "-config", typo)
	if code := p.wait(t); code != exitUsage {
		t.Fatalf("exit status %d, want 2", code)
	}
	if want := typo + `:8: unknown key "publicaton" in stream (did you mean "publication"?)`; !strings.Contains(p.stderr.String(), want) {
		t.Errorf("stderr\n%s\ndoes not contain %s", p.stderr.String(), want)
	}

	// An unset variable: every one is named, with its line.
	p = startWalrelay(t, []string{"WEBHOOK_SECRET=", "PULL_PASSWORD="}, "run", "-config", "walrelay.example.yaml", "-check-config")
	if code := p.wait(t); code != exitUsage {
		t.Fatalf("exit status %d, want 2", code)
	}
	for _, want := range []string{
		"walrelay.example.yaml:40: environment variable WEBHOOK_SECRET is not set",
		"walrelay.example.yaml:73: environment variable PULL_PASSWORD is not set",
	} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr\n%s\ndoes not contain %s", p.stderr.String(), want)
		}
	}
}

// TestRunFailsOnAnUnusableDatabase: a pipeline that cannot start exits 1
// with the reason, and prints no password.
func TestRunFailsOnAnUnusableDatabase(t *testing.T) {
	url := pgtest.NewDatabase(t)
	slot := pgtest.Name(t, "s")
	cfg := writeConfig(t, "c.yaml", fmt.Sprintf("stream: {slot: %s, publication: %s}\nsinks: [{stdout: {}}]\n", slot, slot))
	p := startWalrelay(t, []string{"DATABASE_URL=" + url}, "run", "-config", cfg)
	if code := p.wait(t); code != exitFailure {
		t.Fatalf("exit status %d, want 1; stderr:\n%s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "walrelay run: open the stream:") || !strings.Contains(p.stderr.String(), "publication") {
		t.Errorf("stderr does not say why:\n%s", p.stderr.String())
	}
}

// TestRunDrainsOnSIGTERM stops walrelay with SIGTERM while a slow webhook
// is taking a batch: the batch is delivered in full and acknowledged before
// the exit, so the restarted process sends none of it again (the
// transactions are of one row, so no batch ends inside one).
func TestRunDrainsOnSIGTERM(t *testing.T) {
	d := newDB(t, "create table items (id bigint primary key)")
	got := newDeliveries()
	srv := webhookReceiver(t, "", 20*time.Millisecond, got) // slow enough to be stopped mid-batch
	name := pgtest.Name(t, "drain")
	cfg := writeStreamConfig(t, name, "items", `sinks:
  - webhook: {url: "${HOOK}"}
delivery:
  drain: 1m
`)
	env := []string{"DATABASE_URL=" + d.url, "HOOK=" + srv.URL}
	p1 := startWalrelay(t, env, "run", "-config", cfg)
	p1.logged(t, `msg="walrelay run started"`)
	// 50 transactions, committed before the stream reads them: one batch.
	d.exec("do $$ begin for i in 1..50 loop insert into items values (i); commit; end loop; end $$")
	waitFor(t, "the webhook to receive 5 messages", func() bool { return got.count() >= 5 })
	p1.term(t)
	stopped := got.count()
	d.slotReleased(name)
	p2 := startWalrelay(t, env, "run", "-config", cfg)
	p2.logged(t, `msg="walrelay run started"`)
	d.exec("insert into items values (51)")
	var want []change
	for id := int64(1); id <= 51; id++ {
		want = append(want, change{"public.items", "insert", id})
	}
	waitFor(t, "every row, and the one inserted after the restart", func() bool { return len(got.missing(want)) == 0 })
	if dups := got.count() - len(got.keys()); dups != 0 {
		t.Errorf("%d messages delivered again after the restart (%d had been delivered by the SIGTERM exit), want 0", dups, stopped)
	}
	p2.term(t)
}

// TestRunBackfillResumesAfterKill kills walrelay with SIGKILL in the middle
// of a configured backfill: the restarted process goes on from the saved
// progress (it does not read the table again from the start) and every row
// is read at least once.
func TestRunBackfillResumesAfterKill(t *testing.T) {
	const rows = 20000
	d := newDB(t, "create table big (id bigint primary key, v text not null)",
		fmt.Sprintf("insert into big select g, 'row ' || g from generate_series(1, %d) g", rows))
	got := newDeliveries()
	srv := webhookReceiver(t, "", 10*time.Millisecond, got) // a backfill that takes a few seconds
	name := pgtest.Name(t, "bf")
	cfg := writeStreamConfig(t, name, "big", `backfills:
  - {table: big, id: big-1, chunk_size: 500}
sinks:
  - webhook: {url: "${HOOK}", max_batch_size: 50}
`)
	env := []string{"DATABASE_URL=" + d.url, "HOOK=" + srv.URL}
	p1 := startWalrelay(t, env, "run", "-config", cfg)
	waitFor(t, "3000 reads", func() bool { return got.count() >= 3000 })
	p1.cmd.Process.Kill()
	p1.wait(t)
	before := got.count()
	if before >= rows {
		t.Fatalf("the backfill finished before the kill (%d reads): nothing to resume", before)
	}
	d.slotReleased(name)

	p2 := startWalrelay(t, env, "run", "-config", cfg)
	var want []change
	for id := int64(1); id <= rows; id++ {
		want = append(want, change{"public.big", "read", id})
	}
	waitFor(t, "every row read", func() bool { return len(got.missing(want)) == 0 })
	after := got.count() - before
	if after > rows-2000 {
		t.Errorf("the restart read %d rows of %d after %d were delivered: it did not resume from the saved progress", after, rows, before)
	}
	p2.logged(t, `msg="backfill finished"`)
	p2.term(t)
	if len(got.bad) > 0 {
		t.Errorf("%d problems, first %s", len(got.bad), got.bad[0])
	}
	t.Logf("%d reads before the kill, %d after the restart, %d rows", before, after, rows)
}

// TestREADMEConfig runs the config of README's "Without writing Go" as the
// README says: validated, then run against a database with the table it
// names, printing the backfill's reads and the live changes (without the
// dropped column) until SIGTERM, which exits 0.
func TestREADMEConfig(t *testing.T) {
	path := writeConfig(t, "walrelay.yaml", readmeYAML(t, "## Without writing Go"))
	t.Setenv("HTTP_LISTEN", "127.0.0.1:0")
	d := newDB(t, "create table orders (id int primary key, item text, internal_notes text)",
		"insert into orders values (1, 'book', 'a'), (2, 'pen', 'b')")
	if r := run(t, d.url, "run", "-config", path, "-check-config"); r.code != exitOK {
		t.Fatalf("-check-config of README's config: %v", r)
	}

	p := start(t, d.url, "run", "-config", path)
	type line struct {
		Action string         `json:"action"`
		Record map[string]any `json:"record"`
	}
	seen := map[string]bool{}
	expect := func(want ...string) {
		t.Helper()
		for _, w := range want {
			for !seen[w] {
				var l line
				raw := p.line()
				if err := json.Unmarshal([]byte(raw), &l); err != nil {
					t.Fatalf("stdout line %q: %v", raw, err)
				}
				if _, ok := l.Record["internal_notes"]; ok || (l.Record["item"] == nil && l.Action != "delete") {
					t.Errorf("%s record %v: want item (but in a delete, whose non-key columns are null) and no internal_notes (drop_columns)", l.Action, l.Record)
				}
				seen[fmt.Sprintf("%s %v", l.Action, l.Record["id"])] = true // ids are small: %v of a float64 prints 3
			}
		}
	}
	expect("read 1", "read 2")
	d.exec("insert into orders values (3, 'ink', 'c')", "update orders set item = 'books' where id = 1", "delete from orders where id = 2")
	expect("insert 3", "update 1", "delete 2")
	p.term()
}
