package auth

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/crypt"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testParams keep Argon2 cheap where Argon2 itself is not under test.
var testParams = Params{Memory: 64, Iterations: 1, Parallelism: 1}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1_767_225_600_000)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testMasterKey(t testing.TB, b byte) *crypt.MasterKey {
	t.Helper()
	raw := make([]byte, crypt.KeySize)
	for i := range raw {
		raw[i] = b + byte(i)
	}
	k, err := crypt.NewMasterKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testConfig(clock *fakeClock) Config {
	cfg := DefaultConfig()
	cfg.Argon2 = testParams
	cfg.Now = clock.Now
	return cfg
}

// env is a store + authenticator + manager on a temp dir.
type env struct {
	t     testing.TB
	clock *fakeClock
	dir   string
	mk    *crypt.MasterKey
	store *Store
	authn *Authenticator
	mgr   *Manager
	ctx   context.Context
}

func newEnv(t testing.TB, mutate ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), dir: filepath.Join(t.TempDir(), "control"), mk: testMasterKey(t, 1), ctx: context.Background()}
	cfg := testConfig(e.clock)
	for _, f := range mutate {
		f(&cfg)
	}
	var err error
	e.store, err = OpenStore(StoreOptions{Dir: e.dir, MasterKey: e.mk, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if e.authn, err = NewAuthenticator(cfg); err != nil {
		t.Fatal(err)
	}
	e.mgr = NewManager(cfg, e.store, e.authn)
	t.Cleanup(func() {
		e.mgr.Close()
		e.store.Close()
	})
	return e
}

// create makes a key and returns it with its credential.
func (e *env) create(req CreateRequest) (Key, string) {
	e.t.Helper()
	if req.Role == "" {
		req.Role = RoleValidator
	}
	k, secret, _, err := e.mgr.Create(e.ctx, req, LocalAdminID)
	if err != nil {
		e.t.Fatal(err)
	}
	return k, k.ID + ":" + secret
}

func (e *env) auth(cred string, ip string) (*Principal, error) {
	return e.authn.Authenticate(e.ctx, cred, netip.MustParseAddr(ip))
}

func failureOf(err error) *AuthFailure {
	var f *AuthFailure
	if errors.As(err, &f) {
		return f
	}
	return nil
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
