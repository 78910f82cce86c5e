package pool_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lnst-go/lnst/pool"
)

// An exec provisioner runs the user's commands: reserve prints the
// reservation's id and its agent's address, release gets the id back.
func ExampleExecProvisioner() {
	dir, err := os.MkdirTemp("", "lnst-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	e := pool.NewExecProvisioner(pool.ExecSpec{
		Name:    "cloud",
		Max:     1,
		Dir:     dir,
		Reserve: "echo id=vm-42; echo address=unix:///run/lnst/vm-42.sock",
		Release: `echo "released $LNST_RESERVATION_ID" >released`,
	}, nil)
	m, err := e.Reserve(context.Background(), pool.Request{})
	if err != nil {
		panic(err)
	}
	fmt.Println(m.ID, m.Host.Agent)
	if err := e.Release(context.Background(), m); err != nil {
		panic(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "released"))
	fmt.Print(string(b))
	// Output:
	// vm-42 unix:///run/lnst/vm-42.sock
	// released vm-42
}
