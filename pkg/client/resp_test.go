package client

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/server"
)

// startRESPNode starts a real node with HTTP, RESP and the admin socket on
// free ports and returns the RESP address and an issuer API key.
func startRESPNode(t *testing.T) (respAddr, apiKey string) {
	t.Helper()
	srv, key := startNode(t)
	return srv.Addr("resp").String(), key
}

// startNode starts a real node with HTTP, RESP and the admin socket on
// free ports and returns it with an issuer API key.
func startNode(t *testing.T) (*server.Server, string) {
	t.Helper()
	dir := t.TempDir()
	c := config.Default()
	c.Storage.DataDir = filepath.Join(dir, "data")
	c.Server.HTTP.Address = "127.0.0.1:0"
	c.Server.HTTPS.Enabled = false
	c.Server.RESP.Address = "127.0.0.1:0"
	c.Server.RESPTLS.Enabled = false
	c.Server.Shutdown.GracePeriod = 0
	c.Server.Local.SocketPath = filepath.Join(dir, "a.sock")
	c.Security.Auth.Argon2.Memory, c.Security.Auth.Argon2.Iterations, c.Security.Auth.Argon2.Parallelism = 8192, 1, 1
	env := func(k string) string {
		if k == "TOKMESH_ENCRYPTION_KEY" {
			return strings.Repeat("5a", 32)
		}
		return ""
	}
	srv := server.New(c, server.Options{Getenv: env})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	admin, err := New(Config{Target: "unix:" + c.Server.Local.SocketPath})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	k, err := admin.CreateKey(context.Background(), CreateKeyRequest{Role: "issuer", RateLimit: 1000000})
	if err != nil {
		t.Fatal(err)
	}
	return srv, k.APIKey
}

func TestRESPTargets_FormsAndRefusals(t *testing.T) {
	for _, tc := range []struct{ target, want string }{
		{"127.0.0.1:6379", "resp://127.0.0.1:6379"},
		{"resp://127.0.0.1:6379", "resp://127.0.0.1:6379"},
		{"resps://tokmesh.internal:6380", "resps://tokmesh.internal:6380"},
	} {
		c, err := New(Config{Target: tc.target, Protocol: "resp"})
		if err != nil || c.Target() != tc.want {
			t.Errorf("%q: %v, want %q", tc.target, err, tc.want)
			continue
		}
		c.Close()
	}
	for _, bad := range []string{"", "local", "unix:/tmp/a.sock", "http://h:1", "https://h:1", "h", "redis://h:1"} {
		if _, err := New(Config{Target: bad, Protocol: "resp"}); err == nil {
			t.Errorf("%q accepted for resp", bad)
		}
	}
	if _, err := New(Config{Target: "h:1", Protocol: "grpc"}); err == nil {
		t.Error("unknown protocol accepted")
	}
}

