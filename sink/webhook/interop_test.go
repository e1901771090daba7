package webhook_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrelay/walrelay/internal/nodetest"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink/sinktest"
	"github.com/walrelay/walrelay/sink/webhook"
)

// verdict is what the official verifier said about one request.
type verdict struct {
	N          int             `json:"n"`
	ID         string          `json:"id"`
	Timestamp  string          `json:"timestamp"`
	Signatures int             `json:"signatures"`
	Verified   bool            `json:"verified"`
	Error      string          `json:"error"`
	Data       json.RawMessage `json:"data"`
}

// nodeReceiver is testdata/receiver.js: an HTTP server verifying every
// request with the standardwebhooks npm package's Webhook.verify.
type nodeReceiver struct {
	URL      string
	verdicts chan verdict
}

func startNodeReceiver(t *testing.T, opts map[string]any) *nodeReceiver {
	t.Helper()
	js, err := json.Marshal(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := nodetest.Command(ctx, t, "testdata/receiver.js", string(js))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("receiver stderr:\n%s", stderr.String())
		}
	})
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	if !sc.Scan() {
		t.Fatalf("receiver did not start: %v\n%s", sc.Err(), stderr.String())
	}
	port, ok := strings.CutPrefix(sc.Text(), "listening ")
	if !ok {
		t.Fatalf("receiver said %q", sc.Text())
	}
	r := &nodeReceiver{URL: "http://127.0.0.1:" + port + "/hooks", verdicts: make(chan verdict, 100)}
	go func() {
		for sc.Scan() {
			var v verdict
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				v.Error = "bad line: " + sc.Text()
			}
			r.verdicts <- v
		}
		close(r.verdicts)
	}()
	return r
}

// next returns the verdict on the next request.
func (r *nodeReceiver) next(t *testing.T) verdict {
	t.Helper()
	select {
	case v, ok := <-r.verdicts:
		if !ok {
			t.Fatal("receiver exited")
		}
		return v
	case <-time.After(time.Minute):
		t.Fatal("no verdict within a minute")
	}
	return verdict{}
}

