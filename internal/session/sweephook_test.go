package session

import (
	"sync"
	"testing"
	"time"
)

// Config.OnSweepRound (tokmesh_sweeper_removed_total{kind} and
// tokmesh_sweeper_round_duration_seconds) reports each round once, with
// expired sessions and tombstones counted apart, and the totals match what
// Sweep returns.
func TestSweep_OnSweepRoundSplitsExpiredSessionsFromTombstones(t *testing.T) {
	var mu sync.Mutex
	var rounds, expired, tombs int
	e := newEnv(t, func(c *Config) {
		c.OnSweepRound = func(held time.Duration, exp, tomb int) {
			mu.Lock()
			defer mu.Unlock()
			if held < 0 {
				t.Errorf("held %v", held)
			}
			rounds++
			expired += exp
			tombs += tomb
		}
	})
	a := e.create(CreateRequest{Token: token(1), TTLSet: true, TTLSeconds: 1})
	e.create(CreateRequest{Token: token(2), TTLSet: true, TTLSeconds: 1})
	c := e.create(CreateRequest{Token: token(3), TTLSet: true, TTLSeconds: 1})
	if ok, _, err := e.st.Revoke(c.Session.ID); !ok || err != nil {
		t.Fatal("revoke")
	}
	if n := e.st.Sweep(); n != 0 || rounds != 0 {
		t.Fatalf("nothing due: removed %d, %d rounds reported", n, rounds)
	}
	e.clk.Set(a.Session.ExpiresAt + 10_000 + 1) // past expiry + grace: everything is due
	if n := e.st.Sweep(); n != 3 {
		t.Fatalf("removed %d, want 3", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if expired != 2 || tombs != 1 || rounds == 0 {
		t.Fatalf("hook: %d rounds, %d expired, %d tombstones; want 2 expired, 1 tombstone", rounds, expired, tombs)
	}
}
