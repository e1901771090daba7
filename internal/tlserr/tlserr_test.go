package tlserr

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
)

func TestVerifyFailed(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"verification", fmt.Errorf("dial: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), true},
		{"unknown authority", fmt.Errorf("x: %w", x509.UnknownAuthorityError{}), true},
		{"host name", errors.Join(io.EOF, x509.HostnameError{Host: "h"}), true},
		{"expired", fmt.Errorf("x: %w", x509.CertificateInvalidError{Reason: x509.Expired}), true},
		{"nil", nil, false},
		{"network", &net.OpError{Op: "dial", Err: io.ErrUnexpectedEOF}, false},
		{"handshake alert", fmt.Errorf("x: %w", tls.AlertError(40)), false},
	} {
		if got := VerifyFailed(tc.err); got != tc.want {
			t.Errorf("%s: VerifyFailed(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
