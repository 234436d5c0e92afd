package session

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"sort"
	"sync"
	"testing"
)

// tb is the part of testing.TB that *rapid.T also implements.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// dumpState returns every session and tombstone that is not yet gone at
// now, keyed by ID.
func dumpState(st *Store, now int64) (map[ID]Session, map[ID]Tombstone) {
	sess := map[ID]Session{}
	tombs := map[ID]Tombstone{}
	for i := 0; i < st.NumShards(); i++ {
		st.RangeShard(i, func(s *Session) {
			if now <= s.EffectiveExpiry()+st.grace {
				sess[s.ID] = *s
			}
		}, func(t *Tombstone) {
			if now <= t.ExpiresAt+st.grace {
				tombs[t.ID] = *t
			}
		})
	}
	return sess, tombs
}

// replayInto applies recs to a fresh store sharing cfg's clock and shape.
func replayInto(t tb, cfg Config, recs []Record) *Store {
	t.Helper()
	cfg.Journal = nil
	st, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st.DeferLists() // as recovery does
	for i := range recs {
		// Round-trip through the codec, as the WAL would.
		r, err := DecodeRecord(recs[i].Type, recs[i].AppendBinary(nil))
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if err := st.Apply(&r); err != nil {
			t.Fatalf("apply record %d (%s): %v", i, r.Type, err)
		}
	}
	if err := st.CheckInvariants(); err != nil {
		t.Fatalf("replayed store: %v", err)
	}
	return st
}

// replayBinaryInto is replayInto through a Loader (the engine's recovery
// path): records are applied from their encoded payloads.
func replayBinaryInto(t tb, cfg Config, recs []Record) *Store {
	t.Helper()
	cfg.Journal = nil
	st, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st.DeferLists()
	ld := st.NewLoader()
	for i := range recs {
		applyErr, decodeErr := ld.ApplyRecordBinary(recs[i].Type, recs[i].AppendBinary(nil))
		if decodeErr != nil || applyErr != nil {
			t.Fatalf("record %d (%s): decode %v, apply %v", i, recs[i].Type, decodeErr, applyErr)
		}
	}
	if err := st.CheckInvariants(); err != nil {
		t.Fatalf("replayed store: %v", err)
	}
	return st
}

// reloadInto copies st's sessions and tombstones into a fresh store the way
// a snapshot load does (encoded payloads through a Loader).
func reloadInto(t tb, cfg Config, st *Store) *Store {
	t.Helper()
	cfg.Journal = nil
	out, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out.DeferLists()
	ld := out.NewLoader()
	var buf []byte
	for i := 0; i < st.NumShards(); i++ {
		st.RangeShard(i, func(s *Session) {
			buf = AppendSessionBinary(buf[:0], s)
			if err := ld.LoadSessionBinary(buf); err != nil {
				t.Fatalf("load %s: %v", s.ID, err)
			}
			clear(buf) // the store must not have kept a view of the payload
		}, func(tb *Tombstone) {
			if err := out.LoadTombstone(*tb); err != nil {
				t.Fatalf("load tombstone %s: %v", tb.ID, err)
			}
		})
	}
	if err := out.CheckInvariants(); err != nil {
		t.Fatalf("reloaded store: %v", err)
	}
	return out
}

func sameState(t tb, a, b *Store, now int64) {
	t.Helper()
	as, at := dumpState(a, now)
	bs, bt := dumpState(b, now)
	if len(as) != len(bs) || len(at) != len(bt) {
		t.Fatalf("sessions %d vs %d, tombstones %d vs %d", len(as), len(bs), len(at), len(bt))
	}
	for id, s := range as {
		o, ok := bs[id]
		if !ok {
			t.Fatalf("session %s missing after replay", id)
		}
		if !reflect.DeepEqual(s, o) {
			t.Fatalf("session %s differs:\n live   %+v\n replay %+v", id, s, o)
		}
	}
	for id, tb := range at {
		if bt[id] != tb {
			t.Fatalf("tombstone %s differs: %+v vs %+v", id, tb, bt[id])
		}
	}
}

