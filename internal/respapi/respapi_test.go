package respapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/engine"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	t     testing.TB
	srv   *Server
	eng   *engine.Engine
	keys  *auth.Manager
	addr  string
	creds map[auth.Role][2]string // key ID, secret
}

func newEnv(t testing.TB, opts ...func(*Config)) *env {
	t.Helper()
	dir := t.TempDir()
	cfg := engine.DefaultConfig(dir)
	cfg.Getenv = func(k string) string {
		if k == "TOKMESH_ENCRYPTION_KEY" {
			return strings.Repeat("42", 32)
		}
		return ""
	}
	cfg.SweepInterval, cfg.SnapshotInterval, cfg.SnapshotWALThreshold, cfg.SnapshotOnClose = -1, 0, 0, false
	eng, err := engine.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ac := auth.DefaultConfig()
	ac.Argon2 = auth.Params{Memory: 8192, Iterations: 1, Parallelism: 1}
	store, err := auth.OpenStore(auth.StoreOptions{Dir: dir + "/control", MasterKey: eng.MasterKey(), Cipher: eng.Cipher()})
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewAuthenticator(ac)
	if err != nil {
		t.Fatal(err)
	}
	keys := auth.NewManager(ac, store, authn)
	e := &env{t: t, eng: eng, keys: keys, creds: map[auth.Role][2]string{}}
	for _, r := range auth.Roles {
		k, secret, _, err := keys.Create(context.Background(), auth.CreateRequest{Role: r}, "LOCAL_ADMIN")
		if err != nil {
			t.Fatal(err)
		}
		e.creds[r] = [2]string{k.ID, secret}
	}
	sc := Config{Engine: eng, Authenticator: authn, Brute: auth.NewBruteForceGuard(ac)}
	for _, o := range opts {
		o(&sc)
	}
	e.srv = New(sc)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ln) }()
	t.Cleanup(func() {
		e.srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		keys.Close()
		store.Close()
		eng.Close()
	})
	return e
}

// client returns a go-redis client authenticated with role's key
// (default protocol 3: HELLO 3 is refused, AUTH key secret follows).
func (e *env) client(r auth.Role, proto int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: e.addr, Username: e.creds[r][0], Password: e.creds[r][1],
		Protocol: proto, PoolSize: 2, DisableIdentity: false})
	e.t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) anon() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: e.addr, PoolSize: 1})
	e.t.Cleanup(func() { c.Close() })
	return c
}

func wantErr(t *testing.T, err error, prefix string) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("error %v, want prefix %q", err, prefix)
	}
}

type created struct {
	SessionID string `json:"session_id"`
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expires_at"`
}

func create(t testing.TB, c *redis.Client, body string, extra ...any) created {
	t.Helper()
	args := append([]any{"TM.CREATE", body}, extra...)
	s, err := c.Do(context.Background(), args...).Text()
	if err != nil {
		t.Fatal(err)
	}
	var out created
	if err := json.Unmarshal([]byte(s), &out); err != nil || out.SessionID == "" || out.Token == "" {
		t.Fatalf("TM.CREATE reply %q: %v", s, err)
	}
	return out
}

