package tc

// Stats are the counters of a qdisc, a class or an action.
type Stats struct {
	Bytes, Packets uint64
	Drops          uint64
	Overlimits     uint64
	Requeues       uint64
	// Backlog is the bytes queued now, Qlen the packets.
	Backlog, Qlen uint64
}

// QdiscInfo is a qdisc as a host reports it.
type QdiscInfo struct {
	Dev    string
	Kind   string
	Parent string // "root", "ingress" or a class
	Handle string // "1:"; "0:" for a default qdisc the kernel made
	Stats  Stats
}

// ClassInfo is a class as a host reports it.
type ClassInfo struct {
	Dev     string
	Kind    string
	Parent  string
	ClassID string
	// Leaf is the qdisc under the class, "" if none.
	Leaf string
	// Rate and Ceil of an htb class.
	Rate, Ceil Rate
	Stats      Stats
}

// FilterInfo is a filter as a host reports it.
type FilterInfo struct {
	Dev      string
	Kind     string
	Parent   string
	Protocol string // a name of Protocols, or the EtherType in hex
	Prio     int
	Handle   string // the kernel's handle of the filter, in hex
	ClassID  string // "" if none
	// SkipHw and SkipSw are the flags the filter was added with.
	SkipHw, SkipSw bool
	// InHw says a driver offloaded the filter (tc's "in_hw"), NotInHw
	// that none did ("not_in_hw"); a kernel that reports neither (or a
	// classifier without flags) leaves both false.
	InHw, NotInHw bool
	// InHwCount is how many drivers hold the filter in hardware, where
	// the kernel reports it (flower's TCA_FLOWER_IN_HW_COUNT).
	InHwCount int
	Actions   []ActionInfo
}

// ActionInfo is a filter's action as a host reports it.
type ActionInfo struct {
	Kind string
	// Stats are the action's counters, software and hardware together.
	Stats Stats
	// HwStats are the part of Stats the hardware counted
	// (TCA_STATS_BASIC_HW: bytes and packets); zero when nothing was
	// offloaded or the kernel does not report it.
	HwStats Stats
	// InHwCount is how many drivers hold the action in hardware, where the
	// kernel reports it (TCA_ACT_IN_HW_COUNT).
	InHwCount int
	// UsedHwStats is the kind of hardware counters the driver keeps for
	// the action (TCA_ACT_USED_HW_STATS): "immediate", "delayed", both
	// ("immediate,delayed") or "" when it reports none.
	UsedHwStats string
}
