package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoad(t *testing.T, opts LoadOptions) (*Config, LoadInfo) {
	t.Helper()
	if opts.Environ == nil {
		opts.Environ = []string{}
	}
	c, info, errs := Load(opts)
	if len(errs) != 0 {
		t.Fatalf("Load: %v", errs)
	}
	return c, info
}

func loadErrs(t *testing.T, opts LoadOptions) []*Error {
	t.Helper()
	if opts.Environ == nil {
		opts.Environ = []string{}
	}
	_, _, errs := Load(opts)
	return errs
}

func TestLoad_NoSourcesGivesDefaults(t *testing.T) {
	c, info := mustLoad(t, LoadOptions{})
	if !reflect.DeepEqual(c, Default()) {
		t.Fatal("Load without sources differs from Default()")
	}
	if info.File != "" || len(info.EnvVars) != 0 || len(info.Flags) != 0 || len(info.Warnings) != 0 {
		t.Fatalf("info = %+v", info)
	}
}

func TestDefaultYAML_RoundTrip(t *testing.T) {
	p := writeConfig(t, string(DefaultYAML()))
	c, info := mustLoad(t, LoadOptions{ConfigFile: p})
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("default YAML does not load back to Default(): changed %v", Changed(c, Default()))
	}
	if info.File != p || !slices.Equal(info.Flags, []string{"--config"}) {
		t.Fatalf("info = %+v", info)
	}
	// Every key appears in the output with its env name.
	out := string(DefaultYAML())
	for _, k := range Keys() {
		if !strings.Contains(out, "Env: "+k.Env+"\n") {
			t.Errorf("DefaultYAML lacks %s", k.Env)
		}
	}
}

func TestYAML_RoundTripNonDefault(t *testing.T) {
	c := Default()
	c.Server.Local.SocketPath = "/run/tokmesh's.sock"
	c.Server.TLS.MinVersion = "1.3"
	c.Storage.DataDir = `C:\ProgramData\TokMesh\data`
	c.Storage.WAL.SegmentSize = 1536 * KiB
	c.Session.TTL.Default = 90 * time.Minute
	c.Security.Auth.AllowList = []string{"10.0.0.0/8", "::1", "#not-a-comment"}
	c.Security.Network.TrustedProxies = []string{"[weird]", "a: b"}
	c.Cluster.NodeID = "tmnd-123"
	c.Cluster.Rebalance.MaxRate = 1500 * BitPerSecond
	c.Cluster.Raft.SnapshotThreshold = 123456
	c.Telemetry.Tracing.SamplingRatio = 1.0 / 3
	c.Telemetry.Tracing.Endpoint = "true"
	for _, o := range []GenerateOptions{{Comments: true}, {}} {
		p := writeConfig(t, string(c.YAML(o)))
		// Validation errors are expected (the lists hold bad CIDRs); only
		// the values matter here.
		loaded, _, _ := Load(LoadOptions{ConfigFile: p, Environ: []string{}})
		if !reflect.DeepEqual(loaded, c) {
			t.Fatalf("comments=%v: round trip changed %v\n%s", o.Comments, Changed(loaded, c), c.YAML(o))
		}
	}
}

