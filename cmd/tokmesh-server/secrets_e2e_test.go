package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/walctl"
)

// TestSecrets_NeverInLogsAuditOrDump sends server tokens, distinctive
// client-supplied tokens and API secrets through every HTTP route (valid and
// invalid uses, malformed credential headers included), then greps the
// node's log output, every audit file and `tokmesh-walctl dump` for them:
// zero hits (04-security §10).
func TestSecrets_NeverInLogsAuditOrDump(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "--log-level", "debug")
	base := "http://" + n.http
	local := "http://local"
	var secrets []string
	keep := func(s string) string { secrets = append(secrets, s); return s }
	secretOf := func(apiKey string) string { return apiKey[strings.IndexByte(apiKey, ':')+1:] }

	r := n.do(n.local, local, "POST", "/admin/v1/keys", "", `{"role":"admin"}`)
	admin := keep(field(t, r.Data, "api_key"))
	keep(secretOf(admin))
	mk := func(role string) string {
		r := n.do(n.tcp, base, "POST", "/admin/v1/keys", admin, `{"role":"`+role+`"}`)
		if r.status != 201 {
			t.Fatalf("create %s key: %d %s", role, r.status, r.Code)
		}
		k := keep(field(t, r.Data, "api_key"))
		keep(secretOf(k))
		return k
	}
	issuer, validator, metricsKey := mk("issuer"), mk("validator"), mk("metrics")
	keyID := issuer[:strings.IndexByte(issuer, ':')]

	clientTok := keep("client-supplied-SECRET-token-7f3a9c2e5b1d4f60")
	r = n.do(n.tcp, base, "POST", "/sessions", issuer, `{"user_id":"u-secret","device_id":"d1","token":"`+clientTok+`","data":{"k":"v"}}`)
	sid1 := field(t, r.Data, "session_id")
	r = n.do(n.tcp, base, "POST", "/sessions", issuer, `{"user_id":"u-secret"}`)
	sid2, serverTok := field(t, r.Data, "session_id"), keep(field(t, r.Data, "token"))
	malformedTok := keep("short-SECRET") // fails the format rule
	wrongSecret := keep(keyID + ":tmas_" + strings.Repeat("Z", 43))

	type call struct{ method, path, key, body string }
	calls := []call{
		{"POST", "/tokens/validate", validator, `{"token":"` + clientTok + `","touch":true}`},
		{"POST", "/tokens/validate", validator, `{"token":"` + serverTok + `"}`},
		{"POST", "/tokens/validate", validator, `{"token":"` + malformedTok + `"}`},
		{"POST", "/tokens/validate", validator, `{"token":"` + serverTok + `x-unknown"}`},
		{"POST", "/tokens/validate", wrongSecret, `{"token":"` + serverTok + `"}`},
		{"POST", "/tokens/validate", validator, `{"token":"` + serverTok + `","bogus":"` + clientTok + `"}`},
		{"POST", "/sessions", issuer, `{"user_id":"u-secret","token":"` + clientTok + `"}`}, // conflict
		{"POST", "/sessions", issuer, `{"user_id":"u-secret","token":"` + malformedTok + `"}`},
		{"GET", "/sessions/" + sid1, validator, ""},
		{"POST", "/sessions/" + sid1 + "/touch", validator, ""},
		{"POST", "/sessions/" + sid1 + "/renew", issuer, `{"ttl_seconds":600}`},
		{"GET", "/sessions?user_id=u-secret", issuer, ""},
		{"GET", "/sessions", admin, ""},
		{"GET", "/cluster/routing", validator, ""},
		{"GET", "/metrics", metricsKey, ""},
		{"GET", "/admin/v1/status", admin, ""},
		{"GET", "/admin/v1/keys", admin, ""},
		{"GET", "/admin/v1/keys/" + keyID, admin, ""},
		{"POST", "/admin/v1/keys/" + keyID + "/rotate", admin, `{"grace_seconds":60}`},
		{"POST", "/admin/v1/keys/" + keyID + "/status", admin, `{"status":"disabled"}`},
		{"POST", "/tokens/validate", issuer, `{"token":"` + serverTok + `"}`}, // disabled key
		{"POST", "/admin/v1/keys/" + keyID + "/status", admin, `{"status":"active"}`},
		{"GET", "/admin/v1/audit/logs", admin, ""},
		{"GET", "/admin/v1/wal/status", admin, ""},
		{"GET", "/admin/v1/config", admin, ""},
		{"POST", "/admin/v1/config/validate", admin, `{"config_yaml":"storage: {data_dir: /tmp/x}\n"}`},
		{"POST", "/admin/v1/gc", admin, `{"type":"expired"}`},
		{"GET", "/admin/v1/cluster/status", admin, ""},
		{"GET", "/admin/v1/cluster/nodes", admin, ""},
		{"GET", "/admin/v1/cluster/partitions", admin, ""},
		{"POST", "/admin/v1/backups/snapshots", admin, `{"description":"secrets test"}`},
		{"GET", "/admin/v1/backups/snapshots", admin, ""},
		{"POST", "/sessions/" + sid2 + "/revoke", issuer, ""},
		{"POST", "/users/u-secret/sessions/revoke", issuer, `{"except_session_id":"` + sid1 + `"}`},
	}
	for _, c := range calls {
		r := n.do(n.tcp, base, c.method, c.path, c.key, c.body)
		if c.path == "/admin/v1/keys/"+keyID+"/rotate" && r.status == 200 {
			keep(field(t, r.Data, "secret"))
		}
	}
	// Malformed credential headers carrying secrets.
	for _, h := range [][2]string{{"Authorization", "Token " + issuer}, {"Authorization", "Bearer " + secretOf(issuer)},
		{"X-API-Key", issuer + "garbage"}, {"Authorization", "Basic " + issuer}, {"X-API-Key", wrongSecret}} {
		req, _ := http.NewRequest("POST", base+"/tokens/validate", strings.NewReader(`{"token":"`+serverTok+`"}`))
		req.Header.Set(h[0], h[1])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if code := n.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}

	var dump bytes.Buffer
	if code := walctl.Run([]string{"dump", "--data-dir", filepath.Join(dir, "data")}, walctl.Options{Stdout: &dump, Stderr: &dump,
		Getenv: func(string) string { return "" }}); code != 0 {
		t.Fatalf("walctl dump exit %d: %s", code, dump.String())
	}
	if !strings.Contains(dump.String(), `"token_hash"`) {
		t.Fatalf("dump printed no records: %.300s", dump.String())
	}
	haystacks := map[string]string{"server log": n.logs(), "walctl dump": dump.String()}
	files, _ := filepath.Glob(filepath.Join(dir, "data", "audit", "*.jsonl"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		haystacks[f] = string(b)
	}
	if len(files) == 0 || !strings.Contains(haystacks[files[0]], "apikey.rotate") {
		t.Fatal("audit file missing or incomplete")
	}
	for where, text := range haystacks {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				i := strings.Index(text, s)
				t.Errorf("%s contains a secret near: %q", where, text[max(0, i-80):min(len(text), i+len(s)+20)])
			}
		}
	}
	t.Logf("checked %d secrets in %d outputs (%d log bytes)", len(secrets), len(haystacks), len(n.logs()))
	_ = fmt.Sprint
}
