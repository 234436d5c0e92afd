package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeProfile writes the runner's default profile file (mode 0600).
func writeProfile(t *testing.T, r *runner, content string) string {
	t.Helper()
	dir := filepath.Join(r.env["XDG_CONFIG_HOME"], "tokmesh-cli")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "cli.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInvalidSetting_ReportedWhereItCameFrom: a bad value in the profile
// file is a configuration error (TM-CLI-1001, exit 78) naming the file and
// the key; in a TOKMESH_* variable also a configuration error naming the
// variable; on the command line a usage error (TM-CLI-1005, exit 64).
func TestInvalidSetting_ReportedWhereItCameFrom(t *testing.T) {
	t.Chdir(t.TempDir())
	cases := []struct {
		name    string
		profile string
		env     map[string]string
		args    []string
		exit    int
		stderr  []string
	}{
		{"file timeout", "timeout: bogus\n", nil, nil, ExitConfig, []string{"TM-CLI-1001", "timeout", `"bogus"`, "cli.yaml"}},
		{"file timeout without unit", "timeout: 30\n", nil, nil, ExitConfig, []string{"TM-CLI-1001", "timeout", "cli.yaml"}},
		{"file output", "output: xml\n", nil, nil, ExitConfig, []string{"TM-CLI-1001", "output", `"xml"`, "cli.yaml"}},
		{"file no_color", "no_color: maybe\n", nil, nil, ExitConfig, []string{"TM-CLI-1001", "no_color", "cli.yaml"}},
		{"file current", "current: nosuch\n", nil, []string{"system", "status"}, ExitConfig, []string{"TM-CLI-1001", "current", `"nosuch"`, "cli.yaml"}},
		{"env timeout", "", map[string]string{"TOKMESH_TIMEOUT": "bogus"}, nil, ExitConfig, []string{"TM-CLI-1001", "TOKMESH_TIMEOUT"}},
		{"env output", "", map[string]string{"TOKMESH_OUTPUT": "xml"}, nil, ExitConfig, []string{"TM-CLI-1001", "TOKMESH_OUTPUT"}},
		{"flag timeout", "", nil, []string{"--timeout", "bogus"}, ExitUsage, []string{"TM-CLI-1005", "--timeout"}},
		{"flag output", "", nil, []string{"-o", "xml"}, ExitUsage, []string{"TM-CLI-1005", "--output"}},
		// The flag wins over a bad file value (flag > env > file).
		{"flag over bad file", "timeout: bogus\noutput: xml\n", nil, []string{"--timeout", "5s", "-o", "table"}, ExitOK, nil},
		{"env over bad file", "timeout: bogus\n", map[string]string{"TOKMESH_TIMEOUT": "5s"}, nil, ExitOK, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRunner(t)
			if c.profile != "" {
				writeProfile(t, r, c.profile)
			}
			for k, v := range c.env {
				r.env[k] = v
			}
			args := c.args
			if len(args) == 0 || strings.HasPrefix(args[0], "-") {
				args = append(args, "version")
			}
			expectExit(t, r.run(args...), c.exit, c.stderr...)
		})
	}
}

// TestInvalidProfileFile_JSONError: with -o json the profile-file error is
// the JSON error object.
func TestInvalidProfileFile_JSONError(t *testing.T) {
	t.Chdir(t.TempDir())
	r := newRunner(t)
	path := writeProfile(t, r, "timeout: bogus\n")
	res := r.run("-o", "json", "version")
	expectExit(t, res, ExitConfig)
	var e map[string]any
	if err := json.Unmarshal([]byte(res.stderr), &e); err != nil {
		t.Fatalf("stderr is not JSON: %v\n%s", err, res.stderr)
	}
	if e["code"] != "TM-CLI-1001" || !strings.Contains(e["message"].(string), path) {
		t.Fatalf("error: %v", e)
	}
}

// TestUsageErrors_FollowJSONOutput: errors cobra raises before the
// settings are resolved (missing argument, unknown command or flag) print
// as the JSON error object when -o json is in effect — from the flag
// wherever it stands, TOKMESH_OUTPUT or the profile file.
func TestUsageErrors_FollowJSONOutput(t *testing.T) {
	t.Chdir(t.TempDir())
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		profile string
	}{
		{"missing argument", []string{"session", "get", "-o", "json"}, nil, ""},
		{"flag before the command", []string{"-o", "json", "session", "get"}, nil, ""},
		{"--output=json", []string{"session", "get", "--output=json"}, nil, ""},
		{"-ojson", []string{"session", "get", "-ojson"}, nil, ""},
		{"-qo json", []string{"session", "get", "-qo", "json"}, nil, ""},
		{"unknown command", []string{"-o", "json", "nosuch"}, nil, ""},
		{"unknown subcommand", []string{"session", "nosuch", "-o", "json"}, nil, ""},
		{"unknown flag before -o", []string{"session", "list", "--bogus", "-o", "json"}, nil, ""},
		{"too many arguments", []string{"session", "get", "a", "b", "-o", "json"}, nil, ""},
		{"env", []string{"session", "get"}, map[string]string{"TOKMESH_OUTPUT": "json"}, ""},
		{"profile file", []string{"session", "get"}, nil, "output: json\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRunner(t)
			for k, v := range c.env {
				r.env[k] = v
			}
			if c.profile != "" {
				writeProfile(t, r, c.profile)
			}
			res := r.run(c.args...)
			expectExit(t, res, ExitUsage)
			var e map[string]any
			if err := json.Unmarshal([]byte(res.stderr), &e); err != nil {
				t.Fatalf("stderr is not the JSON error: %v\n%s", err, res.stderr)
			}
			if e["code"] != "TM-CLI-1005" || e["message"] == "" || e["request_id"] != "" || e["details"] == nil || len(e) != 4 {
				t.Fatalf("error object: %v", e)
			}
			if res.stdout != "" {
				t.Fatalf("stdout: %q", res.stdout)
			}
		})
	}
	// Without -o json the error stays text; a flag overrides the file.
	r := newRunner(t)
	expectExit(t, r.run("session", "get"), ExitUsage, "Error: missing argument ID")
	writeProfile(t, r, "output: json\n")
	expectExit(t, r.run("session", "get", "-o", "table"), ExitUsage, "Error: missing argument ID")
}

// TestProfileSocket_PipeNameIsANamedPipeTarget: a profile's socket may be
// a Windows named pipe (07-tools §1.1); it becomes an npipe: target, not a
// Unix socket path.
func TestProfileSocket_PipeNameIsANamedPipeTarget(t *testing.T) {
	t.Chdir(t.TempDir())
	r := newRunner(t)
	writeProfile(t, r, "current: win\ntargets:\n  win:\n    socket: '\\\\.\\pipe\\tokmesh-server'\n  unix:\n    socket: /var/lib/tokmesh-server/admin.sock\n")
	res := r.must("-o", "json", "config", "cli", "show")
	var out struct {
		Endpoint string `json:"endpoint"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.Endpoint != `npipe:\\.\pipe\tokmesh-server` {
		t.Fatalf("endpoint %q, want the named pipe", out.Endpoint)
	}
	if !strings.Contains(r.must("config", "cli", "show").stdout, `npipe:\\.\pipe\tokmesh-server`) {
		t.Fatal("profile table does not show the named pipe")
	}
	res = r.must("-t", "unix", "-o", "json", "config", "cli", "show")
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || out.Endpoint != "unix:/var/lib/tokmesh-server/admin.sock" {
		t.Fatalf("unix profile endpoint %q %v", out.Endpoint, err)
	}
}
