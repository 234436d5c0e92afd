package auth

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// BruteForceGuard blocks client IPs that fail too often (04-security §4):
// ≥ MaxAuthFailures failed key verifications or ≥ MaxTokenFailures failed
// token validations within Window block the IP for BlockDuration. The
// failure that reaches a threshold still gets its normal answer; requests
// after it are blocked. Exempt CIDRs are never counted.
//
// The window slides in Window/10 steps: failures are counted in ten
// buckets, and only buckets that lie entirely within the last Window count,
// so a failure is forgotten between 0.9 and 1.0 × Window after it happened.
// At most MaxTrackedIPs are tracked (per-shard LRU, least recent evicted).
// Safe for concurrent use.
type BruteForceGuard struct {
	now    func() time.Time
	cfg    atomic.Pointer[BruteForceConfig]
	seed   maphash.Seed
	shards [guardShards]guardShard
	// blocked counts tracked IPs whose blockedUntil is set (expired ones
	// included until they are looked at or evicted), changed under the
	// shard locks. While it is zero no IP can be blocked, so Blocked — on
	// every request and RESP command — answers without hashing or locking.
	blocked atomic.Int32
}

const (
	guardShards  = 16
	guardBuckets = 10
)

type guardShard struct {
	mu   sync.Mutex
	m    map[netip.Addr]*ipState
	head ipState // sentinel; head.next is the most recent
	cap  int
}

type ipState struct {
	addr         netip.Addr
	blockedUntil int64 // ns; 0 = not blocked
	gran         int64 // bucket width (ns) the counts were made with
	stamp        [guardBuckets]int64
	auth, token  [guardBuckets]uint32
	prev, next   *ipState
}

// NewBruteForceGuard builds a guard from cfg.BruteForce and cfg.Now.
func NewBruteForceGuard(cfg Config) *BruteForceGuard {
	cfg = cfg.withDefaults()
	g := &BruteForceGuard{now: cfg.Now, seed: maphash.MakeSeed()}
	bf := cfg.BruteForce
	g.cfg.Store(&bf)
	per := max(1, (bf.MaxTrackedIPs+guardShards-1)/guardShards)
	for i := range g.shards {
		s := &g.shards[i]
		s.m = make(map[netip.Addr]*ipState)
		s.head.next, s.head.prev = &s.head, &s.head
		s.cap = per
	}
	return g
}

// SetConfig applies hot-reloaded settings (enabled, window, thresholds,
// block duration, exempt). MaxTrackedIPs is fixed at construction. Counts
// made with another window are discarded lazily; blocks stay.
func (g *BruteForceGuard) SetConfig(bf BruteForceConfig) {
	bf = bf.withDefaults()
	g.cfg.Store(&bf)
}

func (g *BruteForceGuard) shard(a netip.Addr) *guardShard {
	b := a.As16()
	return &g.shards[maphash.Bytes(g.seed, b[:])%guardShards]
}

func (s *guardShard) unlink(e *ipState) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (s *guardShard) pushFront(e *ipState) {
	e.next, e.prev = s.head.next, &s.head
	s.head.next.prev = e
	s.head.next = e
}

func (s *guardShard) touch(e *ipState) {
	if s.head.next != e {
		s.unlink(e)
		s.pushFront(e)
	}
}

func (g *BruteForceGuard) exempt(cfg *BruteForceConfig, a netip.Addr) bool {
	return !cfg.Enabled || !a.IsValid() || containsAddr(cfg.Exempt, a)
}

// BlockedUntil is when ip's current block ends; the zero Time when it is
// not blocked (the auth.ip_blocked audit record's "until").
func (g *BruteForceGuard) BlockedUntil(ip netip.Addr) time.Time {
	if g.blocked.Load() == 0 {
		return time.Time{}
	}
	ip = ip.Unmap()
	s := g.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[ip]; e != nil && e.blockedUntil > g.now().UnixNano() {
		return time.Unix(0, e.blockedUntil)
	}
	return time.Time{}
}

