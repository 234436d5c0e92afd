package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// specKeys is the key table of 08-config §3: key -> default as written
// there (lists as "", strings without quotes), and H/C flags.
var specKeys = map[string]struct{ def, flags string }{
	"server.http.enabled":                     {"true", ""},
	"server.http.address":                     {"127.0.0.1:5080", ""},
	"server.https.enabled":                    {"true", ""},
	"server.https.address":                    {"127.0.0.1:5443", ""},
	"server.resp.enabled":                     {"true", ""},
	"server.resp.address":                     {"127.0.0.1:6379", ""},
	"server.resp_tls.enabled":                 {"true", ""},
	"server.resp_tls.address":                 {"127.0.0.1:6380", ""},
	"server.tls.cert_file":                    {"", "H"},
	"server.tls.key_file":                     {"", "H"},
	"server.tls.client_ca_file":               {"", "H"},
	"server.tls.client_auth":                  {"none", ""},
	"server.tls.min_version":                  {"1.2", ""},
	"server.local.enabled":                    {"true", ""},
	"server.local.socket_path":                {"", ""},
	"server.local.pipe_name":                  {`\\.\pipe\tokmesh-server`, ""},
	"server.allow_insecure_public":            {"false", ""},
	"server.limits.max_body_size":             {"64KiB", ""},
	"server.limits.max_upload_size":           {"100MiB", ""},
	"server.limits.max_resp_connections":      {"10000", ""},
	"server.timeouts.read_header":             {"5s", ""},
	"server.timeouts.read":                    {"30s", ""},
	"server.timeouts.write":                   {"30s", ""},
	"server.timeouts.idle":                    {"120s", ""},
	"server.shutdown.grace_period":            {"5s", ""},
	"server.shutdown.timeout":                 {"30s", ""},
	"storage.data_dir":                        {"./data", ""},
	"storage.wal.sync_mode":                   {"interval", ""},
	"storage.wal.sync_interval":               {"100ms", ""},
	"storage.wal.sync_revocations":            {"true", ""},
	"storage.wal.segment_size":                {"64MiB", ""},
	"storage.snapshot.interval":               {"1h", "H"},
	"storage.snapshot.wal_threshold":          {"256MiB", "H"},
	"storage.snapshot.retain":                 {"2", ""},
	"storage.backup.retention_days":           {"7", "H"},
	"storage.backup.retain_min":               {"5", "H"},
	"session.ttl.default":                     {"2h", "HC"},
	"session.ttl.max":                         {"720h", "HC"},
	"session.ttl.expired_grace":               {"10s", ""},
	"session.ttl.idle_default":                {"0s", "HC"},
	"session.quota.max_per_user":              {"50", "HC"},
	"session.quota.on_exceed":                 {"reject", "HC"},
	"session.sweeper.interval":                {"100ms", ""},
	"session.sweeper.sample_size":             {"20", ""},
	"session.sweeper.max_rounds":              {"4", ""},
	"security.encryption.key_file":            {"", ""},
	"security.encryption.cipher":              {"auto", ""},
	"security.auth.allow_list":                {"", "H"},
	"security.auth.default_rate_limit":        {"1000", ""},
	"security.auth.rotation_grace":            {"1h", "H"},
	"security.auth.cache_capacity":            {"10000", ""},
	"security.auth.cache_ttl":                 {"60s", ""},
	"security.auth.argon2.memory":             {"16384", ""},
	"security.auth.argon2.iterations":         {"2", ""},
	"security.auth.argon2.parallelism":        {"2", ""},
	"security.network.trusted_proxies":        {"", "H"},
	"security.brute_force.enabled":            {"true", "H"},
	"security.brute_force.window":             {"60s", "H"},
	"security.brute_force.max_auth_failures":  {"20", "H"},
	"security.brute_force.max_token_failures": {"100", "H"},
	"security.brute_force.block_duration":     {"5m", "H"},
	"security.brute_force.exempt":             {"", "H"},
	"security.anti_replay.required":           {"false", "H"},
	"security.anti_replay.timestamp_window":   {"30s", "H"},
	"security.anti_replay.nonce_ttl":          {"60s", "H"},
	"security.anti_replay.nonce_cache_size":   {"100000", ""},
	"cluster.enabled":                         {"false", ""},
	"cluster.node_id":                         {"", ""},
	"cluster.listen_address":                  {"127.0.0.1:5343", ""},
	"cluster.advertise_address":               {"", ""},
	"cluster.seeds":                           {"", ""},
	"cluster.bootstrap_expect":                {"3", ""},
	"cluster.partitions":                      {"256", ""},
	"cluster.replication_factor":              {"2", ""},
	"cluster.voters":                          {"3", ""},
	"cluster.lease_duration":                  {"5s", ""},
	"cluster.failover_confirm":                {"1s", ""},
	"cluster.forward_timeout":                 {"2s", ""},
	"cluster.join_timeout":                    {"5m", ""},
	"cluster.tls.cert_file":                   {"", "H"},
	"cluster.tls.key_file":                    {"", "H"},
	"cluster.tls.ca_file":                     {"", "H"},
	"cluster.gossip.probe_interval":           {"500ms", ""},
	"cluster.replication.ack_timeout":         {"1s", ""},
	"cluster.rebalance.auto":                  {"true", ""},
	"cluster.rebalance.max_rate":              {"20Mbps", ""},
	"cluster.rebalance.concurrency":           {"2", ""},
	"cluster.rebalance.min_ttl":               {"0s", ""},
	"cluster.raft.snapshot_threshold":         {"10000", ""},
	"cluster.raft.trailing_logs":              {"1000", ""},
	"cluster.shutdown.handoff_timeout":        {"10s", ""},
	"telemetry.logging.level":                 {"info", "H"},
	"telemetry.logging.dump_config":           {"false", ""},
	"telemetry.metrics.enabled":               {"true", ""},
	"telemetry.metrics.auth_enabled":          {"true", "H"},
	"telemetry.tracing.enabled":               {"false", ""},
	"telemetry.tracing.endpoint":              {"", ""},
	"telemetry.tracing.sampling_ratio":        {"0.01", ""},
	"telemetry.audit.retention_days":          {"90", "H"},
	"telemetry.audit.buffer_size":             {"10000", ""},
}