func TestRESPClient_BusinessMethodsMirrorHTTP(t *testing.T) {
	addr, key := startRESPNode(t)
	ctx := context.Background()
	c, err := New(Config{Target: addr, Protocol: "resp", APIKey: key, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	cr, err := c.CreateSession(ctx, CreateSessionRequest{UserID: "u-resp", DeviceID: "d1", TTLSeconds: 600, Data: map[string]string{"tenant": "acme"}})
	if err != nil || cr.SessionID == "" || cr.Token == "" || cr.ExpiresAt == 0 {
		t.Fatalf("create: %+v %v", cr, err)
	}
	s, err := c.GetSession(ctx, cr.SessionID)
	if err != nil || s.UserID != "u-resp" || s.Data["tenant"] != "acme" || s.UserAgent != "tokmesh-go-client" {
		t.Fatalf("get: %+v %v", s, err)
	}
	v, err := c.Validate(ctx, cr.Token, false)
	if err != nil || !v.Valid || v.Session == nil || v.Session.ID != cr.SessionID {
		t.Fatalf("validate: %+v %v", v, err)
	}
	touched, err := c.Touch(ctx, cr.SessionID)
	if err != nil || touched.ID != cr.SessionID || touched.LastActive == 0 {
		t.Fatalf("touch: %+v %v", touched, err)
	}
	renewed, err := c.Renew(ctx, cr.SessionID, 3600)
	if err != nil || renewed.ExpiresAt <= cr.ExpiresAt {
		t.Fatalf("renew: %+v %v (created expiry %d)", renewed, err, cr.ExpiresAt)
	}
	if _, err := c.Renew(ctx, cr.SessionID, 0); !isCode(err, "TM-SESS-4001") {
		t.Fatalf("renew 0 s: %v", err)
	}
	// The list sorts by created_at (ms): make sure the second one is later.
	time.Sleep(2 * time.Millisecond)
	second, err := c.CreateSession(ctx, CreateSessionRequest{UserID: "u-resp"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.ListSessions(ctx, ListSessionsOptions{UserID: "u-resp"})
	if err != nil || list.Total != 2 || len(list.Items) != 2 || list.Items[0].ID != second.SessionID {
		t.Fatalf("list: %+v %v", list, err)
	}
	if page, err := c.ListSessions(ctx, ListSessionsOptions{UserID: "u-resp", Size: 1, Page: 2, SortOrder: "asc"}); err != nil || len(page.Items) != 1 || page.Items[0].ID != second.SessionID {
		t.Fatalf("list page 2 asc: %+v %v", page, err)
	}
	if _, err := c.ListSessions(ctx, ListSessionsOptions{DeviceID: "d1"}); err == nil {
		t.Fatal("list without user ID over RESP accepted")
	}

	rv, err := c.Revoke(ctx, cr.SessionID)
	if err != nil || !rv.Revoked {
		t.Fatalf("revoke: %+v %v", rv, err)
	}
	if rv, err = c.Revoke(ctx, cr.SessionID); err != nil || rv.Revoked {
		t.Fatalf("second revoke: %+v %v", rv, err)
	}
	v, err = c.Validate(ctx, cr.Token, false)
	if err != nil || v.Valid || v.Error == nil || v.Error.Code != "TM-TOKN-4012" {
		t.Fatalf("validate revoked: %+v %v", v, err)
	}
	if _, err := c.GetSession(ctx, cr.SessionID); !isCode(err, "TM-SESS-4040") {
		t.Fatalf("get revoked: %v", err)
	}
	if _, err := c.Touch(ctx, cr.SessionID); !isCode(err, "TM-SESS-4042") {
		t.Fatalf("touch revoked: %v", err)
	}
	ru, err := c.RevokeUser(ctx, "u-resp", "")
	if err != nil || ru.RevokedCount != 1 || ru.UserID != "u-resp" {
		t.Fatalf("revoke user: %+v %v", ru, err)
	}
	if _, err := c.CreateKey(ctx, CreateKeyRequest{Role: "validator"}); !errors.Is(err, errNotOverRESP) {
		t.Fatalf("admin call over RESP: %v", err)
	}

	// A wrong secret is the server's TM-AUTH-4011, and the secret is not
	// in the error text.
	id, _, _ := strings.Cut(key, ":")
	bad, _ := New(Config{Target: addr, Protocol: "resp", APIKey: id + ":tmas_wrongsecret"})
	defer bad.Close()
	_, err = bad.Validate(ctx, cr.Token, false)
	if !isCode(err, "TM-AUTH-4011") || strings.Contains(err.Error(), "wrongsecret") {
		t.Fatalf("bad key: %v", err)
	}
	// Nothing listening: a transport error.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	down, _ := New(Config{Target: dead, Protocol: "resp", APIKey: key, Timeout: time.Second})
	var te *TransportError
	if _, err := down.Validate(ctx, cr.Token, false); !errors.As(err, &te) || te.Kind != KindConnect {
		t.Fatalf("unreachable: %v", err)
	}
}

func isCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

func TestRESPConn_PipelinedRepliesInOrder(t *testing.T) {
	addr, key := startRESPNode(t)
	ctx := context.Background()
	rc, err := DialRESP(ctx, addr, RESPDialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	id, secret, _ := strings.Cut(key, ":")
	if v, err := rc.Do("AUTH", id, secret); err != nil || v.Kind != ReplyStatus || v.Str != "OK" {
		t.Fatalf("auth: %+v %v", v, err)
	}
	v, err := rc.Do("TM.CREATE", `{"user_id":"u-pipe"}`)
	if err != nil || v.Kind != ReplyBulk {
		t.Fatalf("create: %+v %v", v, err)
	}
	tok := v.Str[strings.Index(v.Str, `"token":"`)+9:]
	tok = tok[:strings.IndexByte(tok, '"')]
	sid := v.Str[strings.Index(v.Str, `"session_id":"`)+14:]
	sid = sid[:strings.IndexByte(sid, '"')]

	pre := AppendCommand(nil, "TM.VALIDATE", tok)
	const n = 64
	for i := 0; i < n; i++ {
		if err := rc.Write(pre); err != nil {
			t.Fatal(err)
		}
	}
	rc.Send("TM.VALIDATE", "tmtk_unknown_token_for_the_pipeline_test_0000000")
	rc.Send("GET", "tmss-nope")
	rc.Send("TM.LIST", "u-pipe")
	rc.Send("TM.REVOKE", sid)
	if err := rc.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		r, err := rc.Receive()
		if err != nil || r.Kind != ReplyBulk || !bytes.Contains(r.Data, []byte(sid)) {
			t.Fatalf("reply %d: %+v %v", i, r, err)
		}
	}
	r, err := rc.Receive()
	if code, _ := SplitRESPError(r.Data); err != nil || r.Kind != ReplyError || string(code) != "TM-TOKN-4010" {
		t.Fatalf("unknown token: %+v %v", r, err)
	}
	if r, err = rc.Receive(); err != nil || r.Kind != ReplyNil {
		t.Fatalf("GET of a malformed ID: %+v %v", r, err)
	}
	if av, err := rc.ReceiveValue(); err != nil || av.Kind != ReplyArray || len(av.Array) != 1 || !strings.Contains(av.Array[0].Str, sid) {
		t.Fatalf("TM.LIST: %+v %v", av, err)
	}
	if r, err = rc.Receive(); err != nil || r.Kind != ReplyInt || r.Int != 1 {
		t.Fatalf("TM.REVOKE: %+v %v", r, err)
	}
}

// loopConn is a net.Conn whose reads replay one byte string forever.
type loopConn struct {
	net.Conn
	data []byte
	off  int
}

func (c *loopConn) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], c.data[c.off:])
		n += k
		c.off = (c.off + k) % len(c.data)
	}
	return n, nil
}
func (c *loopConn) Write(p []byte) (int, error) { return len(p), nil }

