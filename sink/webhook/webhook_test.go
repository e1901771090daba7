package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/walrelay/walrelay/internal/testtime"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/sinktest"
	"github.com/walrelay/walrelay/sink/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// request is one request a receiver got.
type request struct {
	method, path string
	header       http.Header
	body         []byte
}

// receiver is an endpoint that records every request and accepts those its
// script does not answer otherwise.
type receiver struct {
	*httptest.Server
	batch   bool
	failing atomic.Bool
	// script, when set, may answer request n (from 1) itself and return true.
	script func(n int, w http.ResponseWriter, r *http.Request) bool

	mu       sync.Mutex
	reqs     []request
	accepted []message.Message
	err      error
}

func newReceiver(t *testing.T, batch bool, script func(n int, w http.ResponseWriter, r *http.Request) bool) *receiver {
	rc := &receiver{batch: batch, script: script}
	rc.Server = httptest.NewServer(rc)
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, request{r.Method, r.URL.Path, r.Header.Clone(), body})
	n := len(rc.reqs)
	rc.mu.Unlock()
	if rc.failing.Load() {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	if rc.script != nil && rc.script(n, w, r) {
		return
	}
	msgs, err := decode(body, rc.batch)
	rc.mu.Lock()
	if err != nil && rc.err == nil {
		rc.err = err
	}
	rc.accepted = append(rc.accepted, msgs...)
	rc.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprint(w, "ok")
}

// decode reads a request body: {"data":[…]}, or with batch false a bare
// message when the body is not {"data":[…]}.
func decode(body []byte, batch bool) ([]message.Message, error) {
	if !batch && !bytes.HasPrefix(body, []byte(`{"data":`)) {
		var m message.Message
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		return []message.Message{m}, nil
	}
	var b struct{ Data []message.Message }
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, err
	}
	return b.Data, nil
}

func (rc *receiver) received(context.Context) ([]message.Message, error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]message.Message(nil), rc.accepted...), rc.err
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

// fast retries at once, so tests wait for nothing.
func fast() backoff.BackOff { return &backoff.ZeroBackOff{} }

func newSink(t *testing.T, cfg webhook.Config) *webhook.Sink {
	t.Helper()
	if cfg.Backoff == nil {
		cfg.Backoff = fast
	}
	s, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func conformance(cfg webhook.Config) sinktest.Harness {
	faulty := func(t *testing.T) (sink.Sink, func(context.Context) ([]message.Message, error), func(bool)) {
		rc := newReceiver(t, !cfg.Single, nil)
		cfg := cfg
		cfg.URL, cfg.MaxAttempts, cfg.Secret = rc.URL, 3, secret
		s := newSink(t, cfg)
		return s, rc.received, rc.failing.Store
	}
	return sinktest.Harness{
		New: func(t *testing.T) (sink.Sink, func(context.Context) ([]message.Message, error)) {
			s, recv, _ := faulty(t)
			return s, recv
		},
		NewFaulty: faulty,
	}
}

func TestConformance(t *testing.T) { sinktest.Run(t, conformance(webhook.Config{})) }
func TestConformanceBatch(t *testing.T) {
	sinktest.Run(t, conformance(webhook.Config{MaxBatchSize: 2}))
}
func TestConformanceSingle(t *testing.T) { sinktest.Run(t, conformance(webhook.Config{Single: true})) }

// TestStopOn: a status listed in Config.StopOn fails the Write at once,
// permanently, with a StatusError naming the status and the body.
func TestStopOn(t *testing.T) {
	for _, code := range []int{301, 400, 401, 403, 404, 409, 413, 422, 500} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			rc := newReceiver(t, false, func(n int, w http.ResponseWriter, r *http.Request) bool {
				http.Error(w, "rejected: field \"x\"\x00 is bad", code)
				return true
			})
			s := newSink(t, webhook.Config{URL: rc.URL, StopOn: []int{code, 599}})
			err := s.Write(t.Context(), sinktest.Messages(1, 2)...)
			if !sink.IsPermanent(err) {
				t.Fatalf("Write = %v, want a permanent error", err)
			}
			var se *webhook.StatusError
			if !errors.As(err, &se) || se.StatusCode != code {
				t.Fatalf("Write = %v, want a StatusError with %d", err, code)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(code)) || !strings.Contains(err.Error(), `rejected: field`) {
				t.Fatalf("error %q does not name the status and the body", err)
			}
			if got := len(rc.requests()); got != 1 {
				t.Fatalf("%d requests, want 1 (no retry, and no later message sent)", got)
			}
		})
	}
}

