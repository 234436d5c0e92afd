package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/server"
)

func testEnv(k string) string {
	if k == "TOKMESH_ENCRYPTION_KEY" {
		return strings.Repeat("5a", 32)
	}
	return ""
}

// startServer starts a real node with its data dir in dir/data (so its
// admin socket is dir/data/admin.sock) and returns the HTTP address.
func startServer(t *testing.T, dir string) string {
	t.Helper()
	return startNode(t, dir, nil, server.Options{}).Addr("http").String()
}

// startNode is startServer with a configuration hook and options (Getenv
// is filled in); it returns the server.
func startNode(t *testing.T, dir string, tweak func(*config.Config), o server.Options) *server.Server {
	t.Helper()
	c := config.Default()
	c.Storage.DataDir = filepath.Join(dir, "data")
	c.Server.HTTP.Address = "127.0.0.1:0"
	c.Server.HTTPS.Address = "127.0.0.1:0"
	c.Server.RESP.Enabled = false
	c.Server.RESPTLS.Enabled = false
	c.Server.Shutdown.GracePeriod = 0
	if tweak != nil {
		tweak(c)
	}
	o.Getenv = testEnv
	srv := server.New(c, o)
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	return m
}

type runner struct {
	t     *testing.T
	env   map[string]string
	stdin string
	tty   bool // stdin is a terminal (prompts)
	// outTTY / errTTY: stdout / stderr are terminals (colour, spinners,
	// progress bars).
	outTTY, errTTY bool
	ctx            context.Context
}

func newRunner(t *testing.T) *runner {
	return &runner{t: t, env: map[string]string{"XDG_CONFIG_HOME": t.TempDir(), "HOME": t.TempDir()}}
}

func (r *runner) run(args ...string) result {
	r.t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, Env{
		Stdin: strings.NewReader(r.stdin), Stdout: &out, Stderr: &errb,
		Getenv:   func(k string) string { return r.env[k] },
		StdinTTY: func() bool { return r.tty }, StdoutTTY: func() bool { return r.outTTY },
		StderrTTY: func() bool { return r.errTTY }, Context: r.ctx,
	})
	return result{code, out.String(), errb.String()}
}

func (r *runner) must(args ...string) result {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 {
		r.t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, res.code, res.stdout, res.stderr)
	}
	return res
}

func expectExit(t *testing.T, res result, code int, stderrHas ...string) {
	t.Helper()
	if res.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", res.code, code, res.stdout, res.stderr)
	}
	for _, s := range stderrHas {
		if !strings.Contains(res.stderr, s) {
			t.Fatalf("stderr lacks %q:\n%s", s, res.stderr)
		}
	}
}

// TestZeroConfigBootstrap: fresh data dir, server started, no CLI
// configuration at all: `apikey create --role admin -o json` goes over
// ./data/admin.sock.
func TestZeroConfigBootstrap(t *testing.T) {
	dir := t.TempDir()
	startServer(t, dir)
	t.Chdir(dir)
	r := newRunner(t)
	res := r.must("apikey", "create", "--role", "admin", "-o", "json")
	m := res.json(t)
	if m["role"] != "admin" || m["status"] != "active" || !strings.HasPrefix(m["api_key"].(string), m["key_id"].(string)+":tmas_") {
		t.Fatalf("unexpected key: %v", m)
	}
	if !strings.Contains(res.stderr, "shown only once") {
		t.Fatalf("no secret warning: %s", res.stderr)
	}
	// The table form works too and shows the api_key.
	res = r.must("apikey", "create", "--role", "issuer", "--description", "sso")
	if !strings.Contains(res.stdout, "api_key") || !strings.Contains(res.stdout, "issuer") || !strings.Contains(res.stdout, "FIELD") {
		t.Fatalf("table: %s", res.stdout)
	}
}

func TestNoServerExits69(t *testing.T) {
	t.Chdir(t.TempDir())
	r := newRunner(t)
	res := r.run("apikey", "create", "--role", "admin", "-o", "json")
	expectExit(t, res, ExitUnavailable, "TM-CLI-1002", "cannot connect")
	var e map[string]any
	if err := json.Unmarshal([]byte(res.stderr), &e); err != nil || e["code"] != "TM-CLI-1002" {
		t.Fatalf("json error on stderr: %v %s", err, res.stderr)
	}
	if res.stdout != "" {
		t.Fatalf("stdout not empty: %q", res.stdout)
	}
	res = r.run("apikey", "create", "--role", "admin")
	expectExit(t, res, ExitUnavailable, "Error: cannot connect to unix:", "Hint: is tokmesh-server running")
	// Unreachable HTTP target too.
	res = r.run("-t", "http://127.0.0.1:1", "-k", "tmak-x:tmas_y", "session", "get", "tmss-x")
	expectExit(t, res, ExitUnavailable, "TM-CLI-1002")
}

