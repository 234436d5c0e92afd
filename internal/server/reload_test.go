package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/datadir"
)

// reloadNode is a node started from a real YAML file, reloaded from it.
type reloadNode struct {
	t     testing.TB
	file  string
	srv   *Server
	level *slog.LevelVar
	logs  *syncBuffer
	local *http.Client
	base  string // http://<tcp listener>
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// reloadYAML renders the node's file; extra is appended as-is under the
// given top-level sections.
func reloadYAML(dataDir, sock string, quota int, level, allow, syncMode string) string {
	return fmt.Sprintf(`server:
  http: {address: "127.0.0.1:0"}
  https: {address: "127.0.0.1:0"}
  resp: {enabled: false}
  resp_tls: {enabled: false}
  local: {socket_path: %q}
  shutdown: {grace_period: 0s}
storage:
  data_dir: %q
  wal: {sync_mode: %s}
session:
  quota: {max_per_user: %d}
security:
  auth:
    allow_list: [%s]
    argon2: {memory: 8192, iterations: 1, parallelism: 1}
telemetry:
  logging: {level: %s}
`, sock, dataDir, syncMode, quota, allow, level)
}

func startReloadNode(t testing.TB, yaml string) *reloadNode {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := config.LoadOptions{ConfigFile: file, Environ: []string{}}
	cfg, _, errs := config.Load(opts)
	if len(errs) > 0 {
		t.Fatalf("load: %v", errs)
	}
	n := &reloadNode{t: t, file: file, level: new(slog.LevelVar), logs: &syncBuffer{}}
	n.level.Set(cfg.Telemetry.Logging.SlogLevel())
	n.srv = New(cfg, Options{Getenv: testEnv, ConfigFile: file, LogLevel: n.level,
		Logger: slog.New(slog.NewJSONHandler(n.logs, &slog.HandlerOptions{Level: n.level})),
		Reload: func() (*config.Config, []*config.Error) { c, _, errs := config.Load(opts); return c, errs }})
	if err := n.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.srv.Close() })
	sock := cfg.SocketPath()
	n.local = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	n.base = "http://" + n.srv.Addr("http").String()
	return n
}

func (n *reloadNode) write(yaml string) {
	n.t.Helper()
	if err := os.WriteFile(n.file, []byte(yaml), 0o600); err != nil {
		n.t.Fatal(err)
	}
}

