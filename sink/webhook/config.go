package webhook

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/walrelay/walrelay/sink"
)

// Defaults used for zero Config fields.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultMaxAttempts   = 10
	DefaultMaxBatchSize  = 100
	DefaultMaxRetryAfter = time.Minute
	DefaultContentType   = "application/json"
)

// Config configures a [Sink]. Only URL is required; the zero value of every
// other field is a safe default.
type Config struct {
	// URL is the http or https endpoint every request is POSTed to.
	URL string

	// Encoder turns a message into a request body (or, in batch mode, an
	// element of the "data" array, which must then be JSON). Default:
	// [sink.JSON], Sequin's message shape.
	Encoder sink.Encoder
	// ContentType is the Content-Type of the requests. Default
	// "application/json".
	ContentType string
	// Header holds extra headers sent with every request (an
	// Authorization header, say). The sink's own headers take precedence.
	Header http.Header

	// Batch sends one request per batch of up to MaxBatchSize messages, with
	// the body {"data":[…]}, instead of one request per message.
	Batch bool
	// MaxBatchSize caps the messages of one batch request; larger Writes
	// are split, in order. Default 100. Ignored unless Batch is set.
	MaxBatchSize int

	// Timeout bounds each request attempt, response included. Default 30 s.
	Timeout time.Duration
	// MaxAttempts caps the attempts at each request, the first included.
	// When they are used up Write returns the last failure, not marked
	// permanent, so the caller retries the batch later. Default 10.
	MaxAttempts int
	// MaxElapsed, when positive, also caps the time spent retrying one
	// request, counted from its first attempt.
	MaxElapsed time.Duration
	// MaxRetryAfter caps how long a Retry-After header can make the sink
	// wait. Default one minute.
	MaxRetryAfter time.Duration
	// NewBackOff returns the wait policy between attempts. It is called once
	// per request, so the BackOff it returns is never shared. When it
	// returns [backoff.Stop] the sink stops retrying, as when MaxAttempts is
	// reached. Default: exponential from 250 ms to 30 s with jitter.
	NewBackOff func() backoff.BackOff

	// Secret, when set, signs every request following the Standard Webhooks
	// specification (see [Verify]). It is either "whsec_" followed by the
	// base64 of the key, or the raw key itself.
	Secret string

	// Client sends the requests. Default: a client of its own using
	// TLSConfig. A client given here is used as is (TLSConfig is ignored)
	// and not closed by Close.
	Client *http.Client
	// TLSConfig configures TLS for the default client, for example to trust
	// a private certificate authority.
	TLSConfig *tls.Config

	// Logger receives a warning for each failed attempt that will be
	// retried. Nil means silent.
	Logger *slog.Logger
}

// validate checks c and returns a copy with defaults filled in, and the
// decoded signing key.
func (c Config) validate() (Config, []byte, error) {
	if c.URL == "" {
		return c, nil, errors.New("webhook: config: URL is empty")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return c, nil, fmt.Errorf("webhook: config: URL: %w", redact(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return c, nil, fmt.Errorf("webhook: config: URL scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return c, nil, errors.New("webhook: config: URL has no host")
	}
	switch {
	case c.MaxBatchSize < 0:
		return c, nil, fmt.Errorf("webhook: config: MaxBatchSize %d is negative", c.MaxBatchSize)
	case c.Timeout < 0:
		return c, nil, fmt.Errorf("webhook: config: Timeout %s is negative", c.Timeout)
	case c.MaxAttempts < 0:
		return c, nil, fmt.Errorf("webhook: config: MaxAttempts %d is negative", c.MaxAttempts)
	case c.MaxElapsed < 0:
		return c, nil, fmt.Errorf("webhook: config: MaxElapsed %s is negative", c.MaxElapsed)
	case c.MaxRetryAfter < 0:
		return c, nil, fmt.Errorf("webhook: config: MaxRetryAfter %s is negative", c.MaxRetryAfter)
	}
	for name := range c.Header {
		if !validHeaderName(name) {
			return c, nil, fmt.Errorf("webhook: config: invalid header name %q", name)
		}
	}
	var key []byte
	if c.Secret != "" {
		if key, err = parseSecret(c.Secret); err != nil {
			return c, nil, fmt.Errorf("webhook: config: Secret: %w", err)
		}
	}
	if c.Encoder == nil {
		c.Encoder = sink.JSON
	}
	if c.ContentType == "" {
		c.ContentType = DefaultContentType
	}
	if c.MaxBatchSize == 0 {
		c.MaxBatchSize = DefaultMaxBatchSize
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if c.NewBackOff == nil {
		c.NewBackOff = defaultBackOff
	}
	c.Header = c.Header.Clone()
	return c, key, nil
}

func defaultBackOff() backoff.BackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(250*time.Millisecond),
		backoff.WithMaxInterval(30*time.Second),
		backoff.WithMaxElapsedTime(0),
	)
}

// redact drops the URL from a url.Error, since it may hold a password.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// secretPrefix marks a base64-encoded Standard Webhooks secret.
const secretPrefix = "whsec_"

// parseSecret returns the signing key of a secret. Its errors never quote
// the secret.
func parseSecret(secret string) ([]byte, error) {
	if secret == "" {
		return nil, errors.New("empty secret")
	}
	enc, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, errors.New(`secret has the "whsec_" prefix but is not valid base64 after it`)
	}
	if len(key) == 0 {
		return nil, errors.New(`secret has the "whsec_" prefix and no key after it`)
	}
	return key, nil
}
