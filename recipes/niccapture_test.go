package recipes

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/require"
)

// TestCaptureNICAnswers captures the netlink answers h1's eth0 gives to
// the ethtool and RTM_GETLINK get requests lnst-go sends, for the unit
// tests of internal/ethtool and internal/sriov to parse
// (internal/ethtool/testdata/README.md). It builds internal/ethtool's
// test binary, runs its TestCaptureAnswers on h1 against eth0 and brings
// the files back into the directory LNST_CAPTURE_NETLINK names. Run it on
// the VM lab, whose eth0 is a multiqueue virtio-net:
//
//	LNST_CAPTURE_NETLINK=$PWD/internal/ethtool/testdata go test ./recipes -run TestCaptureNICAnswers -lnst.lab=vm -count=1
func TestCaptureNICAnswers(t *testing.T) {
	dir := os.Getenv("LNST_CAPTURE_NETLINK")
	if dir == "" {
		t.Skip("captures kernel answers only with LNST_CAPTURE_NETLINK=dir (internal/ethtool/testdata/README.md)")
	}
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("requires the go command on PATH to build internal/ethtool's test binary")
	}
	m := lnsttest.Require(t, lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))))
	h1 := m.Host("h1")
	bin := filepath.Join(t.TempDir(), "ethtool.test")
	build := exec.Command(gocmd, "test", "-c", "-o", bin, "github.com/lnst-go/lnst/internal/ethtool")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go test -c internal/ethtool: %s", out)
	h1.PutFile(t, bin, "/tmp/lnst-niccapture.test")
	remote := "/tmp/lnst-niccapture"
	h1.Run(t, "rm -rf "+remote, lnsttest.Undo("rm -rf "+remote))
	t.Log(h1.Output(t, "uname -r; /tmp/lnst-niccapture.test -test.run '^TestCaptureAnswers$' -test.v",
		lnsttest.Env("LNST_CAPTURE_NETLINK="+remote, "LNST_CAPTURE_DEV="+h1.Iface("eth0").Name())))
	got := filepath.Join(t.TempDir(), "got")
	h1.GetFile(t, remote, got)
	ents, err := os.ReadDir(got)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(got, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644))
		t.Logf("%s: %d bytes", e.Name(), len(b))
	}
}
