package results

import "time"

// KernelSplat is a report of the kernel having gone wrong (a WARNING, BUG,
// Oops, sanitizer report, lockdep splat, RCU stall, lockup, a device that
// cannot be unregistered) logged while a recipe ran.
type KernelSplat struct {
	// Hosts are the recipe's hosts whose kernel logged it.
	Hosts []string `json:"hosts"`
	// Kind is what it is: "warning", "bug", "oops", "lockdep", ...
	Kind string `json:"kind"`
	// Time is when it was logged (from the kernel's timestamp).
	Time time.Time `json:"time"`
	// Lines are its first lines.
	Lines []string `json:"lines"`
	// Allowed is true when lnsttest.AllowKernelLog allowed it: it did not
	// fail the recipe.
	Allowed bool `json:"allowed"`
	// SharedKernel is true when the hosts share their kernel with others
	// (the namespace lab): the splat is the recipe's by its time window
	// only.
	SharedKernel bool `json:"shared_kernel"`
}

// SysinfoDelta is how a host's counters changed during a recipe.
type SysinfoDelta struct {
	// Host is the host's name in the recipe.
	Host string `json:"host"`
	// Deltas maps each counter that changed to after minus before.
	Deltas map[string]int64 `json:"deltas"`
	// File holds every counter before and after (-lnst.sysinfo=full),
	// relative to the results directory.
	File string `json:"file,omitempty"`
}

// System is what a run read once of a machine (-lnst.sysinfo).
type System struct {
	// Kernel is the release and version (uname -r, uname -v).
	Kernel  string `json:"kernel"`
	Cmdline string `json:"cmdline"`
	// Modules are the loaded kernel modules.
	Modules  []string   `json:"modules"`
	CPUModel string     `json:"cpu_model"`
	CPUs     int        `json:"cpus"`
	NUMA     []NUMANode `json:"numa"`
	// NICs are the drivers and firmware of the interfaces the run's
	// recipes matched on the machine.
	NICs []NIC `json:"nics"`
}

// NUMANode is a NUMA node of a machine.
type NUMANode struct {
	Node        int    `json:"node"`
	CPUs        string `json:"cpus"`
	MemTotalKiB int64  `json:"mem_total_kib"`
}

// NIC is an interface's driver and firmware, as ethtool -i gives them.
type NIC struct {
	Name     string `json:"name"`
	Driver   string `json:"driver"`
	Firmware string `json:"firmware"`
	BusInfo  string `json:"bus_info"`
}
