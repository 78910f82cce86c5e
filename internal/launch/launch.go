// Package launch is the contract between a controller and the agent it
// starts: the environment variables that turn a re-executed test binary
// into an agent, the line the agent prints once it serves, and the
// configuration a VM lab guest's agent reads. It is a leaf, so that the
// controller side (pool, cmd/lnst) does not link the agent and the agent
// does not link the pool.
package launch

// EnvPrefix starts the variables that make a process an agent; the agent's
// jobs do not inherit them.
const EnvPrefix = "LNST_AGENT_"

// LabSocketEnv names the variable that turns a re-executed test binary into
// the lab agent; its value is the absolute path of the unix socket to
// listen on, in a directory the controller made private to itself (mode
// 0700). The agent removes the socket, and the directory if that leaves it
// empty, when it exits.
const LabSocketEnv = EnvPrefix + "SOCKET"

// LabLogEnv names the variable holding the lab agent's log level.
const LabLogEnv = EnvPrefix + "LOG"

// LabOutputCapEnv names the variable holding the lab agent's
// Options.OutputCap in bytes (unset or 0: the agent's default); tests set
// it to see a job past the cap.
const LabOutputCapEnv = EnvPrefix + "OUTPUT_CAP"

// ReadyLine is what the lab agent, and a VM guest's agent, write to their
// stdout once they serve.
const ReadyLine = "lnst-agent ready"

// VMConfigEnv names the variable that makes a test binary the agent of a
// VM lab guest; its value is the path of its VMConfig (JSON).
const VMConfigEnv = EnvPrefix + "VM"

// VMConfig is what the agent of a VM lab guest needs to know, written by
// the controller as JSON to the file VMConfigEnv names.
type VMConfig struct {
	// Hostname is set as the guest's hostname; "" keeps it.
	Hostname string `json:"hostname"`
	// Port is the name of the virtio-serial port to serve on, as given to
	// QEMU's virtserialport (name=lnst.agent).
	Port string `json:"port"`
	// Ifaces maps the hwaddr of each NIC ("52:54:00:12:34:56") to the
	// interface name it must get ("eth0").
	Ifaces map[string]string `json:"ifaces"`
	// LogLevel is the agent's log level on the console ("" is info).
	LogLevel string `json:"log_level"`
	// StateDisk is the serial of a virtio-blk disk holding an ext4 file
	// system that outlives the guest's boots (its root is an initramfs):
	// the agent mounts it on its state directory and keeps its journal
	// there, so that the agent started after a reboot takes back what the
	// test changed before it, as after a crash. "" keeps the journal in
	// memory.
	StateDisk string `json:"state_disk"`
	// Mgmt, when set, makes the agent serve on a management NIC over
	// mutual TLS instead of on the virtio-serial Port (the libvirt
	// provisioner's guests, whose controller may be on another machine).
	Mgmt *VMMgmt `json:"mgmt,omitempty"`
}

// VMMgmt is the management NIC of a guest whose agent serves over TCP
// with mutual TLS, and the files of that TLS inside the guest.
type VMMgmt struct {
	// HWAddr is the NIC's hardware address; Name the name it gets.
	HWAddr string `json:"hwaddr"`
	Name   string `json:"name"`
	// Addr is the NIC's address with its prefix ("198.19.250.2/24").
	Addr string `json:"addr"`
	// Port is the TCP port the agent serves on at Addr.
	Port int `json:"port"`
	// CA is the CA a client's certificate must chain to; Cert and Key
	// are the agent's own (paths in the guest).
	CA   string `json:"ca"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}
