package webhook

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/walrelay/walrelay/sink"
)

// Defaults used for zero Config fields.
const (
	DefaultTimeout = 30 * time.Second
	// DefaultMaxBatchSize is MaxBatchSize's default when Config.Batch is
	// set; without it the default is 1.
	DefaultMaxBatchSize  = 100
	DefaultMaxRetryAfter = time.Minute
	DefaultContentType   = "application/json"
)

// Config configures a [Sink]. Only URL is required; the zero value of every
// other field is a safe default. Config masks its secrets when printed
// (String, GoString, LogValue).
type Config struct {
	// URL is the http or https endpoint every request is POSTed to.
	// Redirects are never followed: a 3xx answer is a failed attempt.
	URL string

	// Encoder turns a message into a request body (or, in batch mode, an
	// element of the "data" array, which must then be JSON). Default:
	// [sink.JSON], Sequin's message shape.
	Encoder sink.Encoder
	// ContentType is the Content-Type of the requests. Default
	// "application/json".
	ContentType string
	// Header holds extra headers sent with every request (an
	// Authorization header, say). Names are case-insensitive: a name given
	// twice in different cases is an error, and so is one of the headers
	// the sink sets itself (Content-Type, Content-Length, Host, User-Agent,
	// Idempotency-Key, Webhook-Id, Webhook-Timestamp, Webhook-Signature,
	// Connection, Transfer-Encoding), or a value holding a control
	// character such as CR or LF. Values never appear in errors or logs.
	Header http.Header

	// MaxBatchSize caps the messages of one request, whose body is
	// {"data":[…]} as Sequin's webhook sink sends it; larger Writes are split,
	// in order. Default 1, as in Sequin; 100 when Batch is set.
	MaxBatchSize int
	// Batch only raises the default MaxBatchSize to 100. (Bodies are
	// {"data":[…]} with or without it, unless Single is set.)
	Batch bool
	// Single sends each message alone, the body being the encoder's output
	// itself rather than {"data":[…]} (Sequin's batch=false), so that it
	// need not be JSON. It conflicts with Batch and a MaxBatchSize above 1.
	Single bool

	// Timeout bounds each request attempt, response included. Default 30 s.
	Timeout time.Duration
	// MaxAttempts, when positive, caps the attempts at each request, the
	// first included. When they are used up Write returns the last failure,
	// not marked permanent, so cdc.Run retries the batch later. Default 0:
	// no cap, the request is retried until it is accepted or Write's
	// context ends.
	MaxAttempts int
	// MaxElapsed, when positive, also caps the time spent retrying one
	// request, counted from its first attempt.
	MaxElapsed time.Duration
	// MaxRetryAfter caps how long a Retry-After header can make the sink
	// wait. Default one minute.
	MaxRetryAfter time.Duration
	// Backoff returns the wait policy between attempts. It is called once
	// per request, so the BackOff it returns is never shared. When it
	// returns [backoff.Stop] the sink stops retrying, as when MaxAttempts is
	// reached. nil = [DefaultBackoff].
	Backoff func() backoff.BackOff
	// StopOn lists the response statuses (300–599) that stop delivery: the
	// request is not retried and Write returns a [sink.Permanent]
	// [*StatusError], which makes cdc.Run return. Default none: every
	// failure is retried.
	StopOn []int

	// Secret, when set, signs every request following the Standard Webhooks
	// specification (see [Verify]). It is the base64 of the key, with or
	// without the "whsec_" prefix, as the official Standard Webhooks
	// libraries read it; New rejects what they would reject. To keep
	// signing with a raw key, give "whsec_" + base64(key).
	Secret string
	// ExtraSecrets are more keys to sign with, for key rotation: each adds
	// one signature to the Webhook-Signature header (space-separated), so a
	// receiver holding any of the keys verifies the request. Rotate by
	// adding the new secret here, moving the receivers to it, then making
	// it the Secret and dropping the old one. Needs Secret.
	ExtraSecrets []string

	// Client sends the requests. Default: a client of its own using
	// TLSConfig. A client given here is used through a copy that never
	// follows redirects (the client itself is not changed); TLSConfig is
	// then ignored, and Close does not close the client.
	Client *http.Client
	// TLSConfig configures TLS for the default client, for example to trust
	// a private certificate authority.
	TLSConfig *tls.Config

	// Now is the clock that stamps Webhook-Timestamp on each attempt.
	// Default time.Now; tests set it to simulate long outages.
	Now func() time.Time

	// Logger receives a warning for each failed attempt that will be
	// retried. Nil means silent.
	Logger *slog.Logger
}

// ErrSecret is wrapped by the error of a secret that is not a Standard
// Webhooks secret. Such errors never quote the secret.
var ErrSecret = errors.New("webhook: invalid secret")