func TestLoad_Precedence(t *testing.T) {
	file := writeConfig(t, `
server:
  http:
    address: "127.0.0.1:1001"
  resp:
    address: "127.0.0.1:2001"
storage:
  data_dir: /from/file
session:
  ttl:
    default: 1h
`)
	env := []string{
		"TOKMESH_SERVER__HTTP__ADDRESS=127.0.0.1:1002",
		"TOKMESH_SERVER__RESP__ADDRESS=127.0.0.1:2002",
		"TOKMESH_SESSION__TTL__MAX=48h",
	}
	flags := []FlagValue{
		{Flag: "--set", Key: "server.http.address", Value: "127.0.0.1:1003"},
		{Flag: "--log-level", Key: "telemetry.logging.level", Value: "debug"},
	}
	c, info := mustLoad(t, LoadOptions{ConfigFile: file, Environ: env, Flags: flags})
	checks := map[string]string{
		"server.http.address":     "127.0.0.1:1003", // flag > env > file
		"server.resp.address":     "127.0.0.1:2002", // env > file
		"storage.data_dir":        "/from/file",     // file > default
		"session.ttl.default":     "1h",             // file
		"session.ttl.max":         "48h",            // env > default
		"telemetry.logging.level": "debug",          // flag
		"storage.wal.sync_mode":   "interval",       // default
	}
	for k, want := range checks {
		if got, _ := c.Lookup(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !slices.Equal(info.EnvVars, []string{"TOKMESH_SERVER__HTTP__ADDRESS", "TOKMESH_SERVER__RESP__ADDRESS", "TOKMESH_SESSION__TTL__MAX"}) {
		t.Errorf("EnvVars = %v", info.EnvVars)
	}
	if !slices.Equal(info.Flags, []string{"--config", "--set server.http.address", "--log-level"}) {
		t.Errorf("Flags = %v", info.Flags)
	}
	// Info never carries values.
	all := strings.Join(append(append(append([]string{info.File}, info.EnvVars...), info.Flags...), info.Warnings...), " ")
	for _, v := range []string{"1002", "1003", "48h", "debug"} {
		if strings.Contains(all, v) {
			t.Errorf("LoadInfo contains value %q: %s", v, all)
		}
	}
}

func TestLoad_LaterFlagWins(t *testing.T) {
	c, _ := mustLoad(t, LoadOptions{Flags: []FlagValue{
		{Flag: "--set", Key: "storage.data_dir", Value: "/a"},
		{Flag: "--data-dir", Key: "storage.data_dir", Value: "/b"},
	}})
	if c.Storage.DataDir != "/b" {
		t.Fatalf("data_dir = %q", c.Storage.DataDir)
	}
}

func TestLoad_EnvMapping(t *testing.T) {
	env := []string{
		"TOKMESH_SERVER__HTTP__ADDRESS=127.0.0.1:9080",
		"TOKMESH_CLUSTER__ADVERTISE_ADDRESS=10.0.0.1:5343",
		"TOKMESH_STORAGE__WAL__SYNC_MODE=always",
		"TOKMESH_SECURITY__AUTH__ALLOW_LIST=10.0.0.0/8, 192.168.0.0/16",
		"TOKMESH_SECURITY__BRUTE_FORCE__EXEMPT=",
		"TOKMESH_SERVER__LIMITS__MAX_BODY_SIZE=128KiB",
		"TOKMESH_CLUSTER__REBALANCE__MAX_RATE=1Gbps",
		"TOKMESH_CLUSTER__RAFT__TRAILING_LOGS=5000",
		"TOKMESH_TELEMETRY__TRACING__SAMPLING_RATIO=0.5",
		"TOKMESH_SERVER__ALLOW_INSECURE_PUBLIC=TRUE",
		"TOKMESH_SECURITY__ENCRYPTION__KEY_FILE=",
	}
	c, _ := mustLoad(t, LoadOptions{Environ: env})
	if c.Server.HTTP.Address != "127.0.0.1:9080" || c.Cluster.AdvertiseAddress != "10.0.0.1:5343" ||
		c.Storage.WAL.SyncMode != "always" || c.Server.Limits.MaxBodySize != 128*KiB ||
		c.Cluster.Rebalance.MaxRate != GbitPerSecond || c.Cluster.Raft.TrailingLogs != 5000 ||
		c.Telemetry.Tracing.SamplingRatio != 0.5 || !c.Server.AllowInsecurePublic {
		t.Fatalf("env not applied: %+v", c)
	}
	if !slices.Equal(c.Security.Auth.AllowList, []string{"10.0.0.0/8", "192.168.0.0/16"}) {
		t.Fatalf("allow_list = %q", c.Security.Auth.AllowList)
	}
	if c.Security.BruteForce.Exempt != nil {
		t.Fatalf("exempt = %q", c.Security.BruteForce.Exempt)
	}
}

func TestLoad_EnvSeedsWithClusterDisabled(t *testing.T) {
	errs := loadErrs(t, LoadOptions{Environ: []string{"TOKMESH_CLUSTER__SEEDS=10.0.0.1:5343,10.0.0.2:5343"}})
	if len(errs) != 1 || errs[0].Code != CodeConflict || errs[0].Key != "cluster.seeds" || errs[0].Source != "TOKMESH_CLUSTER__SEEDS" {
		t.Fatalf("errs = %v", errs)
	}
	if errs[0].Value != "10.0.0.1:5343,10.0.0.2:5343" {
		t.Fatalf("value = %q", errs[0].Value)
	}
}

func TestLoad_UnknownEnvWarnsByName(t *testing.T) {
	env := []string{
		"TOKMESH_SERVER__HTTP__ADRESS=secret-looking-value",
		"TOKMESH_SERVER_HTTP_ADDRESS=x",             // single underscores: not a key
		"TOKMESH_SERVER__HTTP=x",                    // a section, not a key
		"TOKMESH_server__http__address=127.0.0.1:1", // keys are upper case
		"TOKMESH_CONFIG=",
		"TOKMESH_TARGET=http://127.0.0.1:5080",
		"TOKMESH_API_KEY=tmak-x:tmas_y",
		"TOKMESH_OUTPUT=json",
		"TOKMESH_TIMEOUT=5s",
		"TOKMESH_CLI_CONFIG=/x",
		"OTHER_VAR=1",
	}
	c, info := mustLoad(t, LoadOptions{Environ: env})
	if c.Server.HTTP.Address != "127.0.0.1:5080" {
		t.Fatal("lower-case env applied")
	}
	if len(info.Warnings) != 4 {
		t.Fatalf("warnings = %q", info.Warnings)
	}
	for _, w := range info.Warnings {
		if strings.Contains(w, "secret-looking-value") || strings.Contains(w, "127.0.0.1:1") {
			t.Fatalf("warning carries a value: %q", w)
		}
	}
	if len(info.EnvVars) != 0 {
		t.Fatalf("EnvVars = %v", info.EnvVars)
	}
}

func TestLoad_EncryptionKeyEnvNamedNotValued(t *testing.T) {
	_, info := mustLoad(t, LoadOptions{Environ: []string{"TOKMESH_ENCRYPTION_KEY=" + testKeyHex}})
	if !slices.Equal(info.EnvVars, []string{"TOKMESH_ENCRYPTION_KEY"}) || len(info.Warnings) != 0 {
		t.Fatalf("info = %+v", info)
	}
}

func TestLoad_ParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		env      []string
		flags    []FlagValue
		want     []want
		wantSrc  string
		wantLine string
	}{
		{name: "unknown key in file", file: "server:\n  htp:\n    address: x\n", want: []want{{CodeInvalidValue, "server.htp"}}, wantLine: "line 2"},
		{name: "unknown top-level key", file: "servers: {}\n", want: []want{{CodeInvalidValue, "servers"}}},
		{name: "keys are case-sensitive", file: "Server: {}\n", want: []want{{CodeInvalidValue, "Server"}}},
		{name: "section given a scalar", file: "server: 5\n", want: []want{{CodeInvalidValue, "server"}}},
		{name: "leaf given a mapping", file: "storage:\n  data_dir: {a: b}\n", want: []want{{CodeInvalidValue, "storage.data_dir"}}},
		{name: "bool given a list", file: "server:\n  http:\n    enabled: [true]\n", want: []want{{CodeInvalidValue, "server.http.enabled"}}},
		{name: "bad bool", file: "server:\n  http:\n    enabled: yes\n", want: []want{{CodeInvalidValue, "server.http.enabled"}}},
		{name: "bad duration", file: "session:\n  ttl:\n    max: 30\n", want: []want{{CodeInvalidValue, "session.ttl.max"}}},
		{name: "bad size", file: "storage:\n  wal:\n    segment_size: 64MB\n", want: []want{{CodeInvalidValue, "storage.wal.segment_size"}}},
		{name: "bad rate", file: "cluster:\n  rebalance:\n    max_rate: 20\n", want: []want{{CodeInvalidValue, "cluster.rebalance.max_rate"}}},
		{name: "bad int", file: "cluster:\n  partitions: many\n", want: []want{{CodeInvalidValue, "cluster.partitions"}}},
		{name: "float for int", file: "cluster:\n  partitions: 2.5\n", want: []want{{CodeInvalidValue, "cluster.partitions"}}},
		{name: "huge int", file: "cluster:\n  partitions: 99999999999999999999\n", want: []want{{CodeOutOfRange, "cluster.partitions"}}},
		{name: "negative uint", file: "cluster:\n  raft:\n    trailing_logs: -1\n", want: []want{{CodeOutOfRange, "cluster.raft.trailing_logs"}}},
		{name: "out of range int", file: "cluster:\n  partitions: 4\n", want: []want{{CodeOutOfRange, "cluster.partitions"}}},
		{name: "null for int", file: "cluster:\n  partitions:\n", want: []want{{CodeInvalidValue, "cluster.partitions"}}},
		{name: "list element not scalar", file: "cluster:\n  seeds: [[a]]\n", want: []want{{CodeInvalidValue, "cluster.seeds"}}},
		{name: "duplicate key", file: "storage:\n  data_dir: /a\n  data_dir: /b\n", want: []want{{CodeInvalidValue, "storage.data_dir"}}},
		{name: "empty key", file: "\"\": {server: {}}\n", want: []want{{CodeInvalidValue, ""}}},
		{name: "invalid YAML", file: "server: [\n", want: []want{{CodeInvalidValue, ""}}},
		{name: "document not a mapping", file: "- a\n- b\n", want: []want{{CodeInvalidValue, ""}}},
		{name: "several file errors", file: "foo: 1\nbar: 2\nsession:\n  ttl:\n    max: x\n", want: []want{{CodeInvalidValue, "bar"}, {CodeInvalidValue, "foo"}, {CodeInvalidValue, "session.ttl.max"}}},
		{name: "bad env duration", env: []string{"TOKMESH_SERVER__TIMEOUTS__READ=30"}, want: []want{{CodeInvalidValue, "server.timeouts.read"}}, wantSrc: "TOKMESH_SERVER__TIMEOUTS__READ"},
		{name: "empty env bool", env: []string{"TOKMESH_CLUSTER__ENABLED="}, want: []want{{CodeInvalidValue, "cluster.enabled"}}},
		{name: "env out of range", env: []string{"TOKMESH_SESSION__TTL__MAX=9000h"}, want: []want{{CodeOutOfRange, "session.ttl.max"}}, wantSrc: "TOKMESH_SESSION__TTL__MAX"},
		{name: "plaintext env bind", env: []string{"TOKMESH_SERVER__HTTP__ADDRESS=0.0.0.0:5080"}, want: []want{{CodeConflict, "server.http.address"}}, wantSrc: "TOKMESH_SERVER__HTTP__ADDRESS"},
		{name: "unknown --set key", flags: []FlagValue{{Flag: "--set", Key: "server.http.adress", Value: "x"}}, want: []want{{CodeInvalidValue, "server.http.adress"}}, wantSrc: "--set"},
		{name: "bad --set value", flags: []FlagValue{{Flag: "--set", Key: "storage.snapshot.retain", Value: "two"}}, want: []want{{CodeInvalidValue, "storage.snapshot.retain"}}, wantSrc: "--set"},
		{name: "bad shortcut value", flags: []FlagValue{{Flag: "--log-level", Key: "telemetry.logging.level", Value: "loud"}}, want: []want{{CodeOutOfRange, "telemetry.logging.level"}}, wantSrc: "--log-level"},
		{name: "file error keeps other sources", file: "nope: 1\n", env: []string{"TOKMESH_SESSION__TTL__DEFAULT=1000h"}, want: []want{{CodeInvalidValue, "nope"}, {CodeConflict, "session.ttl.default"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := LoadOptions{Environ: tt.env, Flags: tt.flags}
			if tt.file != "" {
				opts.ConfigFile = writeConfig(t, tt.file)
			}
			errs := loadErrs(t, opts)
			got := errSet(errs)
			w := append([]want(nil), tt.want...)
			slices.SortFunc(w, func(a, b want) int { return strings.Compare(a.code+a.key, b.code+b.key) })
			if !slices.Equal(got, w) {
				t.Fatalf("errors = %v, want %v\n%v", got, w, errs)
			}
			if tt.wantSrc != "" && errs[0].Source != tt.wantSrc {
				t.Errorf("source = %q, want %q", errs[0].Source, tt.wantSrc)
			}
			if tt.wantLine != "" && !strings.Contains(errs[0].Error(), tt.wantLine) {
				t.Errorf("error %q lacks %q", errs[0], tt.wantLine)
			}
		})
	}
}

func TestLoad_Lists(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want []string
	}{
		{"seeds: [\"10.0.0.1:5343\", 10.0.0.2:5343]", []string{"10.0.0.1:5343", "10.0.0.2:5343"}},
		{"seeds:\n    - 10.0.0.1:5343\n    - 10.0.0.2:5343", []string{"10.0.0.1:5343", "10.0.0.2:5343"}},
		{"seeds: 10.0.0.1:5343,10.0.0.2:5343", []string{"10.0.0.1:5343", "10.0.0.2:5343"}},
		{"seeds: []", nil},
		{"seeds:", nil},
		{"seeds: \"\"", nil},
	} {
		file := writeConfig(t, "cluster:\n  enabled: false\n  "+tt.yaml+"\n")
		c, _, _ := Load(LoadOptions{ConfigFile: file, Environ: []string{}})
		if !slices.Equal(c.Cluster.Seeds, tt.want) {
			t.Errorf("%q: seeds = %q, want %q", tt.yaml, c.Cluster.Seeds, tt.want)
		}
	}
}

