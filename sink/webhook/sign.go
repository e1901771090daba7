package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers a signed request carries.
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
)

// DefaultTolerance is how far a Webhook-Timestamp may be from the
// receiver's clock, either way, for [Verify] to accept it: five minutes, as
// in the Standard Webhooks specification and its official libraries.
const DefaultTolerance = 5 * time.Minute

var (
	// ErrSignature is wrapped by every error of [Verify] about the request:
	// missing headers, no matching signature, a timestamp out of tolerance.
	ErrSignature = errors.New("webhook: signature does not verify")
	// ErrTimestamp is wrapped (with ErrSignature) by the error of a request
	// whose Webhook-Timestamp is older or newer than the tolerance allows.
	ErrTimestamp = errors.New("webhook: timestamp outside the tolerance")
)

// sign returns the Standard Webhooks signature of body under key: "v1,"
// followed by the base64 of HMAC-SHA256(key, id + "." + timestamp + "." +
// body).
func sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, timestamp, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// signatures returns the Webhook-Signature header value: one signature per
// key, space-separated.
func signatures(keys [][]byte, id string, timestamp int64, body []byte) string {
	sigs := make([]string, len(keys))
	for i, k := range keys {
		sigs[i] = sign(k, id, timestamp, body)
	}
	return strings.Join(sigs, " ")
}

// VerifierConfig configures a [Verifier].
type VerifierConfig struct {
	// Secrets are the keys a request may be signed with, in the form
	// Config.Secret takes; a request signed with any of them verifies
	// (several during a key rotation). At least one is required.
	Secrets []string
	// Tolerance is how far the request's Webhook-Timestamp may be from Now,
	// either way. Default [DefaultTolerance]; negative is an error.
	Tolerance time.Duration
	// Now is the receiver's clock. Default time.Now.
	Now func() time.Time
}

// Verifier checks the Standard Webhooks signatures of received requests.
// Create it with [NewVerifier]; it is safe for concurrent use.
type Verifier struct {
	keys      [][]byte
	tolerance int64 // seconds
	now       func() time.Time
}

// NewVerifier validates cfg and returns a Verifier.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("webhook: verifier: no secret")
	}
	if cfg.Tolerance < 0 {
		return nil, fmt.Errorf("webhook: verifier: Tolerance %s is negative", cfg.Tolerance)
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = DefaultTolerance
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{tolerance: int64(cfg.Tolerance / time.Second), now: cfg.Now}
	for i, sec := range cfg.Secrets {
		key, err := parseSecret(sec)
		if err != nil {
			return nil, fmt.Errorf("webhook: verifier: Secrets[%d]: %w", i, err)
		}
		v.keys = append(v.keys, key)
	}
	return v, nil
}

// Verify checks a request: header holds its headers and body its exact
// bytes. It returns nil when the Webhook-Timestamp is within the tolerance
// of the verifier's clock and one of the signatures in Webhook-Signature
// was made with one of its secrets over Webhook-Id, Webhook-Timestamp and
// body; otherwise an error wrapping [ErrSignature] (and [ErrTimestamp] for
// a timestamp out of tolerance). The checks are those of the official
// Standard Webhooks libraries. Deduplicate on Webhook-Id: a redelivery
// carries the same id with a new timestamp and signature.
func (v *Verifier) Verify(header http.Header, body []byte) error {
	id, tsText, sigs := header.Get(HeaderID), header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return fmt.Errorf("%w: missing %s, %s or %s header", ErrSignature, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not unix seconds", ErrSignature, HeaderTimestamp)
	}
	now := v.now().Unix()
	switch {
	case now-ts > v.tolerance:
		return fmt.Errorf("%w: %w: %s is %ds old", ErrSignature, ErrTimestamp, HeaderTimestamp, now-ts)
	case ts-now > v.tolerance:
		return fmt.Errorf("%w: %w: %s is %ds in the future", ErrSignature, ErrTimestamp, HeaderTimestamp, ts-now)
	}
	for _, key := range v.keys {
		want := []byte(sign(key, id, ts, body))
		for _, sig := range strings.Split(sigs, " ") {
			if hmac.Equal([]byte(sig), want) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no matching signature", ErrSignature)
}

// Verify checks the Standard Webhooks signature of a request received from
// a [Sink] configured with secret, with a Webhook-Timestamp within
// [DefaultTolerance] of now: header holds the request's headers and body
// its exact bytes. It returns nil or an error wrapping [ErrSignature]. Use
// a [Verifier] for several secrets, another tolerance or another clock.
func Verify(secret string, header http.Header, body []byte) error {
	key, err := parseSecret(secret)
	if err != nil {
		return fmt.Errorf("webhook: verify: %w", err)
	}
	v := &Verifier{keys: [][]byte{key}, tolerance: int64(DefaultTolerance / time.Second), now: time.Now}
	return v.Verify(header, body)
}
