package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/auth"
)

// A failed key check is audited under the request ID the caller was
// answered with — the minted one when the client sent none or an invalid
// one — and the block it triggers says until when (04 §9). The block covers
// an open /metrics too; only /health, /ready and /openapi.json are exempt.
func TestGuard_AuditRecordsCarryTheAnsweredRequestIDAndBlockEnd(t *testing.T) {
	c := baseConfig(t)
	c.Security.BruteForce.MaxAuthFailures = 3
	c.Telemetry.Metrics.AuthEnabled = false
	srv := startServer(t, c)
	keyID, secret := newKey(t, srv, auth.RoleValidator)
	get := func(path string) int {
		t.Helper()
		resp, err := http.Get("http://" + srv.Addr("http").String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get("/metrics"); st != 200 {
		t.Fatalf("open /metrics before the block: %d", st)
	}
	var answered []string
	for _, sent := range []string{"", "bad id <script>", "client.id-7"} {
		req, _ := http.NewRequest("POST", "http://"+srv.Addr("http").String()+"/tokens/validate", strings.NewReader(`{"token":"x"}`))
		req.Header.Set("Authorization", "Bearer "+keyID+":"+wrongSecret(secret))
		if sent != "" {
			req.Header.Set("X-Request-ID", sent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			RequestID string `json:"request_id"`
		}
		json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		if env.RequestID == "" || env.RequestID != resp.Header.Get("X-Request-ID") {
			t.Fatalf("envelope %q header %q", env.RequestID, resp.Header.Get("X-Request-ID"))
		}
		answered = append(answered, env.RequestID)
	}
	if answered[2] != "client.id-7" || !strings.HasPrefix(answered[0], "tmrq-") || !strings.HasPrefix(answered[1], "tmrq-") {
		t.Fatalf("answered IDs %q", answered)
	}
	for path, want := range map[string]int{"/metrics": 429, "/health": 200, "/ready": 200, "/openapi.json": 200} {
		if st := get(path); st != want {
			t.Errorf("%s from the blocked IP: %d, want %d", path, st, want)
		}
	}
	started := time.Now()
	var fails, blocks []audit.Record
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		fails, _, _ = srv.sec.audit.Query(audit.Filter{Action: "auth.failure", Size: 100})
		blocks, _, _ = srv.sec.audit.Query(audit.Filter{Action: "auth.ip_blocked", Size: 100})
		if len(fails) >= 3 && len(blocks) >= 1 {
			break
		}
	}
	if len(fails) != 3 || len(blocks) != 1 {
		t.Fatalf("%d auth.failure and %d auth.ip_blocked records", len(fails), len(blocks))
	}
	got := map[string]bool{}
	for _, r := range fails {
		got[r.RequestID] = true
	}
	for _, id := range answered {
		if !got[id] {
			t.Errorf("no auth.failure record under the answered request ID %q (have %v)", id, got)
		}
	}
	b := blocks[0]
	until, _ := strconv.ParseInt(fmt.Sprint(b.Details["until"]), 10, 64)
	want := started.Add(c.Security.BruteForce.BlockDuration)
	if b.RequestID != answered[2] || b.Details["reason"] != "auth_failures" || b.TCPRemoteIP != "127.0.0.1" || b.ClientIP != "127.0.0.1" || time.UnixMilli(until).Sub(want).Abs() > 5*time.Second {
		t.Fatalf("auth.ip_blocked record %+v (until want ≈ %v)", b, want)
	}
}

// wrongSecret is a well-formed secret that is not s (its last character
// changed within the Base62 alphabet).
func wrongSecret(s string) string {
	last := s[len(s)-1]
	if last == 'A' {
		return s[:len(s)-1] + "B"
	}
	return s[:len(s)-1] + "A"
}

// An unparsable credential is audited as auth.failure with no key (04 §9:
// resource "key ID if parsable"), and is not a brute-force count.
func TestGuard_MalformedCredentialIsAuditedWithoutKey(t *testing.T) {
	c := baseConfig(t)
	c.Security.BruteForce.MaxAuthFailures = 1
	srv := startServer(t, c)
	for _, cred := range []string{"Bearer tmak-nope", "Bearer not-a-key:tmas_short"} {
		req, _ := http.NewRequest("POST", "http://"+srv.Addr("http").String()+"/tokens/validate", strings.NewReader(`{"token":"x"}`))
		req.Header.Set("Authorization", cred)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("%q: %d, want 401 (and never 429: malformed is not a brute-force count)", cred, resp.StatusCode)
		}
	}
	var fails []audit.Record
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && len(fails) < 2; time.Sleep(20 * time.Millisecond) {
		fails, _, _ = srv.sec.audit.Query(audit.Filter{Action: "auth.failure", Size: 100})
	}
	if len(fails) != 2 {
		t.Fatalf("%d auth.failure records, want 2", len(fails))
	}
	for _, r := range fails {
		if r.Resource != "" || r.Details["reason"] != auth.ReasonMalformed || r.Code != "TM-AUTH-4011" || r.RequestID == "" {
			t.Fatalf("record %+v", r)
		}
	}
}
