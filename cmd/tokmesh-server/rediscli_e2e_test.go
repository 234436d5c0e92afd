package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// redis-cli (Debian redis-tools, installed by make deps) runs the scripted
// session of issue 3 against the real binary: AUTH, TM.CREATE,
// TM.VALIDATE, GET, TTL, EXPIRE, DEL, TM.VALIDATE → revoked error.
func TestRedisCLI_ScriptedSession(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-cli missing: make deps installs redis-tools")
		}
		t.Skip("redis-cli not installed (make deps installs it)")
	}
	dir := t.TempDir()
	n := startNode(t, dir, "--set", "server.resp.enabled=true", "--resp-address", "127.0.0.1:0")
	resp := n.listeners["resp"]
	if resp == "" {
		t.Fatalf("no resp listener: %v", n.listeners)
	}
	host, port, _ := strings.Cut(resp, ":")
	r := n.do(n.local, "http://local", "POST", "/admin/v1/keys", "", `{"role":"issuer"}`)
	key := field(t, r.Data, "api_key")
	keyID, secret, _ := strings.Cut(key, ":")

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"-h", host, "-p", port, "--no-auth-warning", "--user", keyID, "--pass", secret}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	created := run("TM.CREATE", `{"user_id":"u-cli","ttl_seconds":3600}`)
	var sid, tok string
	for _, part := range strings.Split(strings.Trim(created, "{}"), ",") {
		k, v, _ := strings.Cut(part, ":")
		switch strings.Trim(k, `"`) {
		case "session_id":
			sid = strings.Trim(v, `"`)
		case "token":
			tok = strings.Trim(v, `"`)
		}
	}
	if sid == "" || tok == "" {
		t.Fatalf("TM.CREATE: %s", created)
	}
	if v := run("TM.VALIDATE", tok); !strings.Contains(v, `"id":"`+sid+`"`) {
		t.Fatalf("TM.VALIDATE: %s", v)
	}
	if v := run("GET", sid); !strings.Contains(v, `"user_id":"u-cli"`) {
		t.Fatalf("GET: %s", v)
	}
	if v := run("TTL", sid); v != "3600" && v != "3599" {
		t.Fatalf("TTL: %s", v)
	}
	if v := run("EXPIRE", sid, "60"); v != "1" {
		t.Fatalf("EXPIRE: %s", v)
	}
	if v := run("TTL", sid); v != "60" && v != "59" {
		t.Fatalf("TTL after EXPIRE: %s", v)
	}
	if v := run("DEL", sid); v != "1" {
		t.Fatalf("DEL: %s", v)
	}
	if v := run("TM.VALIDATE", tok); !strings.HasPrefix(v, "TM-TOKN-4012") {
		t.Fatalf("TM.VALIDATE after DEL: %s", v)
	}
	if v := run("TM.VALIDATE", "not-a-real-token-123"); !strings.HasPrefix(v, "TM-TOKN-4010") {
		t.Fatalf("unknown token: %s", v)
	}
}