// TestDefaultRetriesEveryStatus: by default no answer stops delivery — 3xx,
// 4xx and 5xx are all retried until the endpoint accepts.
func TestDefaultRetriesEveryStatus(t *testing.T) {
	for _, code := range []int{300, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 409, 410, 413, 422, 500, 501, 505} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			rc := newReceiver(t, false, func(n int, w http.ResponseWriter, r *http.Request) bool {
				if n > 2 {
					return false
				}
				if code >= 300 && code < 400 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(code)
				return true
			})
			s := newSink(t, webhook.Config{URL: rc.URL + "/hook"})
			msgs := sinktest.Messages(1, 1)
			if err := s.Write(t.Context(), msgs...); err != nil {
				t.Fatalf("Write = %v, want success on the third attempt", err)
			}
			reqs := rc.requests()
			if len(reqs) != 3 {
				t.Fatalf("%d requests, want 3", len(reqs))
			}
			for i, r := range reqs {
				if r.path != "/hook" || r.method != http.MethodPost || len(r.body) == 0 {
					t.Fatalf("request %d: %s %s with %d bytes, want POST /hook with the message", i+1, r.method, r.path, len(r.body))
				}
			}
			st := s.Stats()
			if st.Failures != 2 || st.Retries != 2 || st.Messages != 1 || st.Writes != 1 {
				t.Fatalf("Stats = %+v, want 2 failures, 2 retries, 1 message, 1 write", st)
			}
		})
	}
}

func TestRetriedStatuses(t *testing.T) {
	date := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		code       int
		retryAfter string
	}{
		{408, ""}, {429, ""}, {429, "1"}, {429, date}, {429, "garbage"}, {500, ""}, {502, ""}, {503, ""}, {503, "2"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d retry-after %q", tt.code, tt.retryAfter), func(t *testing.T) {
			rc := newReceiver(t, false, func(n int, w http.ResponseWriter, r *http.Request) bool {
				if n > 1 {
					return false
				}
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.code)
				return true
			})
			// The cap keeps Retry-After (seconds or an hour away) from slowing the test.
			s := newSink(t, webhook.Config{URL: rc.URL, MaxRetryAfter: time.Millisecond})
			msgs := sinktest.Messages(1, 1)
			if err := s.Write(t.Context(), msgs...); err != nil {
				t.Fatalf("Write = %v, want success on the second attempt", err)
			}
			if got := len(rc.requests()); got != 2 {
				t.Fatalf("%d requests, want 2", got)
			}
			got, _ := rc.received(t.Context())
			if len(got) != 1 || sinktest.Same(msgs[0], got[0]) != nil {
				t.Fatalf("received %v", got)
			}
		})
	}
}

func TestHangingServer(t *testing.T) {
	rc := newReceiver(t, false, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 1 {
			<-r.Context().Done() // until the client gives up
			return true
		}
		return false
	})
	// The timeout ends the hanging attempt; the next one, answered at once,
	// must fit in it also on a busy machine.
	s := newSink(t, webhook.Config{URL: rc.URL, Timeout: testtime.Bound(time.Second)})
	if err := s.Write(t.Context(), sinktest.Messages(1, 1)...); err != nil {
		t.Fatalf("Write = %v, want success after a timed-out attempt", err)
	}
	if got := len(rc.requests()); got != 2 {
		t.Fatalf("%d requests, want 2", got)
	}
}

func TestHangingServerGivesUp(t *testing.T) {
	rc := newReceiver(t, false, func(n int, w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	})
	s := newSink(t, webhook.Config{URL: rc.URL, Timeout: 20 * time.Millisecond, MaxAttempts: 2})
	err := s.Write(t.Context(), sinktest.Messages(1, 1)...)
	if err == nil || sink.IsPermanent(err) || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("Write = %v, want a retryable timeout error", err)
	}
}

