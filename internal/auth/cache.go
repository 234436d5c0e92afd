package auth

import "sync"

// authCache is the auth cache of 04-security §3: a sharded LRU keyed by
// SHA-256(key_id ":" secret) with a TTL from insertion. The value is the key
// ID and the PHC string the secret matched, never the secret. Each shard is
// an LRU of capacity/shards entries, so recency is per shard (a close
// approximation of one global LRU, since keys are uniform hashes).
type authCache struct {
	shards [cacheShards]cacheShard
	ttl    int64 // ns
}

const cacheShards = 16

type cacheShard struct {
	mu   sync.Mutex
	m    map[[32]byte]*cacheEntry
	head cacheEntry // sentinel: head.next is the most recent
	cap  int
}

type cacheEntry struct {
	sum        [32]byte
	keyID      string
	matched    string
	expires    int64 // ns
	prev, next *cacheEntry
}

func newAuthCache(capacity int, ttlNs int64) *authCache {
	c := &authCache{ttl: ttlNs}
	per := (capacity + cacheShards - 1) / cacheShards
	if per < 1 {
		per = 1
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.m = make(map[[32]byte]*cacheEntry, per)
		s.head.next, s.head.prev = &s.head, &s.head
		s.cap = per
	}
	return c
}

func (c *authCache) shard(sum *[32]byte) *cacheShard { return &c.shards[sum[0]%cacheShards] }

func (s *cacheShard) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (s *cacheShard) pushFront(e *cacheEntry) {
	e.next, e.prev = s.head.next, &s.head
	s.head.next.prev = e
	s.head.next = e
}

// get returns the entry's key ID and matched hash when present and fresh.
func (c *authCache) get(sum *[32]byte, nowNs int64) (keyID, matched string, ok bool) {
	s := c.shard(sum)
	s.mu.Lock()
	e := s.m[*sum]
	if e == nil {
		s.mu.Unlock()
		return "", "", false
	}
	if nowNs >= e.expires {
		s.unlink(e)
		delete(s.m, *sum)
		s.mu.Unlock()
		return "", "", false
	}
	if s.head.next != e {
		s.unlink(e)
		s.pushFront(e)
	}
	keyID, matched = e.keyID, e.matched
	s.mu.Unlock()
	return keyID, matched, true
}

func (c *authCache) put(sum *[32]byte, keyID, matched string, nowNs int64) {
	s := c.shard(sum)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[*sum]; e != nil {
		e.keyID, e.matched, e.expires = keyID, matched, nowNs+c.ttl
		s.unlink(e)
		s.pushFront(e)
		return
	}
	for len(s.m) >= s.cap {
		last := s.head.prev
		s.unlink(last)
		delete(s.m, last.sum)
	}
	e := &cacheEntry{sum: *sum, keyID: keyID, matched: matched, expires: nowNs + c.ttl}
	s.m[*sum] = e
	s.pushFront(e)
}

func (c *authCache) remove(sum *[32]byte) {
	s := c.shard(sum)
	s.mu.Lock()
	if e := s.m[*sum]; e != nil {
		s.unlink(e)
		delete(s.m, *sum)
	}
	s.mu.Unlock()
}

// purge removes entries of keyID; with matched != "" only those that
// matched that hash (grace end of a rotated-out secret). It returns the
// number removed. O(entries); purges are rare control-plane events.
func (c *authCache) purge(keyID, matched string) int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for sum, e := range s.m {
			if e.keyID == keyID && (matched == "" || e.matched == matched) {
				s.unlink(e)
				delete(s.m, sum)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// countKey returns the number of entries for keyID (tests, metrics).
func (c *authCache) countKey(keyID string) int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, e := range s.m {
			if e.keyID == keyID {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

func (c *authCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
