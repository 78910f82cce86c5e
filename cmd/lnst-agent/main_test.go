package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListenPath(t *testing.T) {
	p, err := listenPath("unix:///run/lnst.sock")
	require.NoError(t, err)
	assert.Equal(t, "/run/lnst.sock", p)
	for in, want := range map[string]string{
		"":                  "--listen is required",
		"unix://rel.sock":   "the socket path must be absolute",
		"0.0.0.0:5000":      "TCP needs mutual TLS",
		"tcp://[::1]:50051": "only unix:///PATH is supported",
	} {
		_, err := listenPath(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func TestRunUsage(t *testing.T) {
	err := run(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "usage: lnst-agent serve")
	err = run([]string{"serve", "--listen", "unix:///tmp/x.sock", "--log-level", "loud"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--log-level: unknown level "loud"`)
}