// checkVersionOrder verifies that, per session, records appear in seq order
// with strictly increasing versions (an EXPIRE carries at least the last one).
func checkVersionOrder(t tb, recs []Record) {
	t.Helper()
	last := map[ID]uint64{}
	for i, r := range recs {
		var id ID
		var v uint64
		switch r.Type {
		case RecordPut:
			id, v = r.Session.ID, r.Session.Version
		case RecordTouch:
			id, v = r.Touch.ID, r.Touch.Version
		case RecordRevoke:
			id, v = r.Tombstone.ID, r.Tombstone.Version
		case RecordExpire:
			// Coalesced touches may have raised the version after the last
			// logged record; never below it.
			if r.Version < last[r.ID] {
				t.Fatalf("record %d: EXPIRE of %s at version %d, last logged %d", i, r.ID, r.Version, last[r.ID])
			}
			delete(last, r.ID)
			continue
		default:
			continue
		}
		if v <= last[id] {
			t.Fatalf("record %d (%s): version %d after %d: seq order is not apply order", i, r.Type, v, last[id])
		}
		last[id] = v
	}
}

// TestJournal_OneRecordPerAcceptedChangeAndReplayMatches drives a random
// workload, checks after every operation that exactly the expected records
// were journaled with the returned seq, then replays the journal into a
// fresh store and compares the state.
func TestJournal_OneRecordPerAcceptedChangeAndReplayMatches(t *testing.T) {
	for _, policy := range []QuotaPolicy{QuotaReject, QuotaEvictOldest} {
		t.Run(fmt.Sprint("policy=", policy), func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.MaxPerUser = 4; c.OnExceed = policy; c.Shards = 4; c.Partitions = 8 })
			rng := rand.New(rand.NewPCG(1, uint64(policy)))
			var ids []ID
			pickID := func() ID {
				if len(ids) == 0 || rng.IntN(10) == 0 {
					return ID{byte(rng.IntN(256))}
				}
				return ids[rng.IntN(len(ids))]
			}
			users := []string{"u1", "u2", "u3"}
			ips := []netip.Addr{ipA, ipB, {}}
			for step := 0; step < 3000; step++ {
				before := e.j.len()
				var typ string
				var want int // expected new records, -1 = checked by typ
				var seq uint64
				switch op := rng.IntN(12); op {
				case 0, 1:
					req := CreateRequest{UserID: users[rng.IntN(3)], TTLSet: true, TTLSeconds: int64(1 + rng.IntN(20)), IP: ips[rng.IntN(3)]}
					if rng.IntN(2) == 0 {
						req.Token = token(rng.IntN(40))
					}
					if rng.IntN(4) == 0 {
						req.IdleSet, req.IdleTimeoutSeconds = true, int64(rng.IntN(5))
					}
					if rng.IntN(20) == 0 {
						req.TTLSeconds = 0 // rejected
					}
					res, err := e.st.Create(req)
					if err != nil {
						want = 0
						break
					}
					ids = append(ids, res.Session.ID)
					recs := e.j.since(before)
					last := recs[len(recs)-1]
					if last.Type != RecordPut || last.Session.ID != res.Session.ID || uint64(e.j.len()) != res.Seq {
						t.Fatalf("create journal: %s", e.j.types(before))
					}
					evicts := 0
					for _, r := range recs[:len(recs)-1] {
						switch {
						case r.Type == RecordRevoke && r.Tombstone.ID == res.EvictedID:
							evicts++
						case r.Type == RecordExpire:
						default:
							t.Fatalf("unexpected %s before PUT", r.Type)
						}
					}
					if (evicts == 1) != !res.EvictedID.IsZero() || len(recs) > 4 {
						t.Fatalf("create journal: %s", e.j.types(before))
					}
					want = -1
				case 2:
					_, err := e.st.Get(pickID())
					_ = err
					want = 0
				case 3:
					_, seq, _ = e.st.Validate(token(rng.IntN(40)), false, ipA, "")
					want = 0
				case 4, 5:
					var err error
					if rng.IntN(2) == 0 {
						_, seq, err = e.st.Touch(pickID(), ips[rng.IntN(3)], []string{"a", "b"}[rng.IntN(2)])
					} else {
						_, seq, err = e.st.Validate(token(rng.IntN(40)), true, ips[rng.IntN(3)], "a")
					}
					if err == nil && seq != 0 {
						want, typ = 1, "SESSION_TOUCH"
					}
				case 6:
					_, s, err := e.st.Renew(pickID(), int64(rng.IntN(30)))
					seq = s
					if err == nil {
						want, typ = 1, "SESSION_PUT"
					}
				case 7:
					ok, s, _ := e.st.Revoke(pickID())
					seq = s
					if ok {
						want, typ = 1, "SESSION_REVOKE"
					}
				case 8:
					var except ID
					if rng.IntN(2) == 0 {
						except = pickID()
					}
					n, s, _ := e.st.RevokeUser(users[rng.IntN(3)], except)
					seq = s
					want = n
					if n > 0 {
						typ = "SESSION_REVOKE"
					}
				case 9:
					e.clk.Add(int64(rng.IntN(3000)))
				case 10:
					want = e.st.Sweep()
					if want > 0 {
						typ = "SESSION_EXPIRE"
					}
				case 11:
					want = e.st.FlushTouches()
					if want > 0 {
						typ = "SESSION_TOUCH"
					}
				}
				if want >= 0 {
					got := e.j.since(before)
					if len(got) != want {
						t.Fatalf("step %d: %d records (%s), want %d", step, len(got), e.j.types(before), want)
					}
					for _, r := range got {
						if r.Type.String() != typ {
							t.Fatalf("step %d: %s, want %s", step, r.Type, typ)
						}
					}
					if want > 0 && seq != 0 && seq != uint64(e.j.len()) {
						t.Fatalf("step %d: returned seq %d, journal at %d", step, seq, e.j.len())
					}
				}
				if step%100 == 0 {
					e.check()
				}
			}
			e.clk.Add(1000)
			e.st.FlushTouches()
			recs := e.j.since(0)
			checkVersionOrder(t, recs)
			cfg := e.st.Config()
			cfg.ExpiredGrace = e.st.grace
			replayed := replayInto(t, cfg, recs)
			sameState(t, e.st, replayed, e.clk.Now())
		})
	}
}