// setup starts a server, creates an admin key over the socket and returns
// a runner targeting the HTTP listener with that key in TOKMESH_API_KEY.
func setup(t *testing.T) (r *runner, sock string) {
	dir := t.TempDir()
	addr := startServer(t, dir)
	sock = filepath.Join(dir, "data", "admin.sock")
	r = newRunner(t)
	key := r.must("-t", "unix:"+sock, "apikey", "create", "--role", "admin", "-o", "json").json(t)["api_key"].(string)
	r.env["TOKMESH_TARGET"] = "http://" + addr
	r.env["TOKMESH_API_KEY"] = key
	return r, sock
}

func TestSessionCommands(t *testing.T) {
	r, _ := setup(t)

	// create: table prints the token, warning on stderr.
	res := r.must("session", "create", "-u", "u-1001", "--device-id", "laptop", "--ttl", "2h", "--data", "role=admin")
	if !strings.Contains(res.stdout, "tmtk_") || !strings.Contains(res.stdout, "session_id") {
		t.Fatalf("create table: %s", res.stdout)
	}
	if !strings.Contains(res.stderr, "WARNING") {
		t.Fatalf("create warning: %s", res.stderr)
	}
	// create -o json
	created := r.must("session", "create", "-u", "u-1001", "--data-json", `{"k":"v"}`, "-o", "json").json(t)
	id, token := created["session_id"].(string), created["token"].(string)
	if !strings.HasPrefix(id, "tmss-") || !strings.HasPrefix(token, "tmtk_") {
		t.Fatalf("create json: %v", created)
	}
	// create: usage errors.
	expectExit(t, r.run("session", "create"), ExitUsage, "--user-id is required")
	expectExit(t, r.run("session", "create", "-u", "x", "--data-json", "{"), ExitData, "TM-CLI-1007")
	// create: server rejection → 1 with the server's code.
	expectExit(t, r.run("session", "create", "-u", strings.Repeat("x", 200)), ExitFailure, "(code TM-")

	// get
	res = r.must("session", "get", id)
	if !strings.Contains(res.stdout, id) || !strings.Contains(res.stdout, "data.k") {
		t.Fatalf("get table: %s", res.stdout)
	}
	if g := r.must("session", "get", id, "-o", "json").json(t); g["id"] != id || g["user_id"] != "u-1001" {
		t.Fatalf("get json: %v", g)
	}
	if y := r.must("session", "get", id, "-o", "yaml").stdout; !strings.Contains(y, "user_id: u-1001") {
		t.Fatalf("get yaml: %s", y)
	}
	expectExit(t, r.run("session", "get"), ExitUsage)

	// list
	res = r.must("session", "list", "-u", "u-1001")
	if !strings.Contains(res.stdout, "Total: 2") || !strings.Contains(res.stdout, "ID") {
		t.Fatalf("list table: %s", res.stdout)
	}
	res = r.must("session", "list", "-u", "u-1001", "-o", "wide")
	if !strings.Contains(res.stdout, "laptop") {
		t.Fatalf("list wide: %s", res.stdout)
	}
	l := r.must("session", "list", "-u", "u-1001", "--created-after", "1h", "-o", "json").json(t)
	if l["total"].(float64) != 2 || len(l["items"].([]any)) != 2 {
		t.Fatalf("list json: %v", l)
	}
	l = r.must("session", "list", "--all", "--size", "1", "-o", "json").json(t)
	if l["total"].(float64) != 2 || l["size"].(float64) != 2 || l["page"].(float64) != 1 {
		t.Fatalf("list --all json: %v", l)
	}
	res = r.must("-q", "session", "list", "-u", "u-1001")
	if strings.Contains(res.stdout, "Total") || strings.Contains(res.stdout, "CREATED") {
		t.Fatalf("quiet list: %s", res.stdout)
	}
	expectExit(t, r.run("session", "list", "--size", "1000"), ExitFailure, "TM-ARG-1001")
	expectExit(t, r.run("session", "list", "--created-after", "yesterday"), ExitUsage)

	// validate: --token, stdin, invalid → exit 1.
	res = r.must("session", "validate", "--token", token)
	if !strings.Contains(res.stdout, "VALID") {
		t.Fatalf("validate table: %s", res.stdout)
	}
	r.stdin = token + "\n"
	if v := r.must("session", "validate", "--touch", "-o", "json").json(t); v["valid"] != true {
		t.Fatalf("validate json: %v", v)
	}
	r.stdin = ""
	res = r.run("session", "validate", "--token", "tmtk_"+strings.Repeat("A", 43))
	expectExit(t, res, ExitFailure)
	if !strings.Contains(res.stdout, "INVALID") {
		t.Fatalf("invalid table: %s", res.stdout)
	}
	res = r.run("session", "validate", "--token", "tmtk_"+strings.Repeat("A", 43), "-o", "json")
	expectExit(t, res, ExitFailure)
	if res.json(t)["valid"] != false {
		t.Fatalf("invalid json: %s", res.stdout)
	}
	expectExit(t, r.run("session", "validate"), ExitUsage, "no token")

	// touch / renew
	if s := r.must("session", "touch", id, "-o", "json").json(t); s["id"] != id {
		t.Fatalf("touch: %v", s)
	}
	before := r.must("session", "get", id, "-o", "json").json(t)["expires_at"].(float64)
	if s := r.must("session", "renew", id, "--ttl", "10h", "-o", "json").json(t); s["expires_at"].(float64) <= before {
		t.Fatalf("renew did not extend: %v vs %v", s["expires_at"], before)
	}
	r.must("session", "renew", id, "--ttl", "9h")
	expectExit(t, r.run("session", "renew", id), ExitUsage, "--ttl is required")

	// revoke: dangerous.
	expectExit(t, r.run("session", "revoke", id), ExitUsage, "--force")
	r.tty, r.stdin = true, "n\n"
	expectExit(t, r.run("session", "revoke", id), ExitDeclined)
	r.stdin = "y\n"
	res = r.must("session", "revoke", id)
	if !strings.Contains(res.stdout, "true") {
		t.Fatalf("revoke table: %s", res.stdout)
	}
	r.tty, r.stdin = false, ""
	if v := r.must("session", "revoke", id, "--force", "-o", "json").json(t); v["revoked"] != false {
		t.Fatalf("second revoke: %v", v)
	}
	// get of a revoked session → server error, exit 1, code and request ID.
	res = r.run("session", "get", id)
	expectExit(t, res, ExitFailure, "(code TM-SESS-4042, request tmrq-")
	res = r.run("session", "get", id, "-o", "json")
	expectExit(t, res, ExitFailure)
	var e map[string]any
	if err := json.Unmarshal([]byte(res.stderr), &e); err != nil || e["code"] != "TM-SESS-4042" || e["request_id"] == "" {
		t.Fatalf("json error: %v %s", err, res.stderr)
	}

	// revoke-all: typed confirmation on a TTY.
	r.tty, r.stdin = true, "u-wrong\n"
	expectExit(t, r.run("session", "revoke-all", "-u", "u-1001"), ExitDeclined)
	r.stdin = "u-1001\n"
	res = r.must("session", "revoke-all", "-u", "u-1001")
	if !strings.Contains(res.stdout, "revoked_count") {
		t.Fatalf("revoke-all table: %s", res.stdout)
	}
	r.tty, r.stdin = false, ""
	expectExit(t, r.run("session", "revoke-all", "-u", "u-1001"), ExitUsage)
	if v := r.must("session", "revoke-all", "-u", "u-1001", "--force", "-o", "json").json(t); v["revoked_count"].(float64) != 0 {
		t.Fatalf("revoke-all json: %v", v)
	}
}

