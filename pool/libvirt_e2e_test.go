package pool

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/lnst-go/lnst/internal/agentconn"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool/vmimage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestLibvirtGuestRefusesStrangers reserves a guest of the libvirt
// hypervisor LNST_LIBVIRT_URI names (make recipes-libvirt sets it) and
// calls its agent where it listens, on the management network: with the
// run's client certificate Hello answers; with no client certificate,
// with one of another CA, and over plain TCP the call fails Unavailable
// (the handshake refused). The guest's listener trusts only holders of a
// certificate of the run's CA.
func TestLibvirtGuestRefusesStrangers(t *testing.T) {
	uri := os.Getenv(libvirtBenchEnv)
	if uri == "" {
		t.Skipf("%s is not set: it names the libvirt hypervisor to boot a guest on (qemu:///system; make recipes-libvirt sets it)", libvirtBenchEnv)
	}
	img := vmImage(t)
	prov := NewLibvirtProvisioner(ExecSpec{Name: "refuse", Libvirt: &LibvirtSpec{URI: uri, Max: 1, Accel: "tcg"},
		Ifaces: []Iface{{Name: "eth0", Net: "n1"}}}, testWriter{t})
	prov.image = func(context.Context) (*vmimage.Image, error) { return img, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m, err := prov.Reserve(ctx, Request{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, prov.Release(context.Background(), m), "release the guest") })
	addr := m.Host.Agent

	opts, err := m.Host.dialOptions()
	require.NoError(t, err)
	conn, err := agentconn.Dial(ctx, addr, opts)
	require.NoError(t, err, "the run's own certificate")
	_, err = pb.NewAgentClient(conn).Hello(ctx, &pb.HelloRequest{})
	require.NoError(t, err, "Hello with the run's certificate")
	conn.Close()

	strangers, err := agentconn.StrangerCredentials(m.Host.TLS.CA, t.TempDir())
	require.NoError(t, err)
	for name, creds := range strangers {
		t.Run(name, func(t *testing.T) {
			conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
			require.NoError(t, err)
			defer conn.Close()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err = pb.NewAgentClient(conn).Hello(cctx, &pb.HelloRequest{})
			require.Error(t, err, "Hello from %s", name)
			assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
		})
	}
}
