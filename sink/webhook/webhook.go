package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v4"

	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

// Sink POSTs messages to an HTTP endpoint. Create it with [New]; it is safe
// for concurrent use, though Writes should come from one goroutine to keep
// their order.
type Sink struct {
	cfg       Config
	appendEnc bool   // cfg.Encoder was nil: batches are encoded with message.AppendJSON straight into the body
	key       []byte // signing key; nil when unsigned
	client    *http.Client
	ownClient bool
	closed    atomic.Bool
}

var _ sink.Sink = (*Sink)(nil)

// New validates cfg and returns a sink posting to cfg.URL.
func New(cfg Config) (*Sink, error) {
	appendEnc := cfg.Encoder == nil
	cfg, key, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, appendEnc: appendEnc, key: key, client: cfg.Client}
	if s.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.TLSConfig != nil {
			t.TLSClientConfig = cfg.TLSConfig.Clone()
		}
		s.client = &http.Client{Transport: t}
		s.ownClient = true
	}
	return s, nil
}

// StatusError is the error of a request the endpoint answered with a status
// other than 2xx. Statuses a retry cannot fix (4xx other than 408 and 429)
// come wrapped in [sink.Permanent].
type StatusError struct {
	StatusCode int
	// Body is the start of the response body, for diagnosis.
	Body string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("endpoint answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	return fmt.Sprintf("endpoint answered %d %s: %q", e.StatusCode, http.StatusText(e.StatusCode), e.Body)
}

// Write delivers msgs: one request per message, or with Config.Batch one
// request per MaxBatchSize messages, in order. It returns nil once every
// request got a 2xx answer. Failed requests are retried as Config says;
// a retried request is byte-identical to the first. On error the caller must
// retry the whole batch, which may deliver some messages twice.
func (s *Sink) Write(ctx context.Context, msgs ...message.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	if s.closed.Load() {
		return sink.ErrClosed
	}
	if !s.cfg.Batch {
		for _, m := range msgs {
			body, err := s.cfg.Encoder(m)
			if err != nil {
				return sink.Permanent(fmt.Errorf("webhook: encode %s: %w", m.Metadata.IdempotencyKey, err))
			}
			if err := s.send(ctx, m.Metadata.IdempotencyKey, body); err != nil {
				return err
			}
		}
		return nil
	}
	for len(msgs) > 0 {
		n := min(len(msgs), s.cfg.MaxBatchSize)
		body, id, err := s.batch(msgs[:n])
		if err != nil {
			return err
		}
		if err := s.send(ctx, id, body); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// batch encodes {"data":[…]} and the batch's id: "batch_" and the hex of a
// SHA-256 over its messages' idempotency keys, so the same batch always has
// the same id.
func (s *Sink) batch(msgs []message.Message) (body []byte, id string, err error) {
	h := sha256.New()
	// Sized once the first message is in (below), not guessed up front.
	body = append(make([]byte, 0, 4096), `{"data":[`...)
	for i, m := range msgs {
		if i > 0 {
			body = append(body, ',')
		}
		if body, err = s.appendMessage(body, m); err != nil {
			return nil, "", err
		}
		if i == 0 { // room for the rest, judged by the first
			body = slices.Grow(body, len(body)*(len(msgs)-1)+len(body)/2)
		}
		io.WriteString(h, m.Metadata.IdempotencyKey)
		h.Write([]byte{'\n'})
	}
	body = append(body, "]}"...)
	return body, "batch_" + hex.EncodeToString(h.Sum(nil)[:16]), nil
}

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
		return nil, sink.Permanent(fmt.Errorf("webhook: encode %s: batch mode needs JSON and the encoder wrote something else", m.Metadata.IdempotencyKey))
	}
	return append(body, b...), nil
}

// send POSTs body until it is accepted, retrying what may heal.
func (s *Sink) send(ctx context.Context, id string, body []byte) error {
	header := s.headers(id, body)
	bo := s.cfg.NewBackOff()
	start := time.Now()
	for attempt := 1; ; attempt++ {
		retryAfter, err := s.attempt(ctx, header, body)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("webhook: request %s: %w", id, ctx.Err())
		}
		if sink.IsPermanent(err) {
			return fmt.Errorf("webhook: request %s: %w", id, err)
		}
		if attempt >= s.cfg.MaxAttempts {
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
				slog.String("id", id), slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.String("error", err.Error()))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("webhook: request %s: %w", id, ctx.Err())
		case <-t.C:
		}
	}
}

// headers builds the headers of every attempt at one request.
func (s *Sink) headers(id string, body []byte) http.Header {
	h := s.cfg.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", s.cfg.ContentType)
	h.Set("User-Agent", "walrelay-webhook")
	h.Set("Idempotency-Key", id)
	if s.key != nil {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sign(s.key, id, ts, body))
	}
	return h
}

// maxExcerpt bounds the response body quoted in errors; maxDrain the body
// read to let the connection be reused.
const (
	maxExcerpt = 256
	maxDrain   = 64 << 10
)

// attempt makes one request. It returns the Retry-After the endpoint asked
// for, if any, and an error that is permanent when retrying cannot help.
func (s *Sink) attempt(ctx context.Context, header http.Header, body []byte) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, sink.Permanent(fmt.Errorf("build request: %w", redact(err)))
	}
	req.Header = header.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		if isCertificateError(err) {
			return 0, sink.Permanent(fmt.Errorf("TLS: %w", err))
		}
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
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, maxExcerpt))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	serr := &StatusError{StatusCode: resp.StatusCode, Body: printable(excerpt)}
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), serr
	default:
		return 0, sink.Permanent(serr)
	}
}

// isCertificateError reports a server certificate the client does not
// trust, which no retry fixes.
func isCertificateError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
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
