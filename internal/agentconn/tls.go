package agentconn

import (
	"crypto/tls"

	"github.com/lnst-go/lnst/internal/mtls"
)

// ServerTLS returns the agent's TLS configuration: TLS 1.3, the agent's
// certificate from certFile and keyFile, and only clients presenting a
// certificate that the CA in caFile signed are accepted (mtls.ServerTLS).
func ServerTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	return mtls.ServerTLS(caFile, certFile, keyFile)
}

// ClientTLS returns a controller's TLS configuration: TLS 1.3, the client
// certificate from certFile and keyFile, and agents are trusted only with
// a certificate that the CA in caFile signed for the host dialed
// (mtls.ClientTLS).
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	return mtls.ClientTLS(caFile, certFile, keyFile)
}

// loadKeyPair and readCerts are mtls's, for certs.go.
var (
	loadKeyPair = mtls.LoadKeyPair
	readCerts   = mtls.ReadCerts
)
