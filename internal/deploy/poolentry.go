package deploy

import (
	"bytes"
	"strings"

	"github.com/lnst-go/lnst/pool"
)

// newPoolHeader starts a pool file that Install creates.
const newPoolHeader = "# lnst-go pool file: lnst-agent install adds hosts to it, lnst-agent uninstall removes them.\nhosts:\n"

// marker starts the comment line Install writes before an entry
// (pool.HostEntry.Comment), by which Uninstall removes it with the entry.
const marker = "lnst-agent install"

// appendHost adds e to the pool file data (pool.AppendHost); a new file
// starts with Install's header.
func appendHost(file string, data []byte, e pool.HostEntry) ([]byte, error) {
	if len(bytes.TrimSpace(data)) > 0 {
		return pool.AppendHost(file, data, e)
	}
	out, err := pool.AppendHost(file, nil, e)
	if err != nil {
		return nil, err
	}
	return append([]byte(strings.TrimSuffix(newPoolHeader, "hosts:\n")), out...), nil
}

// removeHost removes the host named name from the pool file data, and
// the comment Install wrote before it (pool.RemoveHost).
func removeHost(file string, data []byte, name string) (out []byte, found, left bool, err error) {
	return pool.RemoveHost(file, data, name, marker)
}

// onlyHeader reports whether data, a pool file without hosts, holds
// nothing but what Install writes in a new file: then the file can go.
func onlyHeader(data []byte) bool {
	header := strings.TrimSpace(strings.TrimSuffix(newPoolHeader, "hosts:\n"))
	rest := strings.TrimSpace(strings.Replace(string(data), header, "", 1))
	return rest == "" || rest == "hosts:"
}
