package pgtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Names of the server's certificate and key in its data directory.
const (
	tlsCertName = "walrelay-server.crt"
	tlsKeyName  = "walrelay-server.key"
)

var errTLSFiles = errors.New("pgtest: TLS needs both Options.TLSCertFile and Options.TLSKeyFile")

// installTLS copies the certificate and key into the data directory,
// readable only by the server's user as Postgres demands of a key, and turns
// TLS on.
func (c *Cluster) installTLS(certFile, keyFile string) error {
	if err := c.copyTLS(certFile, keyFile); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(c.dir, "data", "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	_, err = fmt.Fprintf(f, "ssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\n", tlsCertName, tlsKeyName)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

func (c *Cluster) copyTLS(certFile, keyFile string) error {
	for src, name := range map[string]string{certFile: tlsCertName, keyFile: tlsKeyName} {
		b, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("pgtest: TLS: %w", err)
		}
		// Write a new file and rename it over the old one, so a server
		// reading it at that moment sees one whole version.
		dst := filepath.Join(c.dir, "data", name)
		tmp := dst + ".new"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return fmt.Errorf("pgtest: TLS: %w", err)
		}
		if c.cred != nil {
			if err := os.Chown(tmp, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return fmt.Errorf("pgtest: TLS: %w", err)
			}
		}
		if err := os.Rename(tmp, dst); err != nil {
			return fmt.Errorf("pgtest: TLS: %w", err)
		}
	}
	return nil
}

// ReloadTLS replaces the server's certificate and key (PEM files) while it
// runs, as an operator rotating them would: new connections present the
// new certificate; open ones keep theirs. It returns once a new connection
// is served the new certificate. The cluster must have been started with
// TLS on (Options.TLSCertFile and TLSKeyFile).
func (c *Cluster) ReloadTLS(ctx context.Context, certFile, keyFile string) error {
	want, err := os.ReadFile(certFile)
	if err != nil {
		return fmt.Errorf("pgtest: TLS: %w", err)
	}
	block, _ := pem.Decode(want)
	if block == nil {
		return fmt.Errorf("pgtest: TLS: %s holds no PEM certificate", certFile)
	}
	if err := c.copyTLS(certFile, keyFile); err != nil {
		return err
	}
	if err := ExecURL(ctx, c.URL, "select pg_reload_conf()"); err != nil {
		return fmt.Errorf("pgtest: reload: %w", err)
	}
	// The postmaster reloads on SIGHUP, a moment later: wait until a new
	// connection is handed the new certificate.
	url := strings.Replace(c.URL, "sslmode=disable", "sslmode=require", 1)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := c.servedCert(ctx, url)
		if err == nil && bytes.Equal(got, block.Bytes) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("pgtest: the server did not take the new certificate (last error: %v)\n%s", err, c.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// servedCert returns the DER certificate a new TLS connection is served.
func (c *Cluster) servedCert(ctx context.Context, url string) ([]byte, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	tc, ok := conn.PgConn().Conn().(*tls.Conn)
	if !ok {
		return nil, fmt.Errorf("connection is not TLS")
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("no peer certificate")
	}
	return certs[0].Raw, nil
}
