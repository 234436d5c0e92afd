package auth

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAuthenticate_Pipeline(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.AllowList = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	})
	_, good := e.create(CreateRequest{Role: RoleIssuer})
	dis, disCred := e.create(CreateRequest{})
	if _, _, err := e.mgr.SetStatus(e.ctx, dis.ID, StatusDisabled); err != nil {
		t.Fatal(err)
	}
	_, expCred := e.create(CreateRequest{ExpiresAt: e.clock.Now().Add(time.Minute).UnixMilli()})
	_, narrowCred := e.create(CreateRequest{AllowList: []string{"10.1.0.0/16", "2001:db8::7"}})
	e.clock.Advance(2 * time.Minute) // expCred is now expired

	goodID, _, _ := ParseCredential(good)
	unknown := "tmak-01jh8v9k2c3n4p5q6r7s8t9v0w" + good[31:]
	wrongSecret := good[:32] + NewSecret()

	for _, tc := range []struct {
		name       string
		cred, ip   string
		wantErr    error
		reason     string
		bruteForce bool
	}{
		{"valid key", good, "10.9.9.9", nil, "", false},
		{"key id in upper case", strings.ToUpper(good[:31]) + good[31:], "10.9.9.9", nil, "", false},
		{"IPv4-mapped client IP", good, "::ffff:10.9.9.9", nil, "", false},
		{"no credential", "", "10.9.9.9", ErrNoCredential, "", false},
		{"unparsable credential", "Basic abc", "10.9.9.9", ErrBadCredential, "", false},
		{"unknown key", unknown, "10.9.9.9", ErrBadCredential, ReasonUnknownKey, true},
		{"wrong secret", wrongSecret, "10.9.9.9", ErrBadCredential, ReasonBadSecret, true},
		{"disabled key", disCred, "10.9.9.9", ErrKeyDisabled, ReasonDisabled, false},
		{"expired key", expCred, "10.9.9.9", ErrBadCredential, ReasonExpired, false},
		{"outside global allowlist", good, "192.0.2.1", ErrIPNotAllowed, "", false},
		{"global allowlist checked before the credential", "", "192.0.2.1", ErrIPNotAllowed, "", false},
		{"global and per-key allowlist both match", narrowCred, "10.1.2.3", nil, "", false},
		{"global matches, per-key does not", narrowCred, "10.2.0.1", ErrIPNotAllowed, "", false},
		{"per-key IPv6 /128 matches", narrowCred, "2001:db8::7", nil, "", false},
		{"per-key matches, global does not", narrowCred, "192.0.2.1", ErrIPNotAllowed, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.auth(tc.cred, tc.ip)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				if p.KeyID == "" || p.Role == "" || p.Local || p.Generation != GenCurrent {
					t.Fatalf("principal %+v", p)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || p != nil {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			f := failureOf(err)
			if tc.reason == "" {
				if f != nil {
					t.Fatalf("unexpected audit failure %+v", f)
				}
				return
			}
			if f == nil || f.Reason != tc.reason || f.BruteForce != tc.bruteForce {
				t.Fatalf("failure %+v, want reason %s brute force %v", f, tc.reason, tc.bruteForce)
			}
			if f.KeyID == "" || strings.Contains(err.Error(), "tmas_") {
				t.Fatalf("failure must name the key, never the secret: %v", err)
			}
		})
	}
	p, _ := e.auth(good, "10.0.0.1")
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%+v", *p), fmt.Sprintf("%#v", p)} {
		if strings.Contains(s, "argon2") {
			t.Fatalf("principal leaks its hash: %s", s)
		}
	}
	if p.KeyID != goodID || p.Role != RoleIssuer || !p.Can(CapWrite) || p.Can(CapAdmin) {
		t.Fatalf("principal %+v", p)
	}
}

func TestAuthenticate_UnknownKeyCostsOneArgon2Run(t *testing.T) {
	e := newEnv(t)
	before := e.authn.Stats().Verifications
	_, err := e.auth("tmak-01jh8v9k2c3n4p5q6r7s8t9v0w:"+NewSecret(), "127.0.0.1")
	if f := failureOf(err); f == nil || f.Reason != ReasonUnknownKey {
		t.Fatal(err)
	}
	if got := e.authn.Stats().Verifications - before; got != 1 {
		t.Fatalf("%d Argon2 runs for an unknown key, want 1 (dummy)", got)
	}
	if e.authn.Stats().CacheEntries != 0 {
		t.Fatal("failure cached")
	}
}

