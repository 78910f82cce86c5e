package tc

import "github.com/lnst-go/lnst/devices/internal/specwire"

// The registries map each kind to its spec type; never written after
// init.
var (
	qdiscKinds  = specwire.New[Qdisc]("tc", "tc", Tbf{}, Htb{}, Netem{}, Fq{}, FqCodel{}, Prio{}, Ingress{}, Clsact{})
	classKinds  = specwire.New[Class]("tc", "tc", HtbClass{})
	filterKinds = specwire.New[Filter]("tc", "tc", U32{}, Flower{}, MatchAll{})
	actionKinds = specwire.New[Action]("tc", "tc", Gact{}, Mirred{}, Police{}, SkbEdit{})
)

// Kinds returns every qdisc, classifier and action kind the package
// models, sorted.
func Kinds() (qdiscs, filters, actions []string) {
	return qdiscKinds.Kinds(), filterKinds.Kinds(), actionKinds.Kinds()
}

// MarshalQdisc encodes a qdisc spec for the wire: its kind and JSON.
func MarshalQdisc(q Qdisc) (kind string, data []byte, err error) { return qdiscKinds.Marshal(q) }

// UnmarshalQdisc decodes what MarshalQdisc encoded and validates it.
func UnmarshalQdisc(kind string, data []byte) (Qdisc, error) {
	return specwire.Unmarshal[Qdisc](qdiscKinds, kind, data)
}

// MarshalClass encodes a class spec for the wire: its kind and JSON.
func MarshalClass(c Class) (kind string, data []byte, err error) { return classKinds.Marshal(c) }

// UnmarshalClass decodes what MarshalClass encoded and validates it.
func UnmarshalClass(kind string, data []byte) (Class, error) {
	return specwire.Unmarshal[Class](classKinds, kind, data)
}

// MarshalFilter encodes a filter spec for the wire: its kind and JSON
// (with its actions' kinds).
func MarshalFilter(f Filter) (kind string, data []byte, err error) { return filterKinds.Marshal(f) }

// UnmarshalFilter decodes what MarshalFilter encoded and validates it.
func UnmarshalFilter(kind string, data []byte) (Filter, error) {
	return specwire.Unmarshal[Filter](filterKinds, kind, data)
}
