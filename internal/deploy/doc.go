// Package deploy installs lnst-agent on a machine over SSH and removes it
// again: `lnst-agent install user@host` and `lnst-agent uninstall
// user@host` are thin wrappers around Install and Uninstall.
//
// The SSH side is golang.org/x/crypto/ssh: keys come from a key file or
// the SSH agent at $SSH_AUTH_SOCK, the host key is checked against a
// known_hosts file (an unknown key is refused unless AcceptNewHostKey
// appends it, as OpenSSH's StrictHostKeyChecking=accept-new does; a
// changed key is always refused), and nothing shells out to ssh(1).
//
// Install copies the agent binary (checking its architecture against the
// host's `uname -m`), generates the agent's certificate with the CA in the
// controller's certificate directory and puts it on the host, installs and
// starts the lnst-agent.service systemd unit (or, on a host without
// systemd such as a container, starts the agent detached with a pid file),
// waits until the agent answers over mutual TLS, and appends the host to a
// pool file. Uninstall stops the agent (which undoes its journal), and
// removes every file Install made, on the host and on the controller, and
// the host's entry in the pool file. The files on the host are listed in
// layout.go.
//
//	c, err := deploy.Dial(ctx, target, deploy.SSHConfig{KnownHosts: "/root/.ssh/known_hosts"})
//	host, err := deploy.Install(ctx, c, deploy.InstallOptions{Pool: "lab.yaml", CertsDir: "certs"})
//	err = deploy.Uninstall(ctx, c, deploy.UninstallOptions{Pool: "lab.yaml", CertsDir: "certs"})
package deploy
