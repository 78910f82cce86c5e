package lnsttest

import "sync"

// devIdent is a device's identity: the host handle it is on and its real
// name there. Every Device handle of one device shares one devIdent, so
// SetNetns and Rename through any handle move and rename the device for
// all of them.
type devIdent struct {
	host *Host
	name string
}

// devRegistry is the identities of a host's devices, by real name, and
// the real names of its required interfaces. The zero value is ready.
type devRegistry struct {
	mu     sync.Mutex
	byName map[string]*devIdent
}

// device returns a handle of h's device called name (a real name),
// sharing its identity with every other handle of it.
func (h *Host) device(name string) *Device {
	r := &h.devs
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.byName[name]
	if id == nil {
		if r.byName == nil {
			r.byName = map[string]*devIdent{}
		}
		id = &devIdent{host: h, name: name}
		r.byName[name] = id
	}
	return &Device{devIdent: id}
}

// realIface is the real name of h's required interface req, and whether
// req is one.
func (h *Host) realIface(req string) (string, bool) {
	h.devs.mu.Lock()
	defer h.devs.mu.Unlock()
	real, ok := h.ifaces[req]
	return real, ok
}

// rebind moves identity id to host to under name, for every handle of
// it: it leaves its host's registry and joins to's. A required interface
// of its host that named it follows a rename there (Iface(req) is the
// renamed device).
func (id *devIdent) rebind(to *Host, name string) {
	from, old := id.host, id.name
	from.devs.mu.Lock()
	if from.devs.byName[old] == id {
		delete(from.devs.byName, old)
	}
	if to == from {
		for req, real := range from.ifaces {
			if real == old {
				from.ifaces[req] = name
			}
		}
	}
	from.devs.mu.Unlock()
	to.devs.mu.Lock()
	if to.devs.byName == nil {
		to.devs.byName = map[string]*devIdent{}
	}
	to.devs.byName[name] = id
	id.host, id.name = to, name
	to.devs.mu.Unlock()
}
