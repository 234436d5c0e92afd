package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/yndnr/tokmesh-go/internal/auth"
)

// A session created over HTTP is validated and revoked over RESP, and one
// created over RESP is revoked over HTTP (issue 3 interop).
func TestRESP_InteropWithHTTPOnOneNode(t *testing.T) {
	srv := startRESPServer(t, Options{Getenv: testEnv})
	ctx := context.Background()
	k, secret, _, err := srv.sec.keys.Create(ctx, auth.CreateRequest{Role: auth.RoleIssuer}, "LOCAL_ADMIN")
	if err != nil {
		t.Fatal(err)
	}
	cred := k.ID + ":" + secret
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr("resp").String(), Username: k.ID, Password: secret, Protocol: 2})
	defer rdb.Close()

	// HTTP create → RESP validate and revoke.
	req, _ := http.NewRequest("POST", "http://"+srv.Addr("http").String()+"/sessions", strings.NewReader(`{"user_id":"interop"}`))
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Data struct {
			SessionID string `json:"session_id"`
			Token     string `json:"token"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if created.Data.Token == "" || created.Data.SessionID == "" {
		t.Fatal("no token from HTTP create")
	}
	if v, err := rdb.Do(ctx, "TM.VALIDATE", created.Data.Token).Text(); err != nil || !strings.Contains(v, created.Data.SessionID) {
		t.Fatalf("RESP validate of an HTTP session: %q %v", v, err)
	}
	if n, err := rdb.Do(ctx, "DEL", created.Data.SessionID).Int(); err != nil || n != 1 {
		t.Fatalf("RESP DEL: %d %v", n, err)
	}
	req, _ = http.NewRequest("POST", "http://"+srv.Addr("http").String()+"/tokens/validate", strings.NewReader(`{"token":"`+created.Data.Token+`"}`))
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Data json.RawMessage `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if !strings.Contains(string(v.Data), "TM-TOKN-4012") {
		t.Fatalf("HTTP validate after RESP revoke: %s", v.Data)
	}
	if _, err := rdb.Do(ctx, "TM.VALIDATE", created.Data.Token).Result(); err == nil || !strings.HasPrefix(err.Error(), "TM-TOKN-4012") {
		t.Fatalf("RESP validate after revoke: %v", err)
	}
}
