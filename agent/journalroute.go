package agent

import (
	"encoding/binary"
	"hash/crc32"
	"strconv"
)

// appendRouteRecord appends the add record of u, framed, to b, and
// reports whether it did: what encodeRecord makes of
// journalRecord{Op: recordAdd, Entry: &u}, byte for byte, without
// reflection (AddRoutes writes one per route). It does so only for an
// entry about one route and nothing else (see routeOnly) whose strings
// JSON carries as they are; for any other it appends nothing and returns
// false, and encodeRecord is the way.
func appendRouteRecord(b []byte, u *undo) ([]byte, bool) {
	r := &u.Route
	if !routeOnly(u) || r.Dst == "" ||
		!jsonPlain(u.Group) || !jsonPlain(u.Host) || !jsonPlain(u.Op) ||
		!jsonPlain(r.Dst) || !jsonPlain(r.Via) || !jsonPlain(r.Dev) {
		return b, false
	}
	start := len(b)
	b = append(b, make([]byte, recordHeaderLen)...)
	b = append(b, `{"op":"add","entry":{"Seq":`...)
	b = strconv.AppendUint(b, u.Seq, 10)
	b = appendJSONField(b, `,"Group":`, u.Group)
	if u.Host != "" {
		b = appendJSONField(b, `,"Host":`, u.Host)
	}
	b = appendJSONField(b, `,"Op":`, u.Op)
	b = appendJSONField(b, `,"Route":{"Dst":`, r.Dst)
	if r.Via != "" {
		b = appendJSONField(b, `,"Via":`, r.Via)
	}
	if r.Dev != "" {
		b = appendJSONField(b, `,"Dev":`, r.Dev)
	}
	for _, f := range [...]struct {
		key string
		v   int
	}{{`,"Table":`, r.Table}, {`,"Metric":`, r.Metric}, {`,"Family":`, r.Family}} {
		if f.v != 0 {
			b = append(b, f.key...)
			b = strconv.AppendInt(b, int64(f.v), 10)
		}
	}
	b = append(b, `},"HWAddr":null,"Features":null}}`...)
	payload := b[start+recordHeaderLen:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, crc32c))
	return b, true
}

// routeOnly reports whether u sets no field but Seq, Group, Host, Op and
// Route, and no multipath or encap route: the entries appendRouteRecord
// encodes.
// TestRouteOnlyFields keeps it in step with undo's fields.
func routeOnly(u *undo) bool {
	return u.Link == "" && u.Kind == "" && u.Peer == "" &&
		u.Up == nil && u.MTU == nil && u.Master == nil &&
		u.CIDR == "" && u.Addr == nil &&
		u.ValueKind == "" && u.Key == "" && u.Value == "" &&
		u.Job == 0 && u.Network == "" &&
		len(u.Route.Nexthops) == 0 && u.Route.Nexthops == nil && u.Route.Encap == nil &&
		u.HWAddr == nil && u.Features == nil && u.Params == nil &&
		u.Path == "" && u.Backup == "" && u.BackupID == nil && u.Made == nil &&
		u.Neigh == nil && u.Rule == nil &&
		u.Netns == "" && u.Rename == "" && u.L3mdev == nil &&
		u.Argv == nil && u.Timeout == 0 && u.Tc == nil && u.TxQLen == nil &&
		u.Nic == nil && u.Nft == nil && u.Mptcp == nil && u.Spec == nil
}

// jsonPlain reports whether encoding/json writes s as it is between
// quotes: printable ASCII without the characters it escapes.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// appendJSONField appends key and s quoted; s must be jsonPlain.
func appendJSONField(b []byte, key, s string) []byte {
	b = append(b, key...)
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