// Blocked reports whether ip is blocked and for how long (rounded up to
// whole seconds, ≥ 1 s: the Retry-After value). A blocked IP's recency is
// refreshed, so an IP that keeps trying is not evicted first.
func (g *BruteForceGuard) Blocked(ip netip.Addr) (bool, time.Duration) {
	if g.blocked.Load() == 0 {
		return false, 0
	}
	ip = ip.Unmap()
	cfg := g.cfg.Load()
	if g.exempt(cfg, ip) {
		return false, 0
	}
	s := g.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[ip]
	if e == nil || e.blockedUntil == 0 {
		return false, 0
	}
	now := g.now().UnixNano()
	if now >= e.blockedUntil {
		e.blockedUntil = 0
		g.blocked.Add(-1)
		return false, 0
	}
	s.touch(e)
	left := time.Duration(e.blockedUntil - now)
	return true, ((left + time.Second - 1) / time.Second) * time.Second
}

// AuthFailure records a failed key verification (AuthFailure.BruteForce)
// from ip; nowBlocked is true when this failure started a block (audit
// auth.ip_blocked; the failure itself still gets its 401).
func (g *BruteForceGuard) AuthFailure(ip netip.Addr) (nowBlocked bool) { return g.fail(ip, false) }

// TokenFailure records a failed token validation (TM-TOKN-4000 or 4010;
// not expired or revoked) from ip; nowBlocked as for AuthFailure.
func (g *BruteForceGuard) TokenFailure(ip netip.Addr) (nowBlocked bool) { return g.fail(ip, true) }

func (g *BruteForceGuard) fail(ip netip.Addr, token bool) bool {
	ip = ip.Unmap()
	cfg := g.cfg.Load()
	if g.exempt(cfg, ip) {
		return false
	}
	now := g.now().UnixNano()
	gran := max(int64(cfg.Window)/guardBuckets, 1)
	bucket := now / gran
	s := g.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[ip]
	if e == nil {
		for len(s.m) >= s.cap {
			last := s.head.prev
			s.unlink(last)
			delete(s.m, last.addr)
			if last.blockedUntil != 0 {
				g.blocked.Add(-1)
			}
		}
		e = &ipState{addr: ip, gran: gran}
		s.m[ip] = e
		s.pushFront(e)
	} else {
		s.touch(e)
	}
	if e.blockedUntil != 0 {
		if now < e.blockedUntil {
			return false // in flight when the block began; already blocked
		}
		e.blockedUntil = 0
		g.blocked.Add(-1)
	}
	if e.gran != gran {
		e.stamp, e.auth, e.token, e.gran = [guardBuckets]int64{}, [guardBuckets]uint32{}, [guardBuckets]uint32{}, gran
	}
	slot := int(bucket % guardBuckets)
	if e.stamp[slot] != bucket {
		e.stamp[slot], e.auth[slot], e.token[slot] = bucket, 0, 0
	}
	counts, limit := &e.auth, cfg.MaxAuthFailures
	if token {
		counts, limit = &e.token, cfg.MaxTokenFailures
	}
	if counts[slot] < ^uint32(0) {
		counts[slot]++
	}
	total := 0
	for i := range guardBuckets {
		// Count only buckets entirely inside the window (the current one
		// and the nine before it).
		if e.stamp[i] > bucket-guardBuckets && e.stamp[i] <= bucket {
			total += int(counts[i])
		}
	}
	if total < limit {
		return false
	}
	e.blockedUntil = now + int64(cfg.BlockDuration)
	g.blocked.Add(1)
	e.stamp, e.auth, e.token = [guardBuckets]int64{}, [guardBuckets]uint32{}, [guardBuckets]uint32{}
	return true
}

// BlockedIPs returns the number of client IPs blocked right now
// (tokmesh_bruteforce_blocked_ips). While no IP is blocked it costs one
// atomic load; otherwise it visits the tracked IPs shard by shard, for the
// metrics scrape, not for the request path.
func (g *BruteForceGuard) BlockedIPs() int {
	if g.blocked.Load() == 0 {
		return 0
	}
	now := g.now().UnixNano()
	n := 0
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		for _, e := range s.m {
			if e.blockedUntil != 0 && now < e.blockedUntil {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Tracked returns the number of tracked IPs (metrics, tests).
func (g *BruteForceGuard) Tracked() int {
	n := 0
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
