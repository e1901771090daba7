package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/sinktest"
	"github.com/walrelay/walrelay/sink/webhook"
)

// TestRedirectsNeverFollowed: an endpoint answering a redirect has not taken
// the message. The sink neither follows it (a 301/302/303 would become a
// body-less GET, a 307/308 would re-post the signed body elsewhere) nor
// counts it as delivered: it retries the configured URL. The same holds
// with a client the caller passes, which is left as it was.
func TestRedirectsNeverFollowed(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		for _, own := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/own_client=%v", code, own), func(t *testing.T) {
				var elsewhere atomic.Int32
				other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
				t.Cleanup(other.Close)
				rc := newReceiver(t, false, func(n int, w http.ResponseWriter, r *http.Request) bool {
					switch {
					case r.URL.Path != "/hook":
						elsewhere.Add(1) // a followed relative redirect
					case n <= 2:
						loc := other.URL + "/absolute"
						if n == 2 {
							loc = "/relative"
						}
						http.Redirect(w, r, loc, code)
					default:
						return false
					}
					return true
				})
				cfg := webhook.Config{URL: rc.URL + "/hook", Secret: secret}
				var client *http.Client
				if own {
					client = &http.Client{Timeout: time.Minute}
					cfg.Client = client
				}
				s := newSink(t, cfg)
				msgs := sinktest.Messages(1, 1)
				if err := s.Write(t.Context(), msgs...); err != nil {
					t.Fatalf("Write = %v", err)
				}
				if n := elsewhere.Load(); n != 0 {
					t.Fatalf("%d requests reached the redirect targets, want none", n)
				}
				reqs := rc.requests()
				if len(reqs) != 3 {
					t.Fatalf("%d requests to the configured URL, want 3 (two redirects, then accepted)", len(reqs))
				}
				for i, r := range reqs {
					if r.method != http.MethodPost || r.path != "/hook" || webhook.Verify(secret, r.header, r.body) != nil {
						t.Fatalf("request %d: %s %s, want a signed POST /hook", i+1, r.method, r.path)
					}
				}
				if got, _ := rc.received(t.Context()); len(got) != 1 || sinktest.Same(msgs[0], got[0]) != nil {
					t.Fatalf("received %v", got)
				}
				if st := s.Stats(); st.Failures != 2 || st.LastError == nil {
					t.Fatalf("Stats = %+v, want the two redirects counted as failures", st)
				}
				var se *webhook.StatusError
				if st := s.Stats(); !errors.As(st.LastError, &se) || se.StatusCode != code || !strings.Contains(se.Error(), "not followed") {
					t.Fatalf("last error %v, want a StatusError %d saying redirects are not followed", st.LastError, code)
				}
				if own && client.CheckRedirect != nil {
					t.Fatal("the caller's client was changed")
				}
			})
		}
	}
}

// roundTripper serves requests in-process, so that a sink can run inside a
// synctest bubble (real sockets would keep the bubble's clock from moving).
type roundTripper func(*http.Request) *http.Response

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r), nil }

