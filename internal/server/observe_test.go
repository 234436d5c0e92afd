package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"

	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/logging"
)

// obsNode is a real node with HTTP, RESP and the admin socket, logging
// JSON (through the production logger) into logs.
type obsNode struct {
	t     *testing.T
	cfg   *config.Config
	srv   *Server
	logs  *syncBuffer
	local *http.Client
	base  string
	cred  string // issuer credential "key_id:secret"
	rdb   *redis.Client
}

func obsConfig(t *testing.T) *config.Config {
	c := baseConfig(t)
	c.Server.RESP.Enabled, c.Server.RESP.Address = true, "127.0.0.1:0"
	c.Security.Auth.Argon2.Memory, c.Security.Auth.Argon2.Iterations, c.Security.Auth.Argon2.Parallelism = 8192, 1, 1
	c.Session.Sweeper.Interval = 10 * time.Millisecond
	c.Session.Quota.MaxPerUser = 2
	return c
}

func startObsNode(t *testing.T, c *config.Config, o Options) *obsNode {
	t.Helper()
	n := &obsNode{t: t, cfg: c, logs: &syncBuffer{}}
	var lv slog.LevelVar
	lv.Set(slog.LevelDebug)
	o.Getenv, o.Logger = testEnv, logging.New(n.logs, &lv)
	n.srv = New(c, o)
	if err := n.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.srv.Close() })
	sock := c.SocketPath()
	n.local = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	n.base = "http://" + n.srv.Addr("http").String()
	if c.Server.RESP.Enabled {
		k, secret, _, err := n.srv.sec.keys.Create(context.Background(), auth.CreateRequest{Role: auth.RoleIssuer, RateLimit: 100000}, "LOCAL_ADMIN")
		if err != nil {
			t.Fatal(err)
		}
		n.cred = k.ID + ":" + secret
		n.rdb = redis.NewClient(&redis.Options{Addr: n.srv.Addr("resp").String(), Username: k.ID, Password: secret, Protocol: 2})
		t.Cleanup(func() { n.rdb.Close() })
	}
	return n
}

// http sends a request over TCP with the issuer credential (local=false) or
// over the admin socket, and returns the status and the envelope's data.
func (n *obsNode) http(local bool, method, path, body string) (int, map[string]any) {
	n.t.Helper()
	c, base := http.DefaultClient, n.base
	if local {
		c, base = n.local, "http://local"
	}
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if !local {
		req.Header.Set("Authorization", "Bearer "+n.cred)
	}
	resp, err := c.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data map[string]any `json:"data"`
		Code string         `json:"code"`
	}
	json.NewDecoder(resp.Body).Decode(&env)
	if env.Data == nil {
		env.Data = map[string]any{"code": env.Code}
	}
	return resp.StatusCode, env.Data
}

// validate returns the error code of POST /tokens/validate ("" = valid).
func (n *obsNode) validate(local bool, token string) string {
	n.t.Helper()
	st, d := n.http(local, "POST", "/tokens/validate", `{"token":"`+token+`"}`)
	if st != 200 {
		n.t.Fatalf("validate: %d %v", st, d)
	}
	if d["valid"] == true {
		return ""
	}
	e, _ := d["error"].(map[string]any)
	return e["code"].(string)
}

