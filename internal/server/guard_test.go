package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

func TestGuard_AuthFailureWarnsOncePerIPPer10s(t *testing.T) {
	var buf bytes.Buffer
	g := &tcpGuard{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for range 5 {
		g.warnAuthFailure("tmrq-first", a, "tmak-x", "bad_secret")
	}
	g.warnAuthFailure("tmrq-second", b, "", "malformed")
	if n := strings.Count(buf.String(), "authentication failed"); n != 2 {
		t.Fatalf("%d WARN lines, want 2:\n%s", n, buf.String())
	}
	// In request scope, so each line names the request it came from (09 §2).
	for _, rid := range []string{`"request_id":"tmrq-first"`, `"request_id":"tmrq-second"`} {
		if !strings.Contains(buf.String(), rid) {
			t.Fatalf("no %s:\n%s", rid, buf.String())
		}
	}
}

func TestGuard_BlockWarningNamesTheRequest(t *testing.T) {
	var buf bytes.Buffer
	g := &tcpGuard{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	ip := netip.MustParseAddr("192.0.2.9")
	g.auditBlock("tmrq-blocking", ip, ip, "auth_failures")
	if !strings.Contains(buf.String(), "client IP blocked") || !strings.Contains(buf.String(), `"request_id":"tmrq-blocking"`) {
		t.Fatalf("block WARN without the request ID:\n%s", buf.String())
	}
}

// TestGuard_KeepAliveConnectionFollowsKeyChanges: requests on one
// keep-alive connection reuse its auth memo, and a disable, re-enable or
// rotation made meanwhile (over another connection) applies to the very
// next request on it.
func TestGuard_KeepAliveConnectionFollowsKeyChanges(t *testing.T) {
	dir := t.TempDir()
	n := startReloadNode(t, reloadYAML(filepath.Join(dir, "data"), filepath.Join(dir, "admin.sock"), 100, "warn", "", "interval"))
	st, m := n.do("POST", "/admin/v1/keys", "", `{"role":"validator"}`)
	if st != 201 {
		t.Fatalf("key: %d %v", st, m)
	}
	keyID := m["data"].(map[string]any)["key_id"].(string)
	key := m["data"].(map[string]any)["api_key"].(string)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	conns := map[string]bool{}
	call := func(cred string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", n.base+"/tokens/validate", strings.NewReader(`{"token":"tmtk_`+strings.Repeat("A", 43)+`"}`))
		req.Header.Set("Authorization", "Bearer "+cred)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { conns[i.Conn.LocalAddr().String()] = true }}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		code, _ := body["code"].(string)
		return resp.StatusCode, code
	}
	expect := func(step, cred string, status int, code string) {
		t.Helper()
		if st, c := call(cred); st != status || c != code {
			t.Fatalf("%s: %d %s, want %d %s", step, st, c, status, code)
		}
	}
	expect("first request", key, 200, "OK")
	before := n.srv.sec.authn.Stats()
	expect("second request", key, 200, "OK")
	if after := n.srv.sec.authn.Stats(); after.CacheHits != before.CacheHits+1 || after.Verifications != before.Verifications {
		t.Fatalf("second request: auth stats %+v → %+v", before, after)
	}
	n.do("POST", "/admin/v1/keys/"+keyID+"/status", "", `{"status":"disabled"}`)
	expect("after disable", key, 401, "TM-AUTH-4012")
	n.do("POST", "/admin/v1/keys/"+keyID+"/status", "", `{"status":"active"}`)
	expect("after re-enable", key, 200, "OK")
	expect("wrong secret", keyID+":tmas_"+strings.Repeat("0", 43), 401, "TM-AUTH-4011")
	expect("good secret again", key, 200, "OK")
	st, m = n.do("POST", "/admin/v1/keys/"+keyID+"/rotate", "", `{"grace_seconds":0}`)
	if st != 200 {
		t.Fatalf("rotate: %d %v", st, m)
	}
	expect("old secret after rotation", key, 401, "TM-AUTH-4011")
	expect("new secret", m["data"].(map[string]any)["api_key"].(string), 200, "OK")
	if len(conns) != 1 {
		t.Fatalf("the requests used %d connections, want 1", len(conns))
	}
}