func TestConnectionClosed(t *testing.T) {
	rc := newReceiver(t, false, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n > 1 {
			return false
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	})
	s := newSink(t, webhook.Config{URL: rc.URL})
	if err := s.Write(t.Context(), sinktest.Messages(1, 1)...); err != nil {
		t.Fatalf("Write = %v, want success after a closed connection", err)
	}
	if got, _ := rc.received(t.Context()); len(got) != 1 {
		t.Fatalf("received %d messages, want 1", len(got))
	}
}

func TestGarbageSuccessBodies(t *testing.T) {
	answers := []func(w http.ResponseWriter){
		func(w http.ResponseWriter) { w.Write([]byte{0xff, 0x00, 0xfe, '{'}) },
		func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) },
		func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted); w.Write([]byte("<html>not json")) },
	}
	rc := newReceiver(t, false, func(n int, w http.ResponseWriter, r *http.Request) bool {
		answers[(n-1)%len(answers)](w)
		return true
	})
	s := newSink(t, webhook.Config{URL: rc.URL})
	if err := s.Write(t.Context(), sinktest.Messages(1, 3)...); err != nil {
		t.Fatalf("Write = %v, want 2xx with any body to count as success", err)
	}
	if got := len(rc.requests()); got != 3 {
		t.Fatalf("%d requests, want 3", got)
	}
}

func TestTLS(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake

	// An untrusted certificate is retried like any failure (the endpoint
	// may be fixing it); MaxAttempts bounds this test.
	s := newSink(t, webhook.Config{URL: srv.URL, MaxAttempts: 2})
	err := s.Write(t.Context(), sinktest.Messages(1, 1)...)
	if err == nil || sink.IsPermanent(err) || !strings.Contains(err.Error(), "certificate") || !strings.Contains(err.Error(), "2 attempts") {
		t.Fatalf("Write to an untrusted server = %v, want a retried certificate error", err)
	}

	trusted := srv.Client().Transport.(*http.Transport).TLSClientConfig
	s = newSink(t, webhook.Config{URL: srv.URL, TLSConfig: trusted})
	if err := s.Write(t.Context(), sinktest.Messages(1, 1)...); err != nil {
		t.Fatalf("Write with the server's CA trusted = %v", err)
	}
	s = newSink(t, webhook.Config{URL: srv.URL, Client: srv.Client()})
	if err := s.Write(t.Context(), sinktest.Messages(1, 1)...); err != nil {
		t.Fatalf("Write with the server's client = %v", err)
	}
	if hits.Load() != 2 {
		t.Fatalf("%d requests reached the server, want 2", hits.Load())
	}
}

// TestRetriesKeepIDAndBody: every attempt at a request carries the same
// body, Webhook-Id and Idempotency-Key, and verifies.
func TestRetriesKeepIDAndBody(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) {
			rc := newReceiver(t, batch, func(n int, w http.ResponseWriter, r *http.Request) bool {
				if n <= 2 {
					w.WriteHeader(http.StatusInternalServerError)
					return true
				}
				return false
			})
			s := newSink(t, webhook.Config{URL: rc.URL, Batch: batch, Secret: secret, Header: http.Header{"Authorization": {"Bearer t0ken"}}})
			if err := s.Write(t.Context(), sinktest.Messages(1, 2)...); err != nil {
				t.Fatal(err)
			}
			reqs := rc.requests()
			if batch && len(reqs) != 3 || !batch && len(reqs) != 4 {
				t.Fatalf("%d requests", len(reqs))
			}
			for i := 1; i < 3; i++ {
				a, b := reqs[0], reqs[i]
				if string(a.body) != string(b.body) {
					t.Fatalf("attempt %d body differs:\n%s\n%s", i+1, a.body, b.body)
				}
				for _, h := range []string{"Idempotency-Key", webhook.HeaderID, "Content-Type", "Authorization"} {
					if a.header.Get(h) == "" || a.header.Get(h) != b.header.Get(h) {
						t.Fatalf("attempt %d header %s: %q vs %q", i+1, h, a.header.Get(h), b.header.Get(h))
					}
				}
			}
			for i, r := range reqs {
				if err := webhook.Verify(secret, r.header, r.body); err != nil {
					t.Fatalf("request %d: Verify = %v", i+1, err)
				}
			}
			if !batch && reqs[0].header.Get("Idempotency-Key") != sinktest.Messages(1, 1)[0].Metadata.IdempotencyKey {
				t.Fatalf("Idempotency-Key %q is not the message's key", reqs[0].header.Get("Idempotency-Key"))
			}
		})
	}
}