func TestLoad_EmptyAndNullDocuments(t *testing.T) {
	for _, doc := range []string{"", "# only comments\n", "~\n", "server:\n", "server:\n  http:\n"} {
		c, _ := mustLoad(t, LoadOptions{ConfigFile: writeConfig(t, doc)})
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("%q: not defaults", doc)
		}
	}
}

func TestLoad_AnchorsAndAliases(t *testing.T) {
	c, _ := mustLoad(t, LoadOptions{ConfigFile: writeConfig(t, "session:\n  ttl:\n    default: &d 1h\n    idle_default: *d\n")})
	if c.Session.TTL.IdleDefault != time.Hour {
		t.Fatalf("alias not resolved: %v", c.Session.TTL.IdleDefault)
	}
}

func TestLoad_ConfigFileSources(t *testing.T) {
	a := writeConfig(t, "storage:\n  data_dir: /from/a\n")
	b := writeConfig(t, "storage:\n  data_dir: /from/b\n")
	missing := filepath.Join(t.TempDir(), "nope.yaml")

	c, info := mustLoad(t, LoadOptions{Environ: []string{"TOKMESH_CONFIG=" + a}})
	if c.Storage.DataDir != "/from/a" || info.File != a || !slices.Equal(info.EnvVars, []string{"TOKMESH_CONFIG"}) || len(info.Flags) != 0 {
		t.Fatalf("TOKMESH_CONFIG: %q %+v", c.Storage.DataDir, info)
	}
	c, info = mustLoad(t, LoadOptions{ConfigFile: b, Environ: []string{"TOKMESH_CONFIG=" + a}})
	if c.Storage.DataDir != "/from/b" || info.File != b {
		t.Fatalf("--config must win over TOKMESH_CONFIG: %q", c.Storage.DataDir)
	}

	errs := loadErrs(t, LoadOptions{ConfigFile: missing})
	if len(errs) != 1 || errs[0].Code != CodeFileUnreadable || errs[0].Key != "--config" || errs[0].Value != missing {
		t.Fatalf("missing --config: %v", errs)
	}
	errs = loadErrs(t, LoadOptions{Environ: []string{"TOKMESH_CONFIG=" + missing}})
	if len(errs) != 1 || errs[0].Code != CodeFileUnreadable || errs[0].Key != "TOKMESH_CONFIG" {
		t.Fatalf("missing TOKMESH_CONFIG: %v", errs)
	}
	// A directory is not a readable file either.
	errs = loadErrs(t, LoadOptions{ConfigFile: t.TempDir()})
	if len(errs) != 1 || errs[0].Code != CodeFileUnreadable {
		t.Fatalf("directory: %v", errs)
	}
}

