// Package mtls builds the mutual-TLS configurations of agents and
// controllers from PEM files. It depends on nothing of lnst-go, so that
// the agent (a VM guest serving on a management NIC) and agentconn both
// use it.
package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// ServerTLS returns the agent's TLS configuration: TLS 1.3, the agent's
// certificate from certFile and keyFile, and only clients presenting a
// certificate that the CA in caFile signed are accepted.
func ServerTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg, pool, err := base(caFile, certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	return cfg, nil
}

// ClientTLS returns a controller's TLS configuration: TLS 1.3, the client
// certificate from certFile and keyFile, and agents are trusted only with a
// certificate that the CA in caFile signed for the host dialed (an IP SAN
// for an IP address, a DNS SAN for a name). The server name is left empty:
// gRPC takes it from the host of the dialed address.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg, pool, err := base(caFile, certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// base is what both sides' configurations share: TLS 1.3 and the
// certificate from certFile and keyFile; with it the CAs in caFile.
func base(caFile, certFile, keyFile string) (*tls.Config, *x509.CertPool, error) {
	pool, err := loadCA(caFile)
	if err != nil {
		return nil, nil, err
	}
	cert, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}, pool, nil
}

// loadCA reads the CA certificates in file.
func loadCA(file string) (*x509.CertPool, error) {
	certs, _, err := ReadCerts("CA", file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// LoadKeyPair reads a certificate and its private key.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certs, certPEM, err := ReadCerts("certificate", certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	if leaf := certs[0]; now.After(leaf.NotAfter) {
		return tls.Certificate{}, fmt.Errorf("certificate file %s: expired on %s", certFile, leaf.NotAfter.Format(time.DateOnly))
	} else if now.Before(leaf.NotBefore) {
		return tls.Certificate{}, fmt.Errorf("certificate file %s: not valid before %s", certFile, leaf.NotBefore.Format(time.RFC3339))
	}
	keyPEM, err := readPEMFile("key", keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	block, _ := pem.Decode(keyPEM)
	if block.Type == "CERTIFICATE" {
		return tls.Certificate{}, fmt.Errorf("key file %s: holds a certificate, not a private key", keyFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key file %s: does not match certificate file %s: %w", keyFile, certFile, err)
	}
	return pair, nil
}

// ReadCerts reads the PEM certificates in file and returns them with the
// file's content; what names the file's role in errors.
func ReadCerts(what, file string) ([]*x509.Certificate, []byte, error) {
	data, err := readPEMFile(what, file)
	if err != nil {
		return nil, nil, err
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("%s file %s: holds a PEM %q block, not a certificate", what, file, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%s file %s: not a valid certificate: %w", what, file, err)
		}
		certs = append(certs, c)
	}
	return certs, data, nil
}

// readPEMFile reads file and checks it holds PEM data.
func readPEMFile(what, file string) ([]byte, error) {
	if file == "" {
		return nil, fmt.Errorf("no %s file given", what)
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s file %s: missing", what, file)
	}
	if err != nil {
		return nil, fmt.Errorf("%s file %s: %w", what, file, err)
	}
	if block, _ := pem.Decode(data); block == nil {
		return nil, fmt.Errorf("%s file %s: not PEM data", what, file)
	}
	return data, nil
}