// do sends a request over the admin socket (key == "") or the TCP
// listener with the API key, and returns the status and decoded body.
func (n *reloadNode) do(method, path, key, body string) (int, map[string]any) {
	n.t.Helper()
	c, base := n.local, "http://local"
	if key != "" {
		c, base = http.DefaultClient, n.base
	}
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" && key != "-" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func (n *reloadNode) createFor(user string) (int, string) {
	n.t.Helper()
	st, m := n.do("POST", "/sessions", "", `{"user_id":"`+user+`"}`)
	if st < 300 {
		return st, ""
	}
	code, _ := m["code"].(string)
	return st, code
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestReload_AppliesHotKeysListsRestartRequiredAndRejectsInvalidFiles(t *testing.T) {
	dataDir, sock := t.TempDir(), filepath.Join(t.TempDir(), "a.sock")
	n := startReloadNode(t, reloadYAML(dataDir, sock, 2, "info", "", "interval"))
	k, secret, _, err := n.srv.sec.keys.Create(context.Background(), auth.CreateRequest{Role: auth.RoleAdmin}, "LOCAL_ADMIN")
	if err != nil {
		t.Fatal(err)
	}
	adminKey := k.ID + ":" + secret

	for i := 0; i < 2; i++ {
		if st, code := n.createFor("u"); st != 201 && st != 200 {
			t.Fatalf("create %d: %d %s", i, st, code)
		}
	}
	if st, code := n.createFor("u"); code != "TM-SESS-4002" {
		t.Fatalf("third create under quota 2: %d %s", st, code)
	}
	if st, _ := n.do("GET", "/admin/v1/config", adminKey, ""); st != 200 {
		t.Fatalf("admin over TCP before the allow list: %d", st)
	}

	// 1. The API path: three hot keys and one restart-only key.
	n.write(reloadYAML(dataDir, sock, 3, "debug", `"10.0.0.0/8"`, "always"))
	st, body := n.do("POST", "/admin/v1/config/reload", "", "{}")
	if st != 200 || body["code"] != "OK" {
		t.Fatalf("reload: %d %v", st, body)
	}
	body, _ = body["data"].(map[string]any)
	wantApplied := []string{"security.auth.allow_list", "session.quota.max_per_user", "telemetry.logging.level"}
	if got := strs(body["applied"]); !slices.Equal(got, wantApplied) {
		t.Fatalf("applied = %v, want %v", got, wantApplied)
	}
	if got := strs(body["restart_required"]); !slices.Equal(got, []string{"storage.wal.sync_mode"}) {
		t.Fatalf("restart_required = %v", got)
	}
	// The new quota is enforced on the next create.
	if st, code := n.createFor("u"); st != 201 && st != 200 {
		t.Fatalf("third create under quota 3: %d %s", st, code)
	}
	if _, code := n.createFor("u"); code != "TM-SESS-4002" {
		t.Fatalf("fourth create under quota 3: %s", code)
	}
	if n.level.Level() != slog.LevelDebug {
		t.Fatalf("log level %v", n.level.Level())
	}
	if st, m := n.do("GET", "/admin/v1/config", adminKey, ""); st != 403 || m["code"] != "TM-AUTH-4031" {
		t.Fatalf("127.0.0.1 outside the new allow list: %d %v", st, m["code"])
	}
	// Non-hot keys keep their running value, also in GET /admin/v1/config.
	if c := n.srv.config(); c.Storage.WAL.SyncMode != "interval" || c.Session.Quota.MaxPerUser != 3 {
		t.Fatalf("config in force: sync_mode %s quota %d", c.Storage.WAL.SyncMode, c.Session.Quota.MaxPerUser)
	}
	logs := n.logs.String()
	if !strings.Contains(logs, `"msg":"configuration reloaded"`) ||
		!strings.Contains(logs, `"msg":"configuration keys changed that take effect only after a restart","keys":["storage.wal.sync_mode"]`) {
		t.Fatalf("logs:\n%s", logs)
	}

	// 2. An invalid file changes nothing: API 400 with the first TM-CFG code.
	n.write(strings.Replace(reloadYAML(dataDir, sock, 0, "warn", "", "interval"), "telemetry:", "bogus_key: 1\ntelemetry:", 1))
	st, body = n.do("POST", "/admin/v1/config/reload", "", "{}")
	details, _ := body["details"].(map[string]any)
	errList, _ := details["errors"].([]any)
	if st != 400 || !strings.HasPrefix(fmt.Sprint(body["code"]), "TM-CFG-") || len(errList) < 2 {
		t.Fatalf("invalid reload: %d %v", st, body)
	}
	if first, _ := errList[0].(map[string]any); first["code"] != body["code"] {
		t.Fatalf("response code %v is not the first error's %v", body["code"], first["code"])
	}
	if n.level.Level() != slog.LevelDebug || n.srv.config().Session.Quota.MaxPerUser != 3 {
		t.Fatal("an invalid reload changed the configuration in force")
	}
	if _, code := n.createFor("u"); code != "TM-SESS-4002" {
		t.Fatalf("quota after an invalid reload: %s", code)
	}
	// The same through the SIGHUP path (Server.Reload).
	_, _, err = n.srv.Reload()
	var ce *config.Error
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Code, "TM-CFG-") {
		t.Fatalf("Reload of an invalid file: %v", err)
	}

	// 3. The SIGHUP path (Server.Reload): back to an open allow list, the
	// quota lowered, metrics without auth.
	n.write(strings.Replace(reloadYAML(dataDir, sock, 1, "debug", "", "always"), "telemetry:\n",
		"telemetry:\n  metrics: {auth_enabled: false}\n", 1))
	if st, _ := n.do("GET", "/metrics", "-", ""); st == 200 { // 403 here: the 10/8 allow list is still in force
		t.Fatalf("/metrics without a key before the reload: %d", st)
	}
	applied, restart, err := n.srv.Reload()
	if err != nil {
		t.Fatal(err)
	}
	wantApplied = []string{"security.auth.allow_list", "session.quota.max_per_user", "telemetry.metrics.auth_enabled"}
	if !slices.Equal(applied, wantApplied) || !slices.Equal(restart, []string{"storage.wal.sync_mode"}) {
		t.Fatalf("applied %v restart_required %v", applied, restart)
	}
	if _, code := n.createFor("w"); code != "" {
		t.Fatalf("first create under quota 1: %s", code)
	}
	if _, code := n.createFor("w"); code != "TM-SESS-4002" {
		t.Fatalf("second create under quota 1: %s", code)
	}
	if st, _ := n.do("GET", "/admin/v1/config", adminKey, ""); st != 200 {
		t.Fatalf("admin over TCP with the allow list cleared: %d", st)
	}
	if st, _ := n.do("GET", "/metrics", "-", ""); st != 200 {
		t.Fatalf("/metrics without a key after auth_enabled: false: %d", st)
	}
}

