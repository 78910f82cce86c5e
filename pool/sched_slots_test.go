package pool

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// provPool is a pool file with one provisioner, "p", whose machines need
// no agent: its alive command says a machine lives while alive/<id>
// exists. Reservations are counted in n/, releases written to released/.
func provPool(t *testing.T, max int, idle time.Duration) (*Scheduler, string) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"n", "released", "alive"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o755))
	}
	data := fmt.Sprintf(`provisioners:
  - name: p
    reserve: 'n=$(mktemp -p n); id=$(basename $n); touch alive/$id; echo id=$id; echo address=unix:///nonexistent/$id.sock'
    release: 'touch released/$LNST_RESERVATION_ID'
    alive: 'test -e alive/$LNST_RESERVATION_ID'
    max: %d
    idle: %v
    interfaces:
      - {name: eth0, network: n1}
`, max, idle)
	p, err := Parse(filepath.Join(dir, "pool.yaml"), []byte(data))
	require.NoError(t, err)
	sp := newSched(t, p, SchedulerOptions{})
	t.Cleanup(func() { sp.Close() })
	return sp, dir
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// leaseSlots leases pool hosts as Lease does, for a test.
func leaseSlots(sp *Scheduler, names ...string) Mapping {
	m := Mapping{Hosts: map[string]HostMatch{}}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for i, n := range names {
		sp.leased[n] = true
		m.Hosts[fmt.Sprintf("h%d", i+1)] = HostMatch{Pool: n}
	}
	return m
}

func TestProvisionerSlots(t *testing.T) {
	sp, _ := provPool(t, 2, time.Minute)
	var names []string
	for _, h := range sp.p.Hosts {
		names = append(names, h.Name)
	}
	assert.Equal(t, []string{"p#1", "p#2"}, names, "one pool host per machine the provisioner may hold")
	m, err := Map(sp.p, []HostReq{{Name: "h1", Ifaces: []IfaceReq{{Name: "eth0", Net: "n1"}}}}, nil)
	require.NoError(t, err, "the mapper maps onto the provisioner's template")
	assert.Regexp(t, `^p#[12]$`, m.Hosts["h1"].Pool)
	_, err = sp.MachineHost("p#1")
	assert.ErrorContains(t, err, "no machine is reserved for p#1")
}

// TestProvisionReuseAndIdle: a recipe reserves; the next one, on another
// slot of the provisioner, takes the idle machine instead of reserving;
// once no recipe uses it for the idle time, it is released.
func TestProvisionReuseAndIdle(t *testing.T) {
	sp, dir := provPool(t, 2, 300*time.Millisecond)
	m1 := leaseSlots(sp, "p#1")
	require.NoError(t, sp.Provision(t.Context(), m1, t.Logf))
	assert.Len(t, files(t, filepath.Join(dir, "n")), 1)
	h, err := sp.MachineHost("p#1")
	require.NoError(t, err)
	assert.Regexp(t, `^unix:///nonexistent/tmp\.\w+\.sock$`, h.Agent)
	assert.Empty(t, sp.Settle(m1), "the machine is alive")
	sp.Release(m1)

	m2 := leaseSlots(sp, "p#2")
	require.NoError(t, sp.Provision(t.Context(), m2, t.Logf))
	assert.Len(t, files(t, filepath.Join(dir, "n")), 1, "the idle machine was taken, not a new one reserved")
	h2, err := sp.MachineHost("p#2")
	require.NoError(t, err)
	assert.Equal(t, h.Agent, h2.Agent)
	assert.Empty(t, sp.Settle(m2))
	sp.Release(m2)

	waitFor(t, 10*time.Second, "the idle machine's release after its 300ms idle time", func() bool {
		return len(files(t, filepath.Join(dir, "released"))) == 1
	})
	_, err = sp.MachineHost("p#2")
	assert.Error(t, err, "the slot holds no machine once it is released")
}

// TestProvisionDeadMachine: a machine dead at the end of a recipe is
// released and reported; the next recipe on its slot gets a new one.
func TestProvisionDeadMachine(t *testing.T) {
	sp, dir := provPool(t, 1, time.Minute)
	m := leaseSlots(sp, "p#1")
	require.NoError(t, sp.Provision(t.Context(), m, t.Logf))
	reserved := files(t, filepath.Join(dir, "n"))
	require.Len(t, reserved, 1)
	require.NoError(t, os.Remove(filepath.Join(dir, "alive", reserved[0])))
	dead := sp.Settle(m)
	require.Len(t, dead, 1)
	assert.Regexp(t, `^pool host p#1 \(machine p/tmp\.\w+ \(unix://\S+\)\) died: provisioner p: machine tmp\.\w+: alive: .*exit status 1; it was released$`, dead[0].Why)
	assert.Equal(t, reserved, files(t, filepath.Join(dir, "released")))
	sp.Release(m)

	m = leaseSlots(sp, "p#1")
	require.NoError(t, sp.Provision(t.Context(), m, t.Logf))
	assert.Len(t, files(t, filepath.Join(dir, "n")), 2, "a new machine replaces the dead one")
	require.NoError(t, sp.Close())
	assert.Len(t, files(t, filepath.Join(dir, "released")), 2, "close releases the machine held")
}

// TestProvisionAllMatches: ForEachMatch runs once per distinct match, and
// a provisioner's machines are alike, whichever slots a mapping takes.
func TestProvisionAllMatches(t *testing.T) {
	data := `hosts:
  - name: m1
    agent: unix:///nonexistent/m1.sock
    interfaces:
      - {name: eth0, network: n1}
provisioners:
  - name: p
    reserve: 'false'
    release: 'true'
    max: 4
    interfaces:
      - {name: eth0, network: n1}
`
	p, err := Parse(filepath.Join(t.TempDir(), "pool.yaml"), []byte(data))
	require.NoError(t, err)
	sp := newSched(t, p, SchedulerOptions{})
	defer sp.Close()
	reqs := []HostReq{
		{Name: "h1", Ifaces: []IfaceReq{{Name: "eth0", Net: "n1"}}},
		{Name: "h2", Ifaces: []IfaceReq{{Name: "eth0", Net: "n1"}}},
	}
	raw, err := AllMatches(sp.p, reqs, 0)
	require.NoError(t, err)
	all, err := sp.AllMatches(reqs)
	require.NoError(t, err)
	var names []string
	for _, m := range all {
		names = append(names, regexp.MustCompile(`p#\d`).ReplaceAllString(slotMappingName(m), "p#"))
	}
	sort.Strings(names)
	assert.Equal(t, []string{"h1=m1,h2=p#", "h1=p#,h2=m1", "h1=p#,h2=p#"}, names, "of %d mappings onto hosts and slots", len(raw))
	assert.Greater(t, len(raw), len(all))
}

// slotMappingName is "h1=m1,h2=p#1": a mapping's requirements and their
// hosts, sorted.
func slotMappingName(m Mapping) string {
	var parts []string
	for req, hm := range m.Hosts {
		parts = append(parts, req+"="+hm.Pool)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
