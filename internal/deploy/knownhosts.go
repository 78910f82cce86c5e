package deploy

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeyChecker checks host keys against a known_hosts file. Its err
// keeps the reason a key was refused, since the ssh package wraps the
// callback's error in one of its own.
type hostKeyChecker struct {
	file      string
	acceptNew bool
	log       io.Writer
	check     ssh.HostKeyCallback
	err       error
}

// newHostKeyChecker reads file; a missing file is an empty one when new
// keys may be accepted, and an error otherwise.
func newHostKeyChecker(file string, acceptNew bool, log io.Writer) (*hostKeyChecker, error) {
	if log == nil {
		log = io.Discard
	}
	hk := &hostKeyChecker{file: file, acceptNew: acceptNew, log: log}
	_, err := os.Stat(file)
	switch {
	case errors.Is(err, os.ErrNotExist) && acceptNew:
		hk.check = func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }
		return hk, nil
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("known_hosts file %s: missing: give --known-hosts FILE, or --accept-new-host-key to create it with the host's key", file)
	case err != nil:
		return nil, fmt.Errorf("known_hosts file %s: %w", file, err)
	}
	if hk.check, err = knownhosts.New(file); err != nil {
		return nil, fmt.Errorf("known_hosts file %s: %w", file, err)
	}
	return hk, nil
}

// callback is the ssh.HostKeyCallback.
func (hk *hostKeyChecker) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	hk.err = hk.verify(hostname, remote, key)
	return hk.err
}

func (hk *hostKeyChecker) verify(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := hk.check(hostname, remote, key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return fmt.Errorf("host key %s of %s is marked revoked in %s line %d", describeKey(key), hostname, re.Revoked.Filename, re.Revoked.Line)
	case !errors.As(err, &ke):
		return fmt.Errorf("check host key of %s against %s: %w", hostname, hk.file, err)
	case len(ke.Want) > 0:
		w := ke.Want[0]
		return fmt.Errorf("HOST KEY MISMATCH: %s offers %s, but known_hosts file %s line %d has %s for it: "+
			"someone may be intercepting the connection, or the host was reinstalled; if you know it was, remove line %d and try again",
			hostname, describeKey(key), w.Filename, w.Line, describeKey(w.Key), w.Line)
	case !hk.acceptNew:
		return fmt.Errorf("host %s is not in known_hosts file %s (it offers %s): check that fingerprint, then give --accept-new-host-key to add it",
			hostname, hk.file, describeKey(key))
	}
	if err := appendKnownHost(hk.file, hostname, key); err != nil {
		return err
	}
	fmt.Fprintf(hk.log, "added host key %s of %s to %s\n", describeKey(key), hostname, hk.file)
	return nil
}

// algorithms are the host key algorithms to ask the server for: those of
// the keys known_hosts lists for addr, so that a server holding several
// host keys shows the known one. Nil (the ssh package's default) when it
// lists none.
func (hk *hostKeyChecker) algorithms(addr string, remote net.Addr) []string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if !errors.As(hk.check(addr, remote, probe), &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
		names := []string{k.Key.Type()}
		if k.Key.Type() == ssh.KeyAlgoRSA {
			names = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				algos = append(algos, n)
			}
		}
	}
	return algos
}

// appendKnownHost adds a line for hostname's key to file, creating it
// (and its directory) private to this user if needed.
func appendKnownHost(file, hostname string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("add host key to %s: %w", file, err)
	}
	line := knownhosts.Line([]string{hostname}, key) + "\n"
	if data, err := os.ReadFile(file); err == nil && len(data) > 0 && data[len(data)-1] != '\n' {
		line = "\n" + line
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("add host key to %s: %w", file, err)
	}
	_, err = io.WriteString(f, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("add host key to %s: %w", file, err)
	}
	return nil
}

// describeKey is a key's type and SHA256 fingerprint, as ssh prints them.
func describeKey(k ssh.PublicKey) string {
	return k.Type() + " " + ssh.FingerprintSHA256(k)
}
