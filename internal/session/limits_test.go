package session

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestSetLimits_QuotaAndTTLApplyToTheNextOperation(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPerUser = 3 })
	for i := 0; i < 2; i++ {
		e.create(CreateRequest{UserID: "u", Token: token(i)})
	}
	l := e.st.Limits()
	l.MaxPerUser = 2
	l.TTLDefault, l.TTLMax, l.IdleDefault = 60, 120, 30
	if err := e.st.SetLimits(l); err != nil {
		t.Fatal(err)
	}
	_, err := e.st.Create(CreateRequest{UserID: "u", Token: token(3)})
	var qe *QuotaError
	if !errors.As(err, &qe) || qe.Limit != 2 {
		t.Fatalf("create over the lowered quota: %v", err)
	}
	r := e.create(CreateRequest{UserID: "v", Token: token(4)})
	if got := r.Session.ExpiresAt - r.Session.CreatedAt; got != 60_000 {
		t.Fatalf("new default TTL: expires after %d ms", got)
	}
	if r.Session.IdleTimeout != 30 {
		t.Fatalf("new idle default: %d", r.Session.IdleTimeout)
	}
	_, err = e.st.Create(CreateRequest{UserID: "v", Token: token(5), TTLSet: true, TTLSeconds: 121})
	wantField(t, err, "ttl_seconds")
	_, _, err = e.st.Renew(r.Session.ID, 121)
	wantField(t, err, "ttl_seconds")
	if c := e.st.Config(); c.MaxPerUser != 2 || c.TTLMax != 120 {
		t.Fatalf("Config does not report the limits in force: %+v", c)
	}

	// Evict instead of reject from now on.
	l.OnExceed = QuotaEvictOldest
	if err := e.st.SetLimits(l); err != nil {
		t.Fatal(err)
	}
	if res := e.create(CreateRequest{UserID: "u", Token: token(6)}); res.EvictedID.IsZero() {
		t.Fatal("evict_oldest not applied")
	}
	e.check()
}

func TestSetLimits_InvalidChangesNothing(t *testing.T) {
	e := newEnv(t, nil)
	before := e.st.Limits()
	for _, l := range []Limits{
		{MaxPerUser: 0, TTLDefault: 1, TTLMax: 2},
		{MaxPerUser: 1, TTLDefault: 3, TTLMax: 2},
		{MaxPerUser: 1, TTLDefault: 1, TTLMax: 2, IdleDefault: 3},
		{MaxPerUser: 1, TTLDefault: 1, TTLMax: 0},
		{MaxPerUser: 1, TTLDefault: 1, TTLMax: 2, OnExceed: 9},
	} {
		if err := e.st.SetLimits(l); err == nil {
			t.Fatalf("SetLimits(%+v) accepted", l)
		}
	}
	if e.st.Limits() != before {
		t.Fatal("a rejected SetLimits changed the limits")
	}
}

// Run with -race: SetLimits concurrent with creates and renews.
func TestSetLimits_ConcurrentWithCreate(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPerUser = 5 })
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				res, err := e.st.Create(CreateRequest{UserID: fmt.Sprintf("u%d", i%7), Token: token(w*1000 + i)})
				if err == nil {
					e.st.Renew(res.Session.ID, 60)
				} else if !errors.Is(err, ErrQuotaExceeded) {
					t.Error(err)
				}
			}
		}(w)
	}
	for i := 0; i < 200; i++ {
		l := e.st.Limits()
		l.MaxPerUser = 1 + i%5
		l.OnExceed = QuotaPolicy(i % 2)
		if err := e.st.SetLimits(l); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	e.check()
}