func TestReload_HotKeysReachEverySubsystem(t *testing.T) {
	dataDir, sock := t.TempDir(), filepath.Join(t.TempDir(), "a.sock")
	base := reloadYAML(dataDir, sock, 50, "info", "", "interval")
	n := startReloadNode(t, base)
	n.write(base + `  audit: {retention_days: 30}
session_placeholder: x
`)
	// Unknown key: rejected, nothing changes.
	if _, _, err := n.srv.Reload(); err == nil {
		t.Fatal("unknown key accepted")
	}
	n.write(strings.NewReplacer(
		"session:\n", "session:\n  ttl: {default: 1m, max: 2h, idle_default: 30s}\n",
		"  quota: {max_per_user: 50}", "  quota: {max_per_user: 50, on_exceed: evict_oldest}",
		"storage:\n", "storage:\n  snapshot: {interval: 2h, wal_threshold: 32MiB}\n  backup: {retention_days: 3, retain_min: 2}\n",
		"security:\n", "security:\n  network: {trusted_proxies: [\"127.0.0.1/32\"]}\n  brute_force: {max_auth_failures: 3}\n  anti_replay: {required: true, timestamp_window: 10s, nonce_ttl: 20s}\n",
		"  auth:\n", "  auth:\n    rotation_grace: 5m\n",
		"telemetry:\n", "telemetry:\n  audit: {retention_days: 30}\n",
	).Replace(base))
	applied, restart, err := n.srv.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if len(restart) != 0 {
		t.Fatalf("restart_required %v", restart)
	}
	for _, k := range []string{"session.ttl.default", "session.ttl.max", "session.ttl.idle_default", "session.quota.on_exceed",
		"storage.snapshot.interval", "storage.snapshot.wal_threshold", "storage.backup.retention_days", "storage.backup.retain_min",
		"security.network.trusted_proxies", "security.brute_force.max_auth_failures", "security.anti_replay.required",
		"security.anti_replay.timestamp_window", "security.anti_replay.nonce_ttl", "security.auth.rotation_grace",
		"telemetry.audit.retention_days"} {
		if !slices.Contains(applied, k) {
			t.Errorf("%s not applied (applied %v)", k, applied)
		}
	}
	eng := n.srv.Engine()
	if l := eng.Store().Limits(); l.TTLDefault != 60 || l.TTLMax != 7200 || l.IdleDefault != 30 || l.OnExceed != 1 {
		t.Fatalf("session limits %+v", l)
	}
	if iv, th := eng.SnapshotPolicy(); iv != 2*time.Hour || th != 32<<20 {
		t.Fatalf("snapshot policy %v %d", iv, th)
	}
	if p := *n.srv.sec.tcp.trusted.Load(); len(p) != 1 || p[0].String() != "127.0.0.1/32" {
		t.Fatalf("trusted proxies %v", p)
	}
	if !n.srv.sec.replay.Required() {
		t.Fatal("anti_replay.required not applied")
	}
	if b := n.srv.config().Storage.Backup; b.RetentionDays != 3 || b.RetainMin != 2 {
		t.Fatalf("backup retention %+v", b)
	}
	// A write over TCP now needs the anti-replay headers.
	k, secret, _, _ := n.srv.sec.keys.Create(context.Background(), auth.CreateRequest{Role: auth.RoleAdmin}, "LOCAL_ADMIN")
	if st, m := n.do("POST", "/sessions", k.ID+":"+secret, `{"user_id":"u"}`); st/100 != 4 || !strings.HasPrefix(fmt.Sprint(m["code"]), "TM-AUTH-") {
		t.Fatalf("write without anti-replay headers: %d %v", st, m)
	}
	// A session created now gets the new default TTL.
	st, m := n.do("POST", "/sessions", "", `{"user_id":"v"}`)
	if st != 201 && st != 200 {
		t.Fatalf("create: %d %v", st, m)
	}
}

