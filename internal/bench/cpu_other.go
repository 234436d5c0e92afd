//go:build !unix

package bench

// cpuSeconds is unknown on this platform.
func cpuSeconds() float64 { return -1 }
