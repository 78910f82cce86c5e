package lnsttest

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lnst-go/lnst/packets"
	"github.com/lnst-go/lnst/results"
)

// What -lnst.capture keeps of each interface's traffic: bounded, since
// it runs through every recipe (an iperf flow fills 64 MiB in well under
// a second; the file then holds its start).
const (
	runCaptureSnaplen  = 65535
	runCaptureMaxBytes = 64 << 20
)

// runCapture is one interface's -lnst.capture: its capture, written as it
// comes to a pcapng file.
type runCapture struct {
	c           *Capture
	rel         string
	file        *os.File
	buf         *bufio.Writer
	w           *packets.Writer
	host, iface string
}

// captureRun starts -lnst.capture's captures on every matched interface
// of m's hosts; at the end of the test it stops them and keeps their
// files, or deletes them (-lnst.capture=failed, a test that passed).
func (st *testState) captureRun(t testing.TB, m *Match) {
	t.Helper()
	if cfg.capture == "" || cfg.capture == "off" {
		return
	}
	var runs []*runCapture
	for _, hn := range slices.Sorted(maps.Keys(m.hosts)) {
		h := m.hosts[hn]
		for _, real := range slices.Sorted(maps.Values(h.ifaces)) {
			rc, err := st.startRunCapture(t, h, real)
			if err != nil {
				// The recipe runs on: a capture is evidence, not a requirement.
				t.Logf("lnsttest: -lnst.capture: %s:%s: %v", h.name, real, err)
				continue
			}
			runs = append(runs, rc)
		}
	}
	t.Cleanup(func() {
		ctx := rpcCtx(t)
		keep := cfg.capture == "all" || t.Failed()
		for _, rc := range runs {
			err := rc.c.stop(ctx)
			rc.c.mu.Lock()
			werr := rc.buf.Flush()
			rc.c.mu.Unlock()
			if cerr := rc.file.Close(); werr == nil {
				werr = cerr
			}
			if !keep {
				os.Remove(filepath.Join(cfg.results, rc.rel))
				continue
			}
			if err != nil {
				t.Logf("lnsttest: -lnst.capture: %s:%s: the capture failed, the file holds what it got: %v", rc.host, rc.iface, err)
			}
			if werr != nil {
				t.Errorf("lnsttest: -lnst.capture: write %s: %v", rc.rel, werr)
			}
			stats := rc.c.stats()
			st.mu.Lock()
			st.captures = append(st.captures, results.Capture{Host: rc.host, Iface: rc.iface, File: rc.rel, Packets: stats.Packets, Lost: stats.Lost()})
			st.mu.Unlock()
		}
	})
}

func (st *testState) startRunCapture(t testing.TB, h *Host, real string) (*runCapture, error) {
	t.Helper()
	// "<test>/<run id>.<host>-<iface>.pcapng", as job outputs.
	rel := resultRel(t.Name(), h.name+"-"+real+".pcapng")
	path := filepath.Join(cfg.results, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	c, err := h.device(real).startCapture(t, "", CaptureSnaplen(runCaptureSnaplen), CaptureMaxBytes(runCaptureMaxBytes))
	if err != nil {
		return nil, err
	}
	// Owner only, as job outputs: packets may carry what only root on
	// the host could read.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		c.stop(rpcCtx(t))
		return nil, err
	}
	rc := &runCapture{c: c, rel: rel, file: f, buf: bufio.NewWriterSize(f, 1<<20), host: h.name, iface: real}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rc.w, err = packets.NewWriter(rc.buf, c.iface()); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", rel, err)
	}
	// Packets that came before the file was ready, then the rest as they
	// come.
	for i := range c.pkts {
		if err := rc.w.Write(&c.pkts[i]); err != nil {
			f.Close()
			return nil, fmt.Errorf("write %s: %w", rel, err)
		}
	}
	c.pkts = nil
	c.sink = rc.w.Write
	return rc, nil
}