// signedHeader signs body as a Standard Webhooks sender would, with the
// test's own HMAC, under the base64 key of secret.
func signedHeader(t *testing.T, secret, id string, ts int64, body []byte) http.Header {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.%s", id, ts, body)
	h := http.Header{}
	h.Set("Webhook-Id", id)
	h.Set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
	h.Set("Webhook-Signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return h
}

func TestVerify(t *testing.T) {
	body := []byte(`{"record":{"id":1}}`)
	now := time.Now().Unix()
	good := signedHeader(t, secret, "msg_1", now, body)
	if err := webhook.Verify(secret, good, body); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if err := webhook.Verify(strings.TrimPrefix(secret, "whsec_"), good, body); err != nil {
		t.Fatalf("Verify with the secret unprefixed = %v", err)
	}
	several := good.Clone()
	several.Set(webhook.HeaderSignature, "v1,bm9wZQ== "+good.Get(webhook.HeaderSignature)+" v2,other")
	if err := webhook.Verify(secret, several, body); err != nil {
		t.Fatalf("one of several signatures matching: %v", err)
	}

	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-2] ^= 1
	otherTS := good.Clone()
	otherTS.Set(webhook.HeaderTimestamp, strconv.FormatInt(now-1, 10))
	otherID := good.Clone()
	otherID.Set(webhook.HeaderID, "msg_2")
	noSig := good.Clone()
	noSig.Del(webhook.HeaderSignature)
	badTS := good.Clone()
	badTS.Set(webhook.HeaderTimestamp, "yesterday")
	const otherSecret = "whsec_c2VjcmV0IG51bWJlciB0d28gZm9yIHRlc3Rz"
	for name, c := range map[string]struct {
		secret string
		header http.Header
		body   []byte
	}{
		"wrong secret":      {otherSecret, good, body},
		"tampered body":     {secret, good, tampered},
		"other timestamp":   {secret, otherTS, body},
		"other id":          {secret, otherID, body},
		"missing signature": {secret, noSig, body},
		"bad timestamp":     {secret, badTS, body},
	} {
		if err := webhook.Verify(c.secret, c.header, c.body); !errors.Is(err, webhook.ErrSignature) {
			t.Errorf("%s: Verify = %v, want ErrSignature", name, err)
		}
	}
	if err := webhook.Verify("whsec_!!!!", good, body); err == nil || strings.Contains(err.Error(), "!!!") {
		t.Errorf("bad secret: Verify = %v, want an error that does not quote the secret", err)
	}
}