// TestJournal_ConcurrentWritersSeqOrderIsApplyOrder hammers a few sessions
// from many goroutines; per-session versions must grow in seq order and a
// replay must reproduce memory exactly.
func TestJournal_ConcurrentWritersSeqOrderIsApplyOrder(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPerUser = 1000; c.Shards = 4; c.Partitions = 16 })
	const tokens = 20
	for i := 0; i < tokens; i++ {
		e.create(CreateRequest{UserID: fmt.Sprint("u", i%3), Token: token(i), TTLSet: true, TTLSeconds: 3600})
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := 0; i < 400; i++ {
				tok := token(rng.IntN(tokens))
				switch rng.IntN(8) {
				case 0, 1, 2:
					e.st.Validate(tok, true, []netip.Addr{ipA, ipB}[rng.IntN(2)], "ua")
				case 3:
					if s, _, err := e.st.Validate(tok, false, ipA, ""); err == nil {
						e.st.Renew(s.ID, int64(60+rng.IntN(3600)))
					}
				case 4:
					if rng.IntN(10) == 0 {
						if s, _, err := e.st.Validate(tok, false, ipA, ""); err == nil {
							e.st.Revoke(s.ID)
						}
					}
				case 5:
					e.clk.Add(int64(rng.IntN(400)))
				case 6:
					e.st.FlushTouches()
					e.st.Sweep()
				case 7:
					e.st.Create(CreateRequest{UserID: "u9", Token: tok, TTLSet: true, TTLSeconds: 2})
				}
			}
		}(g)
	}
	wg.Wait()
	e.clk.Add(1000)
	e.st.FlushTouches()
	recs := e.j.since(0)
	checkVersionOrder(t, recs)
	cfg := e.st.Config()
	cfg.ExpiredGrace = e.st.grace
	sameState(t, e.st, replayInto(t, cfg, recs), e.clk.Now())
}

