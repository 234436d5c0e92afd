package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// TestColour_OnlyOnATerminalAndNotWhenDisabled: tables are coloured on a
// terminal stdout, and never off one or with NO_COLOR, --no-color or
// no_color in the profile file; columns stay aligned either way.
func TestColour_OnlyOnATerminalAndNotWhenDisabled(t *testing.T) {
	r, _ := setup(t)
	r.must("apikey", "create", "--role", "issuer", "--description", "sso")

	plain := r.must("apikey", "list").stdout
	if strings.Contains(plain, "\x1b") {
		t.Fatalf("colour off a terminal: %q", plain)
	}
	r.outTTY = true
	coloured := r.must("apikey", "list").stdout
	if !strings.Contains(coloured, "\x1b[1m") || !strings.Contains(coloured, "\x1b[32mactive") {
		t.Fatalf("no colour on a terminal: %q", coloured)
	}
	// Escape sequences wrap words only: stripped, the table is the plain one
	// (up to trailing spaces of the bold header).
	if stripANSI(coloured) != trimLines(plain) && stripANSI(coloured) != plain {
		t.Fatalf("colour changed the layout:\n%q\n%q", stripANSI(coloured), plain)
	}
	// JSON is never coloured.
	if out := r.must("apikey", "list", "-o", "json").stdout; strings.Contains(out, "\x1b") {
		t.Fatalf("coloured json: %q", out)
	}

	for name, tweak := range map[string]func() []string{
		"NO_COLOR":   func() []string { r.env["NO_COLOR"] = "1"; return nil },
		"--no-color": func() []string { return []string{"--no-color"} },
		"TERM=dumb":  func() []string { r.env["TERM"] = "dumb"; return nil },
		"profile no_color": func() []string {
			dir := filepath.Join(r.env["XDG_CONFIG_HOME"], "tokmesh-cli")
			os.MkdirAll(dir, 0o700)
			os.WriteFile(filepath.Join(dir, "cli.yaml"), []byte("no_color: true\n"), 0o600)
			return nil
		},
	} {
		args := append(tweak(), "apikey", "list")
		res := r.must(args...)
		if strings.Contains(res.stdout+res.stderr, "\x1b") {
			t.Fatalf("%s: escape sequences in %q", name, res.stdout)
		}
		// Errors too.
		r.errTTY = true
		res = r.run(append(tweak(), "apikey", "get", "tmak-nope")...)
		r.errTTY = false
		if res.code != ExitFailure || strings.Contains(res.stderr, "\x1b") {
			t.Fatalf("%s: error output %d %q", name, res.code, res.stderr)
		}
		delete(r.env, "NO_COLOR")
		delete(r.env, "TERM")
		os.Remove(filepath.Join(r.env["XDG_CONFIG_HOME"], "tokmesh-cli", "cli.yaml"))
	}
	// Errors on a terminal stderr are coloured.
	r.errTTY = true
	if res := r.run("apikey", "get", "tmak-nope"); !strings.Contains(res.stderr, "\x1b[") {
		t.Fatalf("error not coloured on a terminal: %q", res.stderr)
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// TestSpinner_OnlyOnATerminal runs a command with a spinner (system gc) on
// and off a terminal stderr.
func TestSpinner_OnlyOnATerminal(t *testing.T) {
	r, _ := setup(t)
	res := r.must("system", "gc", "--type", "expired", "-o", "json")
	if res.stderr != "" {
		t.Fatalf("spinner off a terminal: %q", res.stderr)
	}
	r.errTTY = true
	res = r.must("system", "gc", "--type", "memory", "-o", "json")
	if !strings.Contains(res.stderr, "Collecting garbage") || !strings.HasSuffix(res.stderr, "\r") {
		t.Fatalf("spinner on a terminal: %q", res.stderr)
	}
	res.json(t)
	res = r.must("-q", "system", "gc", "--type", "all", "-o", "json")
	if res.stderr != "" {
		t.Fatalf("quiet spinner: %q", res.stderr)
	}
}

func TestProgressBar_Rendering(t *testing.T) {
	var buf bytes.Buffer
	pr := &progress{on: true, w: &buf, p: newPalette(&buf, false), label: "Downloading", total: 4 << 20, bytes: true, start: time.Now()}
	pr.draw()
	pr.resumeFrom(1 << 20)
	pr.set(4 << 20)
	pr.done()
	out := buf.String()
	for _, s := range []string{"Downloading", "  0%", " 25%", "100%", "4.0 MiB/4.0 MiB", "████"} {
		if !strings.Contains(out, s) {
			t.Fatalf("progress output lacks %q: %q", s, out)
		}
	}
	if strings.Contains(out, "\x1b") || !strings.HasSuffix(out, "\n") {
		t.Fatalf("progress output: %q", out)
	}
	pr.set(1) // after done: silent
	if buf.String() != out {
		t.Fatal("drew after done")
	}
	if humanBytes(1023) != "1023 B" || humanBytes(1536) != "1.5 KiB" || humanBytes(5<<30) != "5.0 GiB" {
		t.Fatal("humanBytes")
	}
}

func TestParseTime_RFC3339AndDurationsAgo(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"2026-01-02T03:04:05Z", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"15m", now.Add(-15 * time.Minute)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"7d", now.AddDate(0, 0, -7)},
	} {
		got, err := parseTime("since", c.in, now)
		if err != nil || got != c.want.UnixMilli() {
			t.Fatalf("%s: %v %v", c.in, time.UnixMilli(got).UTC(), err)
		}
	}
	for _, bad := range []string{"yesterday", "-5m", "5x", "d"} {
		if _, err := parseTime("since", bad, now); err == nil || classify(err).exit != ExitUsage {
			t.Fatalf("%s accepted", bad)
		}
	}
}

