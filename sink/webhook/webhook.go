package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v4"

	"github.com/walrelay/walrelay/internal/logkey"
	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// Sink POSTs messages to an HTTP endpoint. Create it with [New]; it is safe
// for concurrent use, though Writes should come from one goroutine to keep
// their order.
type Sink struct {
	cfg       Config
	appendEnc bool     // cfg.Encoder was nil: batches are encoded with message.AppendJSON straight into the body
	keys      [][]byte // signing keys; nil when unsigned
	client    *http.Client
	ownClient bool
	url       string   // cfg.URL as scheme://host, for errors and logs
	scrub     []string // credentials to mask in response excerpts, longest first
	closed    atomic.Bool
	stats     sink.Counters
}

var _ sink.Sink = (*Sink)(nil)

// New validates cfg and returns a sink posting to cfg.URL.
func New(cfg Config) (*Sink, error) {
	appendEnc := cfg.Encoder == nil
	cfg, keys, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, appendEnc: appendEnc, keys: keys, url: safeURL(cfg.URL), scrub: credentials(cfg)}
	if cfg.Client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.TLSConfig != nil {
			t.TLSClientConfig = cfg.TLSConfig.Clone()
		}
		s.client = &http.Client{Transport: t}
		s.ownClient = true
	} else {
		c := *cfg.Client // a copy: the caller's client keeps its own redirect policy
		s.client = &c
	}
	s.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return s, nil
}

