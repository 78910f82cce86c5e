package perf

import (
	"testing"

	"github.com/lnst-go/lnst/lnsttest"
)

func TestMain(m *testing.M) { lnsttest.Main(m) }