func TestRESPConn_ReceiveParsesEveryKindWithoutAllocating(t *testing.T) {
	big := strings.Repeat("x", 70<<10) // larger than the read buffer
	stream := "+OK\r\n-TM-SESS-4040 session not found\r\n:-42\r\n$5\r\nhello\r\n$-1\r\n*-1\r\n*2\r\n$1\r\na\r\n:7\r\n$0\r\n\r\n$" +
		"71680\r\n" + big + "\r\n"
	rc := NewRESPConn(&loopConn{data: []byte(stream)}, 0, 0)
	want := []struct {
		kind ReplyKind
		n    int64
		data string
	}{
		{ReplyStatus, 0, "OK"}, {ReplyError, 0, "TM-SESS-4040 session not found"}, {ReplyInt, -42, ""},
		{ReplyBulk, 5, "hello"}, {ReplyNil, 0, ""}, {ReplyNil, 0, ""}, {ReplyArray, 2, ""},
		{ReplyBulk, 1, "a"}, {ReplyInt, 7, ""}, {ReplyBulk, 0, ""}, {ReplyBulk, int64(len(big)), big},
	}
	for round := 0; round < 3; round++ {
		for i, w := range want {
			r, err := rc.Receive()
			if err != nil || r.Kind != w.kind || r.Int != w.n || string(r.Data) != w.data {
				t.Fatalf("round %d reply %d: kind %q int %d len %d err %v", round, i, r.Kind, r.Int, len(r.Data), err)
			}
		}
	}
	code, msg := SplitRESPError([]byte("TM-SESS-4040 session not found"))
	if string(code) != "TM-SESS-4040" || string(msg) != "session not found" {
		t.Fatalf("split: %q %q", code, msg)
	}
	if e := RESPError("ERR unknown command 'X'"); e.Code != "ERR" || e.Message != "unknown command 'X'" {
		t.Fatalf("RESPError: %+v", e)
	}

	small := NewRESPConn(&loopConn{data: []byte("$5\r\nhello\r\n:12\r\n-TM-TOKN-4012 token revoked\r\n")}, 0, 0)
	cmd := AppendCommand(nil, "TM.VALIDATE", "tmtk_x")
	allocs := testing.AllocsPerRun(1000, func() {
		_ = small.Write(cmd)
		_ = small.Flush()
		for i := 0; i < 3; i++ {
			if _, err := small.Receive(); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("Receive allocates %.1f times per pipeline", allocs)
	}
}

func TestRESPConn_RejectsMalformedReplies(t *testing.T) {
	for _, bad := range []string{"?x\r\n", ":12a\r\n", "$3\r\nabcde\r\n", "+OK\n", "$-5\r\n", "*x\r\n"} {
		rc := NewRESPConn(&loopConn{data: []byte(bad)}, 0, 0)
		if _, err := rc.Receive(); !errors.Is(err, ErrProtocol) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