func TestAuthenticate_CacheHitSkipsArgon2(t *testing.T) {
	e := newEnv(t)
	k, cred := e.create(CreateRequest{})
	if _, err := e.auth(cred, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	v := e.authn.Stats().Verifications
	for range 50 {
		if _, err := e.auth(cred, "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	st := e.authn.Stats()
	if st.Verifications != v || st.CacheHits != 50 || e.authn.CachedEntries(k.ID) != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A wrong secret never hits the cache.
	_, err := e.auth(cred[:32]+NewSecret(), "127.0.0.1")
	if f := failureOf(err); f == nil || f.Reason != ReasonBadSecret || e.authn.Stats().Verifications != v+1 {
		t.Fatalf("wrong secret: %v", err)
	}
	// The cache TTL forces a new verification.
	e.clock.Advance(61 * time.Second)
	e.auth(cred, "127.0.0.1")
	if e.authn.Stats().Verifications != v+2 {
		t.Fatal("expired cache entry was used")
	}
}

func TestAuthenticate_ConcurrentMissesRunArgon2Once(t *testing.T) {
	e := newEnv(t)
	_, cred := e.create(CreateRequest{})
	v := e.authn.Stats().Verifications
	// 50 connections authenticating with a cold cache at the same moment.
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.auth(cred, "127.0.0.1")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := e.authn.Stats().Verifications - v; got != 1 {
		t.Fatalf("%d Argon2 runs for 50 concurrent first uses of one key, want 1", got)
	}
	// Concurrent wrong secrets are not shared: each is checked (and fails).
	bad := cred[:32] + NewSecret()
	v = e.authn.Stats().Verifications
	var wg2 sync.WaitGroup
	for range 3 {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			if _, err := e.auth(bad, "127.0.0.1"); failureOf(err) == nil {
				t.Error("wrong secret accepted")
			}
		}()
	}
	wg2.Wait()
	if got := e.authn.Stats().Verifications - v; got != 3 {
		t.Fatalf("%d Argon2 runs for 3 wrong-secret attempts, want 3", got)
	}
}

func TestAuthenticate_CacheHitStillChecksKeyTable(t *testing.T) {
	e := newEnv(t)
	k, cred := e.create(CreateRequest{ExpiresAt: e.clock.Now().Add(10 * time.Second).UnixMilli()})
	if _, err := e.auth(cred, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(11 * time.Second) // within the cache TTL, past expiry
	v := e.authn.Stats().Verifications
	_, err := e.auth(cred, "127.0.0.1")
	if f := failureOf(err); f == nil || f.Reason != ReasonExpired || e.authn.Stats().Verifications != v {
		t.Fatalf("expired key from cache: %v", err)
	}
	e.authn.Sweep()
	if e.authn.CachedEntries(k.ID) != 0 {
		t.Fatal("sweep did not purge the expired key")
	}
}

func TestAuthenticate_DisablePurgesCacheImmediately(t *testing.T) {
	e := newEnv(t)
	k, cred := e.create(CreateRequest{})
	e.auth(cred, "127.0.0.1")
	if e.authn.CachedEntries(k.ID) != 1 {
		t.Fatal("not cached")
	}
	if _, _, err := e.mgr.SetStatus(e.ctx, k.ID, StatusDisabled); err != nil {
		t.Fatal(err)
	}
	if n := e.authn.CachedEntries(k.ID); n != 0 {
		t.Fatalf("%d entries left after disable", n)
	}
	if _, err := e.auth(cred, "127.0.0.1"); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("got %v", err)
	}
	e.mgr.SetStatus(e.ctx, k.ID, StatusActive)
	v := e.authn.Stats().Verifications
	if _, err := e.auth(cred, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if e.authn.Stats().Verifications != v+1 {
		t.Fatal("re-enabled key was not re-verified")
	}
}

func TestAuthenticate_RotationGraceAcceptsBothThenOnlyNew(t *testing.T) {
	e := newEnv(t)
	k, oldCred := e.create(CreateRequest{})
	e.auth(oldCred, "127.0.0.1") // cache the old secret
	_, secret, until, err := e.mgr.Rotate(e.ctx, k.ID, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if until != e.clock.Now().Add(2*time.Second).UnixMilli() {
		t.Fatalf("valid until %d", until)
	}
	newCred := k.ID + ":" + secret
	p, err := e.auth(oldCred, "127.0.0.1")
	if err != nil || p.Generation != GenPrevious {
		t.Fatalf("old secret in grace: %v %+v", err, p)
	}
	if p, err := e.auth(newCred, "127.0.0.1"); err != nil || p.Generation != GenCurrent {
		t.Fatalf("new secret: %v", err)
	}
	e.clock.Advance(2 * time.Second)
	e.authn.Sweep()
	if _, err := e.auth(oldCred, "127.0.0.1"); failureOf(err) == nil || failureOf(err).Reason != ReasonBadSecret {
		t.Fatalf("old secret after grace: %v", err)
	}
	if _, err := e.auth(newCred, "127.0.0.1"); err != nil {
		t.Fatalf("new secret after grace: %v", err)
	}
}

func TestAuthenticate_RotationWithoutGraceRejectsOldAtOnce(t *testing.T) {
	e := newEnv(t)
	k, oldCred := e.create(CreateRequest{})
	p, _ := e.auth(oldCred, "127.0.0.1")
	_, secret, _, err := e.mgr.Rotate(e.ctx, k.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth(oldCred, "127.0.0.1"); !errors.Is(err, ErrBadCredential) {
		t.Fatalf("old secret (cached) after rotation without grace: %v", err)
	}
	if err := e.authn.Recheck(p); !errors.Is(err, ErrBadCredential) {
		t.Fatalf("open connection with the old secret: %v", err)
	}
	if _, err := e.auth(k.ID+":"+secret, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
}

func TestAuthenticate_RateLimitTenPerSecondDrivenAtTwenty(t *testing.T) {
	e := newEnv(t)
	_, cred := e.create(CreateRequest{RateLimit: 10})
	ok, limited := 0, 0
	for range 60 { // 3 s at 20 req/s
		_, err := e.auth(cred, "127.0.0.1")
		var rl *RateLimitError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &rl):
			limited++
			if rl.RetryAfter < time.Second || rl.RetryAfter%time.Second != 0 || !errors.Is(err, ErrRateLimited) {
				t.Fatalf("RetryAfter %v", rl.RetryAfter)
			}
		default:
			t.Fatal(err)
		}
		e.clock.Advance(50 * time.Millisecond)
	}
	// Burst 10 + 10/s refill over ~3 s.
	if limited == 0 || ok > 10+30+1 || ok < 30 {
		t.Fatalf("ok %d limited %d", ok, limited)
	}
}

func TestRetryAfter_RoundsUpToWholeSeconds(t *testing.T) {
	e := newEnv(t)
	_, cred := e.create(CreateRequest{RateLimit: 1})
	e.auth(cred, "127.0.0.1")
	_, err := e.auth(cred, "127.0.0.1")
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Second || rl.RetryAfterSeconds() != 1 {
		t.Fatalf("%v", err)
	}
}

func TestRecheck_FollowsStatusExpiryAndRateLimit(t *testing.T) {
	e := newEnv(t)
	k, cred := e.create(CreateRequest{RateLimit: 2, ExpiresAt: e.clock.Now().Add(time.Hour).UnixMilli(), AllowList: []string{"10.0.0.0/8"}})
	p, err := e.auth(cred, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	v := e.authn.Stats().Verifications
	if err := e.authn.Recheck(p); err != nil {
		t.Fatal(err)
	}
	var rl *RateLimitError
	if err := e.authn.Recheck(p); !errors.As(err, &rl) {
		t.Fatalf("third command within a second: %v", err)
	}
	e.clock.Advance(time.Second)
	e.mgr.SetStatus(e.ctx, k.ID, StatusDisabled)
	if err := e.authn.Recheck(p); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("disabled: %v", err)
	}
	e.mgr.SetStatus(e.ctx, k.ID, StatusActive)
	if err := e.authn.Recheck(p); err != nil {
		t.Fatalf("re-enabled: %v", err)
	}
	e.clock.Advance(time.Hour)
	if err := e.authn.Recheck(p); failureOf(err) == nil || failureOf(err).Reason != ReasonExpired {
		t.Fatalf("expired: %v", err)
	}
	if e.authn.Stats().Verifications != v {
		t.Fatal("Recheck ran Argon2")
	}
	if err := e.authn.Recheck(LocalAdmin()); err != nil {
		t.Fatal(err)
	}
}

func TestAuthenticate_ConcurrentMissesAreBoundedAndCorrect(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxConcurrentVerifications = 2 })
	var creds []string
	for range 8 {
		_, c := e.create(CreateRequest{RateLimit: 1000})
		creds = append(creds, c)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.authn.Authenticate(context.Background(), creds[i%8], netip.MustParseAddr("127.0.0.1")); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if p := e.authn.ver.peak.Load(); p > 2 {
		t.Fatalf("peak %d concurrent Argon2 runs", p)
	}
}

func TestAuthenticate_DeadlineWhileWaitingForArgon2(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxConcurrentVerifications = 1 })
	_, cred := e.create(CreateRequest{})
	e.authn.ver.sem <- struct{}{}
	defer func() { <-e.authn.ver.sem }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := e.authn.Authenticate(ctx, cred, netip.MustParseAddr("127.0.0.1"))
	if !errors.Is(err, context.DeadlineExceeded) || failureOf(err) != nil {
		t.Fatalf("got %v", err)
	}
}

func TestAuthCache_EvictsLeastRecentlyUsedPerShard(t *testing.T) {
	c := newAuthCache(cacheShards*2, int64(time.Minute))
	sum := func(shard, i byte) *[32]byte { return &[32]byte{shard, i} }
	c.put(sum(0, 1), "a", "h", 0)
	c.put(sum(0, 2), "a", "h", 0)
	c.get(sum(0, 1), 1) // 1 is now more recent than 2
	c.put(sum(0, 3), "a", "h", 0)
	if _, _, ok := c.get(sum(0, 2), 1); ok {
		t.Fatal("least recent entry kept")
	}
	if _, _, ok := c.get(sum(0, 1), 1); !ok {
		t.Fatal("recent entry evicted")
	}
	if c.len() != 2 {
		t.Fatalf("len %d", c.len())
	}
	if n := c.purge("a", ""); n != 2 || c.len() != 0 {
		t.Fatalf("purge %d", n)
	}
}

// TestAuthenticateConn_SameResultsAsAuthenticate drives two identical
// environments through the same random sequence of requests and key
// changes: one authenticates every request with Authenticate, the other
// with AuthenticateConn and one connection memo. Every result, the auth
// cache counters and the Argon2 run count must be the same.
func TestAuthenticateConn_SameResultsAsAuthenticate(t *testing.T) {
	for seed := int64(1); seed <= 8; seed++ {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		plain, memo := newEnv(t), newEnv(t)
		var m ConnMemo
		type keys struct {
			ids       [2]string
			cred, old [2]string
		}
		setup := func(e *env) *keys {
			var k keys
			k0, c0 := e.create(CreateRequest{RateLimit: 5, AllowList: []string{"10.0.0.1/32", "10.0.0.3/32"}})
			k1, c1 := e.create(CreateRequest{Role: RoleIssuer, ExpiresAt: e.clock.Now().Add(20 * time.Second).UnixMilli()})
			k.ids, k.cred, k.old = [2]string{k0.ID, k1.ID}, [2]string{c0, c1}, [2]string{c0, c1}
			return &k
		}
		kp, km := setup(plain), setup(memo)
		ips := []string{"10.0.0.1", "10.0.0.3", "10.0.0.2"}
		classify := func(p *Principal, err error) string {
			var rl *RateLimitError
			switch f := failureOf(err); {
			case err == nil:
				return fmt.Sprintf("ok %s gen %d", p.Role, p.Generation)
			case f != nil:
				return "failure " + string(f.Reason)
			case errors.As(err, &rl):
				return fmt.Sprintf("rate limited %v", rl.RetryAfter)
			default:
				return err.Error()
			}
		}
		for step := range 300 {
			i := rng.IntN(2)
			switch op := rng.IntN(12); {
			case op < 6: // a request with the current, the old or a wrong credential
				ip := netip.MustParseAddr(ips[rng.IntN(len(ips))])
				which := rng.IntN(4)
				pick := func(k *keys) string {
					switch which {
					case 0:
						return k.old[i]
					case 1:
						return k.ids[i] + ":tmas_" + strings.Repeat("0", 43)
					default:
						return k.cred[i]
					}
				}
				want := classify(plain.authn.Authenticate(plain.ctx, pick(kp), ip))
				got := classify(memo.authn.AuthenticateConn(memo.ctx, &m, pick(km), ip))
				if got != want {
					t.Fatalf("seed %d step %d: memo %q, plain %q", seed, step, got, want)
				}
			case op == 6:
				st := []Status{StatusActive, StatusDisabled}[rng.IntN(2)]
				plain.mgr.SetStatus(plain.ctx, kp.ids[i], st)
				memo.mgr.SetStatus(memo.ctx, km.ids[i], st)
			case op == 7:
				grace := time.Duration(rng.IntN(3)) * time.Second
				for _, x := range []struct {
					e *env
					k *keys
				}{{plain, kp}, {memo, km}} {
					_, secret, _, err := x.e.mgr.Rotate(x.e.ctx, x.k.ids[i], grace)
					if err != nil {
						t.Fatal(err)
					}
					x.k.old[i], x.k.cred[i] = x.k.cred[i], x.k.ids[i]+":"+secret
				}
			case op < 10:
				d := time.Duration(100+rng.IntN(1500)) * time.Millisecond
				plain.clock.Advance(d)
				memo.clock.Advance(d)
			default:
				plain.authn.Sweep()
				memo.authn.Sweep()
			}
		}
		sp, sm := plain.authn.Stats(), memo.authn.Stats()
		if sp.CacheHits != sm.CacheHits || sp.CacheMisses != sm.CacheMisses || sp.Verifications != sm.Verifications {
			t.Fatalf("seed %d: counters differ: plain %+v, memo %+v", seed, sp, sm)
		}
	}
}

func TestAuthenticateConn_ReuseSkipsTheCredentialHashOnly(t *testing.T) {
	e := newEnv(t)
	_, cred := e.create(CreateRequest{})
	var m ConnMemo
	ip := netip.MustParseAddr("127.0.0.1")
	p1, err := e.authn.AuthenticateConn(e.ctx, &m, cred, ip)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := e.authn.AuthenticateConn(e.ctx, &m, cred, ip)
	if err != nil || p2 != p1 {
		t.Fatalf("second request on the connection: %v, same principal %v", err, p2 == p1)
	}
	// Another client IP (a trusted proxy forwarding another client) is a
	// full check, and so is another credential.
	if p3, err := e.authn.AuthenticateConn(e.ctx, &m, cred, netip.MustParseAddr("127.0.0.2")); err != nil || p3 == p1 {
		t.Fatalf("other IP: %v, reused %v", err, p3 == p1)
	}
	if _, err := e.authn.AuthenticateConn(e.ctx, &m, cred[:len(cred)-1]+flip(cred[len(cred)-1]), ip); err == nil {
		t.Fatal("a wrong secret on an authenticated connection was accepted")
	}
	// The memo still answers for the good credential, as a cache hit.
	hits, runs := e.authn.Stats().CacheHits, e.authn.Stats().Verifications
	if p4, err := e.authn.AuthenticateConn(e.ctx, &m, cred, netip.MustParseAddr("127.0.0.2")); err != nil {
		t.Fatal(err)
	} else if p5, _ := e.authn.AuthenticateConn(e.ctx, &m, cred, netip.MustParseAddr("127.0.0.2")); p5 != p4 {
		t.Fatal("not reused")
	}
	if st := e.authn.Stats(); st.CacheHits != hits+2 || st.Verifications != runs {
		t.Fatalf("hits %d → %d, Argon2 runs %d → %d", hits, st.CacheHits, runs, st.Verifications)
	}
}

// HTTP/2 streams of one connection share its memo: concurrent requests with
// two valid credentials and two client IPs must all authenticate as their
// own key (run with -race).
func TestAuthenticateConn_ConcurrentStreams(t *testing.T) {
	e := newEnv(t)
	ka, credA := e.create(CreateRequest{RateLimit: 1_000_000})
	kb, credB := e.create(CreateRequest{Role: RoleIssuer, RateLimit: 1_000_000})
	var m ConnMemo
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				cred, want := credA, ka.ID
				if (g+i)%3 == 0 {
					cred, want = credB, kb.ID
				}
				ip := netip.MustParseAddr([]string{"127.0.0.1", "127.0.0.2"}[(g*7+i)%2])
				p, err := e.authn.AuthenticateConn(e.ctx, &m, cred, ip)
				if err != nil || p.KeyID != want || p.ClientIP != ip {
					errs <- fmt.Errorf("goroutine %d request %d: %v %+v", g, i, err, p)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