func TestAPIKeyCommands(t *testing.T) {
	r, _ := setup(t)
	k := r.must("apikey", "create", "--role", "issuer", "--description", "sso", "--allowlist", "10.0.0.0/8,127.0.0.1", "--rate-limit", "50", "--expires-in", "24h", "-o", "json").json(t)
	id := k["key_id"].(string)

	res := r.must("apikey", "list")
	if !strings.Contains(res.stdout, id) || !strings.Contains(res.stdout, "Total: 2") {
		t.Fatalf("list table: %s", res.stdout)
	}
	if l := r.must("apikey", "list", "--role", "issuer", "-o", "json").json(t); l["total"].(float64) != 1 {
		t.Fatalf("list json: %v", l)
	}
	res = r.must("apikey", "get", id)
	if !strings.Contains(res.stdout, "10.0.0.0/8") || !strings.Contains(res.stdout, "sso") {
		t.Fatalf("get table: %s", res.stdout)
	}
	if g := r.must("apikey", "get", id, "-o", "json").json(t); g["rate_limit"].(float64) != 50 || g["secret"] != nil {
		t.Fatalf("get json: %v", g)
	}
	expectExit(t, r.run("apikey", "get", "tmak-nonexistent"), ExitFailure, "TM-ADMIN-4041", "Hint:")
	expectExit(t, r.run("apikey", "create"), ExitUsage, "--role is required")
	expectExit(t, r.run("apikey", "create", "--role", "root"), ExitFailure, "TM-ARG-1001")
	expectExit(t, r.run("apikey", "create", "--role", "admin", "--expires-in", "1h", "--expires-at", "2030-01-01T00:00:00Z"), ExitUsage)

	// disable (dangerous) / enable
	expectExit(t, r.run("apikey", "disable", id), ExitUsage, "--force")
	if d := r.must("apikey", "disable", id, "--force", "-o", "json").json(t); d["status"] != "disabled" {
		t.Fatalf("disable: %v", d)
	}
	res = r.must("apikey", "enable", id)
	if !strings.Contains(res.stdout, "active") {
		t.Fatalf("enable table: %s", res.stdout)
	}
	// rotate (dangerous)
	expectExit(t, r.run("apikey", "rotate", id), ExitUsage)
	rot := r.must("apikey", "rotate", id, "--grace", "0s", "--force", "-o", "json").json(t)
	if !strings.HasPrefix(rot["api_key"].(string), id+":tmas_") {
		t.Fatalf("rotate: %v", rot)
	}
	r.tty, r.stdin = true, "yes\n"
	res = r.must("apikey", "rotate", id)
	if !strings.Contains(res.stdout, "api_key") || !strings.Contains(res.stderr, "shown only once") {
		t.Fatalf("rotate table: %s / %s", res.stdout, res.stderr)
	}
	r.tty = false

	// A non-admin key is refused by the server: exit 1 with the code.
	r.env["TOKMESH_API_KEY"] = rot["api_key"].(string)
	expectExit(t, r.run("apikey", "list"), ExitFailure)
}

