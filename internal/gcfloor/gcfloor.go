// Package gcfloor owns the process's garbage-collector percentage: a floor
// under the heap goal while the node runs, and pauses while an engine
// recovers.
//
// With GOGC=100 the collector starts a cycle once the heap has grown by as
// much as was live after the last one. A node holding few sessions has a
// live heap of a few MiB (mostly fixed structures: metric families, shard
// tables, caches), so under request load it collects every few MiB of
// short-lived request garbage — about ten times a second — and every cycle
// marks that whole fixed heap again while the requests in flight run
// slower. The floor lifts the goal to at least Floor bytes by raising the
// percentage while the live heap is small; once the live heap passes half
// the floor the base percentage applies unchanged, so a large node keeps
// its memory profile (and GOMEMLIMIT still caps everything).
//
// An operator who sets GOGC keeps exactly that setting: the floor only
// starts when the environment does not name one.
package gcfloor

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultFloor is the heap goal the node keeps at least (64 MiB: an eighth
// of the 512 MiB the default configuration must stay under).
const DefaultFloor = 64 << 20

// maxPercent bounds the percentage the floor sets (a nearly empty heap).
const maxPercent = 10000

var state struct {
	sync.Mutex
	paused  int    // Pause calls not yet resumed
	held    int    // percentage to return to when the last pause ends
	floor   uint64 // 0: no floor running
	base    int    // the percentage in force when the floor started
	gen     uint64 // bumped by Start and stop; a sentinel of an older generation ends
	percent int    // the percentage last set by the floor
}

// Start keeps the heap goal at least floor bytes until stop is called,
// unless GOGC is set in the environment (then stop does nothing). The
// percentage is recomputed after every collection.
func Start(floor uint64) (stop func()) {
	if _, set := os.LookupEnv("GOGC"); set || floor == 0 {
		return func() {}
	}
	state.Lock()
	defer state.Unlock()
	if state.floor != 0 {
		return func() {} // one floor per process; the first owns it
	}
	state.gen++
	gen := state.gen
	state.floor = floor
	if state.paused > 0 { // recovery in progress: it stays paused
		state.base = state.held
	} else {
		state.base = currentPercent()
	}
	state.percent = state.base
	if state.paused == 0 {
		adjustLocked()
	}
	arm(gen)
	return func() {
		state.Lock()
		defer state.Unlock()
		if state.gen != gen || state.floor == 0 {
			return
		}
		state.gen++
		state.floor = 0
		if state.paused > 0 {
			state.held = state.base
		} else {
			debug.SetGCPercent(state.base)
		}
	}
}

// Pause stops the collector until resume is called (engine recovery: what
// it allocates stays live, so collections would only re-mark a growing
// heap). Pauses nest; the floor does not lift them. A GOMEMLIMIT still
// applies.
func Pause() (resume func()) {
	state.Lock()
	if state.paused == 0 {
		state.held = debug.SetGCPercent(-1)
	}
	state.paused++
	state.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			state.Lock()
			defer state.Unlock()
			state.paused--
			if state.paused == 0 {
				debug.SetGCPercent(state.held)
				if state.floor != 0 {
					adjustLocked()
				}
			}
		})
	}
}

// Percent reports the percentage the floor last chose (0: no floor).
func Percent() int {
	state.Lock()
	defer state.Unlock()
	if state.floor == 0 {
		return 0
	}
	return state.percent
}

// sentinel is an object whose finalizer runs after each collection that
// finds it unreachable; it re-arms itself for the next one.
type sentinel struct {
	gen uint64
	_   [16]byte // not a tiny allocation: those are batched and finalize late
}

func arm(gen uint64) {
	s := &sentinel{gen: gen}
	runtime.SetFinalizer(s, func(s *sentinel) {
		state.Lock()
		defer state.Unlock()
		if s.gen != state.gen || state.floor == 0 {
			return
		}
		if state.paused == 0 {
			adjustLocked()
		}
		arm(s.gen)
	})
}

var liveSample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}

// currentPercent reads the percentage in force without changing it.
func currentPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 100
	}
	return int(s[0].Value.Uint64())
}

// adjustLocked sets the percentage that puts the next goal at the floor
// (state locked, collector not paused).
func adjustLocked() {
	metrics.Read(liveSample)
	var live uint64
	if liveSample[0].Value.Kind() == metrics.KindUint64 {
		live = liveSample[0].Value.Uint64()
	}
	p := percentFor(live, state.floor, state.base)
	if p != state.percent {
		debug.SetGCPercent(p)
		state.percent = p
	}
}

// percentFor is the GC percentage whose goal, live × (1 + p/100), is at
// least floor, and never below base.
func percentFor(live, floor uint64, base int) int {
	if base < 0 {
		return base // collector off: leave it off
	}
	if live == 0 {
		live = 1 << 20
	}
	if live >= floor {
		return base
	}
	p := int(math.Ceil((float64(floor)/float64(live) - 1) * 100))
	return max(base, min(p, maxPercent))
}