func TestKeys_MatchSpecTable(t *testing.T) {
	got := map[string]KeyInfo{}
	for _, k := range Keys() {
		got[k.Key] = k
	}
	for key, want := range specKeys {
		k, ok := got[key]
		if !ok {
			t.Errorf("spec key %s missing from Config", key)
			continue
		}
		if k.Default != want.def {
			t.Errorf("%s default tag = %q, spec says %q", key, k.Default, want.def)
		}
		if k.Hot != strings.Contains(want.flags, "H") || k.ClusterWide != strings.Contains(want.flags, "C") {
			t.Errorf("%s flags H=%v C=%v, spec says %q", key, k.Hot, k.ClusterWide, want.flags)
		}
		if k.Description == "" {
			t.Errorf("%s has no doc comment", key)
		}
		if k.Env != "TOKMESH_"+strings.ToUpper(strings.ReplaceAll(key, ".", "__")) {
			t.Errorf("%s env = %s", key, k.Env)
		}
	}
	for key := range got {
		if _, ok := specKeys[key]; !ok {
			t.Errorf("Config key %s is not in 08-config §3", key)
		}
	}
}

func TestSections_HaveDocs(t *testing.T) {
	for key, sec := range schema().sections {
		if key != "" && fieldDoc(sec.owner, sec.field) == "" {
			t.Errorf("section %s has no doc comment", key)
		}
	}
}

func TestDefault_IsValid(t *testing.T) {
	if errs := Default().ValidateWith(ValidateOptions{Environ: []string{}}); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
}

