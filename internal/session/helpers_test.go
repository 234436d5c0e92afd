package session

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// t0 is 2026-01-01T00:00:00Z in Unix ms.
const t0 = int64(1767225600000)

// fakeClock is an injectable wall clock.
type fakeClock struct{ ms atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ms.Store(t0)
	return c
}

func (c *fakeClock) Now() int64   { return c.ms.Load() }
func (c *fakeClock) Add(ms int64) { c.ms.Add(ms) }
func (c *fakeClock) Set(ms int64) { c.ms.Store(ms) }
func (c *fakeClock) Since() int64 { return c.ms.Load() - t0 }

// recJournal records every record with a gap-free seq.
type recJournal struct {
	mu   sync.Mutex
	seq  uint64
	recs []Record
}

func (j *recJournal) Record(r *Record) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	cp := *r
	if r.Session != nil {
		s := *r.Session
		cp.Session = &s
	}
	j.recs = append(j.recs, cp)
	return j.seq
}

func (j *recJournal) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.recs)
}

// since returns the records after the first n.
func (j *recJournal) since(n int) []Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Record(nil), j.recs[n:]...)
}

func (j *recJournal) types(from int) string {
	var b []string
	for _, r := range j.since(from) {
		b = append(b, r.Type.String())
	}
	return strings.Join(b, ",")
}

type env struct {
	t   testing.TB
	clk *fakeClock
	j   *recJournal
	st  *Store
}

func newEnv(t testing.TB, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, clk: newClock(), j: &recJournal{}}
	cfg := Config{Now: e.clk.Now, Journal: e.j, Shards: 64}
	if mod != nil {
		mod(&cfg)
	}
	st, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	if tt, ok := t.(*testing.T); ok {
		tt.Cleanup(func() {
			if err := st.CheckInvariants(); err != nil {
				tt.Errorf("invariants at cleanup: %v", err)
			}
		})
	}
	return e
}

var (
	ipA = netip.MustParseAddr("203.0.113.7")
	ipB = netip.MustParseAddr("2001:db8::1")
)

// token returns a deterministic valid client token.
func token(n int) string { return fmt.Sprintf("client-token-%08d", n) }

func (e *env) create(req CreateRequest) CreateResult {
	e.t.Helper()
	if req.UserID == "" {
		req.UserID = "u-1001"
	}
	res, err := e.st.Create(req)
	if err != nil {
		e.t.Fatalf("create: %v", err)
	}
	return res
}

func (e *env) check() {
	e.t.Helper()
	if err := e.st.CheckInvariants(); err != nil {
		e.t.Fatal(err)
	}
}

func wantErr(t testing.TB, got, want error) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Fatalf("unexpected error %v", got)
		}
		return
	}
	if !errors.Is(got, want) {
		t.Fatalf("error = %v, want %v", got, want)
	}
}

func wantField(t testing.TB, err error, field string) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidField) {
		t.Fatalf("error = %v, want FieldError(%s)", err, field)
	}
	if fe.Field != field {
		t.Fatalf("FieldError.Field = %q, want %q", fe.Field, field)
	}
}

func netipPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