func TestLoad_ValidationErrorsNameTheirSource(t *testing.T) {
	file := writeConfig(t, "server:\n  shutdown:\n    grace_period: 40s\n")
	errs := loadErrs(t, LoadOptions{ConfigFile: file})
	if len(errs) != 1 || errs[0].Source != file || errs[0].Code != CodeConflict {
		t.Fatalf("errs = %v", errs)
	}
}

func TestParseSet(t *testing.T) {
	fv, err := ParseSet("security.auth.allow_list=10.0.0.0/8,::1")
	if err != nil || fv.Key != "security.auth.allow_list" || fv.Value != "10.0.0.0/8,::1" || fv.Flag != "--set" {
		t.Fatalf("ParseSet = %+v, %v", fv, err)
	}
	fv, err = ParseSet("a.b=x=y")
	if err != nil || fv.Value != "x=y" {
		t.Fatalf("ParseSet = %+v, %v", fv, err)
	}
	fv, err = ParseSet("storage.data_dir=")
	if err != nil || fv.Value != "" {
		t.Fatalf("ParseSet empty = %+v, %v", fv, err)
	}
	for _, bad := range []string{"novalue", "=x", ""} {
		if _, err := ParseSet(bad); err == nil {
			t.Errorf("ParseSet(%q) accepted", bad)
		}
	}
}