func TestDefault_TypedFields(t *testing.T) {
	c := Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"Server.HTTP.Address", c.Server.HTTP.Address, "127.0.0.1:5080"},
		{"Server.Timeouts.Idle", c.Server.Timeouts.Idle, 120 * time.Second},
		{"Server.Limits.MaxBodySize", c.Server.Limits.MaxBodySize, 64 * KiB},
		{"Server.Local.PipeName", c.Server.Local.PipeName, `\\.\pipe\tokmesh-server`},
		{"Storage.DataDir", c.Storage.DataDir, "./data"},
		{"Storage.WAL.SyncMode", c.Storage.WAL.SyncMode, SyncModeInterval},
		{"Storage.WAL.SyncInterval", c.Storage.WAL.SyncInterval, 100 * time.Millisecond},
		{"Storage.WAL.SegmentSize", c.Storage.WAL.SegmentSize, 64 * MiB},
		{"Session.TTL.Default", c.Session.TTL.Default, 2 * time.Hour},
		{"Session.TTL.Max", c.Session.TTL.Max, 720 * time.Hour},
		{"Session.Quota.OnExceed", c.Session.Quota.OnExceed, OnExceedReject},
		{"Security.Encryption.Cipher", c.Security.Encryption.Cipher, "auto"},
		{"Security.Auth.Argon2.Memory", c.Security.Auth.Argon2.Memory, 16384},
		{"Cluster.Partitions", c.Cluster.Partitions, 256},
		{"Cluster.Rebalance.MaxRate", c.Cluster.Rebalance.MaxRate, 20 * MbitPerSecond},
		{"Cluster.Raft.SnapshotThreshold", c.Cluster.Raft.SnapshotThreshold, uint64(10000)},
		{"Telemetry.Tracing.SamplingRatio", c.Telemetry.Tracing.SamplingRatio, 0.01},
		{"Security.Auth.AllowList", c.Security.Auth.AllowList, []string(nil)},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
	if c.SocketPath() != "data/admin.sock" {
		t.Errorf("SocketPath = %q", c.SocketPath())
	}
	if c.Server.HTTPSActive() || c.Server.RESPTLSActive() {
		t.Error("TLS listeners active without TLS material")
	}
	if c.Telemetry.Logging.SlogLevel().String() != "INFO" {
		t.Errorf("SlogLevel = %v", c.Telemetry.Logging.SlogLevel())
	}
}

func TestLookupSetChanged(t *testing.T) {
	a := Default()
	b := a.Clone()
	if got := Changed(a, b); len(got) != 0 {
		t.Fatalf("Changed on clone = %v", got)
	}
	if err := b.Set("session.ttl.default", "1h"); err != nil {
		t.Fatal(err)
	}
	if err := b.Set("security.auth.allow_list", "10.0.0.0/8, 192.168.1.1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Set("storage.wal.sync_mode", "always"); err != nil {
		t.Fatal(err)
	}
	if err := b.Set("nope.key", "1"); err == nil || err.Code != CodeInvalidValue {
		t.Fatalf("Set unknown = %v", err)
	}
	if err := b.Set("session.ttl.max", "forever"); err == nil || err.Code != CodeInvalidValue {
		t.Fatalf("Set bad duration = %v", err)
	}
	want := []string{"security.auth.allow_list", "session.ttl.default", "storage.wal.sync_mode"}
	if got := Changed(a, b); !slices.Equal(got, want) {
		t.Fatalf("Changed = %v, want %v", got, want)
	}
	if v, _ := b.Lookup("security.auth.allow_list"); v != "10.0.0.0/8,192.168.1.1" {
		t.Fatalf("Lookup list = %q", v)
	}
	if _, ok := b.Lookup("nope"); ok {
		t.Fatal("Lookup unknown ok")
	}
	if !IsHot("session.ttl.default") || IsHot("storage.wal.sync_mode") || !IsClusterWide("session.quota.max_per_user") || IsClusterWide("nope") {
		t.Fatal("IsHot/IsClusterWide wrong")
	}
	// Clone is deep.
	b2 := b.Clone()
	b2.Security.Auth.AllowList[0] = "1.1.1.1"
	if b.Security.Auth.AllowList[0] != "10.0.0.0/8" {
		t.Fatal("Clone shares list storage")
	}
}

func TestTree(t *testing.T) {
	c := Default()
	tree := c.Tree()
	srv := tree["server"].(map[string]any)
	if srv["http"].(map[string]any)["address"] != "127.0.0.1:5080" || srv["timeouts"].(map[string]any)["idle"] != "2m" {
		t.Fatalf("server = %v", srv)
	}
	st := tree["storage"].(map[string]any)
	if st["wal"].(map[string]any)["segment_size"] != "64MiB" || st["snapshot"].(map[string]any)["retain"] != int64(2) {
		t.Fatalf("storage = %v", st)
	}
	cl := tree["cluster"].(map[string]any)
	if cl["enabled"] != false || cl["raft"].(map[string]any)["trailing_logs"] != uint64(1000) || !reflect.DeepEqual(cl["seeds"], []string{}) {
		t.Fatalf("cluster = %v", cl)
	}
	n := 0
	var count func(m map[string]any)
	count = func(m map[string]any) {
		for _, v := range m {
			if sub, ok := v.(map[string]any); ok {
				count(sub)
			} else {
				n++
			}
		}
	}
	count(tree)
	if n != len(Keys()) {
		t.Fatalf("tree has %d leaves, want %d", n, len(Keys()))
	}
}
