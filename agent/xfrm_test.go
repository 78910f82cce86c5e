package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

func xfrmJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestXfrmPolicyRestored adds policies (IPv4 tunnel with mark and if_id,
// IPv6 transport with an optional IPComp template), reads them back,
// and restores them away; one deleted by hand is skipped.
func TestXfrmPolicyRestored(t *testing.T) {
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	p4 := devices.XfrmPolicy{Src: "198.18.181.0/24", Dst: "198.18.182.0/24", Dir: "out", Mark: 5, IfID: 9,
		Tmpls: []devices.XfrmTmpl{{Src: "198.18.180.1", Dst: "198.18.180.2", Proto: "esp", Mode: "tunnel", Reqid: 3}}}
	p6 := devices.XfrmPolicy{Src: "2001:db8:181::1/128", Dst: "2001:db8:181::2/128", Dir: "in", Proto: "ipv6-icmp",
		Tmpls: []devices.XfrmTmpl{{Proto: "comp", Mode: "transport", Optional: true}, {Proto: "esp", Mode: "transport"}}}
	p3 := devices.XfrmPolicy{Src: "198.18.183.0/24", Dst: "198.18.184.0/24", Dir: "fwd"}
	for _, p := range []devices.XfrmPolicy{p4, p6, p3} {
		_, err := c.XfrmAddPolicy(ctx, &pb.XfrmRequest{Host: "h1", Group: "g", Kind: "policy", Spec: xfrmJSON(t, p)})
		require.NoError(t, err, "%s", p)
	}
	out := testSh(t, c, "h1", "ip xfrm policy")
	assert.Contains(t, out, "src 198.18.181.0/24 dst 198.18.182.0/24")
	assert.Contains(t, out, "mark 0x5/0xffffffff")
	assert.Contains(t, out, "if_id 0x9")
	assert.Contains(t, out, "tmpl src 198.18.180.1 dst 198.18.180.2\n\t\tproto esp reqid 3 mode tunnel")
	assert.Contains(t, out, "src 2001:db8:181::1/128 dst 2001:db8:181::2/128 proto ipv6-icmp")
	assert.Contains(t, out, "proto comp reqid 0 mode transport\n\t\tlevel use")

	r, err := c.XfrmList(ctx, &pb.HostRef{Host: "h1"})
	require.NoError(t, err)
	var got []string
	for _, b := range r.Policies {
		var p devices.XfrmPolicy
		require.NoError(t, json.Unmarshal(b, &p))
		got = append(got, p.String())
		if p.Dst == p4.Dst {
			assert.Equal(t, p4.Tmpls, p.Tmpls)
		}
	}
	assert.ElementsMatch(t, []string{p4.String(), p6.String(), p3.String()}, got)

	// Adding it twice is the kernel's EEXIST, and journals nothing more.
	_, err = c.XfrmAddPolicy(ctx, &pb.XfrmRequest{Host: "h1", Group: "g", Kind: "policy", Spec: xfrmJSON(t, p3)})
	testCode(t, err, codes.Aborted, "add xfrm policy fwd 198.18.183.0/24->198.18.184.0/24", "file exists")

	testSh(t, c, "h1", "ip xfrm policy del src 198.18.183.0/24 dst 198.18.184.0/24 dir fwd")
	testRestoreClean(t, c, &log, "g", 3, "xfrm policy")
	assert.Empty(t, testSh(t, c, "h1", "ip xfrm policy"))
}

func TestXfrmBadArguments(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	bad := devices.XfrmState{Src: "198.18.1.1", Dst: "198.18.1.2", Proto: "esp", Mode: "transport", SPI: 1,
		Crypt: &devices.XfrmAlgo{Name: "cbc(aes)", Key: make([]byte, 15)}, Auth: &devices.XfrmAlgo{Name: "hmac(sha256)", Key: make([]byte, 32)}}
	_, err := c.XfrmAddState(ctx, &pb.XfrmRequest{Host: "h1", Group: "g", Spec: xfrmJSON(t, bad)})
	testCode(t, err, codes.InvalidArgument, "cbc(aes) key is 15 bytes")
	_, err = c.XfrmAddState(ctx, &pb.XfrmRequest{Host: "h1", Group: "g", Spec: []byte(`{"Src":"198.18.1.1","Spy":1}`)})
	testCode(t, err, codes.InvalidArgument, `unknown field "Spy"`)
	_, err = c.XfrmAddPolicy(ctx, &pb.XfrmRequest{Host: "h1", Group: "g", Spec: xfrmJSON(t, devices.XfrmPolicy{Src: "198.18.1.1/24", Dst: "198.18.2.0/24", Dir: "out"})})
	testCode(t, err, codes.InvalidArgument, "host bits")
	_, err = c.XfrmAddStates(ctx, &pb.XfrmBatchRequest{Host: "h1", Group: "g", States: [][]byte{xfrmJSON(t, bad)}})
	testCode(t, err, codes.InvalidArgument, "state 0", "15 bytes")
	assert.Zero(t, testRestoreCount(t, c, "g"), "nothing journaled")
}

// TestXfrmStateAsIproute adds ESP, AH and IPComp states through the agent
// and the same states with ip xfrm: the kernel takes both or neither
// (this kernel may lack esp4 or the cipher), and what the agent added
// is listed and restored away, and its keys are not in the journal.
func TestXfrmStateAsIproute(t *testing.T) {
	srv, c := testServerOpts(t, Options{Lab: true})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	key16 := bytes.Repeat([]byte{0xab}, 16)
	key32 := bytes.Repeat([]byte{0xcd}, 32)
	cases := []struct {
		s  devices.XfrmState
		ip string
	}{
		{devices.XfrmState{Src: "198.18.185.1", Dst: "198.18.185.2", Proto: "esp", SPI: 0x1001, Mode: "transport",
			Crypt: &devices.XfrmAlgo{Name: "cbc(aes)", Key: key16}, Auth: &devices.XfrmAlgo{Name: "hmac(sha256)", Key: key32}},
			"proto esp spi 0x1001 mode transport enc 'cbc(aes)' 0x" + strings.Repeat("ab", 16) + " auth-trunc 'hmac(sha256)' 0x" + strings.Repeat("cd", 32) + " 128"},
		{devices.XfrmState{Src: "2001:db8:185::1", Dst: "2001:db8:185::2", Proto: "esp", SPI: 0x1002, Mode: "tunnel", Mark: 7, IfID: 3,
			Aead: &devices.XfrmAlgo{Name: "rfc4106(gcm(aes))", Key: append(append([]byte{}, key16...), 1, 2, 3, 4)}},
			"proto esp spi 0x1002 mode tunnel mark 7 if_id 3 aead 'rfc4106(gcm(aes))' 0x" + strings.Repeat("ab", 16) + "01020304 128"},
		{devices.XfrmState{Src: "198.18.185.1", Dst: "198.18.185.2", Proto: "ah", SPI: 0x1003, Mode: "transport",
			Auth: &devices.XfrmAlgo{Name: "hmac(sha256)", Key: key32}},
			"proto ah spi 0x1003 mode transport auth-trunc 'hmac(sha256)' 0x" + strings.Repeat("cd", 32) + " 128"},
		{devices.XfrmState{Src: "198.18.185.1", Dst: "198.18.185.2", Proto: "comp", SPI: 0x1004, Mode: "tunnel",
			Comp: &devices.XfrmAlgo{Name: "deflate"}},
			"proto comp spi 0x1004 mode tunnel comp deflate"},
	}
	added := 0
	for _, tc := range cases {
		src, dst := tc.s.Src, tc.s.Dst
		ipErr := ""
		r, err := c.RunJob(ctx, &pb.StartJobRequest{Host: "h1", Argv: []string{"/bin/sh", "-c",
			"ip xfrm state add src " + src + " dst " + dst + " " + tc.ip + " && ip xfrm state flush"}})
		require.NoError(t, err)
		if r.ExitCode != 0 {
			ipErr = string(r.Stderr)
		}
		_, err = c.XfrmAddState(ctx, &pb.XfrmRequest{Host: "h1", Group: "g", Spec: xfrmJSON(t, tc.s)})
		if ipErr != "" {
			t.Logf("%s: ip xfrm: %s; agent: %v", tc.s, strings.TrimSpace(ipErr), err)
			testCode(t, err, codes.Aborted, "add xfrm state "+tc.s.String())
			continue
		}
		require.NoError(t, err, "%s: ip xfrm took it", tc.s)
		added++
		out := testSh(t, c, "h1", "ip xfrm state")
		assert.Contains(t, out, "src "+src+" dst "+dst)
		assert.Contains(t, out, fmt.Sprintf("spi 0x%08x", tc.s.SPI))
	}
	r, err := c.XfrmList(ctx, &pb.HostRef{Host: "h1"})
	require.NoError(t, err)
	assert.Len(t, r.States, added)
	for _, st := range r.States {
		assert.NotContains(t, string(st.Spec), `"Key"`, "read-back carries no keys")
	}
	// The journal (on disk for the agent's own host) holds no key.
	srv.journal.mu.Lock()
	for _, u := range srv.journal.entries {
		assert.NotContains(t, string(u.Spec), `"Key"`, "undo %s", u)
	}
	srv.journal.mu.Unlock()
	assert.Equal(t, int32(added), testRestoreCount(t, c, "g"))
	assert.Empty(t, testSh(t, c, "h1", "ip xfrm state"))
}

// TestXfrmProbe: a state the kernel takes probes ok, one whose
// algorithm it lacks says so.
func TestXfrmProbe(t *testing.T) {
	_, c := testServer(t)
	s := devices.XfrmState{Src: "198.18.1.1", Dst: "198.18.1.2", Proto: "esp", SPI: 0x100, Mode: "transport",
		Aead: &devices.XfrmAlgo{Name: "rfc4106(gcm(aes))", Key: make([]byte, 20)}}
	r, err := c.XfrmProbe(testCtx(t), &pb.XfrmRequest{Spec: xfrmJSON(t, s)})
	require.NoError(t, err)
	ip, ipErr := c.RunJob(testCtx(t), &pb.StartJobRequest{Argv: []string{"/bin/sh", "-c",
		"ip netns add lnstxp$$ && ip -n lnstxp$$ xfrm state add src 198.18.1.1 dst 198.18.1.2 proto esp spi 0x100 mode transport aead 'rfc4106(gcm(aes))' 0x0000000000000000000000000000000000000000 128; e=$?; ip netns del lnstxp$$; exit $e"}})
	require.NoError(t, ipErr)
	assert.Equal(t, ip.ExitCode == 0, r.Ok, "probe %v (%s), ip xfrm exit %d: %s", r.Ok, r.Why, ip.ExitCode, ip.Stderr)
	if !r.Ok {
		assert.Contains(t, r.Why, "add xfrm state esp spi 0x100")
	}
}
