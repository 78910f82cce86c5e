// Package agent is the lnst-go agent: a gRPC service that runs jobs, owns
// devices and sysctl/sysfs values on its host, and journals every change
// with its undo so that the change can be taken back.
//
// One agent serves one machine. A lab agent (the test binary re-executed by
// the local lab) also serves namespace hosts: each is a network and mount
// namespace held by a dedicated OS thread, so jobs forked from that thread
// start inside the host, and its /sys shows the host's devices. The
// namespaces belong to the agent process alone: when it exits, for whatever
// reason, the kernel removes them.
package agent
