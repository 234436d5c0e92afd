package engine

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/session"
)

// events records what the engine reports to its metric hooks.
type events struct {
	mu          sync.Mutex
	validations map[string]int // by result
	ops         map[string]int // "op/result"
	expired     int
	tombstones  int
	rounds      int
	snapshots   []error
}

func (ev *events) install(cfg *Config) {
	ev.validations, ev.ops = map[string]int{}, map[string]int{}
	cfg.OnValidate = func(err error) {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		r := "valid"
		switch {
		case err == nil:
		case errors.Is(err, session.ErrTokenMalformed):
			r = "malformed"
		case errors.Is(err, session.ErrNotFound):
			r = "unknown"
		case errors.Is(err, session.ErrExpired):
			r = "expired"
		case errors.Is(err, session.ErrRevoked):
			r = "revoked"
		default:
			r = "other: " + err.Error()
		}
		ev.validations[r]++
	}
	cfg.OnSessionOp = func(op string, err error) {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		r := "ok"
		if err != nil {
			r = "error"
		}
		ev.ops[op+"/"+r]++
	}
	cfg.OnSweepRound = func(_ time.Duration, exp, tomb int) {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		ev.rounds++
		ev.expired += exp
		ev.tombstones += tomb
	}
	cfg.OnSnapshot = func(d time.Duration, err error) {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		if d <= 0 {
			panic("snapshot duration not positive")
		}
		ev.snapshots = append(ev.snapshots, err)
	}
}

// Every engine call reports exactly one event to its hook, with the result
// the caller got: the metric series of 09-observability §1 are fed from
// here, so one HTTP, RESP or admin-socket request counts once.
func TestHooks_EveryOperationReportsOnceWithItsResult(t *testing.T) {
	var now atomicMillis
	now.set(time.Now().UnixMilli())
	var ev events
	cfg := testConfig(t.TempDir())
	cfg.Now = now.get
	cfg.Session.ExpiredGrace = 1000
	ev.install(&cfg)
	e := mustOpen(t, cfg)
	defer e.Close()

	a := create(t, e, "token-hooks-a-0000", "u1")
	b := create(t, e, "token-hooks-b-0000", "u1")
	create(t, e, "token-hooks-c-0000", "u2")
	if _, err := e.Create(session.CreateRequest{Token: "token-hooks-a-0000", UserID: "u3"}); err == nil {
		t.Fatal("duplicate token accepted")
	}
	for _, tok := range []string{"token-hooks-a-0000", "token-hooks-a-0000", "bad", "token-hooks-zzzzzzzz"} {
		e.Validate(tok, false, loopback, "ua")
	}
	e.Validate("token-hooks-a-0000", true, loopback, "ua") // with touch: a validation and a touch
	e.Touch(a.ID, loopback, "ua")
	e.Renew(a.ID, 60)
	e.Renew(a.ID, -1) // invalid TTL
	e.Revoke(b.ID)
	e.Revoke(b.ID) // idempotent: a success too
	e.Validate("token-hooks-b-0000", false, loopback, "ua")
	e.RevokeUser("u2", session.ID{})
	if _, err := e.Snapshot(); err != nil {
		t.Fatal(err)
	}
	now.set(now.get() + 61*1000) // a (renewed to 60 s) expired, within its grace
	e.Validate("token-hooks-a-0000", false, loopback, "ua")
	// Past every expiry + grace: a is removed, and so are the tombstones of
	// b and c (7200 s default TTL).
	now.set(now.get() + 7202*1000)
	e.Sweep()

	ev.mu.Lock()
	defer ev.mu.Unlock()
	wantV := map[string]int{"valid": 3, "malformed": 1, "unknown": 1, "revoked": 1, "expired": 1}
	if !equalMaps(ev.validations, wantV) {
		t.Errorf("validations %v, want %v", ev.validations, wantV)
	}
	wantOps := map[string]int{"create/ok": 3, "create/error": 1, "touch/ok": 2, "renew/ok": 1, "renew/error": 1,
		"revoke/ok": 2, "revoke_all/ok": 1}
	if !equalMaps(ev.ops, wantOps) {
		t.Errorf("session ops %v, want %v", ev.ops, wantOps)
	}
	// a expired; b and c are tombstones (revoked, then their TTL passed).
	if ev.expired != 1 || ev.tombstones != 2 || ev.rounds == 0 {
		t.Errorf("sweeper: %d rounds, %d expired, %d tombstones", ev.rounds, ev.expired, ev.tombstones)
	}
	if len(ev.snapshots) != 1 || ev.snapshots[0] != nil {
		t.Errorf("snapshots %v", ev.snapshots)
	}
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

type atomicMillis struct {
	mu sync.Mutex
	v  int64
}

func (a *atomicMillis) get() int64  { a.mu.Lock(); defer a.mu.Unlock(); return a.v }
func (a *atomicMillis) set(v int64) { a.mu.Lock(); a.v = v; a.mu.Unlock() }