func TestScriptedSession(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, proto := range []int{3, 2} {
		c := e.client(auth.RoleIssuer, proto)
		cr := create(t, c, `{"user_id":"u1","data":{"k":"v"}}`, "TTL", 600)
		v, err := c.Do(ctx, "TM.VALIDATE", cr.Token).Text()
		if err != nil {
			t.Fatal(err)
		}
		var sess map[string]any
		if err := json.Unmarshal([]byte(v), &sess); err != nil || sess["id"] != cr.SessionID || sess["user_id"] != "u1" {
			t.Fatalf("validate %q: %v", v, err)
		}
		g, err := c.Get(ctx, cr.SessionID).Result()
		if err != nil || !strings.Contains(g, cr.SessionID) {
			t.Fatalf("GET %q %v", g, err)
		}
		if ttl, err := c.Do(ctx, "TTL", cr.SessionID).Int64(); err != nil || ttl < 599 || ttl > 600 {
			t.Fatalf("TTL %d %v", ttl, err)
		}
		if pttl, err := c.Do(ctx, "PTTL", cr.SessionID).Int64(); err != nil || pttl < 598000 || pttl > 600000 {
			t.Fatalf("PTTL %d %v", pttl, err)
		}
		if ok, err := c.Expire(ctx, cr.SessionID, 1200*time.Second).Result(); err != nil || !ok {
			t.Fatalf("EXPIRE %v %v", ok, err)
		}
		if ttl, _ := c.Do(ctx, "TTL", cr.SessionID).Int64(); ttl < 1199 {
			t.Fatalf("TTL after EXPIRE %d", ttl)
		}
		if n, err := c.Exists(ctx, cr.SessionID, cr.SessionID, "nope").Result(); err != nil || n != 2 {
			t.Fatalf("EXISTS %d %v", n, err)
		}
		if n, err := c.Del(ctx, cr.SessionID, "nope").Result(); err != nil || n != 1 {
			t.Fatalf("DEL %d %v", n, err)
		}
		wantErr(t, c.Do(ctx, "TM.VALIDATE", cr.Token).Err(), "TM-TOKN-4012 ")
		if _, err := c.Get(ctx, cr.SessionID).Result(); err != redis.Nil {
			t.Fatalf("GET after DEL: %v", err)
		}
		if ttl, _ := c.Do(ctx, "TTL", cr.SessionID).Int64(); ttl != -2 {
			t.Fatalf("TTL after DEL %d", ttl)
		}
		if ok, _ := c.Expire(ctx, cr.SessionID, time.Minute).Result(); ok {
			t.Fatal("EXPIRE on a revoked session returned 1")
		}
		if n, _ := c.Del(ctx, cr.SessionID).Result(); n != 0 {
			t.Fatal("second DEL counted")
		}
	}
}

func TestSessionCommandsAndErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(auth.RoleIssuer, 2)
	a := create(t, c, `{"user_id":"u2"}`)
	time.Sleep(2 * time.Millisecond)
	b := create(t, c, `{"user_id":"u2","ttl_seconds":300}`)

	// TM.LIST: created_at descending.
	items, err := c.Do(ctx, "TM.LIST", "u2").StringSlice()
	if err != nil || len(items) != 2 || !strings.Contains(items[0], b.SessionID) || !strings.Contains(items[1], a.SessionID) {
		t.Fatalf("TM.LIST %v %v", items, err)
	}
	// TM.TOUCH / TM.RENEW integers.
	if la, err := c.Do(ctx, "TM.TOUCH", a.SessionID).Int64(); err != nil || la < time.Now().Add(-time.Minute).UnixMilli() {
		t.Fatalf("TM.TOUCH %d %v", la, err)
	}
	if ea, err := c.Do(ctx, "TM.RENEW", a.SessionID, 900).Int64(); err != nil || ea < time.Now().Add(899*time.Second).UnixMilli() {
		t.Fatalf("TM.RENEW %d %v", ea, err)
	}
	wantErr(t, c.Do(ctx, "TM.RENEW", a.SessionID, "x").Err(), "TM-ARG-1001 ")
	wantErr(t, c.Do(ctx, "TM.RENEW", a.SessionID, 0).Err(), "TM-SESS-4001 ")
	wantErr(t, c.Do(ctx, "TM.RENEW", "tmss-nope", 60).Err(), "TM-SESS-4040 ")
	wantErr(t, c.Do(ctx, "TM.TOUCH", "garbage").Err(), "TM-SESS-4040 ")
	wantErr(t, c.Do(ctx, "EXPIRE", a.SessionID, "abc").Err(), "ERR value is not an integer or out of range")
	wantErr(t, c.Do(ctx, "EXPIRE", a.SessionID, 60, "NX").Err(), "TM-ARG-1001 ")
	wantErr(t, c.Do(ctx, "EXPIRE", a.SessionID, 0).Err(), "TM-SESS-4001 ")
	// A malformed ID is exactly an unknown one: the range is checked first.
	for _, id := range []string{"garbage", "tmss-01m8djx9n403pp24fh60h89dz9"} {
		wantErr(t, c.Do(ctx, "EXPIRE", id, 0).Err(), "TM-SESS-4001 ")
		wantErr(t, c.Do(ctx, "TM.RENEW", id, 0).Err(), "TM-SESS-4001 ")
		wantErr(t, c.Do(ctx, "TM.RENEW", id, 60).Err(), "TM-SESS-4040 ")
		if n, err := c.Do(ctx, "EXPIRE", id, 60).Int(); err != nil || n != 0 {
			t.Fatalf("EXPIRE %s 60: %d %v", id, n, err)
		}
	}

	// TM.CREATE errors mirror HTTP.
	wantErr(t, c.Do(ctx, "TM.CREATE", `{"user_id":"u","ttl_seconds":60}`, "TTL", 60).Err(), "TM-ARG-1003 ")
	wantErr(t, c.Do(ctx, "TM.CREATE", `{"user_id":"u"}`, "TTL", "abc").Err(), "TM-ARG-1001 ")
	wantErr(t, c.Do(ctx, "TM.CREATE", `{"user_id":"u","bogus":1}`).Err(), "TM-SYS-4000 ")
	wantErr(t, c.Do(ctx, "TM.CREATE", `{"user_id":`).Err(), "TM-SYS-4000 ")
	wantErr(t, c.Do(ctx, "TM.CREATE", `{}`).Err(), "TM-ARG-1002 ")
	wantErr(t, c.Do(ctx, "TM.CREATE", `{"user_id":"u","token":"short"}`).Err(), "TM-TOKN-4000 ")
	wantErr(t, c.Do(ctx, "TM.CREATE", `{"user_id":"u","ttl_seconds":-5}`).Err(), "TM-SESS-4001 ")
	tok := "tmtk_" + strings.Repeat("a", 40)
	if s, err := c.Do(ctx, "TM.CREATE", `{"user_id":"u3","token":"`+tok+`"}`).Text(); err != nil || strings.Contains(s, `"token"`) {
		t.Fatalf("create with a token: %q %v", s, err)
	}
	wantErr(t, c.Do(ctx, "TM.CREATE", `{"user_id":"u3","token":"`+tok+`"}`).Err(), "TM-TOKN-4090 ")

	// TM.VALIDATE results.
	wantErr(t, c.Do(ctx, "TM.VALIDATE", "x").Err(), "TM-TOKN-4000 ")
	wantErr(t, c.Do(ctx, "TM.VALIDATE", "tmtk_"+strings.Repeat("z", 40)).Err(), "TM-TOKN-4010 ")
	wantErr(t, c.Do(ctx, "TM.VALIDATE", a.Token, "FOO").Err(), "TM-ARG-1001 ")
	if _, err := c.Do(ctx, "TM.VALIDATE", a.Token, "touch").Text(); err != nil {
		t.Fatal(err)
	}

	// Revoke and revoke-user.
	if n, err := c.Do(ctx, "TM.REVOKE", a.SessionID).Int(); err != nil || n != 1 {
		t.Fatalf("TM.REVOKE %d %v", n, err)
	}
	if n, _ := c.Do(ctx, "TM.REVOKE", a.SessionID).Int(); n != 0 {
		t.Fatal("TM.REVOKE not idempotent")
	}
	wantErr(t, c.Do(ctx, "TM.TOUCH", a.SessionID).Err(), "TM-SESS-4042 ")
	c1 := create(t, c, `{"user_id":"u4"}`)
	create(t, c, `{"user_id":"u4"}`)
	create(t, c, `{"user_id":"u4"}`)
	if n, err := c.Do(ctx, "TM.REVOKE_USER", "u4", "EXCEPT", c1.SessionID).Int(); err != nil || n != 2 {
		t.Fatalf("TM.REVOKE_USER %d %v", n, err)
	}
	if n, _ := c.Exists(ctx, c1.SessionID).Result(); n != 1 {
		t.Fatal("EXCEPT session revoked")
	}
	wantErr(t, c.Do(ctx, "TM.REVOKE_USER", "u4", "BOGUS").Err(), "TM-ARG-1001 ")
	for _, bad := range []string{strings.Repeat("u", 129), "a\x00b", "\xe9"} {
		wantErr(t, c.Do(ctx, "TM.REVOKE_USER", bad).Err(), "TM-SESS-4001 ")
	}
	keys := make([]string, 1001)
	for i := range keys {
		keys[i] = "k"
	}
	wantErr(t, c.Del(ctx, keys...).Err(), "TM-ARG-1001 too many keys")

	// Roles: a validator can read but not write.
	v := e.client(auth.RoleValidator, 2)
	if _, err := v.Do(ctx, "TM.VALIDATE", b.Token).Text(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, v.Do(ctx, "TM.CREATE", `{"user_id":"x"}`).Err(), "TM-AUTH-4030 permission denied")
	wantErr(t, v.Del(ctx, b.SessionID).Err(), "TM-AUTH-4030 ")
	wantErr(t, v.Do(ctx, "TM.LIST", "u2").Err(), "TM-AUTH-4030 ")
	m := e.client(auth.RoleMetrics, 2)
	wantErr(t, m.Get(ctx, b.SessionID).Err(), "TM-AUTH-4030 ")
	if info, err := m.Info(ctx).Result(); err != nil || !strings.Contains(info, "redis_version:7.2.0") || !strings.Contains(info, "# Stats") {
		t.Fatalf("INFO %q %v", info, err)
	}
}