// StatusError is the error of a request the endpoint answered with a status
// other than 2xx. It comes wrapped in [sink.Permanent] when the status is
// one of Config.StopOn.
type StatusError struct {
	StatusCode int
	// Body is the start of the response body, for diagnosis, with the
	// sink's credentials (Config.Header values, URL path and query parts,
	// secrets) masked.
	Body string
	// Location is the scheme://host of a redirect's Location header, which
	// the sink does not follow.
	Location string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("endpoint answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		msg += " (redirects are not followed"
		if e.Location != "" {
			msg += "; Location " + e.Location
		}
		msg += ")"
	}
	if e.Body != "" {
		msg += fmt.Sprintf(": %q", e.Body)
	}
	return msg
}

// Write delivers msgs: one {"data":[…]} request per MaxBatchSize messages,
// or with Config.Single one request per message, in order. It returns nil
// once every request got a 2xx answer. Failed requests are retried as
// Config says, each attempt signed afresh. On error the caller must retry
// the whole batch, which may deliver some messages twice.
func (s *Sink) Write(ctx context.Context, msgs ...message.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	if s.closed.Load() {
		return sink.ErrClosed
	}
	if s.cfg.Single {
		for _, m := range msgs {
			body, err := s.cfg.Encoder(m)
			if err != nil {
				return sink.Permanent(fmt.Errorf("webhook: encode %s: %w", m.Metadata.IdempotencyKey, err))
			}
			if err := s.send(ctx, m.Metadata.IdempotencyKey, 1, body); err != nil {
				return err
			}
		}
		s.stats.Wrote()
		return nil
	}
	for len(msgs) > 0 {
		n := min(len(msgs), s.cfg.MaxBatchSize)
		body, id, err := s.batch(msgs[:n])
		if err != nil {
			return err
		}
		if err := s.send(ctx, id, n, body); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	s.stats.Wrote()
	return nil
}

// batch encodes {"data":[…]} and the batch's id: for one message its
// idempotency key, for more "batch_" and the hex of a SHA-256 over their
// idempotency keys, so the same batch always has the same id.
func (s *Sink) batch(msgs []message.Message) (body []byte, id string, err error) {
	h := sha256.New()
	body = append(make([]byte, 0, 4096), `{"data":[`...)
	for i, m := range msgs {
		if i > 0 {
			// Room for the rest, judged by the average so far and capped,
			// so that one huge message does not reserve its size again for
			// every message after it.
			if avg := len(body) / i; cap(body)-len(body) < avg {
				body = slices.Grow(body, min(avg*(len(msgs)-i), maxReserve))
			}
			body = append(body, ',')
		}
		if body, err = s.appendMessage(body, m); err != nil {
			return nil, "", err
		}
		io.WriteString(h, m.Metadata.IdempotencyKey)
		h.Write([]byte{'\n'})
	}
	body = append(body, "]}"...)
	if len(msgs) == 1 {
		return body, msgs[0].Metadata.IdempotencyKey, nil
	}
	return body, "batch_" + hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// maxReserve caps the room a batch body reserves ahead of its messages.
const maxReserve = 4 << 20

// appendMessage appends m's JSON to a batch body. The default encoding
// (message.AppendJSON) is written in place and is valid JSON by
// construction; a Config.Encoder's bytes are checked, since a batch body
// must be JSON.
func (s *Sink) appendMessage(body []byte, m message.Message) ([]byte, error) {
	if s.appendEnc {
		b, err := m.AppendJSON(body)
		if err != nil {
			return nil, sink.Permanent(fmt.Errorf("webhook: encode %s: %w", m.Metadata.IdempotencyKey, err))
		}
		return b, nil
	}
	b, err := s.cfg.Encoder(m)
	if err != nil {
		return nil, sink.Permanent(fmt.Errorf("webhook: encode %s: %w", m.Metadata.IdempotencyKey, err))
	}
	if !json.Valid(b) {
		return nil, sink.Permanent(fmt.Errorf("webhook: encode %s: a {\"data\":[…]} body needs JSON and the encoder wrote something else (Config.Single sends other encodings)", m.Metadata.IdempotencyKey))
	}
	return append(body, b...), nil
}

// send POSTs body until it is accepted, retrying what may heal. n is the
// number of messages in body.
func (s *Sink) send(ctx context.Context, id string, n int, body []byte) error {
	bo := s.cfg.Backoff()
	start := time.Now()
	var last error // the last failed attempt's error
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			s.stats.Retried()
		}
		retryAfter, err := s.attempt(ctx, id, body)
		if err == nil {
			s.stats.Delivered(n)
			return nil
		}
		if ctx.Err() != nil {
			return s.cancelled(ctx, id, last)
		}
		last = err
		s.stats.Failed(err)
		if sink.IsPermanent(err) {
			return fmt.Errorf("webhook: request %s: %w", id, err)
		}
		if s.cfg.MaxAttempts > 0 && attempt >= s.cfg.MaxAttempts {
			return fmt.Errorf("webhook: request %s: giving up after %d attempts: %w", id, attempt, err)
		}
		wait := bo.NextBackOff()
		if wait == backoff.Stop {
			return fmt.Errorf("webhook: request %s: backoff stopped after %d attempts: %w", id, attempt, err)
		}
		if retryAfter > 0 {
			wait = min(retryAfter, s.cfg.MaxRetryAfter)
		}
		if s.cfg.MaxElapsed > 0 && time.Since(start)+wait > s.cfg.MaxElapsed {
			return fmt.Errorf("webhook: request %s: giving up after %s and %d attempts: %w", id, s.cfg.MaxElapsed, attempt, err)
		}
		if s.cfg.Logger != nil {
			s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "webhook request failed; retrying",
				slog.String(logkey.URL, s.url), slog.String(logkey.WebhookID, id), slog.Int(logkey.Attempt, attempt),
				slog.Duration(logkey.RetryIn, wait), slog.String(logkey.Err, err.Error()))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return s.cancelled(ctx, id, last)
		case <-t.C:
		}
	}
}

// cancelled is the error of a request whose context ended: the context's
// error and, when an attempt had failed before, that failure.
func (s *Sink) cancelled(ctx context.Context, id string, last error) error {
	if last == nil {
		return fmt.Errorf("webhook: request %s: %w", id, ctx.Err())
	}
	return fmt.Errorf("webhook: request %s: %w; last failure: %w", id, ctx.Err(), last)
}

// request builds one attempt at a request: the sink's headers win over
// Config.Header's, and a signed request gets a timestamp and signatures of
// its own.
func (s *Sink) request(ctx context.Context, id string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request for %s: %w", s.url, unwrapURL(err))
	}
	h := make(http.Header, len(s.cfg.Header)+6)
	for name, values := range s.cfg.Header {
		h[name] = slices.Clone(values)
	}
	h.Set("Content-Type", s.cfg.ContentType)
	h.Set("User-Agent", "walrelay-webhook")
	h.Set("Idempotency-Key", id)
	if s.keys != nil {
		ts := s.cfg.Now().Unix()
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		h.Set(HeaderSignature, signatures(s.keys, id, ts, body))
	}
	req.Header = h
	return req, nil
}