// ownHeaders are the headers the sink sets itself; Config.Header may not
// name them.
var ownHeaders = []string{
	"Content-Type", "Content-Length", "Host", "User-Agent", "Connection", "Transfer-Encoding",
	"Idempotency-Key", HeaderID, HeaderTimestamp, HeaderSignature,
}

// validate checks c and returns a copy with defaults filled in, and the
// decoded signing keys.
func (c Config) validate() (Config, [][]byte, error) {
	if c.URL == "" {
		return c, nil, errors.New("webhook: config: URL is empty")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return c, nil, errors.New("webhook: config: URL does not parse")
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
	case c.Single && (c.Batch || c.MaxBatchSize > 1):
		return c, nil, errors.New("webhook: config: Single sends one message per request and conflicts with Batch and MaxBatchSize")
	case c.Timeout < 0:
		return c, nil, fmt.Errorf("webhook: config: Timeout %s is negative", c.Timeout)
	case c.MaxAttempts < 0:
		return c, nil, fmt.Errorf("webhook: config: MaxAttempts %d is negative", c.MaxAttempts)
	case c.MaxElapsed < 0:
		return c, nil, fmt.Errorf("webhook: config: MaxElapsed %s is negative", c.MaxElapsed)
	case c.MaxRetryAfter < 0:
		return c, nil, fmt.Errorf("webhook: config: MaxRetryAfter %s is negative", c.MaxRetryAfter)
	}
	for _, code := range c.StopOn {
		if code < 300 || code > 599 {
			return c, nil, fmt.Errorf("webhook: config: StopOn status %d is not between 300 and 599", code)
		}
	}
	header, err := checkHeader(c.Header)
	if err != nil {
		return c, nil, fmt.Errorf("webhook: config: Header: %w", err)
	}
	c.Header = header
	if c.Secret == "" && len(c.ExtraSecrets) > 0 {
		return c, nil, errors.New("webhook: config: ExtraSecrets without Secret")
	}
	var keys [][]byte
	if c.Secret != "" {
		for i, sec := range append([]string{c.Secret}, c.ExtraSecrets...) {
			key, err := parseSecret(sec)
			if err != nil {
				if i == 0 {
					return c, nil, fmt.Errorf("webhook: config: Secret: %w", err)
				}
				return c, nil, fmt.Errorf("webhook: config: ExtraSecrets[%d]: %w", i-1, err)
			}
			keys = append(keys, key)
		}
	}
	if c.Encoder == nil {
		c.Encoder = sink.JSON
	}
	if c.ContentType == "" {
		c.ContentType = DefaultContentType
	}
	if c.MaxBatchSize == 0 {
		c.MaxBatchSize = 1
		if c.Batch {
			c.MaxBatchSize = DefaultMaxBatchSize
		}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.StopOn = slices.Clone(c.StopOn)
	c.ExtraSecrets = slices.Clone(c.ExtraSecrets)
	return c, keys, nil
}

// DefaultBackoff is the webhook sink's wait policy between attempts when
// Config.Backoff is nil. It waits 250 ms after the first failure, then half
// as long again after each further one, up to 3 minutes between attempts,
// each wait randomised by ±50%; it never gives up (Write's context,
// Config.MaxAttempts and Config.MaxElapsed end the retries). It is slower
// than the rest of walrelay's default (sink.DefaultBackoff) because it
// waits on receivers one does not own, which may be down for a deploy.
func DefaultBackoff() backoff.BackOff {
	b := sink.DefaultBackoff().(*backoff.ExponentialBackOff) // its growth and jitter
	b.InitialInterval = 250 * time.Millisecond
	b.MaxInterval = 3 * time.Minute
	b.Reset()
	return b
}

// checkHeader validates Config.Header and returns a copy with canonical
// names.
func checkHeader(h http.Header) (http.Header, error) {
	if h == nil {
		return nil, nil
	}
	out := make(http.Header, len(h))
	for name, values := range h {
		if !validHeaderName(name) {
			return nil, fmt.Errorf("invalid header name %q", name)
		}
		canon := http.CanonicalHeaderKey(name)
		for _, own := range ownHeaders {
			if strings.EqualFold(canon, own) {
				return nil, fmt.Errorf("%s is set by the sink itself", own)
			}
		}
		if _, dup := out[canon]; dup {
			return nil, fmt.Errorf("header %s is given twice, in different cases", canon)
		}
		for _, v := range values {
			if !validHeaderValue(v) {
				return nil, fmt.Errorf("the value of header %s holds a control character (CR, LF, NUL…)", canon)
			}
		}
		out[canon] = slices.Clone(values)
	}
	return out, nil
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

// validHeaderValue rejects control characters other than tab (CR and LF
// among them), which would split or end the header.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// secretPrefix is the prefix Standard Webhooks secrets are shown with.
const secretPrefix = "whsec_"

// parseSecret returns the signing key of a Standard Webhooks secret: the
// base64 (standard alphabet, padding optional) of the key, with or without
// the "whsec_" prefix. It accepts what the official libraries decode and
// rejects the rest — including input a lenient decoder would read as a
// different key (URL-safe characters, whitespace, a dangling character) —
// so that sender and receiver never hold different keys. Its errors wrap
// [ErrSecret] and never quote the secret.
func parseSecret(secret string) ([]byte, error) {
	enc := strings.TrimPrefix(secret, secretPrefix)
	if enc == "" {
		return nil, fmt.Errorf("%w: it is empty", ErrSecret)
	}
	data := strings.TrimRight(enc, "=")
	pad := len(enc) - len(data)
	for i := 0; i < len(data); i++ {
		b := data[i]
		if !('A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '+' || b == '/') {
			return nil, fmt.Errorf("%w: character %d is not in the standard base64 alphabet (A-Z, a-z, 0-9, +, /)", ErrSecret, len(secret)-len(enc)+i+1)
		}
	}
	switch {
	case len(enc) < 4:
		return nil, fmt.Errorf("%w: shorter than 4 base64 characters", ErrSecret)
	case pad > 2 || pad > 0 && len(enc)%4 != 0:
		return nil, fmt.Errorf("%w: wrong base64 padding", ErrSecret)
	case len(data)%4 == 1:
		return nil, fmt.Errorf("%w: base64 with a dangling character", ErrSecret)
	}
	key, err := base64.RawStdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrSecret)
	}
	return key, nil
}