// scrape reads GET /metrics over the admin socket (no key, no brute-force
// guard) and parses the text format.
func (n *obsNode) scrape() map[string]*dto.MetricFamily {
	n.t.Helper()
	resp, err := n.local.Get("http://local/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		n.t.Fatalf("scrape: %d %s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	return fams
}

// metric sums the series of name whose labels include want: counter and
// gauge values, histogram sample counts; -1 when the family is absent.
func metric(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
	sum := 0.0
next:
	for _, s := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range s.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if have[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case s.GetCounter() != nil:
			sum += s.GetCounter().GetValue()
		case s.GetGauge() != nil:
			sum += s.GetGauge().GetValue()
		case s.GetHistogram() != nil:
			sum += float64(s.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// waitMetric polls the scrape until ok holds or 10 s passed.
func (n *obsNode) waitMetric(what string, ok func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fams := n.scrape()
		if ok(fams) {
			return fams
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every session event counts once in tokmesh_token_validations_total and
// tokmesh_session_operations_total, whichever API caused it — HTTP, RESP,
// the admin socket or the sweeper — and the storage, audit and security
// metrics move with the work the node did.
func TestMetrics_SessionEventsCountOnceWhicheverAPICausedThem(t *testing.T) {
	c := obsConfig(t)
	c.Session.TTL.ExpiredGrace = 2 * time.Second
	c.Security.BruteForce.MaxAuthFailures = 2
	n := startObsNode(t, c, Options{})
	ctx := context.Background()
	before := n.scrape()
	if v := metric(before, "tokmesh_session_operations_total", "op", "create", "result", "ok"); v != 0 {
		t.Fatalf("session operations before any request: %v", v)
	}

	// HTTP (issuer key).
	_, a := n.http(false, "POST", "/sessions", `{"user_id":"u-http","ttl_seconds":300}`)
	aID, aTok := a["session_id"].(string), a["token"].(string)
	for i := range 3 { // quota 2: the third create is rejected
		st, d := n.http(false, "POST", "/sessions", `{"user_id":"u-q","ttl_seconds":300}`)
		if i < 2 && st != 201 || i == 2 && d["code"] != "TM-SESS-4002" {
			t.Fatalf("create %d for u-q: %d %v", i, st, d)
		}
	}
	for tok, want := range map[string]string{aTok: "", "short": "TM-TOKN-4000", "tmtk_" + strings.Repeat("z", 40): "TM-TOKN-4010"} {
		if got := n.validate(false, tok); got != want {
			t.Fatalf("validate %q: %q, want %q", tok, got, want)
		}
	}
	for _, p := range [][2]string{{"/sessions/" + aID + "/touch", ""}, {"/sessions/" + aID + "/renew", `{"ttl_seconds":600}`},
		{"/sessions/" + aID + "/revoke", ""}, {"/users/u-q/sessions/revoke", "{}"}} {
		if st, d := n.http(false, "POST", p[0], p[1]); st != 200 {
			t.Fatalf("%s: %d %v", p[0], st, d)
		}
	}
	if got := n.validate(false, aTok); got != "TM-TOKN-4012" {
		t.Fatalf("validate revoked: %q", got)
	}

	// RESP (the same issuer key).
	raw, err := n.rdb.Do(ctx, "TM.CREATE", `{"user_id":"u-resp","ttl_seconds":300}`).Text()
	if err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	json.Unmarshal([]byte(raw), &b)
	bID, bTok := b["session_id"].(string), b["token"].(string)
	if err := n.rdb.Do(ctx, "TM.VALIDATE", bTok).Err(); err != nil {
		t.Fatal(err)
	}
	n.rdb.Do(ctx, "TM.VALIDATE", "tmtk_"+strings.Repeat("y", 40)) // unknown
	for _, cmd := range [][]any{{"TM.TOUCH", bID}, {"TM.RENEW", bID, 600}, {"TM.REVOKE", bID}, {"TM.REVOKE_USER", "u-resp"}} {
		if err := n.rdb.Do(ctx, cmd...).Err(); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	n.rdb.Do(ctx, "TM.VALIDATE", bTok) // revoked

	// Admin socket: a session that expires (1 s TTL, 2 s grace) and one
	// that is revoked and whose tombstone the sweeper removes after 1 s.
	_, cs := n.http(true, "POST", "/sessions", `{"user_id":"u-local","ttl_seconds":1}`)
	created := time.Now()
	_, ds := n.http(true, "POST", "/sessions", `{"user_id":"u-local2","ttl_seconds":1}`)
	n.http(true, "POST", "/sessions/"+ds["session_id"].(string)+"/revoke", "")
	if got := n.validate(true, cs["token"].(string)); got != "" {
		t.Fatalf("validate over the admin socket: %q", got)
	}
	time.Sleep(time.Until(created.Add(1500 * time.Millisecond)))
	if got := n.validate(true, cs["token"].(string)); got != "TM-TOKN-4011" {
		t.Fatalf("validate within the grace period: %q", got)
	}

	// The sweeper removes both (expire operations).
	fams := n.waitMetric("the sweeper", func(f map[string]*dto.MetricFamily) bool {
		return metric(f, "tokmesh_sweeper_removed_total", "kind", "expired") == 1 &&
			metric(f, "tokmesh_sweeper_removed_total", "kind", "tombstone") == 1
	})
	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"op", "create", "result", "ok"}, 6}, // HTTP 3, RESP 1, admin socket 2
		{[]string{"op", "create", "result", "quota"}, 1},
		{[]string{"op", "touch", "result", "ok"}, 2},
		{[]string{"op", "renew", "result", "ok"}, 2},
		{[]string{"op", "revoke", "result", "ok"}, 3},
		{[]string{"op", "revoke_all", "result", "ok"}, 2},
		{[]string{"op", "expire", "result", "ok"}, 2},
		{nil, 18},
	} {
		if got := metric(fams, "tokmesh_session_operations_total", tc.labels...); got != tc.want {
			t.Errorf("tokmesh_session_operations_total%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	for result, want := range map[string]float64{"valid": 3, "malformed": 1, "unknown": 2, "expired": 1, "revoked": 2} {
		if got := metric(fams, "tokmesh_token_validations_total", "result", result); got != want {
			t.Errorf("tokmesh_token_validations_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	if got := metric(fams, "tokmesh_session_quota_rejections_total"); got != 1 {
		t.Errorf("quota rejections %v", got)
	}
	if got := metric(fams, "tokmesh_sweeper_round_duration_seconds"); got < 1 {
		t.Errorf("sweeper rounds observed: %v", got)
	}
	if got := metric(fams, "tokmesh_auth_argon2_duration_seconds"); got < 1 {
		t.Errorf("argon2 verifications observed: %v", got)
	}

	// WAL records by type: exact for the types this test can predict, and
	// together every record up to the last seq (touches are coalesced, so
	// their count depends on timing).
	fams = n.waitMetric("every WAL record written", func(f map[string]*dto.MetricFamily) bool {
		return metric(f, "tokmesh_wal_records_total") == metric(f, "tokmesh_wal_last_seq")
	})
	for typ, want := range map[string]float64{"SESSION_PUT": 8, "SESSION_REVOKE": 5, "SESSION_EXPIRE": 2, "RESET": 0} {
		if got := metric(fams, "tokmesh_wal_records_total", "type", typ); got != want {
			t.Errorf("tokmesh_wal_records_total{type=%q} = %v, want %v", typ, got, want)
		}
	}

	// Snapshots: one success, then one failure (the snapshot directory
	// replaced by a file, which fails even for root).
	startedAt := float64(time.Now().Unix()) - 1
	if _, err := n.srv.Engine().Snapshot(); err != nil {
		t.Fatal(err)
	}
	snapDir := filepath.Join(c.Storage.DataDir, datadir.SnapshotDir)
	if err := os.Rename(snapDir, snapDir+".moved"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(snapDir, nil, 0o600)
	n.http(true, "POST", "/sessions", `{"user_id":"u-snap"}`) // something new to snapshot
	if _, err := n.srv.Engine().Snapshot(); err == nil {
		t.Fatal("snapshot into a file succeeded")
	}
	os.Remove(snapDir)
	os.Rename(snapDir+".moved", snapDir)
	fams = n.scrape()
	if got := metric(fams, "tokmesh_snapshot_duration_seconds"); got != 1 {
		t.Errorf("snapshot durations %v, want 1", got)
	}
	if got := metric(fams, "tokmesh_snapshot_failures_total"); got != 1 {
		t.Errorf("snapshot failures %v, want 1", got)
	}
	if got := metric(fams, "tokmesh_snapshot_last_success_timestamp_seconds"); got < startedAt {
		t.Errorf("last snapshot success %v, before the snapshot (%v)", got, startedAt)
	}

	// Audit records: the counter equals the lines in the audit files once
	// the queue is drained.
	auditDir := filepath.Join(c.Storage.DataDir, datadir.AuditDir)
	var lines int
	n.waitMetric("audit records to match the file", func(f map[string]*dto.MetricFamily) bool {
		lines = countAuditLines(t, auditDir)
		return metric(f, "tokmesh_audit_records_total") == float64(lines)
	})
	if lines < 10 {
		t.Fatalf("only %d audit records", lines)
	}

	// Standalone cluster series agree with GET /admin/v1/status.
	_, status := n.http(true, "GET", "/admin/v1/status", "")
	cl, _ := status["cluster"].(map[string]any)
	for _, tc := range []struct {
		metric []string
		want   any
	}{
		{[]string{"tokmesh_cluster_partitions", "role", "primary"}, cl["partitions_primary"]},
		{[]string{"tokmesh_cluster_partitions", "role", "replica"}, cl["partitions_replica"]},
		{[]string{"tokmesh_cluster_is_leader"}, map[bool]float64{true: 1, false: 0}[cl["raft_role"] == "leader"]},
		{[]string{"tokmesh_cluster_lease_valid"}, map[bool]float64{true: 1, false: 0}[cl["lease_valid"] == true]},
		{[]string{"tokmesh_cluster_partitions_unavailable"}, 0.0},
	} {
		if got := metric(fams, tc.metric[0], tc.metric[1:]...); got != tc.want {
			t.Errorf("%v = %v, status says %v", tc.metric, got, tc.want)
		}
	}
	if p := metric(fams, "tokmesh_cluster_partitions", "role", "primary"); p != float64(n.srv.Engine().Partitions()) {
		t.Errorf("primary partitions %v", p)
	}
	for name := range fams {
		if (strings.HasPrefix(name, "tokmesh_cluster_") || strings.HasPrefix(name, "tokmesh_replication_") ||
			strings.HasPrefix(name, "tokmesh_revoke_replication") || strings.HasPrefix(name, "tokmesh_rebalance_")) &&
			!standaloneClusterSeries[name] {
			t.Errorf("standalone node exports %s", name)
		}
	}

	// Brute force: two bad secrets block 127.0.0.1 (max_auth_failures 2).
	if got := metric(fams, "tokmesh_bruteforce_blocked_ips"); got != 0 {
		t.Fatalf("blocked IPs before any failure: %v", got)
	}
	bad := n.cred[:len(n.cred)-1] + map[bool]string{true: "b", false: "a"}[strings.HasSuffix(n.cred, "a")]
	for range 2 {
		req, _ := http.NewRequest("POST", n.base+"/tokens/validate", strings.NewReader(`{"token":"x"}`))
		req.Header.Set("Authorization", "Bearer "+bad)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	fams = n.scrape()
	if b, total := metric(fams, "tokmesh_bruteforce_blocked_ips"), metric(fams, "tokmesh_bruteforce_blocks_total"); b != 1 || total != 1 {
		t.Fatalf("blocked IPs %v, blocks %v; want 1 and 1", b, total)
	}

	// Draining: not ready for new traffic, but every partition is still
	// served until the listeners close (as the cluster status says).
	done := make(chan error, 1)
	go func() { done <- n.srv.Shutdown(context.Background()) }()
	n.waitMetric("partitions still served while draining", func(f map[string]*dto.MetricFamily) bool {
		return metric(f, "tokmesh_cluster_partitions_unavailable") == 0 && metric(f, "tokmesh_ready") == 0
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// standaloneClusterSeries are the cluster metrics of a standalone node.
var standaloneClusterSeries = map[string]bool{"tokmesh_cluster_partitions": true, "tokmesh_cluster_partitions_unavailable": true,
	"tokmesh_cluster_is_leader": true, "tokmesh_cluster_lease_valid": true}

func countAuditLines(t *testing.T, dir string) int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n += bytes.Count(b, []byte{'\n'})
	}
	return n
}

// logRecords decodes the node's JSON log lines.
func logRecords(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %s", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func findRecord(recs []map[string]any, msg string) map[string]any {
	for _, r := range recs {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

// Every record of a node's run — startup, requests, reload, shutdown — has
// component and node_id (09-observability §2); node_id is the data dir's
// from the first record on once node.json exists; startup logs version,
// mode, node ID, listeners, cipher and key ID, sync mode and the recovery
// statistics; the configuration's WARNs appear once each.
func TestLogs_EveryRecordHasComponentAndNodeIDAndStartupSaysWhatRuns(t *testing.T) {
	c := obsConfig(t)
	c.Server.Local.Enabled = false
	info := &config.LoadInfo{Warnings: c.Warnings()}
	n := startObsNode(t, c, Options{LoadInfo: info})
	nodeID, cipher := n.srv.Engine().Node().NodeID, n.srv.Engine().Cipher().String()
	n.http(false, "POST", "/sessions", `{"user_id":"u-log"}`) // the WAL grows: a snapshot at shutdown
	n.validate(false, "tmtk_"+strings.Repeat("q", 40))
	n.rdb.Ping(context.Background())
	n.srv.Reload()
	if err := n.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := logRecords(t, n.logs.String())

	// Second run on the same data dir: the ID is known from the first record.
	c2 := *c
	n2 := startObsNode(t, &c2, Options{LoadInfo: info})
	n2.srv.Close()
	second := logRecords(t, n2.logs.String())

	checkAll := func(recs []map[string]any, knownFromStart bool) {
		t.Helper()
		seenID := knownFromStart
		for _, r := range recs {
			comp, ok1 := r[logging.ComponentKey].(string)
			id, ok2 := r[logging.NodeIDKey].(string)
			if !ok1 || !ok2 || comp == "" {
				t.Errorf("record without component or node_id: %v", r)
				continue
			}
			if id == nodeID {
				seenID = true
			} else if seenID || id != "" {
				t.Errorf("node_id %q, want %q: %v", id, nodeID, r)
			}
		}
	}
	checkAll(first, false)
	checkAll(second, true)

	start := findRecord(first, "starting tokmesh-server")
	if start == nil || start["version"] == "" || start["mode"] != "standalone" || start["go_version"] == nil {
		t.Errorf("startup record: %v", start)
	}
	ready := findRecord(first, "node ready")
	if ready == nil {
		t.Fatal("no node ready record")
	}
	for _, k := range []string{"version", "mode", "listeners", "cipher", "key_id", "sync_mode", "snapshot", "wal_records_replayed", "recovery_ms"} {
		if _, ok := ready[k]; !ok {
			t.Errorf("node ready without %s: %v", k, ready)
		}
	}
	if ready["node_id"] != nodeID || ready["cipher"] != cipher {
		t.Errorf("node ready: %v", ready)
	}
	if l, _ := ready["listeners"].(map[string]any); l["http"] == nil || l["resp"] == nil {
		t.Errorf("listeners %v", ready["listeners"])
	}
	for _, msg := range []string{"config.load", "encryption at rest", "recovery complete", "node ready", "snapshot written"} {
		if findRecord(first, msg) == nil {
			t.Errorf("no %q record", msg)
		}
	}
	// "env": [] rather than null when no variable was used.
	if cl := findRecord(first, "config.load"); cl == nil || cl["component"] != "config" || cl["env"] == nil || cl["flags"] == nil {
		t.Errorf("config loaded: %v", cl)
	}
	// server.local.enabled: false is said once.
	localWarns := 0
	for _, r := range first {
		if r["level"] == "WARN" && strings.Contains(r["msg"].(string), "server.local.enabled") {
			localWarns++
		}
	}
	if localWarns != 1 {
		t.Errorf("%d WARN records about server.local.enabled, want 1", localWarns)
	}
	// Durations carry their unit.
	if lb := findRecord(first, "secondary lists built"); lb == nil {
		t.Error("no secondary lists record at debug level")
	} else if _, ok := lb["duration_ms"].(float64); !ok || lb["duration"] != nil {
		t.Errorf("secondary lists built: %v", lb)
	}
}

// ErrorCode gives startup failures their catalogue code where there is one;
// FailureAttrs leaves code out where there is none.
func TestErrorCode_StartupFailures(t *testing.T) {
	c := baseConfig(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)+"\n"), 0o644) // readable by others
	c.Security.Encryption.KeyFile = keyFile
	srv := New(c, Options{Getenv: func(string) string { return "" }})
	err := srv.Start(context.Background())
	if err == nil {
		srv.Close()
		t.Fatal("started with a world-readable key file")
	}
	if got := ErrorCode(err); got != "TM-CFG-1004" {
		t.Errorf("key file permissions: code %q (%v)", got, err)
	}

	a := New(baseConfig(t), Options{Getenv: testEnv})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := New(a.config(), Options{Getenv: testEnv})
	err = b.Start(context.Background())
	if err == nil {
		b.Close()
		t.Fatal("second node on a locked data dir")
	}
	if attrs := FailureAttrs(err); len(attrs) != 2 || attrs[0] != "error" {
		t.Errorf("locked data dir: %v", attrs)
	}
}

// telemetry.logging.dump_config logs the effective configuration once at
// startup, through the redactor; nothing that looks like a credential and
// no key material is printed.
func TestDumpConfig_LogsTheEffectiveConfigurationRedacted(t *testing.T) {
	c := obsConfig(t)
	c.Telemetry.Logging.DumpConfig = true
	// Not the active key source (the environment is), so never read; a
	// value shaped like an API secret must not reach the log.
	c.Security.Encryption.KeyFile = "/keys/tmas_3Kf9ZqLmN0pQrStUvWxYz0123"
	c.Session.Quota.MaxPerUser = 17
	n := startObsNode(t, c, Options{})
	logs := n.logs.String()
	recs := logRecords(t, logs)
	var dumps []map[string]any
	for _, r := range recs {
		if r["msg"] == "effective configuration" {
			dumps = append(dumps, r)
		}
	}
	if len(dumps) != 1 {
		t.Fatalf("%d configuration dumps", len(dumps))
	}
	d := dumps[0]
	cfg, _ := d["config"].(map[string]any)
	sess, _ := cfg["session"].(map[string]any)
	quota, _ := sess["quota"].(map[string]any)
	srv, _ := cfg["server"].(map[string]any)
	httpL, _ := srv["http"].(map[string]any)
	if d["component"] != "config" || quota["max_per_user"] != 17.0 || httpL["address"] != "127.0.0.1:0" {
		t.Fatalf("dump: %v", d)
	}
	if strings.Contains(logs, "tmas_3Kf9") || !strings.Contains(logs, "tmas_"+logging.Redacted) {
		t.Fatalf("secret-shaped value not redacted:\n%s", logs)
	}
	if strings.Contains(logs, strings.Repeat("5a", 32)) {
		t.Fatal("the master key reached the log")
	}

	// Off (the default): no dump.
	c2 := obsConfig(t)
	n2 := startObsNode(t, c2, Options{})
	if strings.Contains(n2.logs.String(), "effective configuration") {
		t.Fatal("configuration dumped without dump_config")
	}
}

// Tracing enabled in a build without the otel tag: one WARN, and the node
// runs (09-observability §4). The endpoint, which may hold credentials, is
// not logged.
func TestTracing_EnabledWithoutTracingBuildWarnsAndContinues(t *testing.T) {
	c := obsConfig(t)
	c.Telemetry.Tracing.Enabled = true
	c.Telemetry.Tracing.Endpoint = "http://user:hunter2@collector:4318"
	n := startObsNode(t, c, Options{})
	if !n.srv.Ready() {
		t.Fatal("not ready")
	}
	var warns []map[string]any
	for _, r := range logRecords(t, n.logs.String()) {
		if r["level"] == "WARN" && strings.Contains(r["msg"].(string), "tracing") {
			warns = append(warns, r)
		}
	}
	if len(warns) != 1 || warns[0]["component"] != "tracing" || !strings.Contains(warns[0]["msg"].(string), "otel") {
		t.Fatalf("tracing WARNs: %v", warns)
	}
	if strings.Contains(n.logs.String(), "hunter2") {
		t.Fatal("tracing endpoint credentials logged")
	}
}

// Startup audits config.load first (file, env var and flag names, never
// values: 08-config §2, 04-security §9), then server.start once the node
// serves; shutdown audits server.stop.
func TestAudit_ConfigLoadIsTheFirstRecordThenServerStartAndStop(t *testing.T) {
	c := obsConfig(t)
	info := &config.LoadInfo{File: "/etc/tokmesh-server/config.yaml", EnvVars: []string{"TOKMESH_STORAGE__WAL__SYNC_MODE"},
		Flags: []string{"--config", "--set session.quota.max_per_user"}}
	n := startObsNode(t, c, Options{LoadInfo: info, ConfigFile: info.File})
	nodeID := n.srv.Engine().Node().NodeID
	n.http(true, "POST", "/admin/v1/keys", `{"role":"validator"}`) // an admin write after startup
	if err := n.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(c.Storage.DataDir, datadir.AuditDir)
	recs := readAudit(t, dir)
	if len(recs) < 4 {
		t.Fatalf("%d audit records", len(recs))
	}
	first := recs[0]
	if first.Seq != 1 || first.Action != "config.load" || first.Resource != info.File || first.Actor != audit.ActorSystem ||
		first.Result != audit.ResultSuccess || first.NodeID != nodeID {
		t.Fatalf("first record: %+v", first)
	}
	if got, _ := json.Marshal(first.Details); string(got) != `{"env":["TOKMESH_STORAGE__WAL__SYNC_MODE"],"flags":["--config","--set session.quota.max_per_user"]}` {
		t.Fatalf("config.load details %s", got)
	}
	if recs[1].Action != "server.start" || recs[1].Resource != nodeID || recs[1].Details["mode"] != "standalone" || recs[1].Details["version"] == "" {
		t.Fatalf("second record: %+v", recs[1])
	}
	// The key the caller created after startup (attempt + outcome) sits in
	// between; server.stop is last.
	last := recs[len(recs)-1]
	if last.Action != "server.stop" || last.Resource != nodeID {
		t.Fatalf("last record: %+v", last)
	}
	if res, err := audit.Verify(dir); err != nil || !res.OK {
		t.Fatalf("chain: %+v %v", res, err)
	}

	// Without LoadInfo (an embedded node): the file it was told, and empty
	// lists rather than nothing.
	c2 := obsConfig(t)
	n2 := startObsNode(t, c2, Options{})
	n2.srv.Close()
	recs = readAudit(t, filepath.Join(c2.Storage.DataDir, datadir.AuditDir))
	if got, _ := json.Marshal(recs[0].Details); recs[0].Action != "config.load" || string(got) != `{"env":[],"flags":[]}` {
		t.Fatalf("embedded config.load: %+v %s", recs[0], got)
	}
}

func readAudit(t *testing.T, dir string) []audit.Record {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	var out []audit.Record
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(b), []byte{'\n'}) {
			var w struct {
				Seq      uint64         `json:"seq"`
				NodeID   string         `json:"node_id"`
				Actor    string         `json:"actor"`
				Action   string         `json:"action"`
				Resource string         `json:"resource"`
				Result   string         `json:"result"`
				Details  map[string]any `json:"details"`
			}
			if err := json.Unmarshal(line, &w); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
			out = append(out, audit.Record{Seq: w.Seq, NodeID: w.NodeID, Actor: w.Actor, Action: w.Action,
				Resource: w.Resource, Result: w.Result, Details: w.Details})
		}
	}
	return out
}
