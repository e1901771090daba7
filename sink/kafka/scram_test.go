package kafka

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"hash"
	"strconv"
	"strings"
	"testing"
)

// scramServer scripts the server side of one SCRAM exchange (RFC 5802):
// it answers client-first-message with a server-first-message whose
// iteration count and extra attributes the test chooses, and checks the
// client's proof.
type scramServer struct {
	t          *testing.T
	hash       func() hash.Hash
	password   string
	iterations int
	prefix     string // put before r= (where a mandatory extension goes)

	salt            []byte
	clientFirstBare string
	serverFirst     string
}

func (s *scramServer) first(clientFirst string) string {
	s.t.Helper()
	bare, ok := strings.CutPrefix(clientFirst, "n,,")
	if !ok {
		s.t.Fatalf("client-first-message %q lacks the gs2 header n,,", clientFirst)
	}
	s.clientFirstBare = bare
	s.salt = []byte("walrelay-scram-salt")
	s.serverFirst = s.prefix + "r=" + scramAttributes(bare)["r"] + "server-nonce" +
		",s=" + base64.StdEncoding.EncodeToString(s.salt) + ",i=" + strconv.Itoa(s.iterations)
	return s.serverFirst
}

// final checks client-final-message and returns server-final-message.
func (s *scramServer) final(clientFinal string) string {
	s.t.Helper()
	withoutProof, proof64, ok := strings.Cut(clientFinal, ",p=")
	if !ok {
		s.t.Fatalf("client-final-message %q has no proof", clientFinal)
	}
	salted, err := pbkdf2.Key(s.hash, s.password, s.salt, s.iterations, s.hash().Size())
	if err != nil {
		s.t.Fatal(err)
	}
	authMessage := s.clientFirstBare + "," + s.serverFirst + "," + withoutProof
	clientKey := scramHMAC(s.hash, salted, "Client Key")
	h := s.hash()
	h.Write(clientKey)
	sig := scramHMAC(s.hash, h.Sum(nil), authMessage)
	proof, err := base64.StdEncoding.DecodeString(proof64)
	if err != nil || len(proof) != len(sig) {
		s.t.Fatalf("bad proof %q", proof64)
	}
	for i := range proof {
		proof[i] ^= sig[i]
	}
	if !hmac.Equal(proof, clientKey) {
		return "e=invalid-proof"
	}
	return "v=" + base64.StdEncoding.EncodeToString(scramHMAC(s.hash, scramHMAC(s.hash, salted, "Server Key"), authMessage))
}

// exchange runs a whole conversation of m against srv and returns the
// client's first error.
func exchange(t *testing.T, m *scramMechanism, srv *scramServer) error {
	t.Helper()
	conv, first, err := m.Start(t.Context())
	if err != nil {
		return err
	}
	done, clientFinal, err := conv.Next(t.Context(), []byte(srv.first(string(first))))
	if err != nil {
		return err
	}
	if done {
		t.Fatal("conversation ended after server-first-message")
	}
	done, _, err = conv.Next(t.Context(), []byte(srv.final(string(clientFinal))))
	if err == nil && !done {
		t.Fatal("conversation did not end after server-final-message")
	}
	return err
}

func TestScramServerFirstMessage(t *testing.T) {
	mechs := []struct {
		name string
		hash func() hash.Hash
	}{{SASLScramSHA256, sha256.New}, {SASLScramSHA512, sha512.New}}
	for _, mech := range mechs {
		t.Run(mech.name, func(t *testing.T) {
			m := &scramMechanism{name: mech.name, hash: mech.hash, username: "walrelay", password: "s3cret"}
			for _, tc := range []struct {
				name       string
				iterations int
				prefix     string
				want       error // nil: authentication succeeds
			}{
				{"4096 iterations", 4096, "", nil},
				{"8192 iterations", 8192, "", nil},
				{"4095 iterations", 4095, "", errScramIterations},
				{"1 iteration", 1, "", errScramIterations},
				{"mandatory extension", 4096, "m=future-ext,", errScramExtension},
			} {
				t.Run(tc.name, func(t *testing.T) {
					srv := &scramServer{t: t, hash: mech.hash, password: "s3cret", iterations: tc.iterations, prefix: tc.prefix}
					err := exchange(t, m, srv)
					if tc.want == nil {
						if err != nil {
							t.Fatalf("exchange: %v", err)
						}
						return
					}
					if !errors.Is(err, tc.want) {
						t.Fatalf("exchange = %v, want %v", err, tc.want)
					}
					t.Logf("refused: %v", err)
				})
			}
		})
	}
}

func TestScramWrongPasswordFails(t *testing.T) {
	m := &scramMechanism{name: SASLScramSHA256, hash: sha256.New, username: "walrelay", password: "wrong"}
	srv := &scramServer{t: t, hash: sha256.New, password: "s3cret", iterations: 4096}
	if err := exchange(t, m, srv); err == nil {
		t.Fatal("a wrong password authenticated")
	}
}
