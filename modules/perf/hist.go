package perf

import (
	"math"
	"math/bits"
	"slices"
	"time"
)

// histSubBits sets a Histogram's precision: values below 1<<histSubBits
// ns have a bucket each, larger ones buckets 1/128 of their magnitude
// wide (under 0.8% apart).
const histSubBits = 8

// Histogram counts latencies in log-linear buckets of nanoseconds, as
// HdrHistogram does: exact below 256 ns, within 0.8% above. Its JSON is
// small enough to travel with each reporting interval.
type Histogram struct {
	// Counts are the bucket counts by bucket index (see histBucket).
	Counts map[int]uint64 `json:"counts,omitempty"`
	// N is the number of values; Max the largest, exact.
	N   uint64        `json:"n"`
	Max time.Duration `json:"max"`
}

// histBucket is the bucket index of v ns.
func histBucket(v int64) int {
	if v < 1<<histSubBits {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - histSubBits // v>>shift in [128, 256)
	return shift<<(histSubBits-1) + int(v>>shift)
}

// histValue is the value a bucket stands for: its middle.
func histValue(idx int) time.Duration {
	if idx < 1<<histSubBits {
		return time.Duration(idx)
	}
	shift := idx>>(histSubBits-1) - 1
	low := int64(idx-shift<<(histSubBits-1)) << shift
	return time.Duration(low + (int64(1)<<shift-1)/2)
}

// Add counts one value.
func (h *Histogram) Add(d time.Duration) {
	if h.Counts == nil {
		h.Counts = map[int]uint64{}
	}
	h.Counts[histBucket(int64(d))]++
	h.N++
	h.Max = max(h.Max, d)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.N == 0 {
		return
	}
	if h.Counts == nil {
		h.Counts = map[int]uint64{}
	}
	for k, c := range o.Counts {
		h.Counts[k] += c
	}
	h.N += o.N
	h.Max = max(h.Max, o.Max)
}

// Percentile returns the nearest-rank p-quantile (p in (0, 1]): the
// smallest value that at least p of the values do not exceed, as its
// bucket's middle, capped at Max; Max itself for p = 1; 0 when empty.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.N == 0 {
		return 0
	}
	if p >= 1 {
		return h.Max
	}
	rank := uint64(math.Ceil(p * float64(h.N)))
	rank = max(rank, 1)
	keys := make([]int, 0, len(h.Counts))
	for k := range h.Counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var seen uint64
	for _, k := range keys {
		seen += h.Counts[k]
		if seen >= rank {
			return min(histValue(k), h.Max)
		}
	}
	return h.Max
}
