package ethtool

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Format shows ring or coalescing settings as name=value pairs sorted by
// name and joined with commas, such as "rx=512,tx=512".
func Format(m map[string]uint32) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}
