package lnsttest

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRunPattern(t *testing.T) {
	for name, want := range map[string]string{
		"TestPing":             `^TestPing$`,
		"TestBond/h1=m1,h2=m2": `^TestBond$/^h1=m1,h2=m2$`,
		"TestX/a.b(c)":         `^TestX$/^a\.b\(c\)$`,
	} {
		got := runPattern(name)
		assert.Equal(t, want, got)
		for i, part := range regexp.MustCompile(`/`).Split(got, -1) {
			assert.Regexp(t, part, regexp.MustCompile(`/`).Split(name, -1)[i])
		}
	}
}