// maxExcerpt bounds the response body quoted in errors; maxDrain the body
// read to let the connection be reused.
const (
	maxExcerpt = 256
	maxDrain   = 64 << 10
)

// attempt makes one request. It returns the Retry-After the endpoint asked
// for, if any, and an error that is permanent when the sink must stop.
func (s *Sink) attempt(ctx context.Context, id string, body []byte) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := s.request(ctx, id, body)
	if err != nil {
		return 0, sink.Permanent(err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		err = s.hideURL(err)
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("no answer within %s: %w", s.cfg.Timeout, err)
		}
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		return 0, nil
	}
	longest := 0
	if len(s.scrub) > 0 {
		longest = len(s.scrub[0])
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, int64(maxExcerpt+longest)))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	serr := &StatusError{StatusCode: resp.StatusCode, Body: printable(mask(head, maxExcerpt, s.scrub))}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if u, err := req.URL.Parse(loc); err == nil && u.Host != "" {
			serr.Location = u.Scheme + "://" + u.Host
		}
	}
	if slices.Contains(s.cfg.StopOn, resp.StatusCode) {
		return 0, sink.Permanent(serr)
	}
	return parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), serr
}

// hideURL replaces the URL in a *url.Error, whose path or query may hold a
// token, with its scheme://host.
func (s *Sink) hideURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: s.url, Err: ue.Err}
	}
	return err
}

// unwrapURL drops the URL from a *url.Error.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// credentials lists what must never be quoted from a response body: the
// values of Config.Header and their words, the URL's user, password, path
// segments and query values, and the secrets — each also as a JSON string
// or URL would escape it. Short words are left alone. Longest first.
func credentials(cfg Config) []string {
	const minLen = 6
	var raw []string
	add := func(v string) {
		if len(v) >= minLen {
			raw = append(raw, v)
		}
	}
	for _, values := range cfg.Header {
		for _, v := range values {
			add(v)
			for _, w := range strings.Fields(v) {
				add(w)
			}
		}
	}
	if u, err := url.Parse(cfg.URL); err == nil {
		if u.User != nil {
			add(u.User.Username())
			p, _ := u.User.Password()
			add(p)
		}
		add(u.RawQuery)
		for _, vs := range u.Query() {
			for _, v := range vs {
				add(v)
			}
		}
		add(strings.Trim(u.EscapedPath(), "/"))
		for _, seg := range strings.Split(u.Path, "/") {
			add(seg)
		}
	}
	for _, sec := range append([]string{cfg.Secret}, cfg.ExtraSecrets...) {
		add(sec)
		add(strings.TrimPrefix(sec, secretPrefix))
	}
	var out []string
	for _, v := range raw {
		js, _ := json.Marshal(v)
		out = append(out, v, strings.ReplaceAll(v, "/", `\/`), url.QueryEscape(v), url.PathEscape(v), string(js[1:len(js)-1]))
	}
	slices.SortFunc(out, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(out)
}

// mask returns the first limit bytes of b with every occurrence of a
// credential that starts among them replaced by [redacted]. b should hold
// limit bytes plus the longest credential, so that one straddling the limit
// is caught whole.
func mask(b []byte, limit int, creds []string) []byte {
	out := make([]byte, 0, min(len(b), limit)+16)
	for i := 0; i < len(b) && i < limit; {
		hit := ""
		for _, c := range creds {
			if bytes.HasPrefix(b[i:], []byte(c)) {
				hit = c
				break
			}
		}
		if hit != "" {
			out = append(out, redacted...)
			i += len(hit)
			continue
		}
		out = append(out, b[i])
		i++
	}
	return out
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
// It returns 0 when the header is absent, invalid or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// printable makes a response excerpt safe to quote: valid UTF-8, no
// control bytes.
func printable(b []byte) string {
	out := make([]rune, 0, len(b))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if r == utf8.RuneError && size <= 1 {
			r = '?'
		}
		if r < ' ' && r != '\t' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(bytes.TrimSpace([]byte(string(out))))
}

// Close stops the sink: later Writes return [sink.ErrClosed]. It closes the
// idle connections of the sink's own client. Closing twice is fine.
func (s *Sink) Close(context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.ownClient {
		s.client.CloseIdleConnections()
	}
	return nil
}