// TestInteropStandardWebhooks delivers to receivers that verify with the
// official standardwebhooks npm package.
func TestInteropStandardWebhooks(t *testing.T) {
	const (
		key1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		key2 = "whsec_bmV4dCBrZXkgZm9yIHRoZSByb3RhdGlvbg=="
		key3 = "whsec_dGhpcmQga2V5LCBoZWxkIGJ5IG5vYm9keQ=="
	)
	unprefixed := func(s string) string { return strings.TrimPrefix(s, "whsec_") }

	// deliver writes msgs through a sink made from cfg, to r, and checks
	// that every request verified and the messages arrived in order.
	deliver := func(t *testing.T, r *nodeReceiver, cfg webhook.Config, msgs []message.Message) []verdict {
		t.Helper()
		cfg.URL, cfg.MaxAttempts = r.URL, 3
		s := newSink(t, cfg)
		if err := s.Write(t.Context(), msgs...); err != nil {
			t.Fatalf("Write = %v", err)
		}
		var got []message.Message
		var vs []verdict
		for len(got) < len(msgs) {
			v := r.next(t)
			if !v.Verified {
				t.Fatalf("request %d refused by the official verifier: %s", v.N, v.Error)
			}
			vs = append(vs, v)
			if !cfg.Single {
				var b struct{ Data []message.Message }
				if err := json.Unmarshal(v.Data, &b); err != nil {
					t.Fatal(err)
				}
				got = append(got, b.Data...)
			} else {
				var m message.Message
				if err := json.Unmarshal(v.Data, &m); err != nil {
					t.Fatal(err)
				}
				got = append(got, m)
			}
		}
		for i := range msgs {
			if err := sinktest.Same(msgs[i], got[i]); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		return vs
	}

	t.Run("single", func(t *testing.T) {
		r := startNodeReceiver(t, map[string]any{"secret": key1})
		deliver(t, r, webhook.Config{Secret: key1}, sinktest.Messages(1, 3))
		r = startNodeReceiver(t, map[string]any{"secret": key1})
		deliver(t, r, webhook.Config{Secret: key1, Single: true}, sinktest.Messages(1, 2))
	})
	t.Run("batch", func(t *testing.T) {
		r := startNodeReceiver(t, map[string]any{"secret": key1})
		vs := deliver(t, r, webhook.Config{Secret: key1, Batch: true, MaxBatchSize: 2}, sinktest.Messages(1, 5))
		if len(vs) != 3 {
			t.Fatalf("%d batch requests, want 3", len(vs))
		}
	})
	t.Run("unprefixed secret at the sender", func(t *testing.T) {
		r := startNodeReceiver(t, map[string]any{"secret": key2})
		deliver(t, r, webhook.Config{Secret: unprefixed(key2)}, sinktest.Messages(1, 1))
	})
	t.Run("unprefixed secret at the receiver", func(t *testing.T) {
		r := startNodeReceiver(t, map[string]any{"secret": unprefixed(key2)})
		deliver(t, r, webhook.Config{Secret: key2}, sinktest.Messages(1, 1))
	})
	t.Run("unpadded secret at either end", func(t *testing.T) {
		unpadded := strings.TrimRight(key2, "=")
		r := startNodeReceiver(t, map[string]any{"secret": key2})
		deliver(t, r, webhook.Config{Secret: unpadded}, sinktest.Messages(1, 1))
		r = startNodeReceiver(t, map[string]any{"secret": unprefixed(unpadded)})
		deliver(t, r, webhook.Config{Secret: key2}, sinktest.Messages(1, 1))
	})
	t.Run("key rotation", func(t *testing.T) {
		// The sender signs with the old and the new key; receivers holding
		// either verify, one holding neither refuses.
		cfg := webhook.Config{Secret: key1, ExtraSecrets: []string{unprefixed(key2)}}
		for _, held := range []string{key1, key2} {
			r := startNodeReceiver(t, map[string]any{"secret": held})
			vs := deliver(t, r, cfg, sinktest.Messages(1, 1))
			if vs[0].Signatures != 2 {
				t.Fatalf("%d signatures, want 2", vs[0].Signatures)
			}
		}
		r := startNodeReceiver(t, map[string]any{"secret": key3})
		cfg.URL, cfg.MaxAttempts = r.URL, 1
		err := newSink(t, cfg).Write(t.Context(), sinktest.Messages(1, 1)...)
		if v := r.next(t); v.Verified || v.Error != "No matching signature found" {
			t.Fatalf("receiver with another key: %+v", v)
		}
		var se *webhook.StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized {
			t.Fatalf("Write = %v, want the receiver's 401", err)
		}
	})
	t.Run("tampered body", func(t *testing.T) {
		// A proxy between the sink and the receiver changes one byte.
		r := startNodeReceiver(t, map[string]any{"secret": key1})
		target, _ := url.Parse(r.URL)
		proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			req := pr.Out
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(req.Body)
			b := bytes.Replace(buf.Bytes(), []byte(`"price":12.5`), []byte(`"price":1.25`), 1)
			if bytes.Equal(b, buf.Bytes()) {
				panic("the proxy found nothing to tamper with")
			}
			req.Body = readCloser{bytes.NewReader(b)}
			req.ContentLength = int64(len(b))
		}}
		srv := httptest.NewServer(proxy)
		t.Cleanup(srv.Close)
		err := newSink(t, webhook.Config{URL: srv.URL + "/hooks", Secret: key1, MaxAttempts: 1}).Write(t.Context(), sinktest.Messages(1, 1)...)
		if v := r.next(t); v.Verified || v.Error != "No matching signature found" {
			t.Fatalf("tampered request: %+v", v)
		}
		if err == nil {
			t.Fatal("Write of a tampered request succeeded")
		}
	})
	t.Run("old timestamp", func(t *testing.T) {
		// The sender's clock is six minutes behind the receiver's.
		r := startNodeReceiver(t, map[string]any{"secret": key1})
		behind := func() time.Time { return time.Now().Add(-6 * time.Minute) }
		err := newSink(t, webhook.Config{URL: r.URL, Secret: key1, MaxAttempts: 1, Now: behind}).Write(t.Context(), sinktest.Messages(1, 1)...)
		if v := r.next(t); v.Verified || v.Error != "Message timestamp too old" {
			t.Fatalf("old request: %+v", v)
		}
		if err == nil {
			t.Fatal("Write of an old request succeeded")
		}
	})
	t.Run("retry chain longer than the tolerance", func(t *testing.T) {
		// A simulated clock, shared by the sink (it stamps each attempt)
		// and the receiver (its verifier reads the clock over HTTP before
		// each request): every attempt moves it four minutes on, so the
		// receiver, down for the first four attempts, accepts the fifth
		// sixteen minutes after the first. The verifier checks every
		// attempt against the clock at the moment it is made.
		var clock atomic.Int64
		clock.Store(time.Now().UnixMilli())
		clockSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, clock.Load())
		}))
		t.Cleanup(clockSrv.Close)
		now := func() time.Time { return time.UnixMilli(clock.Add((4 * time.Minute).Milliseconds())) }
		r := startNodeReceiver(t, map[string]any{"secret": key1, "failFirst": 4, "clock": clockSrv.URL})
		msgs := sinktest.Messages(1, 1)
		s := newSink(t, webhook.Config{URL: r.URL, Secret: key1, Now: now, MaxAttempts: 8})
		if err := s.Write(t.Context(), msgs...); err != nil {
			t.Fatalf("Write = %v", err)
		}
		var first, last int64
		for i := 1; i <= 5; i++ {
			v := r.next(t)
			if !v.Verified {
				t.Fatalf("attempt %d refused: %s", i, v.Error)
			}
			if v.ID != msgs[0].Metadata.IdempotencyKey {
				t.Fatalf("attempt %d has webhook-id %q, want the message's key", i, v.ID)
			}
			ts, _ := strconv.ParseInt(v.Timestamp, 10, 64)
			if i == 1 {
				first = ts
			}
			last = ts
		}
		if span := time.Duration(last-first) * time.Second; span < 16*time.Minute {
			t.Fatalf("the chain spanned %s, want 16 minutes", span)
		}
		if st := s.Stats(); st.Failures != 4 || st.Messages != 1 {
			t.Fatalf("Stats = %+v", st)
		}
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
