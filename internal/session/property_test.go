package session

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// mSession is the reference model's view of one session.
type mSession struct {
	id                               ID
	token                            string
	user                             string
	createdAt, expiresAt, lastActive int64
	idle                             int64
	ip                               netip.Addr
	ua                               string
	version                          uint64
	revoked                          bool
	removed                          bool // replaced by a create reusing its token
}

type model struct {
	grace   int64
	max     int
	evict   bool
	ttlMax  int64
	all     []*mSession
	byID    map[ID]*mSession
	revokes int
}

const (
	mLive = iota
	mExpired
	mRevoked
	mGone
)

func (m *model) state(s *mSession, now int64) int {
	if s.removed {
		return mGone
	}
	if s.revoked {
		if now > s.expiresAt+m.grace {
			return mGone
		}
		return mRevoked
	}
	eff := s.expiresAt
	if s.idle > 0 && s.lastActive+s.idle*1000 < eff {
		eff = s.lastActive + s.idle*1000
	}
	switch {
	case now > eff+m.grace:
		return mGone
	case now > eff:
		return mExpired
	}
	return mLive
}

func stateErr(st int) error {
	switch st {
	case mExpired:
		return ErrExpired
	case mRevoked:
		return ErrRevoked
	case mGone:
		return ErrNotFound
	}
	return nil
}

func (m *model) byToken(tok string, now int64) (*mSession, error) {
	var found *mSession
	for _, s := range m.all {
		if s.token != tok {
			continue
		}
		switch m.state(s, now) {
		case mRevoked:
			return nil, ErrRevoked
		case mLive, mExpired:
			found = s
		}
	}
	if found == nil {
		return nil, ErrNotFound
	}
	return found, stateErr(m.state(found, now))
}

func (m *model) liveOf(user string, now int64) []*mSession {
	var out []*mSession
	for _, s := range m.all {
		if s.user == user && m.state(s, now) == mLive {
			out = append(out, s)
		}
	}
	return out
}

func (m *model) touch(s *mSession, now int64, ip netip.Addr, ua string) {
	changed := false
	if now > s.lastActive {
		s.lastActive, changed = now, true
	}
	if ip != s.ip {
		s.ip, changed = ip, true
	}
	if ua != s.ua {
		s.ua, changed = ua, true
	}
	if changed {
		s.version++
	}
}

func (m *model) revoke(s *mSession) {
	s.revoked = true
	s.version++
	m.revokes++
}

func sameErr(t *rapid.T, op string, got, want error) {
	t.Helper()
	if (got == nil) != (want == nil) || (want != nil && !errors.Is(got, want)) {
		t.Fatalf("%s: error %v, model says %v", op, got, want)
	}
}

func sameSession(t *rapid.T, op string, got Session, m *mSession) {
	t.Helper()
	if got.ID != m.id || got.Version != m.version || got.LastActive != m.lastActive || got.ExpiresAt != m.expiresAt ||
		got.CreatedAt != m.createdAt || got.LastAccessIP != m.ip || got.LastAccessUA != m.ua || got.UserID != m.user ||
		got.IdleTimeout != m.idle {
		t.Fatalf("%s: session %+v, model %+v", op, got, *m)
	}
}

