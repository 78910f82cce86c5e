// Package agentconn connects a controller to lnst-agent processes: it
// builds the mutual-TLS configurations both ends use, listens and dials
// unix:///PATH and HOST:PORT addresses, and generates the certificates a
// pool of real machines needs.
//
// A unix socket is protected by its file permissions and carries no TLS.
// TCP carries mutual TLS 1.3: the agent accepts only clients whose
// certificate its CA signed, and the controller accepts only agents whose
// certificate names the address it dialed.
//
//	if err := agentconn.GenerateCerts("certs", []string{"198.18.0.5"}, []string{"ctl"}, 365*24*time.Hour); err != nil { ... }
//	cfg, err := agentconn.ClientTLS("certs/ca.pem", "certs/ctl.pem", "certs/ctl-key.pem")
//	conn, err := agentconn.Dial(ctx, "198.18.0.5:7000", agentconn.DialOptions{TLS: cfg})
package agentconn
