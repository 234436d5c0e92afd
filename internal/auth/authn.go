package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Authenticator runs steps 7–12 of the 04-security §3 pipeline: global
// allowlist, credential parsing, auth cache / Argon2 verification, status,
// expiry, per-key allowlist and per-key rate limit. It reads the key table
// from the View its backend publishes (Update) and never touches the store
// on the request path. Safe for concurrent use.
type Authenticator struct {
	now   func() time.Time
	cache *authCache
	ver   *verifier
	table atomic.Pointer[authTable]
	allow atomic.Pointer[[]netip.Prefix]

	hits, misses atomic.Uint64

	// flights holds one entry per credential hash whose Argon2 check is
	// running: concurrent misses of the same credential (50 gateway
	// connections authenticating at once) wait for it instead of each
	// running Argon2.
	flightMu sync.Mutex
	flights  map[[32]byte]chan struct{}

	mu        sync.Mutex // serialises Update and Sweep
	lastSweep int64      // ms
}

type authTable struct {
	keys map[string]*authKey
}

type authKey struct {
	k  *Key // immutable record from a View
	rt *keyRuntime
}

// keyRuntime is per-key state that survives table updates.
type keyRuntime struct {
	lim      *rate.Limiter
	limit    int          // guarded by Authenticator.mu
	lastUsed atomic.Int64 // ms; last successful authentication seen here
}

// NewAuthenticator builds an Authenticator with an empty key table; feed it
// with Update (NewManager subscribes it to the backend).
func NewAuthenticator(cfg Config) (*Authenticator, error) {
	cfg = cfg.withDefaults()
	slots := cfg.MaxConcurrentVerifications
	if slots <= 0 {
		slots = runtime.GOMAXPROCS(0)
	}
	ver, err := newVerifier(slots, cfg.Argon2)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{now: cfg.Now, ver: ver, cache: newAuthCache(cfg.CacheCapacity, int64(cfg.CacheTTL))}
	a.table.Store(&authTable{keys: map[string]*authKey{}})
	a.SetAllowList(cfg.AllowList)
	return a, nil
}

// SetArgon2Observer makes f receive the duration of every Argon2id
// verification (cache misses, including the dummy check of unknown key
// IDs), for tokmesh_auth_argon2_duration_seconds. f runs on the
// authenticating goroutine and must not block; nil stops the reports.
func (a *Authenticator) SetArgon2Observer(f func(time.Duration)) {
	if f == nil {
		a.ver.observe.Store(nil)
		return
	}
	a.ver.observe.Store(&f)
}

// SetAllowList replaces the global allowlist (hot reload). Empty = no restriction.
func (a *Authenticator) SetAllowList(list []netip.Prefix) {
	l := slices.Clone(list)
	a.allow.Store(&l)
}

// Update installs a new key table and purges auth-cache entries of keys
// whose status changed (CmdSetStatus). The backend calls it after every
// applied command; pass Change{} for an initial load.
func (a *Authenticator) Update(v *View, ch Change) {
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.table.Load()
	nt := &authTable{keys: make(map[string]*authKey, len(v.keys))}
	for id, k := range v.keys {
		var rt *keyRuntime
		if o := old.keys[id]; o != nil {
			rt = o.rt
			if rt.limit != k.RateLimit {
				rt.lim.SetLimit(rate.Limit(k.RateLimit))
				rt.lim.SetBurst(k.RateLimit)
				rt.limit = k.RateLimit
			}
		} else {
			rt = &keyRuntime{lim: rate.NewLimiter(rate.Limit(k.RateLimit), k.RateLimit), limit: k.RateLimit}
			rt.lastUsed.Store(k.LastUsedAt)
		}
		nt.keys[id] = &authKey{k: k, rt: rt}
	}
	a.table.Store(nt)
	if ch.Type == CmdSetStatus {
		for _, id := range ch.IDs {
			a.cache.purge(id, "")
		}
	}
}