func TestProperty_StoreMatchesModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		clk := newClock()
		j := &recJournal{}
		graceCfg := rapid.SampledFrom([]int64{-1, 2000}).Draw(rt, "grace")
		evict := rapid.Bool().Draw(rt, "evict")
		cfg := Config{Now: clk.Now, Journal: j, Shards: 4, Partitions: 8, MaxPerUser: 3, ExpiredGrace: graceCfg, TTLMax: 60, TTLDefault: 10}
		if evict {
			cfg.OnExceed = QuotaEvictOldest
		}
		st, err := NewStore(cfg)
		if err != nil {
			rt.Fatal(err)
		}
		// As after recovery: lists built on first use (or by "buildLists").
		if rapid.Bool().Draw(rt, "deferLists") {
			st.DeferLists()
		}
		m := &model{grace: max(graceCfg, 0), max: 3, evict: evict, ttlMax: 60, byID: map[ID]*mSession{}}
		tokens := []string{token(1), token(2), token(3), token(4), token(5)}
		users := []string{"alice", "bob", "carol"}
		ips := []netip.Addr{ipA, ipB, {}}
		uas := []string{"", "ua-1", "ua-2"}
		pickID := func(t *rapid.T) ID {
			if len(m.all) == 0 || rapid.IntRange(0, 9).Draw(t, "unknown") == 0 {
				return ID{0xEE, byte(rapid.IntRange(0, 255).Draw(t, "rnd"))}
			}
			return m.all[rapid.IntRange(0, len(m.all)-1).Draw(t, "idx")].id
		}

		actions := map[string]func(*rapid.T){
			"create": func(t *rapid.T) {
				now := clk.Now()
				req := CreateRequest{
					UserID:     rapid.SampledFrom(users).Draw(t, "user"),
					TTLSet:     true,
					TTLSeconds: rapid.SampledFrom([]int64{0, 1, 2, 5, 30, 61}).Draw(t, "ttl"),
					IP:         rapid.SampledFrom(ips).Draw(t, "ip"),
					UserAgent:  rapid.SampledFrom(uas).Draw(t, "ua"),
				}
				if rapid.Bool().Draw(t, "idleSet") {
					req.IdleSet, req.IdleTimeoutSeconds = true, rapid.SampledFrom([]int64{0, 1, 3}).Draw(t, "idle")
				}
				if rapid.IntRange(0, 4).Draw(t, "gen") > 0 {
					req.Token = rapid.SampledFrom(tokens).Draw(t, "token")
				}
				res, err := st.Create(req)
				// Model: field rules, then quota (reject), then token conflict.
				var want error
				live := m.liveOf(req.UserID, now)
				switch {
				case req.TTLSeconds < 1 || req.TTLSeconds > m.ttlMax:
					want = ErrInvalidField
				case !m.evict && len(live) >= m.max:
					want = ErrQuotaExceeded
				case req.Token != "":
					for _, s := range m.all {
						if s.token == req.Token {
							if ms := m.state(s, now); ms == mLive || ms == mRevoked {
								want = ErrTokenConflict
							}
						}
					}
				}
				sameErr(t, "create", err, want)
				if err != nil {
					return
				}
				var wantEvict ID
				if len(live) >= m.max {
					slices.SortFunc(live, func(a, b *mSession) int {
						if a.lastActive != b.lastActive {
							return cmpInt(a.lastActive, b.lastActive)
						}
						if a.createdAt != b.createdAt {
							return cmpInt(a.createdAt, b.createdAt)
						}
						return bytes.Compare(a.id[:], b.id[:])
					})
					for i, v := range live[:len(live)-m.max+1] {
						if i == 0 {
							wantEvict = v.id
						}
						m.revoke(v)
					}
				}
				if res.EvictedID != wantEvict {
					t.Fatalf("evicted %v, model %v", res.EvictedID, wantEvict)
				}
				tok := req.Token
				if tok == "" {
					tok = res.Token
				} else {
					for _, s := range m.all {
						if s.token == tok && !s.revoked && m.state(s, now) == mExpired {
							s.removed = true
						}
					}
				}
				idle := int64(0)
				if req.IdleSet {
					idle = req.IdleTimeoutSeconds
				}
				s := &mSession{id: res.Session.ID, token: tok, user: req.UserID, createdAt: now, expiresAt: now + req.TTLSeconds*1000,
					lastActive: now, idle: idle, ip: req.IP, ua: req.UserAgent, version: 1}
				if m.byID[s.id] != nil {
					t.Fatal("duplicate ID")
				}
				m.all = append(m.all, s)
				m.byID[s.id] = s
				sameSession(t, "create", res.Session, s)
			},
			"get": func(t *rapid.T) {
				id := pickID(t)
				got, err := st.Get(id)
				s := m.byID[id]
				want := ErrNotFound
				if s != nil {
					want = stateErr(m.state(s, clk.Now()))
				}
				sameErr(t, "get", err, want)
				if err == nil {
					sameSession(t, "get", got, s)
				}
			},
			"touch": func(t *rapid.T) {
				id := pickID(t)
				ip, ua := rapid.SampledFrom(ips).Draw(t, "ip"), rapid.SampledFrom(uas).Draw(t, "ua")
				got, _, err := st.Touch(id, ip, ua)
				s := m.byID[id]
				want := ErrNotFound
				if s != nil {
					want = stateErr(m.state(s, clk.Now()))
				}
				sameErr(t, "touch", err, want)
				if err == nil {
					m.touch(s, clk.Now(), ip, ua)
					sameSession(t, "touch", got, s)
				}
			},
			"validate": func(t *rapid.T) {
				tok := rapid.SampledFrom(append(tokens, "short")).Draw(t, "token")
				touch := rapid.Bool().Draw(t, "touch")
				ip, ua := rapid.SampledFrom(ips).Draw(t, "ip"), rapid.SampledFrom(uas).Draw(t, "ua")
				got, seq, err := st.Validate(tok, touch, ip, ua)
				if tok == "short" {
					sameErr(t, "validate", err, ErrTokenMalformed)
					return
				}
				s, want := m.byToken(tok, clk.Now())
				sameErr(t, "validate", err, want)
				if err != nil {
					return
				}
				if touch {
					m.touch(s, clk.Now(), ip, ua)
				} else if seq != 0 {
					t.Fatal("validate without touch wrote a record")
				}
				sameSession(t, "validate", got, s)
			},
			"renew": func(t *rapid.T) {
				id := pickID(t)
				ttl := rapid.SampledFrom([]int64{0, 1, 3, 30, 61}).Draw(t, "ttl")
				got, _, err := st.Renew(id, ttl)
				now := clk.Now()
				s := m.byID[id]
				var want error
				switch {
				case ttl < 1 || ttl > m.ttlMax:
					want = ErrInvalidField
				case s == nil:
					want = ErrNotFound
				default:
					want = stateErr(m.state(s, now))
				}
				sameErr(t, "renew", err, want)
				if err == nil {
					s.expiresAt = now + ttl*1000
					s.lastActive = max(s.lastActive, now)
					s.version++
					sameSession(t, "renew", got, s)
				}
			},
			"revoke": func(t *rapid.T) {
				id := pickID(t)
				ok, _, err := st.Revoke(id)
				s := m.byID[id]
				wantOK := s != nil && m.state(s, clk.Now()) == mLive
				if err != nil || ok != wantOK {
					t.Fatalf("revoke = %v, %v; model %v", ok, err, wantOK)
				}
				if ok {
					m.revoke(s)
				}
			},
			"revokeUser": func(t *rapid.T) {
				user := rapid.SampledFrom(users).Draw(t, "user")
				except := ID{}
				if rapid.Bool().Draw(t, "except") {
					except = pickID(t)
				}
				n, _, _ := st.RevokeUser(user, except)
				want := 0
				for _, s := range m.liveOf(user, clk.Now()) {
					if s.id != except {
						m.revoke(s)
						want++
					}
				}
				if n != want {
					t.Fatalf("revoke-all revoked %d, model %d", n, want)
				}
			},
			"list": func(t *rapid.T) {
				user := rapid.SampledFrom(users).Draw(t, "user")
				desc := rapid.Bool().Draw(t, "desc")
				r, err := st.List(ListQuery{UserID: user, Desc: desc, Size: 100})
				if err != nil {
					t.Fatal(err)
				}
				live := m.liveOf(user, clk.Now())
				slices.SortFunc(live, func(a, b *mSession) int {
					if a.createdAt != b.createdAt {
						if desc {
							return cmpInt(b.createdAt, a.createdAt)
						}
						return cmpInt(a.createdAt, b.createdAt)
					}
					return bytes.Compare(a.id[:], b.id[:])
				})
				if r.Total != len(live) || len(r.Items) != len(live) {
					t.Fatalf("list total %d, model %d", r.Total, len(live))
				}
				for i := range live {
					sameSession(t, "list", r.Items[i], live[i])
				}
			},
			"advance": func(t *rapid.T) {
				clk.Add(rapid.Int64Range(0, 5000).Draw(t, "ms"))
			},
			"sweep": func(t *rapid.T) {
				st.Sweep()
			},
			"flush": func(t *rapid.T) {
				st.FlushTouches()
			},
			"buildLists": func(t *rapid.T) {
				st.BuildLists(nil)
				if n := st.ListsPending(); n != 0 {
					t.Fatalf("%d shards still pending after BuildLists", n)
				}
			},
			"": func(t *rapid.T) {
				if err := st.CheckInvariants(); err != nil {
					t.Fatal(err)
				}
				s := st.Stats()
				if s.Tombstones > m.revokes {
					t.Fatalf("%d tombstones, only %d revocations", s.Tombstones, m.revokes)
				}
			},
		}
		// Two Repeat blocks double the average sequence length (deeper
		// runs: -rapid.checks=2000 -rapid.steps=300).
		rt.Repeat(actions)
		rt.Repeat(actions)

		// The journal replays to the same state.
		clk.Add(1000)
		st.FlushTouches()
		recs := j.since(0)
		checkVersionOrder(rt, recs)
		rcfg := st.Config()
		rcfg.ExpiredGrace = graceCfg
		sameState(rt, st, replayInto(rt, rcfg, recs), clk.Now())
		sameState(rt, st, replayBinaryInto(rt, rcfg, recs), clk.Now())
		sameState(rt, st, reloadInto(rt, rcfg, st), clk.Now())
	})
}
