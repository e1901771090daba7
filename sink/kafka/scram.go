package kafka

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go/sasl"
)

// scramMechanism is a SASL/SCRAM client (RFC 5802, RFC 7677) for Kafka.
// It is safe for concurrent use; each connection gets its own conversation.
type scramMechanism struct {
	name     string // "SCRAM-SHA-256" or "SCRAM-SHA-512"
	hash     func() hash.Hash
	username string
	password string
}

func (m *scramMechanism) Name() string { return m.name }

// Start sends client-first-message.
func (m *scramMechanism) Start(context.Context) (sasl.StateMachine, []byte, error) {
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, nil, fmt.Errorf("scram: nonce: %w", err)
	}
	c := &scramConversation{m: m, clientNonce: base64.RawStdEncoding.EncodeToString(raw[:])}
	c.clientFirstBare = "n=" + scramEscape(m.username) + ",r=" + c.clientNonce
	return c, []byte("n,," + c.clientFirstBare), nil
}

// scramConversation is one authentication exchange.
type scramConversation struct {
	m               *scramMechanism
	clientNonce     string
	clientFirstBare string
	serverSignature []byte
	step            int
}

// Next answers server-first-message with client-final-message, then checks
// the server's signature in server-final-message.
func (c *scramConversation) Next(_ context.Context, challenge []byte) (bool, []byte, error) {
	c.step++
	switch c.step {
	case 1:
		resp, err := c.clientFinal(string(challenge))
		return false, resp, err
	case 2:
		return true, nil, c.verifyServerFinal(string(challenge))
	default:
		return false, nil, errors.New("scram: unexpected extra challenge")
	}
}

// Reasons a server-first-message is refused.
var (
	// errScramIterations: RFC 7677 (section 4) asks for at least 4096
	// iterations; fewer make an eavesdropped exchange cheap to brute-force.
	errScramIterations = errors.New("scram: iteration count below the minimum")
	// errScramExtension: RFC 5802 (section 5.1) reserves "m=" for mandatory
	// extensions, and a client that does not know one must fail.
	errScramExtension = errors.New("scram: server requires a mandatory extension (m=) this client does not support")
)

// minScramIterations is RFC 7677's minimum iteration count.
const minScramIterations = 4096

func (c *scramConversation) clientFinal(serverFirst string) ([]byte, error) {
	attrs := scramAttributes(serverFirst)
	nonce, salt64, iters := attrs["r"], attrs["s"], attrs["i"]
	if e, ok := attrs["e"]; ok {
		return nil, fmt.Errorf("scram: server error %q", e)
	}
	if _, ok := attrs["m"]; ok {
		return nil, errScramExtension
	}
	if !strings.HasPrefix(nonce, c.clientNonce) || len(nonce) == len(c.clientNonce) {
		return nil, errors.New("scram: server nonce does not extend the client nonce")
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil || len(salt) == 0 {
		return nil, errors.New("scram: bad salt in server-first-message")
	}
	n, err := strconv.Atoi(iters)
	if err != nil || n < 1 || n > 1<<20 {
		return nil, fmt.Errorf("scram: bad iteration count %q", iters)
	}
	if n < minScramIterations {
		return nil, fmt.Errorf("%w: the server asks for %d, RFC 7677 requires at least %d", errScramIterations, n, minScramIterations)
	}
	salted, err := pbkdf2.Key(c.m.hash, c.m.password, salt, n, c.m.hash().Size())
	if err != nil {
		return nil, fmt.Errorf("scram: %w", err)
	}
	clientKey := scramHMAC(c.m.hash, salted, "Client Key")
	h := c.m.hash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)

	withoutProof := "c=biws,r=" + nonce // biws = base64("n,,")
	authMessage := c.clientFirstBare + "," + serverFirst + "," + withoutProof
	proof := scramHMAC(c.m.hash, storedKey, authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	c.serverSignature = scramHMAC(c.m.hash, scramHMAC(c.m.hash, salted, "Server Key"), authMessage)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

func (c *scramConversation) verifyServerFinal(serverFinal string) error {
	attrs := scramAttributes(serverFinal)
	if e, ok := attrs["e"]; ok {
		return fmt.Errorf("scram: server rejected authentication: %s", e)
	}
	sig, err := base64.StdEncoding.DecodeString(attrs["v"])
	if err != nil || !hmac.Equal(sig, c.serverSignature) {
		return errors.New("scram: server signature does not verify")
	}
	return nil
}

func scramHMAC(h func() hash.Hash, key []byte, msg string) []byte {
	mac := hmac.New(h, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}

// scramAttributes splits "a=1,b=2" into a map.
func scramAttributes(s string) map[string]string {
	attrs := make(map[string]string)
	for part := range strings.SplitSeq(s, ",") {
		if k, v, ok := strings.Cut(part, "="); ok && len(k) == 1 {
			attrs[k] = v
		}
	}
	return attrs
}

// scramEscape escapes a username as RFC 5802's saslname requires.
func scramEscape(s string) string {
	if !strings.ContainsAny(s, ",=") {
		return s
	}
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case ',':
			b.WriteString("=2C")
		case '=':
			b.WriteString("=3D")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

var _ sasl.Mechanism = (*scramMechanism)(nil)
