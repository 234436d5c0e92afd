package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		live, floor uint64
		base, want  int
	}{
		{8 * mib, 64 * mib, 100, 700},        // goal 8 × 8 = 64 MiB
		{5 * mib, 64 * mib, 100, 1180},       // ceil: the goal is never below the floor
		{32 * mib, 64 * mib, 100, 100},       // half the floor: the base already gets there
		{500 * mib, 64 * mib, 100, 100},      // a large node keeps its profile
		{8 * mib, 64 * mib, 1000, 1000},      // never below the base
		{1024, 64 * mib, 100, maxPercent},    // bounded
		{0, 64 * mib, 100, 6300},             // unknown live heap: read as 1 MiB
		{8 * mib, 64 * mib, -1, -1},          // collector off stays off
		{60 * mib, 64 * mib, 100, 100},       // near the floor
		{63 * mib, 64 * mib, 50, 50},         // base below 100
		{16 * mib, 64 * mib, 100, 300},       // exact
		{3 * mib, 64 * mib, 100, 2034},       // 64/3 − 1 = 20.33…
		{mib / 2, 64 * mib, 100, maxPercent}, // 12700 % capped
	}
	for _, c := range cases {
		if got := percentFor(c.live, c.floor, c.base); got != c.want {
			t.Errorf("percentFor(%d, %d, %d) = %d, want %d", c.live, c.floor, c.base, got, c.want)
		}
	}
}

// gcPercent reads the percentage in force (SetGCPercent returns the old
// value; it is put straight back).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func noGOGC(t *testing.T) {
	t.Helper()
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
}

// waitPercent collects until the floor has re-run and reports want.
func waitPercent(t *testing.T, cond func(int) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		p := Percent()
		if cond(p) && gcPercent() == p {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("percent %d (in force %d), want %s", p, gcPercent(), what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFloorFollowsTheLiveHeap(t *testing.T) {
	noGOGC(t)
	base := gcPercent()
	stop := Start(256 << 20)
	// A small test heap: far below 256 MiB, so the percentage rises.
	waitPercent(t, func(p int) bool { return p > base }, "above the base")
	// A live heap above half the floor brings back the base.
	ballast := make([][]byte, 0, 160)
	for range 160 {
		ballast = append(ballast, make([]byte, 1<<20))
	}
	waitPercent(t, func(p int) bool { return p == base }, "the base with 160 MiB live")
	runtime.KeepAlive(ballast)
	ballast = nil
	waitPercent(t, func(p int) bool { return p > base }, "above the base again")
	stop()
	if p := gcPercent(); p != base {
		t.Fatalf("after stop the percentage is %d, want %d", p, base)
	}
	if Percent() != 0 {
		t.Fatal("Percent after stop")
	}
	stop() // twice is harmless
}

func TestPauseHoldsUnderTheFloor(t *testing.T) {
	noGOGC(t)
	base := gcPercent()
	stop := Start(256 << 20)
	defer stop()
	waitPercent(t, func(p int) bool { return p > base }, "above the base")
	floor := Percent()
	resume := Pause()
	inner := Pause()
	runtime.GC() // a finalizer run must not lift the pause
	time.Sleep(20 * time.Millisecond)
	if p := gcPercent(); p != -1 {
		t.Fatalf("paused: percentage %d", p)
	}
	inner()
	if p := gcPercent(); p != -1 {
		t.Fatalf("one pause left: percentage %d", p)
	}
	resume()
	resume() // idempotent: must not unbalance the count
	if p := gcPercent(); p < base || p != Percent() {
		t.Fatalf("resumed: percentage %d, floor %d (was %d)", p, Percent(), floor)
	}
}

func TestPauseWithoutFloorRestoresTheSetting(t *testing.T) {
	old := debug.SetGCPercent(250)
	defer debug.SetGCPercent(old)
	resume := Pause()
	if p := gcPercent(); p != -1 {
		t.Fatalf("paused: %d", p)
	}
	resume()
	if p := gcPercent(); p != 250 {
		t.Fatalf("resumed: %d, want 250", p)
	}
}

func TestStartDuringPauseKeepsThePause(t *testing.T) {
	noGOGC(t)
	base := gcPercent()
	resume := Pause()
	stop := Start(256 << 20)
	if p := gcPercent(); p != -1 {
		t.Fatalf("Start lifted a pause: %d", p)
	}
	resume()
	waitPercent(t, func(p int) bool { return p > base }, "the floor once resumed")
	stop()
	if p := gcPercent(); p != base {
		t.Fatalf("after stop: %d, want %d", p, base)
	}
}

func TestOperatorGOGCWins(t *testing.T) {
	t.Setenv("GOGC", "100")
	base := gcPercent()
	stop := Start(256 << 20)
	defer stop()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	runtime.GC()
	if Percent() != 0 || gcPercent() != base {
		t.Fatalf("GOGC set: floor %d, percentage %d", Percent(), gcPercent())
	}
}