func TestShortcuts_NameKeys(t *testing.T) {
	want := map[string]string{"data-dir": "storage.data_dir", "log-level": "telemetry.logging.level", "http-address": "server.http.address", "resp-address": "server.resp.address", "node-id": "cluster.node_id"}
	if len(Shortcuts) != len(want) {
		t.Fatalf("Shortcuts = %v", Shortcuts)
	}
	for _, s := range Shortcuts {
		if want[s.Flag] != s.Key {
			t.Errorf("shortcut --%s -> %s", s.Flag, s.Key)
		}
		if _, ok := schema().byKey[s.Key]; !ok {
			t.Errorf("shortcut key %s unknown", s.Key)
		}
	}
}

func TestFromYAML(t *testing.T) {
	c, errs := FromYAML([]byte("session:\n  ttl:\n    max: 1h\n"))
	if len(errs) != 1 || errs[0].Code != CodeConflict || errs[0].Key != "session.ttl.default" {
		t.Fatalf("errs = %v", errs)
	}
	if c.Session.TTL.Max != time.Hour {
		t.Fatal("value not applied")
	}
	if _, errs := FromYAML(DefaultYAML()); len(errs) != 0 {
		t.Fatalf("default: %v", errs)
	}
}

func TestLoad_UnknownKeySuggests(t *testing.T) {
	errs := loadErrs(t, LoadOptions{Flags: []FlagValue{{Flag: "--set", Key: "server.http.adress", Value: "x"}}})
	if len(errs) != 1 || !strings.Contains(errs[0].Expected, "did you mean server.http.address?") {
		t.Fatalf("errs = %v", errs)
	}
	_, info := mustLoad(t, LoadOptions{Environ: []string{"TOKMESH_STORAGE__WAL__SYNCMODE=always"}})
	if len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], "TOKMESH_STORAGE__WAL__SYNC_MODE") {
		t.Fatalf("warnings = %q", info.Warnings)
	}
}
