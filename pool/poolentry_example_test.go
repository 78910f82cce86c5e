package pool_test

import (
	"fmt"

	"github.com/lnst-go/lnst/pool"
)

func ExampleAppendHost() {
	mine := "# my lab\nhosts:\n  - name: m1\n    agent: unix:///run/m1.sock\n"
	out, err := pool.AppendHost("lab.yaml", []byte(mine), pool.HostEntry{
		Name:    "m2",
		Agent:   "198.18.0.12:7000",
		TLS:     pool.TLSFiles{CA: "certs/ca.pem", Cert: "certs/ctl.pem", Key: "certs/ctl-key.pem"},
		Arch:    "x86_64",
		Comment: "lnst-agent install root@198.18.0.12",
	})
	if err != nil {
		panic(err)
	}
	fmt.Print(string(out))
	// Output:
	// # my lab
	// hosts:
	//   - name: m1
	//     agent: unix:///run/m1.sock
	//   # lnst-agent install root@198.18.0.12
	//   - name: m2
	//     agent: 198.18.0.12:7000
	//     tls: {ca: certs/ca.pem, cert: certs/ctl.pem, key: certs/ctl-key.pem}
	//     arch: x86_64
}
