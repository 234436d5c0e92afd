package auth

import (
	"net/netip"
	"testing"
	"time"
)

func newGuard(clock *fakeClock, mutate ...func(*BruteForceConfig)) *BruteForceGuard {
	cfg := testConfig(clock)
	for _, f := range mutate {
		f(&cfg.BruteForce)
	}
	return NewBruteForceGuard(cfg)
}

func TestBruteForce_TwentyAuthFailuresBlockTheIP(t *testing.T) {
	clock := newClock()
	g := newGuard(clock)
	ip := netip.MustParseAddr("203.0.113.7")
	for i := 1; i < 20; i++ {
		if g.AuthFailure(ip) {
			t.Fatalf("blocked after %d failures", i)
		}
		if b, _ := g.Blocked(ip); b {
			t.Fatalf("blocked after %d failures", i)
		}
		clock.Advance(time.Second)
	}
	if !g.BlockedUntil(ip).IsZero() {
		t.Fatal("BlockedUntil before the block")
	}
	if !g.AuthFailure(ip) {
		t.Fatal("20th failure did not block")
	}
	if got, want := g.BlockedUntil(ip), clock.Now().Add(5*time.Minute); !got.Equal(want) {
		t.Fatalf("BlockedUntil = %v, want %v", got, want)
	}
	blocked, retry := g.Blocked(ip)
	if !blocked || retry != 5*time.Minute {
		t.Fatalf("blocked %v retry %v", blocked, retry)
	}
	if b, _ := g.Blocked(netip.MustParseAddr("203.0.113.8")); b {
		t.Fatal("another IP blocked")
	}
	if g.AuthFailure(ip) {
		t.Fatal("a failure during the block reported a new block")
	}
	clock.Advance(5*time.Minute - 1500*time.Millisecond)
	if b, retry := g.Blocked(ip); !b || retry != 2*time.Second {
		t.Fatalf("retry rounds up: %v %v", b, retry)
	}
	clock.Advance(1500 * time.Millisecond)
	if b, _ := g.Blocked(ip); b || !g.BlockedUntil(ip).IsZero() {
		t.Fatal("still blocked after block_duration")
	}
	if g.AuthFailure(ip) {
		t.Fatal("counts were not reset by the block")
	}
}

func TestBruteForce_WindowSlides(t *testing.T) {
	clock := newClock()
	g := newGuard(clock)
	ip := netip.MustParseAddr("2001:db8::9")
	for range 15 {
		g.AuthFailure(ip)
	}
	clock.Advance(61 * time.Second)
	for i := range 15 {
		if g.AuthFailure(ip) {
			t.Fatalf("blocked by failures older than the window (%d)", i)
		}
	}
	clock.Advance(30 * time.Second) // the second 15 are still inside
	for i := range 5 {
		if blocked := g.AuthFailure(ip); blocked != (i == 4) {
			t.Fatalf("failure %d: blocked %v", 16+i, blocked)
		}
	}
}

func TestBruteForce_TokenFailuresHaveTheirOwnThreshold(t *testing.T) {
	clock := newClock()
	g := newGuard(clock)
	ip := netip.MustParseAddr("198.51.100.1")
	for i := 1; i < 100; i++ {
		if g.TokenFailure(ip) {
			t.Fatalf("blocked after %d token failures", i)
		}
	}
	if !g.TokenFailure(ip) {
		t.Fatal("100th token failure did not block")
	}
}

func TestBruteForce_ExemptAndDisabledNeverBlock(t *testing.T) {
	clock := newClock()
	g := newGuard(clock, func(b *BruteForceConfig) { b.Exempt = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	ip := netip.MustParseAddr("10.2.3.4")
	for range 1000 {
		if g.AuthFailure(ip) || g.TokenFailure(ip) {
			t.Fatal("exempt IP blocked")
		}
	}
	if b, _ := g.Blocked(ip); b || g.Tracked() != 0 {
		t.Fatal("exempt IP tracked")
	}
	if g.AuthFailure(netip.Addr{}) {
		t.Fatal("invalid IP tracked")
	}
	off := newGuard(clock, func(b *BruteForceConfig) { b.Enabled = false })
	for range 100 {
		if off.AuthFailure(netip.MustParseAddr("192.0.2.1")) {
			t.Fatal("disabled guard blocked")
		}
	}
}

func TestBruteForce_IPv4MappedCountsAsIPv4(t *testing.T) {
	clock := newClock()
	g := newGuard(clock, func(b *BruteForceConfig) { b.MaxAuthFailures = 2 })
	g.AuthFailure(netip.MustParseAddr("::ffff:192.0.2.1"))
	if !g.AuthFailure(netip.MustParseAddr("192.0.2.1")) {
		t.Fatal("mapped and plain forms counted separately")
	}
}

func TestBruteForce_TrackedIPsAreBounded(t *testing.T) {
	clock := newClock()
	g := newGuard(clock, func(b *BruteForceConfig) { b.MaxTrackedIPs = 160 })
	blocked := netip.MustParseAddr("192.0.2.200")
	for range 20 {
		g.AuthFailure(blocked)
	}
	for i := range 5000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		g.AuthFailure(a)
		if i%20 == 0 {
			g.Blocked(blocked) // an IP that keeps trying stays recent
		}
		if g.Tracked() > 160 {
			t.Fatalf("%d tracked IPs", g.Tracked())
		}
	}
	if b, _ := g.Blocked(blocked); !b {
		t.Fatal("recently seen blocked IP was evicted")
	}
}

// checkBlockedCount: the fast-path counter equals the tracked IPs with a
// block set (expired ones included until looked at).
func checkBlockedCount(t *testing.T, g *BruteForceGuard) {
	t.Helper()
	n := 0
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		for _, e := range s.m {
			if e.blockedUntil != 0 {
				n++
			}
		}
		s.mu.Unlock()
	}
	if got := g.blocked.Load(); int(got) != n {
		t.Fatalf("blocked counter %d, %d IPs carry a block", got, n)
	}
}

// TestBruteForce_BlockedCounterFollowsBlocksExpiryAndEviction covers the
// counter behind Blocked's lock-free fast path: set by a block, cleared by
// the expiry a lookup or a later failure finds, and by eviction — and a
// blocked IP is always reported while its block runs.
func TestBruteForce_BlockedCounterFollowsBlocksExpiryAndEviction(t *testing.T) {
	clock := newClock()
	g := newGuard(clock, func(b *BruteForceConfig) { b.MaxTrackedIPs = 32 })
	ips := make([]netip.Addr, 6)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})
		for range 20 {
			g.AuthFailure(ips[i])
		}
		checkBlockedCount(t, g)
		if b, _ := g.Blocked(ips[i]); !b {
			t.Fatalf("%v not blocked", ips[i])
		}
	}
	clock.Advance(6 * time.Minute)
	g.Blocked(ips[0])     // expiry found by a lookup
	g.AuthFailure(ips[1]) // expiry found by a failure
	checkBlockedCount(t, g)
	for i := range 2000 { // evict the rest, blocks still set
		g.AuthFailure(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}))
	}
	checkBlockedCount(t, g)
	if g.blocked.Load() != 0 {
		t.Fatalf("counter %d after every blocked IP expired or was evicted", g.blocked.Load())
	}
	if b, _ := g.Blocked(ips[2]); b {
		t.Fatal("evicted IP still blocked")
	}
}
