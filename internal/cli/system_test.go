package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/server"
)

// jsonErr decodes the -o json error object printed on stderr.
func jsonErr(t *testing.T, res result) map[string]any {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal([]byte(res.stderr), &e); err != nil {
		t.Fatalf("stderr is not a JSON error: %v\n%s", err, res.stderr)
	}
	return e
}

func TestSystemCommands(t *testing.T) {
	r, _ := setup(t)

	// status
	res := r.must("system", "status")
	for _, s := range []string{"node_id", "tmnd-", "ready", "sessions.live", "wal.sync_mode"} {
		if !strings.Contains(res.stdout, s) {
			t.Fatalf("status table lacks %q:\n%s", s, res.stdout)
		}
	}
	if strings.Contains(res.stdout, "audit_last_hash") {
		t.Fatalf("status table shows a wide field:\n%s", res.stdout)
	}
	if !strings.Contains(r.must("system", "status", "-o", "wide").stdout, "audit_last_hash") {
		t.Fatal("status -o wide lacks audit_last_hash")
	}
	st := r.must("system", "status", "-o", "json").json(t)
	if st["ready"] != true || !strings.HasPrefix(st["node_id"].(string), "tmnd-") || st["sessions"] == nil {
		t.Fatalf("status json: %v", st)
	}

	// health and ready need no key, even on an HTTP target.
	key := r.env["TOKMESH_API_KEY"]
	delete(r.env, "TOKMESH_API_KEY")
	if h := r.must("system", "health", "-o", "json").json(t); h["status"] != "healthy" {
		t.Fatalf("health json: %v", h)
	}
	if res := r.must("system", "health"); strings.TrimSpace(res.stdout) != "healthy" {
		t.Fatalf("health table: %q", res.stdout)
	}
	res = r.must("system", "ready")
	if !strings.HasPrefix(res.stdout, "ready") || !strings.Contains(res.stdout, "storage") {
		t.Fatalf("ready table: %s", res.stdout)
	}
	rd := r.must("system", "ready", "-o", "json").json(t)
	if rd["status"] != "ready" || rd["checks"].(map[string]any)["storage"] != "ok" {
		t.Fatalf("ready json: %v", rd)
	}
	// … but status does.
	expectExit(t, r.run("system", "status"), ExitConfig, "TM-CLI-1004")
	r.env["TOKMESH_API_KEY"] = key

	// gc: table, json, throttle (server error → 1), bad type (usage → 64).
	res = r.must("system", "gc", "--type", "expired")
	if !strings.Contains(res.stdout, "cleaned_count") || !strings.Contains(res.stdout, "expired") {
		t.Fatalf("gc table: %s", res.stdout)
	}
	if g := r.must("system", "gc", "--type", "memory", "-o", "json").json(t); g["type"] != "memory" {
		t.Fatalf("gc json: %v", g)
	}
	res = r.run("system", "gc", "--type", "memory", "-o", "json")
	expectExit(t, res, ExitFailure)
	if e := jsonErr(t, res); e["code"] != "TM-ADMIN-4291" || e["request_id"] == "" {
		t.Fatalf("gc throttle: %v", e)
	}
	expectExit(t, r.run("system", "gc", "--type", "expired"), ExitFailure, "TM-ADMIN-4291", "Hint:")
	expectExit(t, r.run("system", "gc", "--type", "disk"), ExitUsage, "--type")

	// audit: the calls above are in it.
	a := r.must("system", "audit", "--since", "1h", "--size", "100", "-o", "json").json(t)
	if a["total"].(float64) < 3 || len(a["items"].([]any)) == 0 {
		t.Fatalf("audit json: %v", a)
	}
	first := a["items"].([]any)[0].(map[string]any)
	if first["action"] == nil || first["time"] == nil || first["seq"] == nil {
		t.Fatalf("audit record: %v", first)
	}
	res = r.must("system", "audit", "--action", "gc.run")
	if !strings.Contains(res.stdout, "gc.run") || !strings.Contains(res.stdout, "ACTION") || !strings.Contains(res.stdout, "Total:") {
		t.Fatalf("audit table: %s", res.stdout)
	}
	if l := r.must("system", "audit", "--action", "gc.run", "--result", "failure", "-o", "json").json(t); l["total"].(float64) < 1 {
		t.Fatalf("audit failures: %v", l)
	}
	res = r.must("system", "audit", "--until", "2000-01-01T00:00:00Z", "-o", "wide")
	if !strings.Contains(res.stdout, "REQUEST ID") || !strings.Contains(res.stdout, "Total: 0") {
		t.Fatalf("audit wide: %s", res.stdout)
	}
	expectExit(t, r.run("system", "audit", "--since", "yesterday"), ExitUsage, "--since")
	expectExit(t, r.run("system", "audit", "--since", "1h", "--until", "2h"), ExitUsage, "before")
	expectExit(t, r.run("system", "audit", "--size", "1000"), ExitFailure, "TM-ARG-1001")

	// wal
	res = r.must("system", "wal")
	if !strings.Contains(res.stdout, "sync_mode") || !strings.Contains(res.stdout, "last_seq") {
		t.Fatalf("wal table: %s", res.stdout)
	}
	if w := r.must("system", "wal", "-o", "json").json(t); w["dir"] == nil || w["segments"] == nil {
		t.Fatalf("wal json: %v", w)
	}
	expectExit(t, r.run("system", "wal", "extra"), ExitUsage)
	expectExit(t, r.run("system", "nosuch"), ExitUsage, "unknown command")
}

