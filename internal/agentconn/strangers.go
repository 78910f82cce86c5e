package agentconn

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// StrangerCredentials are the transport credentials of callers an agent
// serving TLS with the CA in caFile must refuse, by name: a TLS client
// that trusts the agent but shows no certificate, one that shows a
// certificate of another CA (made in dir), and plain TCP. Tests of the
// agent's listeners call with each.
func StrangerCredentials(caFile, dir string) (map[string]credentials.TransportCredentials, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	ca := x509.NewCertPool()
	if !ca.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	if err := GenerateCerts(dir, nil, []string{"ctl"}, time.Hour); err != nil {
		return nil, fmt.Errorf("generate another CA: %w", err)
	}
	other, err := tls.LoadX509KeyPair(filepath.Join(dir, "ctl.pem"), filepath.Join(dir, "ctl-key.pem"))
	if err != nil {
		return nil, err
	}
	return map[string]credentials.TransportCredentials{
		"no client certificate": credentials.NewTLS(&tls.Config{RootCAs: ca, MinVersion: tls.VersionTLS13}),
		"certificate from another CA": credentials.NewTLS(&tls.Config{
			RootCAs: ca, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{other},
		}),
		"plain TCP": insecure.NewCredentials(),
	}, nil
}
