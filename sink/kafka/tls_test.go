package kafka_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/walrelay/walrelay/internal/tlstest"
	"github.com/walrelay/walrelay/sink"
	"github.com/walrelay/walrelay/sink/kafka"
)

// tlsCluster starts a broker that speaks only TLS, with a certificate for
// 127.0.0.1 from a CA made here, and returns the CA.
func tlsCluster(t *testing.T, opts ...kfake.Opt) (*kfake.Cluster, *tlstest.CA) {
	t.Helper()
	ca := tlstest.NewCA(t, "walrelay test CA")
	srv := ca.Server(t, "127.0.0.1", "localhost")
	c := newCluster(t, append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{srv.TLS}}))...)
	return c, ca
}

// consumeTLS reads n records from the start of topic with franz-go over
// TLS (and SASL when opt is given), failing after a generous bound.
func consumeTLS(t *testing.T, brokers []string, ca *tlstest.CA, n int, topic string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool()}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records: %v", len(recs), n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func TestTLS(t *testing.T) {
	c, ca := tlsCluster(t, kfake.SeedTopics(1, "sequin.public.t"))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	t.Run("verified", func(t *testing.T) {
		s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), TLS: &tls.Config{RootCAs: ca.Pool()}})
		if err := s.Write(ctx, change("t", 1), change("t", 2)); err != nil {
			t.Fatalf("Write over TLS: %v", err)
		}
		recs := consumeTLS(t, c.ListenAddrs(), ca, 2, "sequin.public.t")
		if got := string(recs[0].Value) + "|" + string(recs[1].Value); got != "insert public.t 1|insert public.t 2" {
			t.Fatalf("records = %s", got)
		}
	})

	// A client that does not trust the broker's certificate, or expects
	// another name, fails at once with the reason, marked permanent: no
	// retry can fix it.
	for _, tc := range []struct {
		name  string
		tls   *tls.Config
		check func(error) bool
	}{
		{"wrong CA", &tls.Config{RootCAs: tlstest.NewCA(t, "some other CA").Pool()},
			func(err error) bool { var ua x509.UnknownAuthorityError; return errors.As(err, &ua) }},
		{"wrong host", &tls.Config{RootCAs: ca.Pool(), ServerName: "kafka.example.test"},
			func(err error) bool { var he x509.HostnameError; return errors.As(err, &he) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), TLS: tc.tls})
			err := s.Write(ctx, change("t", 3))
			if err == nil {
				t.Fatal("Write succeeded")
			}
			var ve *tls.CertificateVerificationError
			if !errors.As(err, &ve) || !tc.check(err) {
				t.Fatalf("Write = %v (%T), want a certificate verification error saying why", err, err)
			}
			if !sink.IsPermanent(err) {
				t.Errorf("Write = %v, not marked permanent", err)
			}
			t.Logf("as expected: %v", err)
		})
	}

	t.Run("plain text client", func(t *testing.T) {
		s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), MaxAttempts: 1, WriteTimeout: 2 * time.Second, DialTimeout: 2 * time.Second})
		if err := s.Write(ctx, change("t", 4)); err == nil {
			t.Fatal("a client without TLS wrote to a TLS-only broker")
		}
	})
}

func TestSASLOverTLS(t *testing.T) {
	const user, pass = "walrelay", "s3cret,=over-tls"
	for _, mech := range []string{kafka.SASLPlain, kafka.SASLScramSHA256, kafka.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			c, ca := tlsCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, user, pass),
				kfake.SeedTopics(1, "sequin.public.t"))
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cfg := func(password string) kafka.Config {
				return kafka.Config{Brokers: c.ListenAddrs(), MaxAttempts: 1,
					TLS:  &tls.Config{RootCAs: ca.Pool()},
					SASL: &kafka.SASL{Mechanism: mech, Username: user, Password: password}}
			}
			if err := newSink(t, cfg(pass)).Write(ctx, change("t", 1)); err != nil {
				t.Fatalf("Write with the right password: %v", err)
			}
			err := newSink(t, cfg("wrong")).Write(ctx, change("t", 2))
			if err == nil {
				t.Fatal("Write with a wrong password succeeded")
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("the error shows the password: %v", err)
			}
			t.Logf("wrong password: %v", err)

			// The record written is there, read by another client with the
			// same credentials, and only that one.
			var auth kgo.Opt
			switch mech {
			case kafka.SASLPlain:
				auth = kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism())
			case kafka.SASLScramSHA256:
				auth = kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism())
			default:
				auth = kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())
			}
			recs := consumeTLS(t, c.ListenAddrs(), ca, 1, "sequin.public.t", auth)
			if got := string(recs[0].Value); got != "insert public.t 1" {
				t.Fatalf("record = %q", got)
			}
		})
	}
}

// TestSASLRefusedIsPermanent scripts a broker's SASL answers (over TLS):
// rejected credentials, as a real broker answers them (kfake closes the
// connection instead), and SCRAM parameters this client refuses. Each
// fails the Write at once, marked permanent, since no retry fixes it.
func TestSASLRefusedIsPermanent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(clientFirst string, resp *kmsg.SASLAuthenticateResponse)
		want   error
	}{
		{"credentials rejected", func(_ string, resp *kmsg.SASLAuthenticateResponse) {
			resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
			msg := "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
			resp.ErrorMessage = &msg
		}, kafkago.SASLAuthenticationFailed},
		{"1000 iterations", func(clientFirst string, resp *kmsg.SASLAuthenticateResponse) {
			resp.SASLAuthBytes = []byte(serverFirst(t, clientFirst, "", 1000))
		}, kafka.ErrScramIterations},
		{"mandatory extension", func(clientFirst string, resp *kmsg.SASLAuthenticateResponse) {
			resp.SASLAuthBytes = []byte(serverFirst(t, clientFirst, "m=ext,", 4096))
		}, kafka.ErrScramExtension},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ca := tlsCluster(t, kfake.EnableSASL(), kfake.Superuser(kafka.SASLScramSHA256, "walrelay", "pw"),
				kfake.SeedTopics(1, "sequin.public.t"))
			c.ControlKey(int16(kmsg.SASLAuthenticate), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				req := kreq.(*kmsg.SASLAuthenticateRequest)
				resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
				tc.answer(string(req.SASLAuthBytes), resp)
				return resp, nil, true
			})
			s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), TLS: &tls.Config{RootCAs: ca.Pool()},
				SASL: &kafka.SASL{Mechanism: kafka.SASLScramSHA256, Username: "walrelay", Password: "pw"}})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			err := s.Write(ctx, change("t", 1))
			if !errors.Is(err, tc.want) || !sink.IsPermanent(err) {
				t.Fatalf("Write = %v, want a permanent %v", err, tc.want)
			}
			t.Logf("as expected: %v", err)
		})
	}
}

// serverFirst is a SCRAM server-first-message answering clientFirst
// ("n,,n=user,r=nonce") with the given prefix and iteration count.
func serverFirst(t *testing.T, clientFirst, prefix string, iterations int) string {
	t.Helper()
	_, nonce, ok := strings.Cut(clientFirst, ",r=")
	if !ok {
		t.Fatalf("client-first-message %q has no nonce", clientFirst)
	}
	return fmt.Sprintf("%sr=%sserver,s=%s,i=%d", prefix, nonce, base64.StdEncoding.EncodeToString([]byte("salt-salt-salt")), iterations)
}