// Sweep purges auth-cache entries of keys that expired, and of rotated-out
// secrets whose grace ended, since the previous Sweep. The Manager calls it
// every second; hits re-check both anyway, so this only frees entries early.
func (a *Authenticator) Sweep() {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now().UnixMilli()
	last := a.lastSweep
	a.lastSweep = now
	for id, ak := range a.table.Load().keys {
		k := ak.k
		if k.ExpiresAt != 0 && k.ExpiresAt >= last && k.ExpiresAt < now {
			a.cache.purge(id, "")
			continue
		}
		if k.PrevSecretHash != "" && k.RotationGraceUntil > last && k.RotationGraceUntil <= now {
			a.cache.purge(id, k.PrevSecretHash)
		}
	}
}

// Authenticate checks credential ("<key_id>:<secret>", "" when absent) from
// clientIP. Errors: ErrIPNotAllowed, ErrNoCredential, ErrBadCredential (bare
// for a malformed credential), *AuthFailure (unknown key, wrong secret,
// expired, disabled — audit it and, if BruteForce, count it),
// *RateLimitError, or a wrapped ctx error when no Argon2 slot freed up
// before the deadline. The caller then checks the role (Principal.Can).
func (a *Authenticator) Authenticate(ctx context.Context, credential string, clientIP netip.Addr) (*Principal, error) {
	clientIP = clientIP.Unmap()
	if al := *a.allow.Load(); len(al) > 0 && !containsAddr(al, clientIP) {
		return nil, ErrIPNotAllowed
	}
	if credential == "" {
		return nil, ErrNoCredential
	}
	keyID, secret, ok := ParseCredential(credential)
	if !ok {
		return nil, ErrBadCredential
	}
	var buf [CredentialLen]byte
	copy(buf[:], keyID)
	buf[KeyIDLen] = ':'
	copy(buf[KeyIDLen+1:], secret)
	sum := sha256.Sum256(buf[:])
	clear(buf[:])

	now := a.now()
	ak, matched := a.cached(&sum, keyID, now)
	if matched == "" {
		if done := a.joinFlight(&sum); done != nil {
			// Another caller is checking this exact credential: wait for
			// it, then retry the cache. If it failed (wrong secret,
			// overload) this caller runs its own check below.
			select {
			case <-done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return a.Authenticate(ctx, credential, clientIP)
		}
		defer a.endFlight(&sum)
		// The previous owner may have filled the cache between this
		// caller's miss and its joining: look again before Argon2.
		if ak, matched = a.cached(&sum, keyID, now); matched != "" {
			a.hits.Add(1)
			return a.admit(ak, matched, clientIP, now, true)
		}
		a.misses.Add(1)
		var err error
		ak, matched, err = a.verify(ctx, keyID, secret)
		if err != nil {
			return nil, err
		}
		now = a.now()
		if !ak.k.Expired(now.UnixMilli()) { // an expired key can never succeed again
			a.cache.put(&sum, keyID, matched, now.UnixNano())
		}
	} else {
		a.hits.Add(1)
	}
	return a.admit(ak, matched, clientIP, now, true)
}

// verify is step 9 on a cache miss.
// cached returns the key and the matched secret hash for a cache hit that
// is still valid in the key table ("" otherwise; a stale entry is removed).
// A hit skips only Argon2, never the key table checks.
func (a *Authenticator) cached(sum *[32]byte, keyID string, now time.Time) (*authKey, string) {
	cid, m, hit := a.cache.get(sum, now.UnixNano())
	if !hit || cid != keyID {
		return nil, ""
	}
	if ak := a.table.Load().keys[keyID]; ak != nil {
		if _, valid := ak.k.matchValid(m, now.UnixMilli()); valid {
			return ak, m
		}
	}
	a.cache.remove(sum)
	return nil, ""
}

// joinFlight returns nil when the caller now owns the check of this
// credential hash (it must call endFlight), else a channel closed when the
// owner's check ends.
func (a *Authenticator) joinFlight(sum *[32]byte) <-chan struct{} {
	a.flightMu.Lock()
	defer a.flightMu.Unlock()
	if ch, ok := a.flights[*sum]; ok {
		return ch
	}
	if a.flights == nil {
		a.flights = make(map[[32]byte]chan struct{})
	}
	a.flights[*sum] = make(chan struct{})
	return nil
}

func (a *Authenticator) endFlight(sum *[32]byte) {
	a.flightMu.Lock()
	ch := a.flights[*sum]
	delete(a.flights, *sum)
	a.flightMu.Unlock()
	close(ch)
}

func (a *Authenticator) verify(ctx context.Context, keyID, secret string) (*authKey, string, error) {
	ak := a.table.Load().keys[keyID]
	if ak == nil {
		if _, err := a.ver.verify(ctx, secret, a.ver.dummy); err != nil && !errors.Is(err, ErrBadHash) {
			return nil, "", err
		}
		return nil, "", &AuthFailure{Reason: ReasonUnknownKey, KeyID: keyID, Err: ErrBadCredential, BruteForce: true}
	}
	k := ak.k
	matched := ""
	ok, err := a.ver.verify(ctx, secret, k.SecretHash)
	if err != nil && !errors.Is(err, ErrBadHash) {
		return nil, "", err
	}
	if ok {
		matched = k.SecretHash
	} else if k.PrevSecretHash != "" && a.now().UnixMilli() < k.RotationGraceUntil {
		ok, err = a.ver.verify(ctx, secret, k.PrevSecretHash)
		if err != nil && !errors.Is(err, ErrBadHash) {
			return nil, "", err
		}
		if ok {
			matched = k.PrevSecretHash
		}
	}
	if matched != "" {
		// The table may have changed during Argon2 (rotation, grace end).
		if ak = a.table.Load().keys[keyID]; ak != nil {
			if _, valid := ak.k.matchValid(matched, a.now().UnixMilli()); valid {
				return ak, matched, nil
			}
		}
	}
	return nil, "", &AuthFailure{Reason: ReasonBadSecret, KeyID: keyID, Err: ErrBadCredential, BruteForce: true}
}

// admit runs steps 10–12 against the current record.
func (a *Authenticator) admit(ak *authKey, matched string, ip netip.Addr, now time.Time, fresh bool) (*Principal, error) {
	k := ak.k
	nowMs := now.UnixMilli()
	if k.Status != StatusActive {
		return nil, &AuthFailure{Reason: ReasonDisabled, KeyID: k.ID, Err: ErrKeyDisabled}
	}
	if k.Expired(nowMs) {
		return nil, &AuthFailure{Reason: ReasonExpired, KeyID: k.ID, Err: ErrBadCredential}
	}
	if len(k.AllowList) > 0 && !containsAddr(k.AllowList, ip) {
		return nil, ErrIPNotAllowed
	}
	if !ak.rt.lim.AllowN(now, 1) {
		return nil, &RateLimitError{KeyID: k.ID, RetryAfter: retryAfter(ak.rt.lim, now)}
	}
	for {
		old := ak.rt.lastUsed.Load()
		if nowMs-old < 1000 || ak.rt.lastUsed.CompareAndSwap(old, nowMs) {
			break
		}
	}
	if !fresh {
		return nil, nil
	}
	gen, _ := k.matchValid(matched, nowMs)
	p := &Principal{KeyID: k.ID, Role: k.Role, ClientIP: ip, Generation: gen, matched: matched}
	if t := a.table.Load(); t.keys[k.ID] == ak {
		p.ak, p.tbl = ak, t
	}
	return p, nil
}

// retryAfter is the time until one token is available, in whole seconds, ≥ 1 s.
func retryAfter(lim *rate.Limiter, now time.Time) time.Duration {
	missing := 1 - lim.TokensAt(now)
	secs := 1.0
	if l := float64(lim.Limit()); l > 0 && missing > 0 {
		secs = math.Max(1, math.Ceil(missing/l))
	}
	return time.Duration(secs) * time.Second
}

// Recheck re-validates an authenticated principal for a later command on an
// open RESP connection (steps 10–12, no Argon2): the matched secret is still
// valid (not rotated out past its grace), the key is active and unexpired,
// the principal's client IP passes the per-key allowlist, and the command
// fits the rate limit. LOCAL_ADMIN always passes.
func (a *Authenticator) Recheck(p *Principal) error {
	_, err := a.recheck(p)
	return err
}

// recheck is Recheck, also returning the generation the principal's secret
// has now (a rotation turns the current secret into the previous one).
func (a *Authenticator) recheck(p *Principal) (Generation, error) {
	if p == nil {
		return 0, ErrNoCredential
	}
	if p.Local {
		return p.Generation, nil
	}
	// The key as of the principal's admission while the table is the same
	// one (every key change publishes a new table), else a fresh lookup.
	t := a.table.Load()
	ak := p.ak
	if p.tbl != t || ak == nil {
		if ak = t.keys[p.KeyID]; ak == nil {
			return 0, &AuthFailure{Reason: ReasonUnknownKey, KeyID: p.KeyID, Err: ErrBadCredential}
		}
	}
	now := a.now()
	gen, valid := ak.k.matchValid(p.matched, now.UnixMilli())
	if !valid {
		return 0, &AuthFailure{Reason: ReasonBadSecret, KeyID: p.KeyID, Err: ErrBadCredential}
	}
	_, err := a.admit(ak, p.matched, p.ClientIP, now, false)
	return gen, err
}

// ConnMemo remembers, for one keep-alive HTTP connection, the credential
// that last authenticated on it, so that the next request carrying the same
// credential from the same client IP skips the credential hash and the
// auth-cache lookup — what a RESP connection gets from AUTH. It holds a
// keyed 128-bit hash of the credential (random per-process seeds), never
// the credential, and every reuse still runs the global allowlist and
// Recheck (key active and unexpired, secret not rotated out, per-key
// allowlist, rate limit). The zero value is ready; it is safe for
// concurrent use (HTTP/2 streams share a connection).
type ConnMemo struct {
	last atomic.Pointer[connMemoEntry]
}

type connMemoEntry struct {
	h1, h2 uint64
	ip     netip.Addr
	p      *Principal
}

var memoSeed1, memoSeed2 = maphash.MakeSeed(), maphash.MakeSeed()

// AuthenticateConn is Authenticate for a request on the connection of m
// (nil m: plain Authenticate). Its results are those of Authenticate: any
// failed re-check drops the memo and runs the full Authenticate, so errors,
// audit reasons and brute-force counting are the same as without the memo.
// A reuse counts as an auth-cache hit.
func (a *Authenticator) AuthenticateConn(ctx context.Context, m *ConnMemo, credential string, clientIP netip.Addr) (*Principal, error) {
	if m == nil || credential == "" {
		return a.Authenticate(ctx, credential, clientIP)
	}
	clientIP = clientIP.Unmap()
	h1, h2 := maphash.String(memoSeed1, credential), maphash.String(memoSeed2, credential)
	if e := m.last.Load(); e != nil && e.h1 == h1 && e.h2 == h2 && e.ip == clientIP {
		if al := *a.allow.Load(); len(al) > 0 && !containsAddr(al, clientIP) {
			return nil, ErrIPNotAllowed
		}
		if gen, err := a.recheck(e.p); err == nil && gen == e.p.Generation {
			a.hits.Add(1)
			return e.p, nil
		}
		m.last.CompareAndSwap(e, nil)
	}
	p, err := a.Authenticate(ctx, credential, clientIP)
	if err == nil {
		m.last.Store(&connMemoEntry{h1: h1, h2: h2, ip: clientIP, p: p})
	}
	return p, err
}

// lastUsedUpdates returns last_used_at values newer than the table's,
// ordered by key ID.
func (a *Authenticator) lastUsedUpdates() []Touch {
	var out []Touch
	for id, ak := range a.table.Load().keys {
		if lu := ak.rt.lastUsed.Load(); lu > ak.k.LastUsedAt {
			out = append(out, Touch{ID: id, At: lu})
		}
	}
	slices.SortFunc(out, func(x, y Touch) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// AuthStats are counters for metrics and tests.
type AuthStats struct {
	CacheHits     uint64
	CacheMisses   uint64
	Verifications uint64 // Argon2 runs, dummy runs included
	CacheEntries  int
}

// Stats returns the current counters.
func (a *Authenticator) Stats() AuthStats {
	return AuthStats{CacheHits: a.hits.Load(), CacheMisses: a.misses.Load(),
		Verifications: a.ver.runs.Load(), CacheEntries: a.cache.len()}
}

// CachedEntries returns how many auth-cache entries belong to keyID.
func (a *Authenticator) CachedEntries(keyID string) int { return a.cache.countKey(keyID) }

// hashSecret hashes under the Argon2 concurrency bound.
func (a *Authenticator) hashSecret(ctx context.Context, secret string, p Params) (string, error) {
	h, err := a.ver.hash(ctx, secret, p)
	if err != nil {
		return "", fmt.Errorf("hash secret: %w", err)
	}
	return h, nil
}