// TestSystemReady_NotReadyExits1 drains a real node (grace period) and
// checks that `system ready` exits 1 with the failing check.
func TestSystemReady_NotReadyExits1(t *testing.T) {
	dir := t.TempDir()
	srv := startNode(t, dir, func(c *config.Config) { c.Server.Shutdown.GracePeriod = 1500 * time.Millisecond }, server.Options{})
	r := newRunner(t)
	r.env["TOKMESH_TARGET"] = "http://" + srv.Addr("http").String()
	r.must("system", "ready")
	stopped := make(chan struct{})
	go func() { srv.Shutdown(context.Background()); close(stopped) }()
	defer func() { <-stopped }() // the drain ends with the grace period
	deadline := time.Now().Add(time.Second)
	for {
		res := r.run("system", "ready", "-o", "json")
		if res.code == ExitFailure {
			if m := res.json(t); m["status"] != "not_ready" || m["code"] != "TM-SYS-5030" || m["checks"].(map[string]any)["shutdown"] != "draining" {
				t.Fatalf("not ready json: %v", m)
			}
			if res.stderr != "" {
				t.Fatalf("not ready is a result, not an error: %s", res.stderr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never saw not ready: exit %d %s %s", res.code, res.stdout, res.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	res := r.run("system", "ready")
	expectExit(t, res, ExitFailure)
	if !strings.Contains(res.stdout, "not_ready") || !strings.Contains(res.stdout, "draining") {
		t.Fatalf("not ready table: %s", res.stdout)
	}
}

func TestClusterCommands_Standalone(t *testing.T) {
	r, _ := setup(t)
	res := r.must("cluster", "status")
	if !strings.Contains(res.stdout, "standalone") || !strings.Contains(res.stdout, "healthy") {
		t.Fatalf("cluster status table: %s", res.stdout)
	}
	if strings.Contains(res.stdout, "Partition table") {
		t.Fatalf("partition map without -o wide: %s", res.stdout)
	}
	st := r.must("cluster", "status", "-o", "json").json(t)
	if st["mode"] != "standalone" || st["partitions"].(map[string]any)["total"].(float64) < 1 {
		t.Fatalf("cluster status json: %v", st)
	}
	total := int(st["partitions"].(map[string]any)["total"].(float64))
	res = r.must("cluster", "status", "-o", "wide")
	if !strings.Contains(res.stdout, "Partition table") || !strings.Contains(res.stdout, "0-"+strconv.Itoa(total-1)) ||
		!strings.Contains(res.stdout, "active") {
		t.Fatalf("cluster status wide: %s", res.stdout)
	}

	res = r.must("cluster", "nodes")
	if !strings.Contains(res.stdout, "tmnd-") || !strings.Contains(res.stdout, "alive") || !strings.Contains(res.stdout, "Total: 1") {
		t.Fatalf("cluster nodes table: %s", res.stdout)
	}
	if !strings.Contains(r.must("cluster", "nodes", "-o", "wide").stdout, "RAFT ROLE") {
		t.Fatal("cluster nodes wide lacks RAFT ROLE")
	}
	n := r.must("cluster", "nodes", "-o", "json").json(t)
	nodes := n["nodes"].([]any)
	if len(nodes) != 1 || nodes[0].(map[string]any)["state"] != "alive" {
		t.Fatalf("cluster nodes json: %v", n)
	}
	nodeID := nodes[0].(map[string]any)["node_id"].(string)

	// rebalance and remove are dangerous, and a standalone node refuses them.
	expectExit(t, r.run("cluster", "rebalance"), ExitUsage, "--force")
	res = r.run("cluster", "rebalance", "--force")
	expectExit(t, res, ExitFailure, "TM-CLST-4001", "Hint: this server is standalone")
	res = r.run("cluster", "rebalance", "--force", "-o", "json")
	if e := jsonErr(t, res); res.code != ExitFailure || e["code"] != "TM-CLST-4001" {
		t.Fatalf("rebalance json error: %d %v", res.code, e)
	}
	expectExit(t, r.run("cluster", "remove", nodeID), ExitUsage, "--force")
	expectExit(t, r.run("cluster", "remove"), ExitUsage)
	expectExit(t, r.run("cluster", "remove", nodeID, "--no-drain", "--force"), ExitFailure, "TM-CLST-4001")
	r.tty, r.stdin = true, "n\n"
	res = r.run("cluster", "remove", nodeID, "--no-drain")
	expectExit(t, res, ExitDeclined, "WITHOUT draining")
	r.stdin = "y\n"
	expectExit(t, r.run("cluster", "rebalance"), ExitFailure, "TM-CLST-4001")
}

func TestConfigServerCommands(t *testing.T) {
	dir := t.TempDir()
	var failReload atomic.Bool
	reload := func() (*config.Config, []*config.Error) {
		if failReload.Load() {
			return nil, []*config.Error{{Code: config.CodeOutOfRange, Key: "session.ttl.max", Value: "0s", Message: "out of range", Expected: "1s..8760h"}}
		}
		next := config.Default()
		next.Storage.DataDir = filepath.Join(dir, "data")
		next.Server.HTTP.Address = "127.0.0.1:0"
		next.Server.HTTPS.Address = "127.0.0.1:0"
		next.Server.RESP.Enabled = false
		next.Server.RESPTLS.Enabled = false
		next.Server.Shutdown.GracePeriod = 0
		next.Session.TTL.Default = time.Hour        // hot
		next.Session.TTL.ExpiredGrace = time.Minute // needs a restart
		return next, nil
	}
	startNode(t, dir, nil, server.Options{Reload: reload})
	r := newRunner(t)
	r.env["TOKMESH_TARGET"] = "unix:" + filepath.Join(dir, "data", "admin.sock")

	// show
	res := r.must("config", "server", "show")
	if !strings.Contains(res.stdout, "session.ttl.default") || !strings.Contains(res.stdout, "storage.data_dir") || !strings.Contains(res.stdout, "KEY") {
		t.Fatalf("config show table: %s", res.stdout)
	}
	cfg := r.must("config", "server", "show", "-o", "json").json(t)
	if cfg["config"].(map[string]any)["session"].(map[string]any)["ttl"].(map[string]any)["default"] != "2h" {
		t.Fatalf("config show json: %v", cfg)
	}
	if y := r.must("config", "server", "show", "-o", "yaml").stdout; !strings.Contains(y, "config:") {
		t.Fatalf("config show yaml: %s", y)
	}

	// validate: local and remote agree; exit 0 / 1 / 65.
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("session:\n  ttl:\n    default: 1h\n"), 0o600)
	os.WriteFile(bad, []byte("session:\n  ttl:\n    max: 0s\nbogus_key: 1\n"), 0o600)
	for _, remote := range [][]string{nil, {"--remote"}} {
		res = r.must(append([]string{"config", "server", "validate", good}, remote...)...)
		if !strings.HasPrefix(res.stdout, "VALID") {
			t.Fatalf("validate %v good: %s", remote, res.stdout)
		}
		if v := r.must(append([]string{"config", "server", "validate", good, "-o", "json"}, remote...)...).json(t); v["valid"] != true {
			t.Fatalf("validate %v good json: %v", remote, v)
		}
		res = r.run(append([]string{"config", "server", "validate", bad}, remote...)...)
		expectExit(t, res, ExitFailure)
		if !strings.Contains(res.stdout, "INVALID") || !strings.Contains(res.stdout, "TM-CFG-1002") || !strings.Contains(res.stdout, "session.ttl.max") ||
			!strings.Contains(res.stdout, "TM-CFG-1001") {
			t.Fatalf("validate %v bad table: %s", remote, res.stdout)
		}
		res = r.run(append([]string{"config", "server", "validate", bad, "-o", "json"}, remote...)...)
		expectExit(t, res, ExitFailure)
		v := res.json(t)
		if v["valid"] != false || len(v["errors"].([]any)) < 2 {
			t.Fatalf("validate %v bad json: %v", remote, v)
		}
	}
	local := r.run("config", "server", "validate", bad, "-o", "json").stdout
	remote := r.run("config", "server", "validate", bad, "--remote", "-o", "json").stdout
	if local != remote {
		t.Fatalf("local and remote validation differ:\n%s\n%s", local, remote)
	}
	expectExit(t, r.run("config", "server", "validate", filepath.Join(dir, "missing.yaml")), ExitData, "TM-CLI-1007")
	expectExit(t, r.run("config", "server", "validate"), ExitUsage)

	// reload: applied and restart-required keys; a failed reload exits 1.
	res = r.must("config", "server", "reload")
	if !strings.Contains(res.stdout, "session.ttl.default") || !strings.Contains(res.stdout, "session.ttl.expired_grace") {
		t.Fatalf("reload table: %s", res.stdout)
	}
	rl := r.must("config", "server", "reload", "-o", "json").json(t)
	if rl["applied"] == nil || rl["restart_required"] == nil {
		t.Fatalf("reload json: %v", rl)
	}
	failReload.Store(true)
	res = r.run("config", "server", "reload")
	expectExit(t, res, ExitFailure, "TM-CFG-1002", "session.ttl.max: out of range")
	res = r.run("config", "server", "reload", "-o", "json")
	if e := jsonErr(t, res); res.code != ExitFailure || e["code"] != "TM-CFG-1002" || e["details"].(map[string]any)["errors"] == nil {
		t.Fatalf("reload json error: %d %v", res.code, e)
	}
}

func TestConfigCLIShow_RedactsSecrets(t *testing.T) {
	r := newRunner(t)
	cfgDir := filepath.Join(r.env["XDG_CONFIG_HOME"], "tokmesh-cli")
	os.MkdirAll(cfgDir, 0o700)
	secret := "tmas_" + strings.Repeat("S", 40)
	profile := "current: prod\ntimeout: 5s\ntargets:\n  prod:\n    url: https://tokmesh.example:5443\n    api_key: tmak-prod:" + secret +
		"\n  box:\n    socket: /tmp/x.sock\n  ci:\n    url: http://127.0.0.1:5080\n    api_key_env: CI_KEY\n"
	os.WriteFile(filepath.Join(cfgDir, "cli.yaml"), []byte(profile), 0o600)

	res := r.must("config", "cli", "show")
	if strings.Contains(res.stdout+res.stderr, secret) {
		t.Fatalf("secret printed:\n%s", res.stdout)
	}
	for _, s := range []string{"tmak-prod:<redacted>", "https://tokmesh.example:5443", "profile api_key", "5s", "PROFILE", "env CI_KEY", "unix:/tmp/x.sock"} {
		if !strings.Contains(res.stdout, s) {
			t.Fatalf("cli show table lacks %q:\n%s", s, res.stdout)
		}
	}
	r.env["TOKMESH_API_KEY"] = "tmak-env:" + secret
	res = r.must("config", "cli", "show", "-o", "json", "-t", "ci")
	if strings.Contains(res.stdout, secret) {
		t.Fatalf("secret printed:\n%s", res.stdout)
	}
	m := res.json(t)
	if m["target"] != "ci" || m["endpoint"] != "http://127.0.0.1:5080" || m["api_key"] != "tmak-env:<redacted>" ||
		m["api_key_source"] != "env TOKMESH_API_KEY" || m["timeout"] != "5s" || m["current"] != "prod" {
		t.Fatalf("cli show json: %v", m)
	}
	if m["targets"].(map[string]any)["prod"].(map[string]any)["api_key"] != "tmak-prod:<redacted>" {
		t.Fatalf("profile key not redacted: %v", m["targets"])
	}
	// An unknown target is reported, not fatal: the point is to debug settings.
	if m := r.must("config", "cli", "show", "-o", "json", "-t", "nope").json(t); !strings.Contains(m["target_error"].(string), "unknown target") {
		t.Fatalf("unknown target: %v", m)
	}
	// A broken profile file is still a configuration error.
	os.WriteFile(filepath.Join(cfgDir, "cli.yaml"), []byte("targets: [\n"), 0o600)
	expectExit(t, r.run("config", "cli", "show"), ExitConfig, "TM-CLI-1001")
}

func TestAPIKeyCreateEmergency_AlwaysUsesTheLocalSocket(t *testing.T) {
	dir := t.TempDir()
	addr := startServer(t, dir)
	t.Chdir(dir)
	r := newRunner(t)
	// An HTTP target is ignored (the route exists only on the socket).
	r.env["TOKMESH_TARGET"] = "http://" + addr
	res := r.must("apikey", "create-emergency", "--description", "lost key", "-o", "json")
	k := res.json(t)
	if k["role"] != "admin" || !strings.HasPrefix(k["api_key"].(string), k["key_id"].(string)+":tmas_") || k["description"] != "lost key" {
		t.Fatalf("emergency key: %v", k)
	}
	if k["expires_at"].(float64) == 0 {
		t.Fatalf("emergency key never expires: %v", k)
	}
	if !strings.Contains(res.stderr, "ignoring target") || !strings.Contains(res.stderr, "shown only once") {
		t.Fatalf("emergency stderr: %s", res.stderr)
	}
	// The new key works over HTTP.
	r.env["TOKMESH_API_KEY"] = k["api_key"].(string)
	r.must("apikey", "get", k["key_id"].(string))
	// Table form, explicit socket target.
	r.env["TOKMESH_TARGET"] = "unix:" + filepath.Join(dir, "data", "admin.sock")
	res = r.must("apikey", "create-emergency")
	if !strings.Contains(res.stdout, "api_key") || !strings.Contains(res.stdout, "admin") || strings.Contains(res.stderr, "ignoring") {
		t.Fatalf("emergency table: %s / %s", res.stdout, res.stderr)
	}
	// No local server: 69.
	t.Chdir(t.TempDir())
	r.env["TOKMESH_TARGET"] = "http://" + addr
	expectExit(t, r.run("apikey", "create-emergency"), ExitUnavailable, "TM-CLI-1002")
}

func TestTargets_NamedPipeRefusedAndInterrupt(t *testing.T) {
	r := newRunner(t)
	expectExit(t, r.run("-t", "npipe:tokmesh-server", "system", "status"), ExitConfig, "TM-CLI-1001", "named-pipe")

	// A cancelled context (Ctrl+C) exits 2, even when it cut a request short.
	r2, _ := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r2.ctx = ctx
	expectExit(t, r2.run("system", "status"), ExitDeclined, "interrupted")
}

// TestAdminCommands_ErrorPaths: every command that calls the server
// reports the server's refusal (exit 1, its code on stderr, as JSON with
// -o json) and an unreachable server (exit 69).
func TestAdminCommands_ErrorPaths(t *testing.T) {
	r, _ := setup(t)
	cfgFile := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfgFile, []byte("session:\n  ttl:\n    default: 1h\n"), 0o600)
	commands := [][]string{
		{"config", "server", "show"}, {"config", "server", "validate", cfgFile, "--remote"}, {"config", "server", "reload"},
		{"backup", "snapshot"}, {"backup", "list"}, {"backup", "download", "tmbk-x"}, {"backup", "restore", "--id", "tmbk-x", "--force"},
		{"backup", "status"}, {"system", "status"}, {"system", "gc"}, {"system", "audit"}, {"system", "wal"},
		{"cluster", "status"}, {"cluster", "nodes"}, {"cluster", "rebalance", "--force"}, {"cluster", "remove", "tmnd-x", "--force"},
	}
	r.env["TOKMESH_API_KEY"] = "tmak-nope:tmas_" + strings.Repeat("x", 43)
	for _, args := range commands {
		res := r.run(append(args, "-o", "json")...)
		if res.code != ExitFailure || res.stdout != "" {
			t.Fatalf("%v with a bad key: exit %d\n%s\n%s", args, res.code, res.stdout, res.stderr)
		}
		if e := jsonErr(t, res); !strings.HasPrefix(e["code"].(string), "TM-AUTH-401") || e["request_id"] == "" {
			t.Fatalf("%v with a bad key: %v", args, e)
		}
		expectExit(t, r.run(args...), ExitFailure, "Error: ", "(code TM-AUTH-401")
	}
	r.env["TOKMESH_TARGET"] = "http://127.0.0.1:1"
	for _, args := range append(commands, []string{"system", "health"}, []string{"system", "ready"}) {
		expectExit(t, r.run(args...), ExitUnavailable, "TM-CLI-1002")
	}
}