// TestVerifyTolerance: Verify refuses a timestamp more than five minutes
// away from now, either way, so a captured request cannot be replayed
// later; a Verifier sets another tolerance or clock.
func TestVerifyTolerance(t *testing.T) {
	body := []byte(`{"record":{"id":1}}`)
	now := time.Now().Unix()
	for _, c := range []struct {
		age int64
		ok  bool
	}{{0, true}, {-60, true}, {4 * 60, true}, {6 * 60, false}, {-6 * 60, false}, {3600, false}} {
		h := signedHeader(t, secret, "msg_1", now-c.age, body)
		err := webhook.Verify(secret, h, body)
		if c.ok && err != nil || !c.ok && !errors.Is(err, webhook.ErrSignature) {
			t.Errorf("timestamp %ds old: Verify = %v, want ok=%v", c.age, err, c.ok)
		}
	}
	old := signedHeader(t, secret, "msg_1", now-3600, body)
	if err := webhook.Verify(secret, old, body); !errors.Is(err, webhook.ErrTimestamp) {
		t.Errorf("an hour old: Verify = %v, want ErrTimestamp", err)
	}
	v, err := webhook.NewVerifier(webhook.VerifierConfig{Secrets: []string{secret}, Tolerance: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(old, body); err != nil {
		t.Errorf("an hour old with a two-hour tolerance: %v", err)
	}
	v, err = webhook.NewVerifier(webhook.VerifierConfig{Secrets: []string{secret}, Now: func() time.Time { return time.Unix(now-3600, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(old, body); err != nil {
		t.Errorf("with the clock an hour back: %v", err)
	}
	if err := v.Verify(signedHeader(t, secret, "msg_1", now, body), body); !errors.Is(err, webhook.ErrTimestamp) {
		t.Errorf("now, with the clock an hour back: Verify = %v, want ErrTimestamp", err)
	}
	for _, cfg := range []webhook.VerifierConfig{{}, {Secrets: []string{secret}, Tolerance: -1}, {Secrets: []string{"whsec_"}}} {
		if _, err := webhook.NewVerifier(cfg); err == nil {
			t.Errorf("NewVerifier(%+v) = nil error", cfg.Tolerance)
		}
	}
}

// TestDefaultBody: by default, as in Sequin, every request's body is
// {"data":[…]}, one message per request; Single sends the message alone.
func TestDefaultBody(t *testing.T) {
	msgs := sinktest.Messages(1, 2)
	for _, single := range []bool{false, true} {
		rc := newReceiver(t, false, nil)
		s := newSink(t, webhook.Config{URL: rc.URL, Single: single})
		if err := s.Write(t.Context(), msgs...); err != nil {
			t.Fatal(err)
		}
		reqs := rc.requests()
		if len(reqs) != 2 {
			t.Fatalf("single=%v: %d requests, want 2", single, len(reqs))
		}
		for i, r := range reqs {
			js, _ := msgs[i].MarshalJSON()
			want := `{"data":[` + string(js) + `]}`
			if single {
				want = string(js)
			}
			if string(r.body) != want || r.header.Get("Idempotency-Key") != msgs[i].Metadata.IdempotencyKey {
				t.Fatalf("single=%v: request %d: %.80s… with key %q, want %.80s… with %q", single, i, r.body, r.header.Get("Idempotency-Key"), want, msgs[i].Metadata.IdempotencyKey)
			}
		}
	}
	if _, err := webhook.New(webhook.Config{URL: "http://x", Single: true, Batch: true}); err == nil {
		t.Fatal("New accepted Single with Batch")
	}
}

func TestBatch(t *testing.T) {
	rc := newReceiver(t, true, nil)
	s := newSink(t, webhook.Config{URL: rc.URL, Batch: true, MaxBatchSize: 2})
	msgs := sinktest.Messages(1, 5)
	if err := s.Write(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), msgs[:2]...); err != nil {
		t.Fatal(err)
	}
	reqs := rc.requests()
	var sizes []int
	for _, r := range reqs {
		got, err := decode(r.body, true)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(got))
		want := "batch_"
		if len(got) == 1 { // a batch of one goes by its message's key
			want = got[0].Metadata.IdempotencyKey
		}
		if !strings.HasPrefix(r.header.Get("Idempotency-Key"), want) {
			t.Fatalf("batch Idempotency-Key %q, want %q…", r.header.Get("Idempotency-Key"), want)
		}
	}
	if fmt.Sprint(sizes) != "[2 2 1 2]" {
		t.Fatalf("batch sizes %v, want [2 2 1 2]", sizes)
	}
	key := func(i int) string { return reqs[i].header.Get("Idempotency-Key") }
	if key(0) != key(3) || key(0) == key(1) || key(1) == key(2) {
		t.Fatalf("batch keys %q %q %q %q: want equal only for the same messages", key(0), key(1), key(2), key(3))
	}
	got, err := rc.received(t.Context())
	if err != nil || len(got) != 7 {
		t.Fatalf("received %d, %v", len(got), err)
	}
	for i := range msgs {
		if err := sinktest.Same(msgs[i], got[i]); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}

// TestBatchBody checks a batch body byte for byte, with the default encoder
// (written in place) and with a Config.Encoder: {"data":[…]} around each
// message's JSON, rows of very different sizes included. A message the
// default encoder cannot encode fails the Write, permanently, unsent.
func TestBatchBody(t *testing.T) {
	msgs := sinktest.Messages(1, 6)
	for i := range msgs {
		msgs[i].Record["note"] = strings.Repeat("ab\"c", i*i*300)
	}
	want := []byte(`{"data":[`)
	for i, m := range msgs {
		js, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			want = append(want, ',')
		}
		want = append(want, js...)
	}
	want = append(want, "]}"...)
	for name, enc := range map[string]sink.Encoder{"default": nil, "Config.Encoder": sink.JSON} {
		t.Run(name, func(t *testing.T) {
			rc := newReceiver(t, true, nil)
			s := newSink(t, webhook.Config{URL: rc.URL, Batch: true, Encoder: enc})
			if err := s.Write(t.Context(), msgs...); err != nil {
				t.Fatal(err)
			}
			reqs := rc.requests()
			if len(reqs) != 1 || !bytes.Equal(reqs[0].body, want) {
				t.Fatalf("got %d requests; body %.100q…, want %.100q…", len(reqs), reqs[0].body, want)
			}
			bad := sinktest.Messages(1, 2)
			bad[1].Record["note"] = make(chan int)
			if err := s.Write(t.Context(), bad...); !sink.IsPermanent(err) {
				t.Fatalf("Write of an unencodable message = %v, want a permanent error", err)
			}
			if len(rc.requests()) != 1 {
				t.Fatal("a batch with an unencodable message was sent")
			}
		})
	}
}

func TestBatchNeedsJSON(t *testing.T) {
	rc := newReceiver(t, true, nil)
	notJSON := func(m message.Message) ([]byte, error) { return []byte("id=" + m.Metadata.IdempotencyKey), nil }
	s := newSink(t, webhook.Config{URL: rc.URL, Batch: true, Encoder: notJSON})
	if err := s.Write(t.Context(), sinktest.Messages(1, 1)...); !sink.IsPermanent(err) {
		t.Fatalf("Write = %v, want a permanent error", err)
	}
	if len(rc.requests()) != 0 {
		t.Fatal("a request was sent")
	}
}

func TestEncoders(t *testing.T) {
	rc := newReceiver(t, false, func(n int, w http.ResponseWriter, r *http.Request) bool { return true })
	errEnc := errors.New("cannot encode")
	s := newSink(t, webhook.Config{URL: rc.URL, Encoder: func(message.Message) ([]byte, error) { return nil, errEnc }, Single: true})
	if err := s.Write(t.Context(), sinktest.Messages(1, 1)...); !errors.Is(err, errEnc) || !sink.IsPermanent(err) {
		t.Fatalf("Write = %v, want the encoder's error, permanent", err)
	}
	s = newSink(t, webhook.Config{URL: rc.URL, Encoder: sink.Event, ContentType: "application/vnd.legacy+json", Single: true})
	m := sinktest.Messages(1, 1)[0]
	if err := s.Write(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	reqs := rc.requests()
	want, _ := m.EventJSON()
	if len(reqs) != 1 || string(reqs[0].body) != string(want) || reqs[0].header.Get("Content-Type") != "application/vnd.legacy+json" {
		t.Fatalf("requests %d; body %s; want %s", len(reqs), reqs[0].body, want)
	}
}

func TestAttemptCap(t *testing.T) {
	rc := newReceiver(t, false, nil)
	rc.failing.Store(true)
	s := newSink(t, webhook.Config{URL: rc.URL, MaxAttempts: 3})
	err := s.Write(t.Context(), sinktest.Messages(1, 2)...)
	if err == nil || sink.IsPermanent(err) || !strings.Contains(err.Error(), "3 attempts") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Write = %v, want a retryable error after 3 attempts naming the status", err)
	}
	if got := len(rc.requests()); got != 3 {
		t.Fatalf("%d requests, want 3 (and the second message never sent)", got)
	}
}

func TestBackOffStop(t *testing.T) {
	rc := newReceiver(t, false, nil)
	rc.failing.Store(true)
	stopAfterOne := func() backoff.BackOff { return backoff.WithMaxRetries(&backoff.ZeroBackOff{}, 1) }
	s := newSink(t, webhook.Config{URL: rc.URL, Backoff: stopAfterOne})
	if err := s.Write(t.Context(), sinktest.Messages(1, 1)...); err == nil || sink.IsPermanent(err) {
		t.Fatalf("Write = %v, want a retryable error", err)
	}
	if got := len(rc.requests()); got != 2 {
		t.Fatalf("%d requests, want 2", got)
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	first := make(chan struct{})
	var once sync.Once
	rc := newReceiver(t, false, func(n int, w http.ResponseWriter, r *http.Request) bool {
		once.Do(func() { close(first) })
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	slow := func() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) }
	s := newSink(t, webhook.Config{URL: rc.URL, Backoff: slow})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Write(ctx, sinktest.Messages(1, 1)...) }()
	<-first
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Write = %v, want context.Canceled", err)
	}
}

func TestCancelDuringRequest(t *testing.T) {
	started := make(chan struct{})
	rc := newReceiver(t, false, func(n int, w http.ResponseWriter, r *http.Request) bool {
		close(started)
		<-r.Context().Done()
		return true
	})
	s := newSink(t, webhook.Config{URL: rc.URL})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Write(ctx, sinktest.Messages(1, 1)...) }()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Write = %v, want context.Canceled", err)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  webhook.Config
		want string
	}{
		{"empty URL", webhook.Config{}, "URL is empty"},
		{"bad URL", webhook.Config{URL: "http://[::1"}, "URL"},
		{"scheme", webhook.Config{URL: "ftp://example.com/x"}, `"ftp"`},
		{"no host", webhook.Config{URL: "http:///path"}, "no host"},
		{"relative", webhook.Config{URL: "/hooks"}, "scheme"},
		{"negative batch", webhook.Config{URL: "http://x", MaxBatchSize: -1}, "MaxBatchSize"},
		{"negative timeout", webhook.Config{URL: "http://x", Timeout: -time.Second}, "Timeout"},
		{"negative attempts", webhook.Config{URL: "http://x", MaxAttempts: -1}, "MaxAttempts"},
		{"negative elapsed", webhook.Config{URL: "http://x", MaxElapsed: -1}, "MaxElapsed"},
		{"negative retry-after", webhook.Config{URL: "http://x", MaxRetryAfter: -1}, "MaxRetryAfter"},
		{"StopOn 2xx", webhook.Config{URL: "http://x", StopOn: []int{200}}, "StopOn"},
		{"header name", webhook.Config{URL: "http://x", Header: http.Header{"Bad Name": {"v"}}}, "header"},
		{"header CRLF", webhook.Config{URL: "http://x", Header: http.Header{"X-Token": {"abc\r\nX-Injected: 1"}}}, "control character"},
		{"header LF", webhook.Config{URL: "http://x", Header: http.Header{"X-Token": {"abc\nd"}}}, "control character"},
		{"header NUL", webhook.Config{URL: "http://x", Header: http.Header{"X-Token": {"abc\x00"}}}, "control character"},
		{"header twice", webhook.Config{URL: "http://x", Header: http.Header{"Authorization": {"a"}, "authorization": {"b"}}}, "twice"},
		{"own header", webhook.Config{URL: "http://x", Header: http.Header{"Content-Type": {"text/plain"}}}, "Content-Type"},
		{"own header lower case", webhook.Config{URL: "http://x", Header: http.Header{"webhook-signature": {"v1,forged"}}}, "Webhook-Signature"},
		{"own header odd case", webhook.Config{URL: "http://x", Header: http.Header{"IDEMPOTENCY-KEY": {"k"}}}, "Idempotency-Key"},
		{"secret", webhook.Config{URL: "http://x", Secret: "whsec_not*base64"}, "Secret"},
		{"extra secret", webhook.Config{URL: "http://x", Secret: secret, ExtraSecrets: []string{"not*base64"}}, "ExtraSecrets[0]"},
		{"extra secret alone", webhook.Config{URL: "http://x", ExtraSecrets: []string{secret}}, "without Secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := webhook.New(tt.cfg)
			if err == nil {
				t.Fatalf("New = %v, want an error", s)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "not*base64") || strings.Contains(err.Error(), "forged") {
				t.Fatalf("error %q quotes a secret", err)
			}
		})
	}
	if _, err := webhook.New(webhook.Config{URL: "https://user:pa55word@example.com/hook", Header: http.Header{"authorization": {"Bearer x"}}, StopOn: []int{410}}); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

func TestURLPasswordNotInErrors(t *testing.T) {
	rc := newReceiver(t, false, nil)
	rc.Close() // nothing listens any more
	u := strings.Replace(rc.URL, "http://", "http://user:pa55word@", 1)
	s := newSink(t, webhook.Config{URL: u, MaxAttempts: 1})
	err := s.Write(t.Context(), sinktest.Messages(1, 1)...)
	if err == nil || strings.Contains(err.Error(), "pa55word") {
		t.Fatalf("Write = %v, want an error without the password", err)
	}
}
