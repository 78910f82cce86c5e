package agent

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAppendRouteRecord checks the hand-encoded add record of a route's
// undo against encodeRecord's, byte for byte, and that an entry it does
// not encode leaves the buffer as it was.
func TestAppendRouteRecord(t *testing.T) {
	encoded := []undo{
		{Seq: 1, Group: "s/T#1", Op: opDelRoute, Route: route{Dst: "198.19.0.1/32", Via: "198.18.200.2"}},
		{Seq: 1 << 40, Group: "g", Host: "h1", Op: opDelRoute, Route: route{Dst: "2001:db8::/64", Dev: "v0", Table: 100, Metric: 7, Family: 10}},
		{Seq: 3, Group: "", Op: opAddRoute, Route: route{Dst: "default", Via: "198.18.0.1", Dev: "eth0", Metric: -1}},
		{Seq: 4, Group: "g", Op: opDelRoute, Route: route{Dst: "198.19.0.0/16", Table: 254}},
	}
	for _, u := range encoded {
		want, err := encodeRecord(journalRecord{Op: recordAdd, Entry: &u})
		require.NoError(t, err)
		got, ok := appendRouteRecord([]byte("x"), &u)
		require.True(t, ok, "%s", u)
		assert.Equal(t, string(want), string(got[1:]), "%s", u)
		assert.Equal(t, want, got[1:])
	}
	mtu := 1500
	left := []undo{
		{Seq: 5, Group: "<g>", Op: opDelRoute, Route: route{Dst: "198.19.0.1/32"}},
		{Seq: 6, Group: "g", Op: opDelRoute, Route: route{Dst: "198.19.0.1/32", Dev: "é0"}},
		{Seq: 7, Group: "g\"", Op: opDelRoute, Route: route{Dst: "198.19.0.1/32"}},
		{Seq: 8, Group: "g", Op: opDelRoute, Route: route{Dst: "198.19.0.1/32", Nexthops: []nexthop{{Via: "198.18.0.1"}}}},
		{Seq: 9, Group: "g", Op: opDelRoute, Route: route{Via: "198.18.0.1"}},
		{Seq: 10, Group: "g", Op: opSetLink, Link: "v0", MTU: &mtu},
		{Seq: 11, Group: "g", Op: opDelRoute, Route: route{Dst: "198.19.0.1/32"}, HWAddr: []byte{}},
		{Seq: 12, Group: "g", Op: opDelRoute, Route: route{Dst: "198.19.0.1/32", Dev: "vx0", Encap: &encap{ID: 42, Dst: "198.18.1.2"}}},
	}
	for _, u := range left {
		got, ok := appendRouteRecord([]byte("x"), &u)
		assert.False(t, ok, "%+v", u)
		assert.Equal(t, []byte("x"), got)
	}
}

// TestRouteOnlyFields sets each field of undo in turn on a route's undo:
// routeOnly must refuse every field but the ones appendRouteRecord
// writes, so a field added to undo later is not silently left out of the
// journal.
func TestRouteOnlyFields(t *testing.T) {
	written := map[string]bool{"Seq": true, "Group": true, "Host": true, "Op": true, "Route": true}
	typ := reflect.TypeFor[undo]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		u := undo{Seq: 1, Group: "g", Op: opDelRoute, Route: route{Dst: "198.19.0.1/32"}}
		v := reflect.ValueOf(&u).Elem().Field(i)
		if f.Name != "Route" {
			setNonZero(t, v)
		}
		assert.Equal(t, written[f.Name], routeOnly(&u), "undo with %s set", f.Name)
		sameRecord(t, &u, "undo with %s set", f.Name)
	}
	u := undo{Seq: 1, Group: "g", Op: opDelRoute, Route: route{Dst: "198.19.0.1/32", Nexthops: []nexthop{}}}
	assert.False(t, routeOnly(&u), "an empty, non-nil Nexthops encodes as []")

	// The same for route's own fields: appendRouteRecord writes these.
	routeWritten := map[string]bool{"Dst": true, "Via": true, "Dev": true, "Table": true, "Metric": true, "Family": true}
	rtyp := reflect.TypeFor[route]()
	for i := range rtyp.NumField() {
		f := rtyp.Field(i)
		u := undo{Seq: 1, Group: "g", Op: opDelRoute, Route: route{Dst: "198.19.0.1/32"}}
		if f.Name != "Dst" {
			setNonZero(t, reflect.ValueOf(&u.Route).Elem().Field(i))
		}
		assert.Equal(t, routeWritten[f.Name], routeOnly(&u), "route with %s set", f.Name)
		sameRecord(t, &u, "route with %s set", f.Name)
	}
}

// sameRecord checks that appendRouteRecord either leaves u to
// encodeRecord or writes what encodeRecord writes, byte for byte: a field
// routeOnly lets through is one appendRouteRecord writes.
func sameRecord(t *testing.T, u *undo, msg string, args ...any) {
	t.Helper()
	got, ok := appendRouteRecord(nil, u)
	if !ok {
		return
	}
	want, err := encodeRecord(journalRecord{Op: recordAdd, Entry: u})
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), append([]any{msg}, args...)...)
}

// TestEncapRouteRecord checks that an encap route's undo, which
// appendRouteRecord leaves to encodeRecord, comes back from the journal
// file with its encap whole.
func TestEncapRouteRecord(t *testing.T) {
	u := undo{Seq: 12, Group: "g", Op: opDelRoute, Route: route{Dst: "2001:db8:77::/64", Dev: "vx0",
		Encap: &encap{ID: 1 << 40, Dst: "198.18.1.2", Src: "198.18.1.1", TTL: 64, Tos: 4, Csum: true, Key: true, Seq: true}}}
	rec, err := encodeRecord(journalRecord{Op: recordAdd, Entry: &u})
	require.NoError(t, err)
	var back journalRecord
	require.NoError(t, json.Unmarshal(rec[recordHeaderLen:], &back))
	require.NotNil(t, back.Entry)
	assert.Equal(t, u.Route, back.Entry.Route)
}

// setNonZero gives v a value that is not its type's zero.
func setNonZero(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
	default:
		t.Fatalf("undo field of kind %v: teach setNonZero about it", v.Kind())
	}
}