// TestHelp_EveryCommandHasShortAndExample walks the whole tree.
func TestHelp_EveryCommandHasShortAndExample(t *testing.T) {
	a := &app{env: Env{Getenv: func(string) string { return "" }}}
	root := a.buildRoot()
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		if c.Hidden {
			return
		}
		n++
		if strings.TrimSpace(c.Short) == "" || strings.Contains(c.Short, "\n") {
			t.Errorf("%q: Short must be one line, got %q", c.CommandPath(), c.Short)
		}
		if strings.HasSuffix(c.Short, ".") {
			t.Errorf("%q: Short ends with a period", c.CommandPath())
		}
		if !strings.Contains(c.Example, "tokmesh-cli") {
			t.Errorf("%q: no Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if n < 45 {
		t.Fatalf("only %d commands in the tree", n)
	}
	// The spec's command tree is there, under those exact names.
	for _, path := range []string{
		"session create", "session get", "session list", "session touch", "session renew", "session revoke",
		"session revoke-all", "session validate", "apikey create", "apikey list", "apikey get", "apikey enable",
		"apikey disable", "apikey rotate", "apikey create-emergency", "config server show", "config server validate",
		"config server reload", "config cli show", "backup snapshot", "backup list", "backup download", "backup restore",
		"backup status", "system status", "system health", "system ready", "system gc", "system audit", "system wal",
		"cluster status", "cluster nodes", "cluster rebalance", "cluster remove", "top", "completion bash",
		"completion zsh", "completion fish", "completion powershell", "version",
	} {
		c, rest, err := root.Find(strings.Fields(path))
		if err != nil || len(rest) > 0 || c.Name() != strings.Fields(path)[len(strings.Fields(path))-1] {
			t.Errorf("missing command %q", path)
		}
	}
	// Flags the spec names.
	for path, flags := range map[string][]string{
		"backup snapshot": {"description"}, "backup download": {"file"}, "backup restore": {"id", "file", "force", "no-wait"},
		"system gc": {"type"}, "system audit": {"since", "until", "actor", "action", "page", "size"},
		"cluster rebalance": {"force"}, "cluster remove": {"no-drain", "force"}, "config server validate": {"remote"},
		"apikey create-emergency": {"description"},
	} {
		c, _, _ := root.Find(strings.Fields(path))
		for _, f := range flags {
			if c.Flags().Lookup(f) == nil {
				t.Errorf("%s lacks --%s", path, f)
			}
		}
	}

	// Every command's --help works and shows its example.
	r := newRunner(t)
	for _, path := range []string{"", "backup", "backup restore", "system ready", "cluster remove", "config server validate", "completion zsh"} {
		res := r.must(append(strings.Fields(path), "--help")...)
		if !strings.Contains(res.stdout, "Examples:") || !strings.Contains(res.stdout, "Usage:") {
			t.Fatalf("%q --help: %s", path, res.stdout)
		}
	}
	if res := r.must("help", "backup", "download"); !strings.Contains(res.stdout, "resumes") {
		t.Fatalf("help backup download: %s", res.stdout)
	}
	expectExit(t, r.run("help", "nosuch"), ExitUsage, "unknown help topic")
	expectExit(t, r.run("backup", "nosuch"), ExitUsage, "unknown command \"nosuch\" for \"tokmesh-cli backup\"")
	if res := r.must("backup"); !strings.Contains(res.stdout, "Available Commands:") {
		t.Fatalf("bare group: %s", res.stdout)
	}
}

func TestCompletion_ScriptsAndDynamicValues(t *testing.T) {
	r, sock := setup(t)
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		res := r.must("completion", sh)
		if len(res.stdout) < 500 || !strings.Contains(res.stdout, "tokmesh-cli") {
			t.Fatalf("completion %s: %d bytes", sh, len(res.stdout))
		}
	}
	expectExit(t, r.run("completion", "tcsh"), ExitUsage)
	// Scripts do not depend on the profile file.
	cfgDir := filepath.Join(r.env["XDG_CONFIG_HOME"], "tokmesh-cli")
	os.MkdirAll(cfgDir, 0o700)
	os.WriteFile(filepath.Join(cfgDir, "cli.yaml"), []byte("targets: [\n"), 0o600)
	r.must("completion", "bash")
	os.WriteFile(filepath.Join(cfgDir, "cli.yaml"), []byte("targets:\n  prod:\n    url: https://x:5443\n  sock:\n    socket: "+sock+"\n"), 0o600)

	complete := func(args ...string) []string {
		t.Helper()
		res := r.must(append([]string{"__complete"}, args...)...)
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
			if !strings.HasPrefix(l, ":") {
				out = append(out, strings.SplitN(l, "\t", 2)[0])
			}
		}
		return out
	}
	if got := complete("-t", ""); strings.Join(got, ",") != "local,prod,sock" {
		t.Fatalf("-t completion: %v", got)
	}
	if got := complete("-t", "p"); strings.Join(got, ",") != "prod" {
		t.Fatalf("-t p completion: %v", got)
	}
	if got := complete("completion", ""); strings.Join(got, ",") != "bash,zsh,fish,powershell" {
		t.Fatalf("completion completion: %v", got)
	}
	if got := complete("system", "gc", "--type", ""); strings.Join(got, ",") != "expired,memory,all" {
		t.Fatalf("gc --type completion: %v", got)
	}

	// IDs come from the target server.
	id := r.must("session", "create", "-u", "u-7", "-o", "json").json(t)["session_id"].(string)
	if got := complete("session", "revoke", ""); len(got) != 1 || got[0] != id {
		t.Fatalf("session ID completion: %v", got)
	}
	if got := complete("session", "get", "tmss-zzz"); len(got) != 0 {
		t.Fatalf("filtered session completion: %v", got)
	}
	if got := complete("session", "get", id, ""); len(got) != 0 {
		t.Fatalf("second argument completion: %v", got)
	}
	keys := complete("apikey", "disable", "tmak-")
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "tmak-") {
		t.Fatalf("key ID completion: %v", keys)
	}
	bk := r.must("backup", "snapshot", "-o", "json").json(t)["backup_id"].(string)
	if got := complete("backup", "restore", "--id", ""); len(got) != 1 || got[0] != bk {
		t.Fatalf("backup ID completion: %v", got)
	}
	if got := complete("-t", "sock", "backup", "download", ""); len(got) != 1 || got[0] != bk {
		t.Fatalf("backup ID completion over -t sock: %v", got)
	}
	// An unreachable target completes nothing, quickly.
	start := time.Now()
	if got := complete("-t", "http://127.0.0.1:1", "session", "get", ""); len(got) != 0 {
		t.Fatalf("unreachable completion: %v", got)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("completion against an unreachable target is slow")
	}
}

func TestPaint_ColoursStatusWordsNotFieldNames(t *testing.T) {
	p := newPalette(&bytes.Buffer{}, true)
	for in, want := range map[string]string{
		"revoked     false":            "revoked     false",
		"status      active":           "status      \x1b[32mactive\x1b[0m",
		"tmak-1  issuer  disabled  -":  "tmak-1  issuer  \x1b[31mdisabled\x1b[0m  -",
		"VALID: cfg.yaml":              "\x1b[32mVALID:\x1b[0m cfg.yaml",
		"INVALID: token revoked":       "\x1b[31mINVALID:\x1b[0m token revoked",
		"not_ready (code TM-SYS-5030)": "\x1b[31mnot_ready\x1b[0m (code TM-SYS-5030)",
		"Total: 3":                     "Total: 3",
	} {
		if got := p.colourWords(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}
