package agentconn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files GenerateCerts writes in its directory, besides <name>.pem and
// <name>-key.pem for each host and client.
const (
	CAFile    = "ca.pem"
	CAKeyFile = "ca-key.pem"
)

// GenerateCerts writes the certificates of a pool into dir: a CA (ca.pem,
// ca-key.pem), a server certificate for each of hosts (<host>.pem,
// <host>-key.pem) and a client certificate for each of clients
// (<client>.pem, <client>-key.pem), valid for validity from now. A host
// that parses as an IP address gets it as an IP SAN, any other host a DNS
// SAN; nothing else is added, so "localhost" or "127.0.0.1" are in a
// certificate only when asked for.
//
// Keys are ECDSA P-256, written mode 0600; a dir GenerateCerts makes is
// mode 0700. When dir holds a CA already it
// is reused, so hosts can be added to a pool; certificates then end no
// later than the CA does.
func GenerateCerts(dir string, hosts []string, clients []string, validity time.Duration) error {
	if validity <= 0 {
		return fmt.Errorf("generate certificates: validity %s is not positive", validity)
	}
	if err := checkNames(hosts, clients); err != nil {
		return fmt.Errorf("generate certificates: %w", err)
	}
	// The directory holds the CA's key: a new one is its owner's only
	// (parents made on the way get the usual 0755). An existing one keeps
	// its mode.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("generate certificates: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("generate certificates: %w", err)
	}
	ca, caKey, err := loadOrMakeCA(dir, validity)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		tmpl := leafTemplate(h, x509.ExtKeyUsageServerAuth, validity, ca)
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		} else {
			tmpl.DNSNames = []string{h}
		}
		if err := writeLeaf(dir, h, tmpl, ca, caKey); err != nil {
			return err
		}
	}
	for _, c := range clients {
		tmpl := leafTemplate(c, x509.ExtKeyUsageClientAuth, validity, ca)
		if err := writeLeaf(dir, c, tmpl, ca, caKey); err != nil {
			return err
		}
	}
	return nil
}

// CheckCertName checks that name, a host or client whose certificate
// and key are <name>.pem and <name>-key.pem in a certificates directory,
// names files of its own: not the CA's, and not a path.
func CheckCertName(name string) error { return checkNames([]string{name}, nil) }

// checkNames checks host and client names are usable as file names and
// distinct.
func checkNames(hosts, clients []string) error {
	seen := map[string]bool{}
	for _, n := range append(append([]string{}, hosts...), clients...) {
		switch {
		case n == "" || n == "." || n == "..":
			return fmt.Errorf("bad name %q", n)
		case strings.ContainsAny(n, "/\x00"):
			return fmt.Errorf("name %q: contains a slash", n)
		case n == "ca":
			return errors.New(`name "ca" is the CA's`)
		case seen[n]:
			return fmt.Errorf("name %q: given twice", n)
		}
		seen[n] = true
	}
	return nil
}

// CAEndsBefore reports when the CA already in dir ends, and whether that
// is before validity from now: certificates GenerateCerts makes with it
// then end with the CA, sooner than asked, and callers say so (see
// lnst-agent certs and install). No CA in dir gives before false.
func CAEndsBefore(dir string, validity time.Duration) (end time.Time, before bool, err error) {
	certFile := filepath.Join(dir, CAFile)
	if _, err := os.Stat(certFile); err != nil {
		return time.Time{}, false, nil
	}
	pair, err := os.ReadFile(certFile)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read CA: %w", err)
	}
	block, _ := pem.Decode(pair)
	if block == nil {
		return time.Time{}, false, fmt.Errorf("read CA: %s holds no PEM certificate", certFile)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read CA %s: %w", certFile, err)
	}
	return ca.NotAfter, ca.NotAfter.Before(time.Now().Add(validity)), nil
}

// loadOrMakeCA reads the CA in dir, or makes one if dir has none.
func loadOrMakeCA(dir string, validity time.Duration) (*x509.Certificate, crypto.Signer, error) {
	certFile, keyFile := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	switch {
	case certErr == nil && keyErr == nil:
		return loadCAKeyPair(certFile, keyFile)
	case certErr == nil || keyErr == nil:
		return nil, nil, fmt.Errorf("generate certificates: %s holds only one of %s and %s", dir, CAFile, CAKeyFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "lnst-go agent CA", Organization: []string{"lnst-go"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(dir, "ca", der, key); err != nil {
		return nil, nil, err
	}
	return ca, key, nil
}

// loadCAKeyPair reads an existing CA and its key.
func loadCAKeyPair(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	pair, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("reuse CA: %w", err)
	}
	if !pair.Leaf.IsCA {
		return nil, nil, fmt.Errorf("reuse CA: certificate file %s: not a CA certificate", certFile)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("reuse CA: key file %s: key cannot sign", keyFile)
	}
	return pair.Leaf, signer, nil
}

// leafTemplate is a server or client certificate for name, ending no later
// than ca.
func leafTemplate(name string, usage x509.ExtKeyUsage, validity time.Duration, ca *x509.Certificate) *x509.Certificate {
	now := time.Now()
	end := now.Add(validity)
	if end.After(ca.NotAfter) {
		end = ca.NotAfter
	}
	return &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"lnst-go"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     end,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
}

// writeLeaf makes a key, signs tmpl with the CA and writes both.
func writeLeaf(dir, name string, tmpl, ca *x509.Certificate, caKey crypto.Signer) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return fmt.Errorf("generate certificate for %q: %w", name, err)
	}
	return writePair(dir, name, der, key)
}

// writePair writes <name>.pem and <name>-key.pem.
func writePair(dir, name string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, name+"-key.pem"), "PRIVATE KEY", keyDER, 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, name+".pem"), "CERTIFICATE", der, 0o644)
}

// writeFile writes one PEM block to path through a temporary file, so a
// reader never sees half a file and a key is never readable by others.
func writeFile(path, blockType string, der []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	err = pem.Encode(f, &pem.Block{Type: blockType, Bytes: der})
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// serial is a random certificate serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}