// safeURL is u reduced to scheme://host, for errors and logs: paths and
// queries often hold tokens.
func safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}

const redacted = "[redacted]"

// String describes c with its secrets masked: the URL as scheme://host,
// header values and secrets as [redacted].
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("webhook.Config{URL: ")
	b.WriteString(c.maskedURL())
	if c.Secret != "" {
		b.WriteString(", Secret: " + redacted)
	}
	if len(c.ExtraSecrets) > 0 {
		fmt.Fprintf(&b, ", ExtraSecrets: %d %s", len(c.ExtraSecrets), redacted)
	}
	if len(c.Header) > 0 {
		b.WriteString(", Header: " + strings.Join(c.headerNames(), ", ") + " " + redacted)
	}
	if c.Batch {
		b.WriteString(", Batch: true")
	}
	if c.Single {
		b.WriteString(", Single: true")
	}
	if c.MaxBatchSize != 0 {
		fmt.Fprintf(&b, ", MaxBatchSize: %d", c.MaxBatchSize)
	}
	if c.Timeout != 0 {
		fmt.Fprintf(&b, ", Timeout: %s", c.Timeout)
	}
	if c.MaxAttempts != 0 {
		fmt.Fprintf(&b, ", MaxAttempts: %d", c.MaxAttempts)
	}
	if c.MaxElapsed != 0 {
		fmt.Fprintf(&b, ", MaxElapsed: %s", c.MaxElapsed)
	}
	if len(c.StopOn) > 0 {
		fmt.Fprintf(&b, ", StopOn: %v", c.StopOn)
	}
	if c.Client != nil {
		b.WriteString(", Client: set")
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so that %#v masks the secrets too.
func (c Config) GoString() string { return c.String() }

// LogValue logs c with its secrets masked, as String does.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("url", c.maskedURL())}
	if c.Secret != "" {
		attrs = append(attrs, slog.String("secret", redacted))
	}
	if len(c.ExtraSecrets) > 0 {
		attrs = append(attrs, slog.Int("extra_secrets", len(c.ExtraSecrets)))
	}
	if len(c.Header) > 0 {
		attrs = append(attrs, slog.String("header", strings.Join(c.headerNames(), ",")))
	}
	attrs = append(attrs, slog.Bool("single", c.Single))
	if c.MaxBatchSize != 0 {
		attrs = append(attrs, slog.Int("max_batch_size", c.MaxBatchSize))
	}
	if c.MaxAttempts != 0 {
		attrs = append(attrs, slog.Int("max_attempts", c.MaxAttempts))
	}
	if len(c.StopOn) > 0 {
		codes := make([]string, len(c.StopOn))
		for i, code := range c.StopOn {
			codes[i] = strconv.Itoa(code)
		}
		attrs = append(attrs, slog.String("stop_on", strings.Join(codes, ",")))
	}
	return slog.GroupValue(attrs...)
}

func (c Config) maskedURL() string {
	if c.URL == "" {
		return `""`
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	s := u.Scheme + "://" + u.Host
	if u.User != nil || u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		s += "/…"
	}
	return s
}

func (c Config) headerNames() []string {
	names := make([]string, 0, len(c.Header))
	for name := range c.Header {
		names = append(names, http.CanonicalHeaderKey(name))
	}
	slices.Sort(names)
	return names
}
