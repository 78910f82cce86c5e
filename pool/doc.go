// Package pool provides the hosts recipes run on. With no pool file, that
// is the local lab: hosts made of network namespaces on this machine, served
// by one agent process that is the test binary re-executed in agent mode,
// and linked by veth pairs to one bridge per network.
package pool
