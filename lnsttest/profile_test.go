package lnsttest

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestProfileTool: -lnst.profile=perf profiles only the tests whose full
// name -lnst.profile.run matches, and nothing when off.
func TestProfileTool(t *testing.T) {
	saved, savedRun := cfg, profileRun
	defer func() { cfg, profileRun = saved, savedRun }()
	cfg.profile, profileRun = "perf", regexp.MustCompile("^TestProfileTool/b")
	var got []string
	for _, n := range []string{"a", "b", "bc"} {
		t.Run(n, func(t *testing.T) { got = append(got, n+"="+ProfileTool(t)) })
	}
	assert.Equal(t, []string{"a=", "b=perf", "bc=perf"}, got)
	cfg.profile = "off"
	t.Run("b", func(t *testing.T) { assert.Empty(t, ProfileTool(t)) })
}
