package agentconn_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/lnst-go/lnst/agent"
	"github.com/lnst-go/lnst/internal/agentconn"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// An agent serving mutual TLS on loopback, and a controller dialing it.
func ExampleDial() {
	dir, err := os.MkdirTemp("", "lnst-certs-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := agentconn.GenerateCerts(dir, []string{"127.0.0.1"}, []string{"ctl"}, time.Hour); err != nil {
		log.Fatal(err)
	}
	f := func(name string) string { return filepath.Join(dir, name) }

	// The agent's side, as `lnst-agent serve` does it.
	serverTLS, err := agentconn.ServerTLS(f("ca.pem"), f("127.0.0.1.pem"), f("127.0.0.1-key.pem"))
	if err != nil {
		log.Fatal(err)
	}
	lis, err := agentconn.Listen("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := agent.NewServer(agent.Options{})
	if err != nil {
		log.Fatal(err)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(serverTLS)))
	srv.Register(g)
	go g.Serve(lis)
	defer srv.Shutdown()
	defer g.Stop()

	// The controller's side.
	clientTLS, err := agentconn.ClientTLS(f("ca.pem"), f("ctl.pem"), f("ctl-key.pem"))
	if err != nil {
		log.Fatal(err)
	}
	conn, err := agentconn.Dial(context.Background(), lis.Addr().String(), agentconn.DialOptions{TLS: clientTLS})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	r, err := pb.NewAgentClient(conn).RunJob(context.Background(), &pb.StartJobRequest{Argv: []string{"echo", "hello"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", r.Stdout)
	// Output: hello
}
