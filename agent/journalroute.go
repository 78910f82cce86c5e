package agent

import (
	"encoding/binary"
	"hash/crc32"
	"reflect"
	"slices"
	"strconv"
)

// appendRouteRecord appends the add record of u, framed, to b, and
// reports whether it did: what encodeRecord makes of
// journalRecord{Op: recordAdd, Entry: &u}, byte for byte, without
// encoding/json (AddRoutes writes one per route). It does so only for an
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

// routeRecordFields are the fields appendRouteRecord writes: of undo,
// and of its Route. An entry that sets any other is not one it encodes.
var routeRecordFields = struct{ undo, route []string }{
	undo:  []string{"Seq", "Group", "Host", "Op", "Route"},
	route: []string{"Dst", "Via", "Dev", "Table", "Metric", "Family"},
}

// routeUnwritten are the indexes of the fields of undo and of route that
// routeRecordFields does not name, and Route's index in undo: found once,
// by reflection over the types, so a field added to either is one
// routeOnly checks without an edit here.
var routeUnwritten = func() (w struct{ undo, route, routeField []int }) {
	others := func(t reflect.Type, written []string) []int {
		var idx []int
		for _, name := range written {
			if _, ok := t.FieldByName(name); !ok {
				panic("routeRecordFields: " + t.Name() + " has no field " + name)
			}
		}
		for i := range t.NumField() {
			if !slices.Contains(written, t.Field(i).Name) {
				idx = append(idx, i)
			}
		}
		return idx
	}
	ut := reflect.TypeFor[undo]()
	w.undo = others(ut, routeRecordFields.undo)
	w.route = others(reflect.TypeFor[route](), routeRecordFields.route)
	f, _ := ut.FieldByName("Route")
	w.routeField = f.Index
	return w
}()

// routeOnly reports whether u sets no field but those appendRouteRecord
// writes (routeRecordFields): every other field of undo and of its
// Route, now or added later, is zero (a nil slice, map or pointer, so an
// empty Nexthops, which encodes as [], is not). TestRouteOnlyFields sets
// each field in turn.
func routeOnly(u *undo) bool {
	v := reflect.ValueOf(u).Elem()
	for _, i := range routeUnwritten.undo {
		if !v.Field(i).IsZero() {
			return false
		}
	}
	r := v.FieldByIndex(routeUnwritten.routeField)
	for _, i := range routeUnwritten.route {
		if !r.Field(i).IsZero() {
			return false
		}
	}
	return true
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