// TestApply_VersionRules checks the replay rules of 01-data-model §6.
func TestApply_VersionRules(t *testing.T) {
	e := newEnv(t, nil)
	res := e.create(CreateRequest{Token: token(1)})
	s1 := res.Session
	e.clk.Add(10)
	s2, _, _ := e.st.Renew(s1.ID, 100) // v2
	e.clk.Add(10)
	e.st.Revoke(s1.ID) // tombstone v3
	recs := e.j.since(0)

	cfg := Config{Now: e.clk.Now, Shards: 64}
	st, _ := NewStore(cfg)
	apply := func(r Record) {
		t.Helper()
		if err := st.Apply(&r); err != nil {
			t.Fatal(err)
		}
	}
	apply(recs[1]) // PUT v2 first
	apply(recs[0]) // older PUT v1: ignored
	if got, _ := st.Get(s1.ID); got.Version != 2 || got.ExpiresAt != s2.ExpiresAt {
		t.Fatalf("older version applied: %+v", got)
	}
	apply(recs[2]) // tombstone v3 wins
	apply(recs[1]) // PUT after tombstone: ignored
	if _, err := st.Get(s1.ID); err != ErrRevoked {
		t.Fatalf("get after tombstone: %v", err)
	}
	// A PUT with a token hash that has a tombstone under another ID is ignored.
	other := *recs[1].Session
	other.ID[15] ^= 1
	other.Version = 99
	apply(Record{Type: RecordPut, Session: &other})
	if _, err := st.Get(other.ID); err != ErrNotFound {
		t.Fatalf("PUT over a tombstoned token applied: %v", err)
	}
	// A tombstone with a lower version than the session loses.
	st2, _ := NewStore(cfg)
	hi := *recs[1].Session
	hi.Version = 10
	st2.LoadSession(&hi)
	tb := recs[2].Tombstone
	st2.LoadTombstone(tb)
	if _, err := st2.Get(hi.ID); err != nil {
		t.Fatalf("lower tombstone beat a newer session: %v", err)
	}
	// Sessions already gone and tombstones already due are skipped.
	e.clk.Add(200_000)
	st3, _ := NewStore(cfg)
	for _, r := range recs {
		apply := r
		if err := st3.Apply(&apply); err != nil {
			t.Fatal(err)
		}
	}
	if s := st3.Stats(); s.Live+s.Expired+s.Tombstones != 0 {
		t.Fatalf("due entries loaded: %+v", s)
	}
	// Inconsistent IDs are corruption.
	bad := *recs[0].Session
	bad.ID[8] ^= 1
	if err := st3.LoadSession(&bad); err == nil {
		t.Fatal("shard bits mismatch accepted")
	}
	bad = *recs[0].Session
	bad.ID[7] ^= 1
	if err := st3.LoadSession(&bad); err == nil {
		t.Fatal("partition mismatch accepted")
	}
}

