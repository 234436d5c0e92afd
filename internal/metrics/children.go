package metrics

import (
	"sync"
	"sync/atomic"
)

// cowMap is a copy-on-write map for pre-resolved metric children: reads are
// one atomic load and one map lookup (no lock, no allocation), writes copy
// the map under mu. It suits small key sets that stop growing after
// warm-up (route × method × status, op × result).
type cowMap[K comparable, V any] struct {
	p  atomic.Pointer[map[K]V]
	mu sync.Mutex // serialises writers
}

func (c *cowMap[K, V]) load(k K) (V, bool) {
	if m := c.p.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// storeLocked adds k → v; c.mu must be held.
func (c *cowMap[K, V]) storeLocked(k K, v V) {
	old := c.p.Load()
	n := 1
	if old != nil {
		n += len(*old)
	}
	m := make(map[K]V, n)
	if old != nil {
		for ok, ov := range *old {
			m[ok] = ov
		}
	}
	m[k] = v
	c.p.Store(&m)
}

// indexOf returns the position of s in vals, or -1. The enums it serves
// have at most a handful of values, so a scan beats a map.
func indexOf(vals []string, s string) int {
	for i, v := range vals {
		if v == s {
			return i
		}
	}
	return -1
}

// normMethod maps an HTTP method to a constant label value. Methods are
// client-controlled on unmatched paths, so anything unusual becomes
// "other" instead of a new series.
func normMethod(m string) string {
	switch m {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "HEAD":
		return "HEAD"
	case "PUT":
		return "PUT"
	case "PATCH":
		return "PATCH"
	case "DELETE":
		return "DELETE"
	case "OPTIONS":
		return "OPTIONS"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	}
	return "other"
}