// TestRetriesSignedAfresh: each attempt carries a timestamp of its own and a
// signature over it, so a retry chain longer than the receivers' tolerance
// (five minutes) is still accepted at its end; the id and body stay the
// same for deduplication. Time is synctest's fake clock: the chain lasts 12
// minutes of it.
func TestRetriesSignedAfresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type seen struct {
			id, ts string
			body   []byte
			err    error
		}
		var got []seen
		rt := roundTripper(func(r *http.Request) *http.Response {
			body, _ := io.ReadAll(r.Body)
			// The receiver's clock is the bubble's: the same as the sender's.
			err := webhook.Verify(secret, r.Header, body)
			got = append(got, seen{r.Header.Get(webhook.HeaderID), r.Header.Get(webhook.HeaderTimestamp), body, err})
			code := http.StatusServiceUnavailable
			switch {
			case err != nil:
				code = http.StatusUnauthorized
			case len(got) > 4:
				code = http.StatusOK
			}
			return &http.Response{StatusCode: code, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}
		})
		s, err := webhook.New(webhook.Config{
			URL: "http://receiver.test/hook", Secret: secret, Client: &http.Client{Transport: rt},
			Backoff:     func() backoff.BackOff { return backoff.NewConstantBackOff(3 * time.Minute) },
			MaxAttempts: 8,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(t.Context(), sinktest.Messages(1, 1)...); err != nil {
			t.Fatalf("Write = %v, want the fifth attempt, 12 minutes after the first, accepted", err)
		}
		if len(got) != 5 {
			t.Fatalf("%d attempts, want 5", len(got))
		}
		for i, a := range got {
			if a.err != nil {
				t.Errorf("attempt %d does not verify: %v", i+1, a.err)
			}
			if a.id != got[0].id || !bytes.Equal(a.body, got[0].body) {
				t.Errorf("attempt %d: id %q, body %d bytes; want the first's %q, %d bytes", i+1, a.id, len(a.body), got[0].id, len(got[0].body))
			}
			if i > 0 {
				prev, _ := strconv.ParseInt(got[i-1].ts, 10, 64)
				ts, _ := strconv.ParseInt(a.ts, 10, 64)
				if ts-prev != 180 {
					t.Errorf("attempt %d stamped %ds after the one before, want 180", i+1, ts-prev)
				}
			}
		}
	})
}

// TestSecrets: a secret is the base64 of the key, with or without the
// whsec_ prefix, as the official Standard Webhooks libraries read it; what
// they would reject, or read as another key, is refused at New, with an
// error that does not quote the secret.
func TestSecrets(t *testing.T) {
	key := []byte("a key of twenty-four byt")
	b64 := base64.StdEncoding.EncodeToString(key)
	want := func(id, ts string, body []byte) string {
		mac := hmac.New(sha256.New, key)
		fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
		return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	for _, sec := range []string{"whsec_" + b64, b64, strings.TrimRight(base64.StdEncoding.EncodeToString(key[:23]), "=")} {
		rc := newReceiver(t, false, nil)
		s := newSink(t, webhook.Config{URL: rc.URL, Secret: sec})
		if err := s.Write(t.Context(), sinktest.Messages(1, 1)...); err != nil {
			t.Fatal(err)
		}
		r := rc.requests()[0]
		k := key
		if !strings.Contains(sec, b64) {
			k = key[:23] // the unpadded form
		}
		mac := hmac.New(sha256.New, k)
		fmt.Fprintf(mac, "%s.%s.%s", r.header.Get(webhook.HeaderID), r.header.Get(webhook.HeaderTimestamp), r.body)
		if got, exp := r.header.Get(webhook.HeaderSignature), "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)); got != exp {
			t.Errorf("secret %q: signature %s, want %s (the base64-decoded key)", sec, got, exp)
		}
		if len(k) == len(key) && r.header.Get(webhook.HeaderSignature) != want(r.header.Get(webhook.HeaderID), r.header.Get(webhook.HeaderTimestamp), r.body) {
			t.Errorf("secret %q signs with another key", sec)
		}
	}
	for name, bad := range map[string]string{
		"empty after prefix":  "whsec_",
		"raw text":            "a raw secret",
		"URL-safe alphabet":   "whsec_" + strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe, 0xfb, 0xef, 0xbe})),
		"trailing newline":    "whsec_" + b64 + "\n",
		"inner space":         b64[:8] + " " + b64[8:],
		"too short":           "whsec_YQ",
		"dangling character":  b64 + "Q",
		"three padding bytes": "whsec_YWJj===",
		"padding mid-way":     "whsec_YQ==YWJj",
		"twice prefixed":      "whsec_whsec_" + b64,
	} {
		_, err := webhook.New(webhook.Config{URL: "http://x", Secret: bad})
		if !errors.Is(err, webhook.ErrSecret) {
			t.Errorf("%s: New = %v, want ErrSecret", name, err)
			continue
		}
		if len(bad) > 8 && strings.Contains(err.Error(), strings.TrimSpace(bad)) {
			t.Errorf("%s: error %q quotes the secret", name, err)
		}
		if err := webhook.Verify(bad, http.Header{}, nil); !errors.Is(err, webhook.ErrSecret) {
			t.Errorf("%s: Verify = %v, want ErrSecret", name, err)
		}
	}
}