// raw is a plain TCP client speaking RESP by hand.
type raw struct {
	t  *testing.T
	c  net.Conn
	rd *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *raw {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &raw{t: t, c: c, rd: bufio.NewReader(c)}
}

func (r *raw) send(args ...string) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := r.c.Write([]byte(b.String())); err != nil {
		r.t.Fatal(err)
	}
}

// line reads one reply line (bulk bodies are returned after their header).
func (r *raw) line() string {
	r.t.Helper()
	l, err := r.rd.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (r *raw) expect(want string) {
	r.t.Helper()
	if got := r.line(); got != want {
		r.t.Fatalf("got %q, want %q", got, want)
	}
}

func TestHandshakeAndProtocolErrors(t *testing.T) {
	e := newEnv(t)
	r := dialRaw(t, e.addr)
	id, secret := e.creds[auth.RoleIssuer][0], e.creds[auth.RoleIssuer][1]

	r.send("PING")
	r.expect("+PONG")
	r.send("GET", "tmss-x")
	r.expect("-TM-AUTH-4010 authentication required")
	r.send("FLUSHALL")
	r.expect("-ERR unknown command 'FLUSHALL'")
	r.send("MULTI")
	r.expect("-ERR unknown command 'MULTI'")
	r.send("get")
	r.expect("-ERR wrong number of arguments for 'get' command")
	r.send("HELLO", "3", "AUTH", id, secret)
	r.expect("-NOPROTO unsupported protocol version")
	r.send("GET", "tmss-x") // still unauthenticated
	r.expect("-TM-AUTH-4010 authentication required")
	r.send("AUTH", id, "wrong-secret")
	r.expect("-TM-AUTH-4011 invalid credentials")
	r.send("AUTH", id+":"+secret)
	r.expect("+OK")
	r.send("GET", "tmss-x")
	r.expect("$-1")
	r.send("AUTH", id, "wrong-secret") // a failed AUTH drops the identity
	r.expect("-TM-AUTH-4011 invalid credentials")
	r.send("GET", "tmss-x")
	r.expect("-TM-AUTH-4010 authentication required")
	r.send("HELLO", "2", "AUTH", id, secret, "SETNAME", "gw-1")
	r.expect("*14")
	for _, w := range []string{"$6", "server", "$7", "tokmesh", "$7", "version", "$5", "7.2.0", "$5", "proto", ":2", "$2", "id"} {
		r.expect(w)
	}
	r.line() // :<id>
	for _, w := range []string{"$4", "mode", "$10", "standalone", "$4", "role", "$6", "master", "$7", "modules", "*0"} {
		r.expect(w)
	}
	r.send("CLIENT", "GETNAME")
	r.expect("$4")
	r.expect("gw-1")
	r.send("CLIENT", "SETINFO", "LIB-NAME", "x")
	r.expect("+OK")
	r.send("CLIENT", "KILL")
	r.expect("-ERR unknown subcommand 'KILL'. Try CLIENT HELP.")
	r.send("SELECT", "0")
	r.expect("+OK")
	r.send("SELECT", "1")
	r.expect("-ERR DB index is out of range")
	r.send("COMMAND", "COUNT")
	if l := r.line(); !strings.HasPrefix(l, ":") {
		t.Fatalf("COMMAND COUNT %q", l)
	}
	r.send("COMMAND", "DOCS")
	r.expect("*0")
	r.send("PING", "hi")
	r.expect("$2")
	r.expect("hi")

	// Disable the key: the open connection stops working on the next command.
	if _, _, err := e.keys.SetStatus(context.Background(), id, auth.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	r.send("GET", "tmss-x")
	r.expect("-TM-AUTH-4012 API key disabled")

	// Protocol error: a bulk over 64 KiB closes the connection.
	r.send("PING", strings.Repeat("x", MaxBulkLen+1))
	if l := r.line(); !strings.HasPrefix(l, "-ERR Protocol error") {
		t.Fatalf("huge bulk: %q", l)
	}
	if _, err := r.rd.ReadString('\n'); err == nil {
		t.Fatal("connection still open after a protocol error")
	}

	// QUIT drops the rest of the pipeline.
	q := dialRaw(t, e.addr)
	q.send("QUIT")
	q.send("PING")
	q.expect("+OK")
	if l, err := q.rd.ReadString('\n'); err == nil {
		t.Fatalf("reply after QUIT: %q", l)
	}
}

func TestPipeline100Mixed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(auth.RoleIssuer, 3)
	cr := create(t, c, `{"user_id":"pipe"}`)
	pipe := c.Pipeline()
	type check func(redis.Cmder) bool
	var checks []check
	for i := 0; i < 100; i++ {
		switch i % 7 {
		case 0:
			pipe.Do(ctx, "TM.VALIDATE", cr.Token)
			checks = append(checks, func(r redis.Cmder) bool { return r.Err() == nil })
		case 1:
			pipe.Get(ctx, cr.SessionID)
			checks = append(checks, func(r redis.Cmder) bool { return r.Err() == nil })
		case 2:
			pipe.Exists(ctx, cr.SessionID)
			checks = append(checks, func(r redis.Cmder) bool { return r.(*redis.IntCmd).Val() == 1 })
		case 3:
			pipe.TTL(ctx, cr.SessionID)
			checks = append(checks, func(r redis.Cmder) bool { return r.Err() == nil })
		case 4:
			pipe.Do(ctx, "NOSUCH", "x")
			checks = append(checks, func(r redis.Cmder) bool {
				return r.Err() != nil && r.Err().Error() == "ERR unknown command 'NOSUCH'"
			})
		case 5:
			pipe.Do(ctx, "TM.CREATE", `{"user_id":"pipe2"}`)
			checks = append(checks, func(r redis.Cmder) bool { return r.Err() == nil })
		case 6:
			pipe.Ping(ctx)
			checks = append(checks, func(r redis.Cmder) bool { return r.(*redis.StatusCmd).Val() == "PONG" })
		}
	}
	cmds, _ := pipe.Exec(ctx)
	if len(cmds) != 100 {
		t.Fatalf("%d replies", len(cmds))
	}
	for i, r := range cmds {
		if !checks[i](r) {
			t.Fatalf("command %d %v: %v", i, r.Args(), r.Err())
		}
	}
	if n, _ := c.Do(ctx, "TM.LIST", "pipe2").Slice(); len(n) != 14 {
		t.Fatalf("pipe2 has %d sessions", len(n))
	}
	// The connection survived the unknown commands.
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestHalfCommandAndCloseDoNotLeak(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("*3\r\n$3\r\nSET\r\n$2\r\nab"))
		c.Close()
	}
	r := dialRaw(t, e.addr)
	r.c.Write([]byte("\x00\x01garbage\xff\r\n"))
	r.line() // unknown command error (inline protocol)
	r.send("PING")
	r.expect("+PONG")
	// goleak in TestMain checks that Close left no connection goroutine.
}

func TestMaxConns(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxConns = 1 })
	a := dialRaw(t, e.addr)
	a.send("PING")
	a.expect("+PONG")
	b := dialRaw(t, e.addr)
	b.expect("-ERR max number of clients reached")
}
