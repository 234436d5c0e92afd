package session

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestConcurrent_SameTokenCreatesExactlyOneWins(t *testing.T) {
	for round := 0; round < 20; round++ {
		e := newEnv(t, nil)
		const n = 32
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, conflicts := 0, 0
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				_, err := e.st.Create(CreateRequest{UserID: fmt.Sprint("user-", i), Token: token(round)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, ErrTokenConflict):
					conflicts++
				default:
					t.Errorf("unexpected %v", err)
				}
			}(i)
		}
		close(start)
		wg.Wait()
		if wins != 1 || conflicts != n-1 {
			t.Fatalf("round %d: %d wins, %d conflicts", round, wins, conflicts)
		}
		if e.j.len() != 1 {
			t.Fatalf("%d records", e.j.len())
		}
		e.check()
	}
}

func TestConcurrent_200CreatesOneUserYield50Live(t *testing.T) {
	for _, policy := range []QuotaPolicy{QuotaReject, QuotaEvictOldest} {
		t.Run(fmt.Sprint("policy=", policy), func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.OnExceed = policy; c.Shards = 256 })
			var wg sync.WaitGroup
			var mu sync.Mutex
			ok, quota, evicted := 0, 0, 0
			start := make(chan struct{})
			for i := 0; i < 200; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					res, err := e.st.Create(CreateRequest{UserID: "u-1001"})
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						ok++
						if !res.EvictedID.IsZero() {
							evicted++
						}
					case errors.Is(err, ErrQuotaExceeded):
						quota++
					default:
						t.Errorf("unexpected %v", err)
					}
				}()
			}
			close(start)
			wg.Wait()
			r, _ := e.st.List(ListQuery{UserID: "u-1001", Size: 100})
			if r.Total != 50 || e.st.CountLive("u-1001") != 50 {
				t.Fatalf("%d live sessions", r.Total)
			}
			switch policy {
			case QuotaReject:
				if ok != 50 || quota != 150 {
					t.Fatalf("%d ok, %d quota errors", ok, quota)
				}
			case QuotaEvictOldest:
				if ok != 200 || evicted != 150 || e.st.Stats().Tombstones != 150 {
					t.Fatalf("%d ok, %d evicted, stats %+v", ok, evicted, e.st.Stats())
				}
			}
			e.check()
		})
	}
}

// TestConcurrent_MixedOperationsKeepInvariants runs every operation in
// parallel (meant for -race) and then checks all indexes.
func TestConcurrent_MixedOperationsKeepInvariants(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPerUser = 5; c.OnExceed = QuotaEvictOldest; c.Shards = 4; c.Partitions = 8 })
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				tok := token((g*7 + i) % 60)
				user := fmt.Sprint("u", i%4)
				switch i % 9 {
				case 0, 1:
					e.st.Create(CreateRequest{UserID: user, Token: tok, TTLSet: true, TTLSeconds: 3, IP: ipA})
				case 2:
					e.st.Validate(tok, i%2 == 0, ipB, "ua")
				case 3:
					if s, _, err := e.st.Validate(tok, false, ipA, ""); err == nil {
						e.st.Renew(s.ID, 5)
					}
				case 4:
					if s, _, err := e.st.Validate(tok, false, ipA, ""); err == nil {
						e.st.Revoke(s.ID)
					}
				case 5:
					e.st.RevokeUser(user, ID{})
				case 6:
					e.clk.Add(150)
					e.st.Sweep()
					e.st.FlushTouches()
				case 7:
					e.st.List(ListQuery{UserID: user})
					e.st.Stats()
				case 8:
					e.st.RangeShard(i%4, func(*Session) {}, func(*Tombstone) {})
					e.st.RangePartition(uint16(i%8), func(*Session) {}, nil)
				}
			}
		}(g)
	}
	wg.Wait()
	e.check()
	for u := 0; u < 4; u++ {
		if n := e.st.CountLive(fmt.Sprint("u", u)); n > 5 {
			t.Fatalf("user u%d has %d live sessions", u, n)
		}
	}
}