// TestKeyRotation: with ExtraSecrets each request carries one signature per
// secret, and a receiver holding any one of them verifies it.
func TestKeyRotation(t *testing.T) {
	const next = "whsec_bmV4dCBrZXkgZm9yIHRoZSByb3RhdGlvbg=="
	rc := newReceiver(t, false, nil)
	s := newSink(t, webhook.Config{URL: rc.URL, Secret: secret, ExtraSecrets: []string{next}})
	if err := s.Write(t.Context(), sinktest.Messages(1, 1)...); err != nil {
		t.Fatal(err)
	}
	r := rc.requests()[0]
	if n := len(strings.Split(r.header.Get(webhook.HeaderSignature), " ")); n != 2 {
		t.Fatalf("%d signatures, want 2", n)
	}
	for _, sec := range []string{secret, next} {
		if err := webhook.Verify(sec, r.header, r.body); err != nil {
			t.Errorf("receiver with one of the keys: %v", err)
		}
	}
	v, err := webhook.NewVerifier(webhook.VerifierConfig{Secrets: []string{"whsec_b2xkIGtleSBsb25nIGdvbmUgYnkgbm93", next}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(r.header, r.body); err != nil {
		t.Errorf("receiver holding a retired key and the new one: %v", err)
	}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestRetryingIsVisible: while the endpoint fails, each failed attempt is
// logged at Warn and counted in Stats, and a Write cancelled then returns
// the cancellation together with the last failure.
func TestRetryingIsVisible(t *testing.T) {
	failed := make(chan struct{}, 100)
	rc := newReceiver(t, false, func(n int, w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "0")
		http.Error(w, "deploying", http.StatusNotFound)
		failed <- struct{}{}
		return true
	})
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	s := newSink(t, webhook.Config{URL: rc.URL + "/hooks/tok3n-in-path?key=s3cret-in-query", Logger: logger,
		Backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Write(ctx, sinktest.Messages(1, 1)...) }()
	for range 5 {
		<-failed
	}
	st := s.Stats()
	if st.Failures < 4 || st.Retries < 4 || st.Writes != 0 || st.Messages != 0 || st.LastError == nil || st.LastErrorAt.IsZero() {
		t.Fatalf("Stats while failing = %+v", st)
	}
	cancel()
	err := <-done
	var se *webhook.StatusError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &se) || se.StatusCode != 404 || sink.IsPermanent(err) {
		t.Fatalf("Write = %v, want context.Canceled with the last 404", err)
	}
	out := logs.String()
	if n := strings.Count(out, `"level":"WARN"`); n < 4 || !strings.Contains(out, "404") {
		t.Fatalf("%d Warn lines; log:\n%s", n, out)
	}
	for _, leak := range []string{"tok3n", "s3cret"} {
		if strings.Contains(out, leak) || strings.Contains(err.Error(), leak) {
			t.Fatalf("%q from the URL leaked into the log or error:\n%s\n%v", leak, out, err)
		}
	}
	if !strings.Contains(out, rc.URL) {
		t.Fatalf("the log does not name the endpoint %s:\n%s", rc.URL, out)
	}
}

// TestNoCredentialsInErrors: neither a connection error (which names the
// URL) nor an endpoint echoing the request back puts the URL's tokens, a
// Config.Header value or the secret into errors.
func TestNoCredentialsInErrors(t *testing.T) {
	const token = "Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0/dG9rZW4"
	echo := newReceiver(t, false, func(n int, w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusBadRequest)
		// A debugging endpoint echoing what it got, in several encodings.
		fmt.Fprintf(w, "bad request %s %s auth=%q json=%s query=%s", r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"),
			strings.ReplaceAll(r.Header.Get("Authorization"), "/", `\/`), r.URL.Query().Get("key"))
		return true
	})
	s := newSink(t, webhook.Config{URL: echo.URL + "/hooks/tok3n-in-path?key=s3cret-in-query", MaxAttempts: 1, Secret: secret,
		Header: http.Header{"authorization": {token}}})
	err := s.Write(t.Context(), sinktest.Messages(1, 1)...)
	var se *webhook.StatusError
	if !errors.As(err, &se) || se.StatusCode != 400 || !strings.Contains(se.Body, "bad request POST") {
		t.Fatalf("Write = %v, want a 400 quoting the harmless part of the body", err)
	}
	if echo.requests()[0].header.Get("Authorization") != token {
		t.Fatal("the Authorization header was not sent")
	}
	down := newReceiver(t, false, nil)
	down.Close()
	s = newSink(t, webhook.Config{URL: strings.Replace(down.URL, "http://", "http://user:pa55word@", 1) + "/hooks/tok3n-in-path?key=s3cret-in-query", MaxAttempts: 1})
	err2 := s.Write(t.Context(), sinktest.Messages(1, 1)...)
	if err2 == nil {
		t.Fatal("Write to a closed port succeeded")
	}
	for _, e := range []error{err, err2} {
		for _, leak := range []string{"eyJhbGciOiJIUzI1NiJ9", "dG9rZW4", "tok3n", "s3cret", "pa55word", strings.TrimPrefix(secret, "whsec_")} {
			if strings.Contains(e.Error(), leak) {
				t.Errorf("error %q holds %q", e, leak)
			}
		}
	}
}

// TestOwnHeadersWin: Config.Header cannot override or duplicate the
// headers the sink sets, whatever their case (New refuses them), and the
// caller's own headers go out once, canonically named.
func TestOwnHeadersWin(t *testing.T) {
	rc := newReceiver(t, false, nil)
	s := newSink(t, webhook.Config{URL: rc.URL, Secret: secret, Header: http.Header{"x-tenant": {"acme"}}})
	if err := s.Write(t.Context(), sinktest.Messages(1, 1)...); err != nil {
		t.Fatal(err)
	}
	r := rc.requests()[0]
	if got := r.header.Values("X-Tenant"); len(got) != 1 || got[0] != "acme" {
		t.Fatalf("X-Tenant = %q", got)
	}
	for _, name := range []string{"content-type", "CONTENT-LENGTH", "webhook-id", "Webhook-timestamp", "idempotency-key", "user-agent", "host"} {
		if _, err := webhook.New(webhook.Config{URL: rc.URL, Header: http.Header{name: {"x"}}}); err == nil {
			t.Errorf("New accepted Config.Header %q, one of the sink's own", name)
		}
	}
}

// TestConfigMasksSecrets: printing or logging a Config never shows the
// secret, header values or the URL's path and query.
func TestConfigMasksSecrets(t *testing.T) {
	cfg := webhook.Config{
		URL:          "https://user:pa55word@hooks.example.com/in/tok3n?key=s3cret",
		Secret:       secret,
		ExtraSecrets: []string{"whsec_bmV4dCBrZXkgZm9yIHRoZSByb3RhdGlvbg=="},
		Header:       http.Header{"Authorization": {"Bearer t0ken-value"}},
		Batch:        true,
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "webhook", cfg)
	//lint:ignore S1025 the %s verb is what is tested
	for _, out := range []string{fmt.Sprint(cfg), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%s", &cfg), logs.String()} {
		for _, leak := range []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "bmV4dCBr", "t0ken-value", "tok3n", "s3cret", "pa55word"} {
			if strings.Contains(out, leak) {
				t.Errorf("%q shows %q", out, leak)
			}
		}
		if !strings.Contains(out, "hooks.example.com") {
			t.Errorf("%q does not name the host", out)
		}
	}
}
