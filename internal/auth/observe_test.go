package auth

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// SetArgon2Observer sees every Argon2 run: a cache miss with the right
// secret, a wrong secret and an unknown key ID (dummy hash) each cost one;
// a cache hit costs none.
func TestArgon2Observer_ReportsEveryVerificationAndNoCacheHit(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var runs []time.Duration
	e.authn.SetArgon2Observer(func(d time.Duration) {
		mu.Lock()
		runs = append(runs, d)
		mu.Unlock()
	})
	_, cred := e.create(CreateRequest{})
	wrongSecret := cred[:len(cred)-1] + flip(cred[len(cred)-1])
	unknownKey := cred[:KeyIDLen-1] + flip(cred[KeyIDLen-1]) + cred[KeyIDLen:]
	for _, c := range []string{cred, cred, wrongSecret, unknownKey} {
		e.auth(c, "127.0.0.1")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != 3 {
		t.Fatalf("%d Argon2 runs observed, want 3 (miss, wrong secret, unknown key; the second call hits the cache)", len(runs))
	}
	for _, d := range runs {
		if d <= 0 {
			t.Fatalf("duration %v", d)
		}
	}
	e.authn.SetArgon2Observer(nil)
	e.auth(wrongSecret, "127.0.0.1")
	if len(runs) != 3 {
		t.Fatal("observed after the observer was removed")
	}
}

// flip returns another character of the same class (digit or letter).
func flip(c byte) string {
	switch {
	case c == '0':
		return "1"
	case c >= '1' && c <= '9':
		return "0"
	case c == 'a':
		return "b"
	}
	return "a"
}

// BlockedIPs counts IPs whose block is running now: not tracked IPs, not
// expired blocks.
func TestBruteForce_BlockedIPsCountsRunningBlocksOnly(t *testing.T) {
	clock := newClock()
	g := newGuard(clock, func(c *BruteForceConfig) { c.MaxAuthFailures = 2 })
	if g.BlockedIPs() != 0 {
		t.Fatal("fresh guard")
	}
	a, b, c := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("203.0.113.3")
	g.AuthFailure(c) // tracked, not blocked
	for range 2 {
		g.AuthFailure(a)
	}
	clock.Advance(time.Minute)
	for range 2 {
		g.AuthFailure(b)
	}
	if n := g.BlockedIPs(); n != 2 {
		t.Fatalf("BlockedIPs = %d, want 2", n)
	}
	clock.Advance(4*time.Minute + time.Second) // a's 5-minute block is over, b's is not
	if n := g.BlockedIPs(); n != 1 {
		t.Fatalf("BlockedIPs = %d after a's block ended, want 1", n)
	}
}
