package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/auth"
)

// TestRoleMatrix drives every business route, /metrics and an admin route
// with every role and every kind of bad credential, through the real
// pipeline on a real listener (04-security §2 and §3).
func TestRoleMatrix_EveryRouteEveryRole(t *testing.T) {
	c := baseConfig(t)
	c.Security.Auth.Argon2.Memory, c.Security.Auth.Argon2.Iterations, c.Security.Auth.Argon2.Parallelism = 8192, 1, 1
	srv := New(c, Options{Getenv: testEnv})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	keys := srv.sec.keys
	ctx := context.Background()
	cred := map[string]string{}
	for _, r := range []auth.Role{auth.RoleMetrics, auth.RoleValidator, auth.RoleIssuer, auth.RoleAdmin} {
		k, secret, _, err := keys.Create(ctx, auth.CreateRequest{Role: r}, "LOCAL_ADMIN")
		if err != nil {
			t.Fatal(err)
		}
		cred[string(r)] = k.ID + ":" + secret
	}
	dk, dsecret, _, _ := keys.Create(ctx, auth.CreateRequest{Role: auth.RoleAdmin}, "LOCAL_ADMIN")
	if _, _, err := keys.SetStatus(ctx, dk.ID, auth.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	ek, esecret, _, _ := keys.Create(ctx, auth.CreateRequest{Role: auth.RoleAdmin, ExpiresAt: time.Now().Add(1500 * time.Millisecond).UnixMilli()}, "LOCAL_ADMIN")
	adminID := cred["admin"][:strings.IndexByte(cred["admin"], ':')]
	wrong := adminID + ":" + auth.NewSecret()

	base := "http://" + srv.Addr("http").String()
	do := func(method, path, key, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var env struct {
			Code string `json:"code"`
		}
		json.Unmarshal(raw, &env)
		return resp.StatusCode, env.Code
	}
	// A session to address.
	var created struct {
		Data struct {
			SessionID string `json:"session_id"`
			Token     string `json:"token"`
		} `json:"data"`
	}
	req, _ := http.NewRequest("POST", base+"/sessions", strings.NewReader(`{"user_id":"matrix-user"}`))
	req.Header.Set("Authorization", "Bearer "+cred["issuer"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	sid, tok := created.Data.SessionID, created.Data.Token
	if sid == "" {
		t.Fatal("no session")
	}

	routes := []struct {
		method, path, body string
		allowed            []string
	}{
		{"POST", "/sessions", `{"user_id":"matrix-2"}`, []string{"issuer", "admin"}},
		{"GET", "/sessions/" + sid, "", []string{"validator", "issuer", "admin"}},
		{"POST", "/sessions/" + sid + "/touch", "", []string{"validator", "issuer", "admin"}},
		{"POST", "/sessions/" + sid + "/renew", `{"ttl_seconds":3600}`, []string{"issuer", "admin"}},
		{"GET", "/sessions?user_id=matrix-user", "", []string{"issuer", "admin"}},
		{"GET", "/sessions", "", []string{"admin"}},
		{"POST", "/tokens/validate", fmt.Sprintf(`{"token":%q}`, tok), []string{"validator", "issuer", "admin"}},
		{"GET", "/cluster/routing", "", []string{"validator", "issuer", "admin"}},
		{"GET", "/metrics", "", []string{"metrics", "admin"}},
		{"GET", "/admin/v1/status", "", []string{"admin"}},
		{"POST", "/users/nobody-here/sessions/revoke", "", []string{"issuer", "admin"}},
		{"POST", "/sessions/" + sid + "/revoke", "", []string{"issuer", "admin"}},
	}
	for _, rt := range routes {
		for _, role := range []string{"metrics", "validator", "issuer", "admin"} {
			st, code := do(rt.method, rt.path, cred[role], rt.body)
			allowed := false
			for _, a := range rt.allowed {
				allowed = allowed || a == role
			}
			if allowed && (st == 401 || st == 403) {
				t.Errorf("%s %s as %s: %d %s, want allowed", rt.method, rt.path, role, st, code)
			}
			if !allowed && (st != 403 || code != "TM-AUTH-4030") {
				t.Errorf("%s %s as %s: %d %s, want 403 TM-AUTH-4030", rt.method, rt.path, role, st, code)
			}
		}
		for _, bad := range []struct {
			name, key string
			status    int
			code      string
		}{
			{"no key", "", 401, "TM-AUTH-4010"},
			{"wrong secret", wrong, 401, "TM-AUTH-4011"},
			{"disabled key", dk.ID + ":" + dsecret, 401, "TM-AUTH-4012"},
			{"malformed credential", "not-a-credential", 401, "TM-AUTH-4011"},
		} {
			st, code := do(rt.method, rt.path, bad.key, rt.body)
			if st != bad.status || code != bad.code {
				t.Errorf("%s %s with %s: %d %s, want %d %s", rt.method, rt.path, bad.name, st, code, bad.status, bad.code)
			}
		}
	}
	time.Sleep(time.Until(time.UnixMilli(ek.ExpiresAt)) + 100*time.Millisecond)
	if st, code := do("GET", "/admin/v1/status", ek.ID+":"+esecret, ""); st != 401 || code != "TM-AUTH-4011" {
		t.Errorf("expired key: %d %s", st, code)
	}
	// Public routes need nothing.
	for _, p := range []string{"/health", "/ready", "/openapi.json"} {
		if st, _ := do("GET", p, "", ""); st != 200 {
			t.Errorf("%s: %d", p, st)
		}
	}
}
