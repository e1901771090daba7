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
)

// The Standard Webhooks headers a signed request carries.
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
)

// ErrSignature is returned by [Verify] when a request is not signed, or not
// signed with the secret.
var ErrSignature = errors.New("webhook: signature does not verify")

// sign returns the Standard Webhooks signature of body: "v1," followed by
// the base64 of HMAC-SHA256(key, id + "." + timestamp + "." + body).
func sign(key []byte, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify checks the Standard Webhooks signature of a request received from
// a [Sink] configured with the same secret ("whsec_<base64>" or the raw
// key): header holds the request's headers and body its exact bytes. It
// returns nil when one of the signatures listed in the Webhook-Signature
// header matches, and an error wrapping [ErrSignature] otherwise.
//
// Verify does not judge the Webhook-Timestamp's age: a retried request
// carries the timestamp of its first attempt, so that it stays
// byte-identical. Receivers that reject old timestamps should allow for the
// sink's retry time.
func Verify(secret string, header http.Header, body []byte) error {
	key, err := parseSecret(secret)
	if err != nil {
		return fmt.Errorf("webhook: verify: %w", err)
	}
	id, ts, sigs := header.Get(HeaderID), header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("%w: missing %s, %s or %s header", ErrSignature, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		return fmt.Errorf("%w: %s is not unix seconds", ErrSignature, HeaderTimestamp)
	}
	want := sign(key, id, ts, body)
	for _, sig := range strings.Fields(sigs) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return ErrSignature
}
