package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Value kinds: a sysctl key or a sysfs path.
const (
	kindSysctl = "sysctl"
	kindSysfs  = "sysfs"
	// kindIrq is an interrupt's CPU list: the key is the interrupt's
	// number, the file /proc/irq/<number>/smp_affinity_list.
	kindIrq = "irq"
)

// valuePath turns a sysctl key, sysfs path or interrupt number into the
// file that holds it, refusing anything outside /proc/sys and /sys but an
// interrupt's /proc/irq/<number>/smp_affinity_list.
func valuePath(kind, key string) (string, error) {
	switch kind {
	case kindSysctl:
		if key == "" {
			return "", errors.New("sysctl key is empty")
		}
		rel := key
		if !strings.Contains(key, "/") {
			rel = strings.ReplaceAll(key, ".", "/")
		}
		p := filepath.Join("/proc/sys", rel)
		if !strings.HasPrefix(p, "/proc/sys/") || strings.Contains(key, "..") || strings.ContainsRune(key, 0) {
			return "", fmt.Errorf("sysctl key %q does not name a value under /proc/sys", key)
		}
		return p, nil
	case kindSysfs:
		p := filepath.Clean(key)
		if !filepath.IsAbs(key) || p != key || !strings.HasPrefix(p, "/sys/") || strings.ContainsRune(key, 0) {
			return "", fmt.Errorf("sysfs path %q is not a clean absolute path under /sys", key)
		}
		return p, nil
	case kindIrq:
		// Only the affinity list of a numbered interrupt: the key is
		// digits and nothing else, so no other file under /proc is
		// reachable.
		n, err := irqNumber(key)
		if err != nil {
			return "", err
		}
		return irqAffinityPath(procIRQ, n), nil
	}
	return "", fmt.Errorf("value kind %q is none of %q, %q, %q", kind, kindSysctl, kindSysfs, kindIrq)
}

// readValue reads a value on the host's thread, so that /proc/sys/net and
// /sys show the host's network namespace.
func (h *host) readValue(kind, key string) (string, error) {
	p, err := valuePath(kind, key)
	if err != nil {
		return "", err
	}
	var v string
	err = h.do(func() error {
		b, err := os.ReadFile(p)
		v = strings.TrimRight(string(b), "\n")
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read %s %s on %s: %w", kind, key, h.label(), err)
	}
	return v, nil
}

// writeValue writes a value and returns the one it replaced.
func (h *host) writeValue(kind, key, value string) (string, error) {
	old, err := h.readValue(kind, key)
	if err != nil {
		return "", err
	}
	if err := h.replaceValue(kind, key, value); err != nil {
		return "", err
	}
	return old, nil
}

// replaceValue writes a value.
func (h *host) replaceValue(kind, key, value string) error {
	p, err := valuePath(kind, key)
	if err != nil {
		return err
	}
	if err := h.writeFile(p, value); err != nil {
		return fmt.Errorf("write %s %s = %q on %s: %w", kind, key, value, h.label(), err)
	}
	return nil
}

func (h *host) writeFile(path, value string) error {
	return h.do(func() error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteString(value)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
}
