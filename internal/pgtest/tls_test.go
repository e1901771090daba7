package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/walrelay/walrelay/internal/tlstest"
)

func TestTLS(t *testing.T) {
	URL(t) // skip, or fail, as without Postgres
	ctx := t.Context()
	first, second := tlstest.NewCA(t, "first CA"), tlstest.NewCA(t, "second CA")
	cert, key := first.Server(t, "127.0.0.1").WriteFiles(t)
	c := NewCluster(t, Options{TLSCertFile: cert, TLSKeyFile: key})

	// verify connects with sslmode=verify-full trusting ca, and reports
	// whether the session uses TLS.
	verify := func(ca *tlstest.CA) (bool, error) {
		q := url.Values{"sslmode": {"verify-full"}, "sslrootcert": {ca.WriteFile(t)}}
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?%s", c.Port, q.Encode()))
		if err != nil {
			return false, err
		}
		defer conn.Close(context.Background())
		var ssl bool
		err = conn.QueryRow(ctx, "select ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&ssl)
		return ssl, err
	}
	if ssl, err := verify(first); err != nil || !ssl {
		t.Fatalf("verify-full with the server's CA: ssl=%v, %v", ssl, err)
	}
	if _, err := verify(second); err == nil {
		t.Fatal("verify-full trusting another CA connected")
	}

	// Rotated: the other way round.
	cert, key = second.Server(t, "127.0.0.1").WriteFiles(t)
	if err := c.ReloadTLS(ctx, cert, key); err != nil {
		t.Fatal(err)
	}
	if ssl, err := verify(second); err != nil || !ssl {
		t.Fatalf("verify-full with the new CA after ReloadTLS: ssl=%v, %v", ssl, err)
	}
	if _, err := verify(first); err == nil {
		t.Fatal("verify-full trusting the old CA connected after ReloadTLS")
	}
	// The cluster's own URL still connects without TLS.
	Exec(t, c.URL, "select 1")

	if _, err := Start(ctx, Options{TLSCertFile: cert}); !errors.Is(err, errTLSFiles) {
		t.Errorf("Start with a certificate and no key = %v, want %v", err, errTLSFiles)
	}
}
