package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/auth"
)

// The same session write over HTTP and over RESP produces the same audit
// record, apart from what names the request: request ID, resource (the
// session) and the caller's user agent / connection name.
func TestRESP_AuditRecordsMatchHTTP(t *testing.T) {
	srv := startRESPServer(t, Options{Getenv: testEnv})
	ctx := context.Background()
	k, secret, _, err := srv.sec.keys.Create(ctx, auth.CreateRequest{Role: auth.RoleIssuer}, "LOCAL_ADMIN")
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr("resp").String(), Username: k.ID, Password: secret, Protocol: 2, ClientName: "gw"})
	defer rdb.Close()
	post := func(path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+srv.Addr("http").String()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+k.ID+":"+secret)
		req.Header.Set("User-Agent", "gw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct {
			Data map[string]any `json:"data"`
		}
		json.NewDecoder(resp.Body).Decode(&env)
		return env.Data
	}

	// One of each write, HTTP first, then RESP.
	h := post("/sessions", `{"user_id":"aud","ttl_seconds":300}`)
	post("/sessions", `{"user_id":"aud","bogus":true}`)
	post("/sessions/"+h["session_id"].(string)+"/revoke", ``)
	post("/users/aud/sessions/revoke", `{}`)
	rs, err := rdb.Do(ctx, "TM.CREATE", `{"user_id":"aud","ttl_seconds":300}`).Text()
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	json.Unmarshal([]byte(rs), &r)
	rdb.Do(ctx, "TM.CREATE", `{"user_id":"aud","bogus":true}`)
	rdb.Do(ctx, "TM.REVOKE", r["session_id"])
	rdb.Do(ctx, "TM.REVOKE_USER", "aud")

	var items []audit.Record
	for deadline := time.Now().Add(5 * time.Second); ; {
		all, _, err := srv.sec.audit.Query(audit.Filter{Actor: k.ID, Size: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) >= 8 || time.Now().After(deadline) {
			items = all
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(items) != 8 {
		t.Fatalf("%d records for the caller, want 8", len(items))
	}
	// Newest first: RESP records are items[0..3], HTTP ones items[4..7].
	norm := func(rec audit.Record) string {
		rec.Seq, rec.Time, rec.PrevHash, rec.RequestID = 0, time.Time{}, "", ""
		if strings.HasPrefix(rec.Resource, "tmss-") {
			rec.Resource = "<session>"
		}
		b, _ := json.Marshal(rec)
		return string(b)
	}
	for i := range 4 {
		httpRec, respRec := items[7-i], items[3-i]
		if httpRec.RequestID == "" {
			t.Fatalf("HTTP record without a request ID: %+v", httpRec)
		}
		if a, b := norm(httpRec), norm(respRec); a != b {
			t.Fatalf("record %d differs:\nHTTP %s\nRESP %s", i, a, b)
		}
	}
}

// A failed RESP AUTH is logged at WARN like an HTTP one (09 §2), sharing
// the one-line-per-IP-per-10-s throttle, and never with the secret.
func TestRESP_AuthFailureIsLoggedAtWarn(t *testing.T) {
	var logs syncBuffer
	srv := startRESPServer(t, Options{Getenv: testEnv, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	ctx := context.Background()
	k, secret, _, err := srv.sec.keys.Create(ctx, auth.CreateRequest{Role: auth.RoleValidator}, "LOCAL_ADMIN")
	if err != nil {
		t.Fatal(err)
	}
	wrong := wrongSecret(secret)
	for range 3 {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr("resp").String(), Username: k.ID, Password: wrong, Protocol: 2, MaxRetries: -1})
		if err := rdb.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "TM-AUTH-4011") {
			t.Fatalf("wrong secret: %v", err)
		}
		rdb.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "authentication failed") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var lines []map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "authentication failed" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d WARN lines for three failures from one IP within 10 s, want 1:\n%s", len(lines), logs.String())
	}
	if l := lines[0]; l["level"] != "WARN" || l["protocol"] != "resp" || l["key_id"] != k.ID || l["reason"] != "bad_secret" || l["client_ip"] != "127.0.0.1" {
		t.Fatalf("WARN line %v", l)
	}
	if strings.Contains(logs.String(), wrong) || strings.Contains(logs.String(), secret) {
		t.Fatal("a secret reached the log")
	}
}

// startRESPServer starts a node with RESP on a free loopback port and cheap
// Argon2 parameters; it is closed when the test ends.
func startRESPServer(t *testing.T, o Options) *Server {
	t.Helper()
	c := baseConfig(t)
	c.Server.RESP.Enabled, c.Server.RESP.Address = true, "127.0.0.1:0"
	c.Security.Auth.Argon2.Memory, c.Security.Auth.Argon2.Iterations, c.Security.Auth.Argon2.Parallelism = 8192, 1, 1
	srv := New(c, o)
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}