func TestReload_TLSFilesSwapAndSIGHUPKeepsReloadingTheSameFiles(t *testing.T) {
	dataDir, sock := t.TempDir(), filepath.Join(t.TempDir(), "a.sock")
	dirA, dirB := t.TempDir(), t.TempDir()
	certA, keyA := writeCert(t, dirA, "cert-a")
	certB, keyB := writeCert(t, dirB, "cert-b")
	withTLS := func(cert, key string) string {
		return strings.Replace(reloadYAML(dataDir, sock, 50, "info", "", "interval"), "server:\n",
			fmt.Sprintf("server:\n  tls: {cert_file: %q, key_file: %q}\n", cert, key), 1)
	}
	n := startReloadNode(t, withTLS(certA, keyA))
	cn := func() string {
		c, err := tls.Dial("tcp", n.srv.Addr("https").String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := cn(); got != "cert-a" {
		t.Fatalf("serving %s", got)
	}
	n.write(withTLS(certB, keyB))
	applied, _, err := n.srv.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(applied, []string{"server.tls.cert_file", "server.tls.key_file"}) {
		t.Fatalf("applied %v", applied)
	}
	if got := cn(); got != "cert-b" {
		t.Fatalf("after the reload serving %s", got)
	}
	// Same file names, new content: a reload re-reads them.
	writeCert(t, dirB, "cert-b2")
	if _, _, err := n.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := cn(); got != "cert-b2" {
		t.Fatalf("after re-reading serving %s", got)
	}
}

// A SIGHUP reload is audited like the API's (08-config §4, 04-security §9):
// config.reload by the system actor, an attempt record and then the
// outcome — success with the applied and restart-required keys, failure
// with the error codes.
func TestReloadFromSignal_IsAudited(t *testing.T) {
	dataDir, sock := t.TempDir(), filepath.Join(t.TempDir(), "a.sock")
	n := startReloadNode(t, reloadYAML(dataDir, sock, 2, "info", "", "interval"))
	n.write(reloadYAML(dataDir, sock, 3, "info", "", "always"))
	applied, restart, err := n.srv.ReloadFromSignal()
	if err != nil || !slices.Equal(applied, []string{"session.quota.max_per_user"}) || !slices.Equal(restart, []string{"storage.wal.sync_mode"}) {
		t.Fatalf("reload: %v %v %v", applied, restart, err)
	}
	n.write(reloadYAML(dataDir, sock, 0, "info", "", "interval") + "nope: 1\n")
	if _, _, err := n.srv.ReloadFromSignal(); err == nil {
		t.Fatal("an invalid file reloaded")
	}
	n.srv.Close() // the outcome records are queued; closing writes them
	var got []string
	for _, r := range readAudit(t, filepath.Join(dataDir, datadir.AuditDir)) {
		if r.Action != "config.reload" {
			continue
		}
		if r.Actor != "system" || r.Resource != n.file {
			t.Fatalf("record %+v", r)
		}
		d, _ := json.Marshal(r.Details)
		got = append(got, r.Result+" "+string(d))
	}
	want := []string{
		"attempt {}",
		`success {"applied":["session.quota.max_per_user"],"restart_required":["storage.wal.sync_mode"]}`,
		"attempt {}",
		`failure {"error":["TM-CFG-1001","TM-CFG-1002"]}`, // unknown key; max_per_user 0 out of range
	}
	if !slices.Equal(got, want) {
		t.Fatalf("config.reload records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
