// Package pool provides the hosts recipes run on: machines named in a pool
// file, machines reserved on demand by provisioners, or a local lab built
// on this machine. lnsttest drives it; a recipe never calls it directly.
//
// # Pool files
//
// A pool file (YAML; see Pool for a full example) lists hosts, each a
// machine running lnst-agent: its agent address (unix:///path or
// host:port), the TLS files to reach it (or insecure: true for a loopback
// agent), its arch, free params, its interfaces with the label of the
// network each is cabled to, how to power-reset it and read its console
// (Power, Console), and the destructive kinds recipes may do to it
// (allow:, DestructiveKinds). It may also list provisioners (ExecSpec).
// Load and Parse read and check one; every error is a *FileError
// naming the file, the line and the field. The schema is declared once,
// as the structs the strict YAML decoder checks against; a node walk gives
// the messages. AppendHost and RemoveHost edit a pool file's text, keeping
// every other line and comment (lnst-agent install and uninstall use them).
//
// # Mapping
//
// Map assigns the hosts a recipe requires (HostReq, IfaceReq) to distinct
// pool hosts: arch and params must match (Pattern: an exact value or a
// regular expression), and each required interface gets a pool interface
// such that interfaces with one network label are on one pool network and
// different labels on different ones. The mapper works in three phases,
// one file each: compile turns the requirements into matchers and lists,
// per required and pool host, the tuples of networks that host could
// offer; search binds labels to networks, most constrained first, checking
// after each binding with a bipartite matching over classes of
// interchangeable pool hosts that every required host still fits; explain
// builds, when nothing fits, an *UnsatError naming the requirement that
// failed and the pool hosts that came closest, with what each lacks.
// AllMatches lists the distinct mappings.
//
// # Labs
//
// With no pool file, the hosts are the local lab (StartLab): the test
// binary re-executed as the lab agent (agent.ServeLab), in its own process
// group, reached over a unix socket only this user can open. Each host of
// a Topology is a network namespace, and each network a bridge in a
// namespace of its own, its ports veth pairs. A built topology is an
// Instance, leased to one recipe at a time and reused by the next recipe
// asking for the same topology; the caller restores it between recipes.
// LabOptions.UserNS runs the agent in a user namespace (the rootless lab),
// and IfNamesMapped names interfaces as a pool machine's NICs are named,
// so that recipes are checked not to rely on the names they asked for.
//
// StartVMLab builds the same topologies from QEMU guests: each host is a
// guest booting a vmimage image with the test binary as its agent, its
// taps switched by bridges in namespaces of the lab agent (nothing is made
// in the root namespace). Instance.GuestClient reaches a guest's agent,
// Console reads its serial console, ResetGuest resets it over QMP, and
// RedialGuest reconnects after it reboots.
//
// # Provisioners and leases
//
// A Provisioner reserves machines, says whether one is still alive, and
// releases it. StaticProvisioner reserves the hosts of a pool file: a
// reservation is a lease file, an flock in a directory shared by every
// controller process on this machine, so two test binaries never use one
// host at once (ErrBusy). ExecProvisioner runs the user's reserve, release
// and alive commands (Beaker, OpenStack, a cloud), at most Max machines at
// once, each named SlotName(provisioner, n) in mappings. LabProvisioner
// reserves topology instances of a local or VM lab.
//
// # Scheduling
//
// A Scheduler leases the hosts of provisioners to the recipes that ask
// (Lease), one recipe at a time per host: the named hosts of
// HostProvisioners (the pool file's) and a slot per machine of
// SlotProvisioners, which Provision fills with a reserved machine, Settle
// checks at the end, and an idle machine leaves after the provisioner's
// idle time. Waiting recipes queue; whenever hosts free up, dispatch
// offers them in order (a recipe overtaken by a later one and waiting
// for longer than SchedulerOptions.Starve first, then the widest, then
// the longest known from an earlier run, then first come), and every one
// that fits
// takes its hosts. Claims is the hook for a lease beyond the provisioner's
// reservation: lnsttest's is the agent's own lease, which keeps other
// controllers off a machine. lnsttest keeps only the testing.TB side:
// mapping a recipe's requirements, logging, cleanup.
package pool