func TestGlobalSettingsAndErrors(t *testing.T) {
	r, sock := setup(t)
	target, key := r.env["TOKMESH_TARGET"], r.env["TOKMESH_API_KEY"]

	// HTTP target without a key → 78 TM-CLI-1004.
	delete(r.env, "TOKMESH_API_KEY")
	expectExit(t, r.run("session", "list"), ExitConfig, "TM-CLI-1004")
	// Bad key → the server's 401, exit 1.
	expectExit(t, r.run("-k", "tmak-x:tmas_nope", "session", "list"), ExitFailure, "TM-AUTH-")
	// Unknown target name → 78.
	expectExit(t, r.run("-t", "prod", "session", "list"), ExitConfig, "TM-CLI-1001")
	// Usage errors → 64.
	expectExit(t, r.run("nosuch"), ExitUsage)
	expectExit(t, r.run("session", "list", "--bogus"), ExitUsage)
	expectExit(t, r.run("-o", "xml", "version"), ExitUsage)
	expectExit(t, r.run("--timeout", "soon", "version"), ExitUsage)

	// Profile file: named targets, flag > env > file.
	cfgDir := filepath.Join(r.env["XDG_CONFIG_HOME"], "tokmesh-cli")
	os.MkdirAll(cfgDir, 0o700)
	profile := "current: sock\noutput: json\ntargets:\n  sock:\n    socket: " + sock + "\n  web:\n    url: " + target + "\n    api_key_env: MY_KEY\n"
	os.WriteFile(filepath.Join(cfgDir, "cli.yaml"), []byte(profile), 0o600)
	delete(r.env, "TOKMESH_TARGET")
	if l := r.must("apikey", "list").json(t); l["total"].(float64) != 1 { // output json from the file, socket target
		t.Fatalf("profile list: %v", l)
	}
	r.env["MY_KEY"] = key
	r.env["TOKMESH_OUTPUT"] = "table"
	res := r.must("-t", "web", "apikey", "list")
	if !strings.Contains(res.stdout, "Total: 1") {
		t.Fatalf("env output over file: %s", res.stdout)
	}
	if v := r.must("-t", "web", "-o", "json", "version").json(t); v["server"] == nil || v["target"] != target {
		t.Fatalf("version json: %v", v)
	}
	os.Chmod(filepath.Join(cfgDir, "cli.yaml"), 0o644)
	expectExit(t, r.run("version"), 0, "readable by group/others")
	os.WriteFile(filepath.Join(cfgDir, "cli.yaml"), []byte("targets: [\n"), 0o600)
	expectExit(t, r.run("version"), ExitConfig, "TM-CLI-1001")

	// help reads well.
	res = r.must("--help")
	if !strings.Contains(res.stdout, "session") || !strings.Contains(res.stdout, "Examples:") {
		t.Fatalf("help: %s", res.stdout)
	}
}

func TestVersionWithoutServer(t *testing.T) {
	t.Chdir(t.TempDir())
	r := newRunner(t)
	res := r.must("version")
	if !strings.Contains(res.stdout, "tokmesh-cli") || !strings.Contains(res.stdout, "server: not reachable") {
		t.Fatalf("version: %s", res.stdout)
	}
	if v := r.must("version", "-o", "json").json(t); v["client"] == "" || v["server"] != nil {
		t.Fatalf("version json: %v", v)
	}
}