func TestDropPartitionAndRangePartition(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Partitions = 8; c.Shards = 4 })
	byPart := map[uint16][]ID{}
	for i := 0; i < 200; i++ {
		s := e.create(CreateRequest{UserID: fmt.Sprint("u", i), Token: token(i)}).Session
		if i%3 == 0 {
			e.st.Revoke(s.ID)
		}
		byPart[s.ID.Partition()] = append(byPart[s.ID.Partition()], s.ID)
	}
	for p := uint16(0); p < 8; p++ {
		var got []ID
		e.st.RangePartition(p, func(s *Session) { got = append(got, s.ID) }, func(t *Tombstone) { got = append(got, t.ID) })
		want := append([]ID(nil), byPart[p]...)
		sort.Slice(got, func(i, j int) bool { return string(got[i][:]) < string(got[j][:]) })
		sort.Slice(want, func(i, j int) bool { return string(want[i][:]) < string(want[j][:]) })
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("partition %d: %d entries, want %d", p, len(got), len(want))
		}
	}
	n := e.st.DropPartition(3)
	if n != len(byPart[3]) {
		t.Fatalf("dropped %d, want %d", n, len(byPart[3]))
	}
	e.check()
	for _, id := range byPart[3] {
		if _, err := e.st.Get(id); err != ErrNotFound {
			t.Fatal("dropped session still answers")
		}
	}
	e.st.Reset()
	e.check()
	if s := e.st.Stats(); s != (Stats{}) {
		t.Fatalf("after reset %+v", s)
	}
	e.create(CreateRequest{Token: token(1)}) // usable after reset
}

// memoryJournal checks, inside Record (the caller holds the shard lock),
// that memory already shows the change the record describes: the record is
// written in the same critical section that applied it.
type memoryJournal struct {
	recJournal
	st   *Store
	errs []string
}

func (j *memoryJournal) Record(r *Record) uint64 {
	var id ID
	switch r.Type {
	case RecordPut:
		id = r.Session.ID
	case RecordTouch:
		id = r.Touch.ID
	case RecordRevoke:
		id = r.Tombstone.ID
	case RecordExpire:
		id = r.ID
	}
	sh := j.st.shards[uint32(id[8])&j.st.mask]
	ref, inMem := sh.sessByID(&id)
	_, tomb := sh.tombByID(&id)
	ok := true
	switch r.Type {
	case RecordPut:
		ok = inMem && sh.rec(ref).version == r.Session.Version
	case RecordTouch:
		ok = inMem && sh.rec(ref).version == r.Touch.Version
	case RecordRevoke:
		ok = !inMem && tomb
	case RecordExpire:
		ok = !inMem && !tomb
	}
	seq := j.recJournal.Record(r)
	if !ok {
		j.mu.Lock()
		j.errs = append(j.errs, fmt.Sprintf("seq %d %s for %s journaled before memory changed", seq, r.Type, id))
		j.mu.Unlock()
	}
	return seq
}

func TestJournal_RecordedInsideTheCriticalSection(t *testing.T) {
	j := &memoryJournal{}
	clk := newClock()
	st, err := NewStore(Config{Now: clk.Now, Journal: j, Shards: 4, MaxPerUser: 3, OnExceed: QuotaEvictOldest})
	if err != nil {
		t.Fatal(err)
	}
	j.st = st
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			for i := 0; i < 500; i++ {
				tok := token(rng.IntN(30))
				switch rng.IntN(7) {
				case 0, 1:
					st.Create(CreateRequest{UserID: fmt.Sprint("u", rng.IntN(3)), Token: tok, TTLSet: true, TTLSeconds: 2})
				case 2:
					st.Validate(tok, true, []netip.Addr{ipA, ipB}[rng.IntN(2)], "")
				case 3:
					if s, _, err := st.Validate(tok, false, ipA, ""); err == nil {
						st.Renew(s.ID, 3)
					}
				case 4:
					if s, _, err := st.Validate(tok, false, ipA, ""); err == nil {
						st.Revoke(s.ID)
					}
				case 5:
					clk.Add(300)
					st.Sweep()
					st.FlushTouches()
				case 6:
					st.RevokeUser(fmt.Sprint("u", rng.IntN(3)), ID{})
				}
			}
		}(g)
	}
	wg.Wait()
	if len(j.errs) > 0 {
		t.Fatalf("%d records out of their critical section, first: %s", len(j.errs), j.errs[0])
	}
	if j.len() < 100 {
		t.Fatalf("only %d records", j.len())
	}
}
