package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// LibvirtGCReport is what LibvirtGC did: the objects it removed and those
// of lnst runs it kept, each with why.
type LibvirtGCReport struct {
	Removed []string // "domain lnst-0a1b2c3d-hv1-1 (run 0a1b2c3d: controller pid 42 on ctl is gone)"
	Kept    []string

	dead map[string]string // ids of the dead runs found, to why
}

// LibvirtGC removes from the hypervisor at uri the domains, networks and
// volumes that libvirt provisioners of dead runs left (a controller killed
// by SIGKILL, a machine that lost power): every object named "lnst-<run>-"
// whose <metadata> names a run whose controller process no longer lives.
// A run whose controller ran on another machine cannot be checked from
// here: its objects are kept, and the report says so; run gc on that
// machine. The kernel volumes (lnst-kernel-<hash>) are shared by every
// run and kept. The dead runs' directories on this machine (their CA)
// are removed too.
func LibvirtGC(ctx context.Context, uri string) (LibvirtGCReport, error) {
	c, err := dialLibvirt(ctx, uri)
	if err != nil {
		return LibvirtGCReport{}, fmt.Errorf("libvirt %s: unreachable: %w", uri, err)
	}
	defer c.Disconnect()
	host, _ := os.Hostname()
	rep, err := libvirtGC(c, func(r libvirtRun) (bool, string) { return runAlive(r, host) })
	return rep, errors.Join(err, rep.removeRunDirs(os.TempDir()))
}

// removeRunDirs removes the directories in tmp of the dead runs gc found
// (a dead run is one of this machine's: its directory is here).
func (rep *LibvirtGCReport) removeRunDirs(tmp string) error {
	var errs []error
	for id := range rep.dead {
		dirs, _ := filepath.Glob(filepath.Join(tmp, libvirtRunDirPrefix(id)+"*"))
		for _, d := range dirs {
			if err := os.RemoveAll(d); err != nil {
				errs = append(errs, err)
				continue
			}
			rep.Removed = append(rep.Removed, fmt.Sprintf("directory %s (run %s)", d, id))
		}
	}
	return errors.Join(errs...)
}

// runAlive says whether run r's controller lives, seen from machine
// host, and why.
func runAlive(r libvirtRun, host string) (bool, string) {
	if r.Controller != host {
		return true, fmt.Sprintf("run %s: its controller ran on %s, not here (%s): cannot tell whether it lives", r.ID, r.Controller, host)
	}
	start, err := procStart(r.PID)
	if err == nil && start == r.Start {
		return true, fmt.Sprintf("run %s: controller pid %d lives", r.ID, r.PID)
	}
	return false, fmt.Sprintf("run %s: controller pid %d on %s is gone", r.ID, r.PID, r.Controller)
}

// libvirtGC is LibvirtGC on connection c, alive telling live runs.
func libvirtGC(c libvirtConn, alive func(libvirtRun) (bool, string)) (LibvirtGCReport, error) {
	rep := LibvirtGCReport{dead: map[string]string{}}
	var errs []error
	dead := rep.dead
	judge := func(kind, name, inner string) (bool, string) {
		r, ok := parseRunMetadata(inner)
		if !ok || !strings.HasPrefix(name, libvirtPrefix+r.ID+"-") {
			return false, ""
		}
		live, why := alive(r)
		if live {
			rep.Kept = append(rep.Kept, fmt.Sprintf("%s %s (%s)", kind, name, why))
			return false, why
		}
		dead[r.ID] = why
		return true, why
	}
	doms, _, err := c.ConnectListAllDomains(1, 0)
	if err != nil {
		return rep, fmt.Errorf("list domains: %w", err)
	}
	for _, d := range doms {
		if !strings.HasPrefix(d.Name, libvirtPrefix) {
			continue
		}
		x, err := c.DomainGetXMLDesc(d, 0)
		if err != nil {
			continue // gone meanwhile
		}
		var dx libvirtxml.Domain
		if dx.Unmarshal(x) != nil || dx.Metadata == nil {
			continue
		}
		if ok, why := judge("domain", d.Name, dx.Metadata.XML); ok {
			if err := c.DomainDestroy(d); err != nil {
				errs = append(errs, fmt.Errorf("destroy domain %s: %w", d.Name, err))
				continue
			}
			rep.Removed = append(rep.Removed, fmt.Sprintf("domain %s (%s)", d.Name, why))
		}
	}
	// Networks after domains: libvirt refuses to destroy none in use,
	// but a dead run's guests are gone now.
	nets, _, err := c.ConnectListAllNetworks(1, 0)
	if err != nil {
		return rep, errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	for _, n := range nets {
		if !strings.HasPrefix(n.Name, libvirtPrefix) {
			continue
		}
		x, err := c.NetworkGetXMLDesc(n, 0)
		if err != nil {
			continue
		}
		var nx libvirtxml.Network
		if nx.Unmarshal(x) != nil || nx.Metadata == nil {
			continue
		}
		if ok, why := judge("network", n.Name, nx.Metadata.XML); ok {
			if err := c.NetworkDestroy(n); err != nil {
				errs = append(errs, fmt.Errorf("destroy network %s: %w", n.Name, err))
				continue
			}
			rep.Removed = append(rep.Removed, fmt.Sprintf("network %s (%s)", n.Name, why))
		}
	}
	// Volumes carry no metadata: a guest's volume exists only while its
	// run's management network does, so the dead runs are known now.
	if len(dead) > 0 {
		pools, _, err := c.ConnectListAllStoragePools(1, 0)
		if err != nil {
			return rep, errors.Join(append(errs, fmt.Errorf("list storage pools: %w", err))...)
		}
		for _, p := range pools {
			vols, _, err := c.StoragePoolListAllVolumes(p, 1, 0)
			if err != nil {
				continue // an inactive pool
			}
			for _, v := range vols {
				id, _, _ := strings.Cut(strings.TrimPrefix(v.Name, libvirtPrefix), "-")
				why, ok := dead[id]
				if !strings.HasPrefix(v.Name, libvirtPrefix) || !ok {
					continue
				}
				if err := c.StorageVolDelete(v, 0); err != nil {
					errs = append(errs, fmt.Errorf("delete volume %s of pool %s: %w", v.Name, p.Name, err))
					continue
				}
				rep.Removed = append(rep.Removed, fmt.Sprintf("volume %s (%s)", v.Name, why))
			}
		}
	}
	return rep, errors.Join(errs...)
}

var _ libvirtConn = (*libvirt.Libvirt)(nil)
