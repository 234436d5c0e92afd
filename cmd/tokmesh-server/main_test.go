package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/config"
)

// binary is the tokmesh-server built once for these tests; they run it as a
// real process.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tokmesh-server-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "tokmesh-server")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building tokmesh-server:", err)
		return 1
	}
	return m.Run()
}

type result struct {
	code           int
	stdout, stderr string
}

// runBinary runs tokmesh-server in dir with a clean TOKMESH_* environment
// plus env.
func runBinary(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKMESH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code, out.String(), errb.String()}
}

func TestVersion_PrintsBuildInfo(t *testing.T) {
	r := runBinary(t, t.TempDir(), nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "tokmesh-server ") || !strings.Contains(r.stdout, runtime.Version()) || !strings.Contains(r.stdout, "commit ") {
		t.Fatalf("version: %+v", r)
	}
}

func TestConfigDefault_LoadsBackAndValidates(t *testing.T) {
	dir := t.TempDir()
	r := runBinary(t, dir, nil, "config", "default")
	if r.code != 0 || !bytes.Equal([]byte(r.stdout), config.DefaultYAML()) {
		t.Fatalf("config default: code %d, stderr %q", r.code, r.stderr)
	}
	path := filepath.Join(dir, "default.yaml")
	if err := os.WriteFile(path, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, errs := config.Load(config.LoadOptions{ConfigFile: path, Environ: []string{}})
	if len(errs) != 0 || !reflect.DeepEqual(c, config.Default()) {
		t.Fatalf("default output does not load back: %v", errs)
	}
	r = runBinary(t, dir, nil, "config", "validate", "--config", path)
	if r.code != 0 || !strings.Contains(r.stdout, "configuration valid ("+path+")") {
		t.Fatalf("validate default: %+v", r)
	}
	r = runBinary(t, dir, []string{"TOKMESH_CONFIG=" + path}, "config", "validate")
	if r.code != 0 {
		t.Fatalf("validate via TOKMESH_CONFIG: %+v", r)
	}
}

func TestConfigValidate_BadFileListsAllErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	bad := `
server:
  http:
    address: "0.0.0.0:5080"
  shutdown:
    grace_period: 1m
storage:
  wal:
    sync_mode: sometimes
    segment_size: 64MB
session:
  ttl:
    default: 1000h
colour: blue
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runBinary(t, dir, nil, "config", "validate", "-c", path)
	if r.code != 78 {
		t.Fatalf("exit %d, want 78: %+v", r.code, r)
	}
	for _, want := range []string{
		"TM-CFG-1001 colour: unknown key",
		"TM-CFG-1001 storage.wal.segment_size:",
		"TM-CFG-1002 storage.wal.sync_mode:",
		"TM-CFG-1005 server.http.address:",
		"TM-CFG-1005 server.shutdown.grace_period:",
		"TM-CFG-1005 session.ttl.default:",
		"6 configuration error(s)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	// Each error line has the documented shape.
	line := regexp.MustCompile(`^TM-CFG-100[1-8] \S+: .+ \(.*expected .+\)$`)
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if strings.HasPrefix(l, "TM-CFG-") && !line.MatchString(l) {
			t.Errorf("malformed error line %q", l)
		}
	}
}

func TestConfigValidate_PlaintextPublicBindFromEnv(t *testing.T) {
	r := runBinary(t, t.TempDir(), []string{"TOKMESH_SERVER__HTTP__ADDRESS=0.0.0.0:5080"}, "config", "validate")
	if r.code != 78 || !strings.Contains(r.stdout, "TM-CFG-1005 server.http.address") || !strings.Contains(r.stdout, "TOKMESH_SERVER__HTTP__ADDRESS") {
		t.Fatalf("%+v", r)
	}
	// allow_insecure_public permits it, with a warning.
	r = runBinary(t, t.TempDir(), []string{"TOKMESH_SERVER__HTTP__ADDRESS=0.0.0.0:5080", "TOKMESH_SERVER__ALLOW_INSECURE_PUBLIC=true"}, "config", "validate")
	if r.code != 0 || !strings.Contains(r.stderr, "warning: server.http.address") {
		t.Fatalf("%+v", r)
	}
}

func TestConfigValidate_FlagsAndEnv(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"missing file", nil, []string{"--config", filepath.Join(dir, "nope.yaml")}, 78, "TM-CFG-1003 --config"},
		{"missing TOKMESH_CONFIG file", []string{"TOKMESH_CONFIG=" + filepath.Join(dir, "nope.yaml")}, nil, 78, "TM-CFG-1003 TOKMESH_CONFIG"},
		{"--set conflict", nil, []string{"--set", "session.ttl.default=1000h"}, 78, "TM-CFG-1005 session.ttl.default"},
		{"--set unknown key", nil, []string{"--set", "session.ttl.defualt=1h"}, 78, "did you mean session.ttl.default?"},
		{"flag beats env", []string{"TOKMESH_SERVER__HTTP__ADDRESS=0.0.0.0:5080"}, []string{"--http-address", "127.0.0.1:5080"}, 0, "configuration valid"},
		{"shortcuts", nil, []string{"--data-dir", dir, "--log-level", "debug", "--resp-address", "127.0.0.1:0", "--node-id", "tmnd-a1"}, 0, "configuration valid"},
		{"bad shortcut", nil, []string{"--node-id", "node1"}, 78, "TM-CFG-1002 cluster.node_id"},
		{"bad env duration", []string{"TOKMESH_STORAGE__WAL__SYNC_INTERVAL=10"}, nil, 78, "TM-CFG-1001 storage.wal.sync_interval"},
		{"env list", []string{"TOKMESH_CLUSTER__SEEDS=10.0.0.1:5343,10.0.0.2:5343"}, nil, 78, "TM-CFG-1005 cluster.seeds"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runBinary(t, dir, tt.env, append([]string{"config", "validate"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stdout, tt.want) {
				t.Fatalf("exit %d (want %d), stdout lacks %q: %+v", r.code, tt.code, tt.want, r)
			}
		})
	}
}

func TestConfigValidate_UnknownEnvWarnsByName(t *testing.T) {
	r := runBinary(t, t.TempDir(), []string{"TOKMESH_SERVER__HTTP__ADRESS=sekrit"}, "config", "validate")
	if r.code != 0 || !strings.Contains(r.stderr, "TOKMESH_SERVER__HTTP__ADRESS") || strings.Contains(r.stderr+r.stdout, "sekrit") {
		t.Fatalf("%+v", r)
	}
}

func TestRun_InvalidConfigExits78(t *testing.T) {
	r := runBinary(t, t.TempDir(), []string{"TOKMESH_SERVER__HTTP__ADDRESS=0.0.0.0:5080"})
	if r.code != 78 || !strings.Contains(r.stderr, "TM-CFG-1005") || !strings.Contains(r.stderr, "not starting") {
		t.Fatalf("%+v", r)
	}
}

func TestUsageErrorsExit64(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"--no-such-flag"},
		{"config"},
		{"config", "bogus"},
		{"config", "validate", "extra-arg"},
		{"--set", "no-equals-sign"},
		{"config", "validate", "--set", "=x"},
		{"keygen"},
		{"version", "extra"},
	} {
		r := runBinary(t, t.TempDir(), nil, args...)
		if r.code != 64 || !strings.Contains(r.stderr, "--help") {
			t.Errorf("%v: exit %d, want 64: %+v", args, r.code, r)
		}
	}
}

var hexKeyLine = regexp.MustCompile(`^[0-9a-f]{64}\n$`)

func TestKeygen_Writes0600AndRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	r := runBinary(t, dir, nil, "keygen", "--out", path)
	if r.code != 0 || !strings.Contains(r.stdout, "key id ") {
		t.Fatalf("keygen: %+v", r)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !hexKeyLine.Match(b) {
		t.Fatalf("key file content %q", b)
	}
	if strings.Contains(r.stdout+r.stderr, strings.TrimSpace(string(b))) {
		t.Fatal("keygen printed the key")
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %04o, want 0600", st.Mode().Perm())
		}
	}
	// The key is accepted by config validation as the key file.
	r = runBinary(t, dir, nil, "config", "validate", "--set", "security.encryption.key_file="+path)
	if r.code != 0 {
		t.Fatalf("validate with generated key: %+v", r)
	}
	// A second run refuses and leaves the file alone.
	r = runBinary(t, dir, nil, "keygen", "--out", path)
	if r.code != 1 || !strings.Contains(r.stderr, "refusing to overwrite") {
		t.Fatalf("second keygen: %+v", r)
	}
	b2, _ := os.ReadFile(path)
	if !bytes.Equal(b, b2) {
		t.Fatal("key file changed")
	}
}

func TestKeyFilePermissionsExit78(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX permissions")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	if r := runBinary(t, dir, nil, "keygen", "--out", path); r.code != 0 {
		t.Fatalf("keygen: %+v", r)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runBinary(t, dir, nil, "config", "validate", "--set", "security.encryption.key_file="+path)
	if r.code != 78 || !strings.Contains(r.stdout, "TM-CFG-1004 security.encryption.key_file") {
		t.Fatalf("%+v", r)
	}
}

// TestRun_InProcess drives run() directly (the process tests above cannot
// report coverage) for the commands that do not start a node.
func TestRun_InProcess(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "TOKMESH_") {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("session: {ttl: {max: 1s}}\nfoo: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "k.key")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"version"}, 0, "tokmesh-server "},
		{[]string{"config", "default"}, 0, "storage:\n"},
		{[]string{"config", "validate", "--data-dir", dir}, 0, "configuration valid (no file)"},
		{[]string{"config", "validate", "-c", bad}, 78, "2 configuration error(s)"},
		{[]string{"config", "validate", "--config="}, 64, "--config needs a file name"},
		{[]string{"--set", "x"}, 64, "want KEY=VALUE"},
		{[]string{"-c", bad}, 78, "not starting"},
		{[]string{"keygen", "--out", key}, 0, "wrote master key"},
		{[]string{"keygen", "--out", key}, 1, "refusing to overwrite"},
		{[]string{"keygen", "--out", filepath.Join(dir, "no", "such", "dir")}, 1, "tokmesh-server keygen: "},
	} {
		var out, errb bytes.Buffer
		code := run(tt.args, &out, &errb)
		if code != tt.code || !strings.Contains(out.String()+errb.String(), tt.want) {
			t.Errorf("%v: exit %d (want %d), output lacks %q:\n%s%s", tt.args, code, tt.code, tt.want, out.String(), errb.String())
		}
	}
}
