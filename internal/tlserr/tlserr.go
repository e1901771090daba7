// Package tlserr classifies TLS errors for the packages that decide what
// to retry (cdc, sink/kafka).
package tlserr

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// VerifyFailed reports whether err is a failure to verify the peer's
// certificate: signed by an unknown authority, issued for another host
// name, expired or otherwise invalid. The certificate or the client's
// settings must change first, so retrying cannot help.
func VerifyFailed(err error) bool {
	var ve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	// A tls.Config with its own VerifyPeerCertificate (as pgx's
	// sslmode=verify-ca) returns x509's error unwrapped.
	return errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}
