package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/datadir"
)

func testEnv(k string) string {
	if k == "TOKMESH_ENCRYPTION_KEY" {
		return strings.Repeat("5a", 32)
	}
	return ""
}

func baseConfig(t *testing.T) *config.Config {
	t.Helper()
	c := config.Default()
	c.Storage.DataDir = t.TempDir()
	c.Server.HTTP.Address = "127.0.0.1:0"
	c.Server.HTTPS.Address = "127.0.0.1:0"
	c.Server.RESP.Enabled = false
	c.Server.RESPTLS.Enabled = false
	c.Server.Shutdown.GracePeriod = 300 * time.Millisecond
	c.Server.Local.SocketPath = filepath.Join(t.TempDir(), "a.sock")
	return c
}

func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

func TestServer_HTTPSServesTheSameRoutesAndDrainsOnShutdown(t *testing.T) {
	c := baseConfig(t)
	c.Server.TLS.CertFile, c.Server.TLS.KeyFile = writeCert(t, t.TempDir(), "tokmesh-test")
	c.Server.RESP.Enabled, c.Server.RESP.Address = true, "127.0.0.1:0"
	c.Server.Shutdown.GracePeriod = time.Second
	c.Security.Auth.Argon2.Memory, c.Security.Auth.Argon2.Iterations, c.Security.Auth.Argon2.Parallelism = 8192, 1, 1
	srv := New(c, Options{Getenv: testEnv})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	k, secret, _, err := srv.sec.keys.Create(context.Background(), auth.CreateRequest{Role: auth.RoleIssuer}, "LOCAL_ADMIN")
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr("resp").String(), Username: k.ID, Password: secret, Protocol: 2, PoolSize: 1})
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	resp, err := client.Get("https://" + srv.Addr("https").String() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("https /health: %d over HTTP/%d", resp.StatusCode, resp.ProtoMajor)
	}
	// Without a key, business routes answer 401 on both TCP listeners.
	for _, base := range []string{"http://" + srv.Addr("http").String(), "https://" + srv.Addr("https").String()} {
		resp, err := client.Post(base+"/tokens/validate", "application/json", strings.NewReader(`{"token":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Fatalf("%s: %d", base, resp.StatusCode)
		}
	}
	// Shutdown: /ready turns 503 (shutdown: draining) during the grace period.
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	resp, err = http.Get("http://" + srv.Addr("http").String() + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Code    string         `json:"code"`
		Details map[string]any `json:"details"`
	}
	json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	if resp.StatusCode != 503 || env.Code != "TM-SYS-5030" || !strings.Contains(toJSON(env.Details), `"shutdown":"draining"`) {
		t.Fatalf("ready while draining: %d %+v", resp.StatusCode, env)
	}
	// ... while business requests are still served until the listeners
	// close (04 §3 step 5, 09 §3), over HTTP and RESP.
	req, _ := http.NewRequest("POST", "http://"+srv.Addr("http").String()+"/sessions", strings.NewReader(`{"user_id":"drain"}`))
	req.Header.Set("Authorization", "Bearer "+k.ID+":"+secret)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create while draining: %d", resp.StatusCode)
	}
	if err := rdb.Do(context.Background(), "TM.CREATE", `{"user_id":"drain"}`).Err(); err != nil {
		t.Fatalf("RESP create while draining: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// startServer starts a node on c with cheap Argon2 parameters; it is
// closed when the test ends.
func startServer(t *testing.T, c *config.Config) *Server {
	t.Helper()
	c.Security.Auth.Argon2.Memory, c.Security.Auth.Argon2.Iterations, c.Security.Auth.Argon2.Parallelism = 8192, 1, 1
	srv := New(c, Options{Getenv: testEnv})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// newKey creates an API key of role on srv; it returns the key ID and secret.
func newKey(t *testing.T, srv *Server, role auth.Role) (id, secret string) {
	t.Helper()
	k, secret, _, err := srv.sec.keys.Create(context.Background(), auth.CreateRequest{Role: role}, "LOCAL_ADMIN")
	if err != nil {
		t.Fatal(err)
	}
	return k.ID, secret
}

func TestServer_SecondNodeOnSameDataDirFails(t *testing.T) {
	c := baseConfig(t)
	a := New(c, Options{Getenv: testEnv})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c2 := *c
	c2.Server.Local.SocketPath = c.Server.Local.SocketPath // same socket: must not be removed
	b := New(&c2, Options{Getenv: testEnv})
	if err := b.Start(context.Background()); err == nil {
		b.Close()
		t.Fatal("second node started on a locked data dir")
	}
	if _, err := os.Stat(c.Server.Local.SocketPath); err != nil {
		t.Fatalf("the first node's admin socket was removed: %v", err)
	}
}

func TestServer_BrokenCertificateRefusesToStart(t *testing.T) {
	c := baseConfig(t)
	dir := t.TempDir()
	c.Server.TLS.CertFile, c.Server.TLS.KeyFile = writeCert(t, dir, "a")
	os.WriteFile(c.Server.TLS.KeyFile, []byte("not a key"), 0o600)
	srv := New(c, Options{Getenv: testEnv})
	err := srv.Start(context.Background())
	if err == nil {
		srv.Close()
		t.Fatal("started with a broken key")
	}
	if ExitCode(err) != 78 {
		t.Fatalf("exit code %d for %v", ExitCode(err), err)
	}
}

// A request still in flight when server.shutdown.timeout runs out is cut,
// and the shutdown is still a clean one (exit 0): only a failure to stop
// cleanly is an error.
func TestServer_ShutdownTimeoutCutsSlowRequestsCleanly(t *testing.T) {
	c := baseConfig(t)
	c.Server.Shutdown.GracePeriod = 50 * time.Millisecond
	srv := startServer(t, c)
	keyID, secret := newKey(t, srv, auth.RoleIssuer)
	// A create whose body never finishes arriving: the handler waits in
	// its body read, so the request stays in flight.
	conn, err := net.Dial("tcp", srv.Addr("http").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s:%s\r\nContent-Length: 100\r\n\r\n{\"user_id\":", keyID, secret)
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown that cut a slow request: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v with a 500 ms timeout", d)
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("the slow connection is still open")
	}
}

// A first start on an empty data dir logs its node_id from the first line
// on (09-observability §2), and that ID is the one node.json gets.
func TestServer_FirstStartLogsTheNodeIDFromTheFirstLine(t *testing.T) {
	c := baseConfig(t)
	c.Security.Auth.Argon2.Memory, c.Security.Auth.Argon2.Iterations, c.Security.Auth.Argon2.Parallelism = 8192, 1, 1
	var logs syncBuffer
	srv := New(c, Options{Getenv: testEnv, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	n, err := datadir.ReadNode(c.Storage.DataDir)
	if err != nil || n.NodeID == "" {
		t.Fatalf("node.json: %+v %v", n, err)
	}
	lines := 0
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if m["node_id"] != n.NodeID {
			t.Fatalf("line %d has node_id %v, want %s: %s", lines, m["node_id"], n.NodeID, l)
		}
		lines++
	}
	if lines < 3 {
		t.Fatalf("only %d log lines", lines)
	}
}

// created_by matches a key ID in any case (01 §1: key IDs are accepted in
// any case), and an empty filter is a bad value, not "no filter".
func TestServer_ListCreatedByIgnoresKeyIDCase(t *testing.T) {
	srv := startServer(t, baseConfig(t))
	issID, issSecret := newKey(t, srv, auth.RoleIssuer)
	admID, admSecret := newKey(t, srv, auth.RoleAdmin)
	base := "http://" + srv.Addr("http").String()
	do := func(method, path, cred, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+cred)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	for range 2 {
		if st, m := do("POST", "/sessions", issID+":"+issSecret, `{"user_id":"cb-user"}`); st != 201 {
			t.Fatalf("create: %d %v", st, m)
		}
	}
	for _, v := range []string{issID, strings.ToUpper(issID)} {
		st, m := do("GET", "/sessions?user_id=cb-user&created_by="+v, admID+":"+admSecret, "")
		if st != 200 || m["data"].(map[string]any)["total"] != float64(2) {
			t.Fatalf("created_by=%s: %d %v", v, st, m)
		}
	}
	if st, m := do("GET", "/sessions?user_id=cb-user&created_by=", admID+":"+admSecret, ""); st != 400 || m["code"] != "TM-ARG-1001" {
		t.Fatalf("created_by empty: %d %v", st, m)
	}
}
