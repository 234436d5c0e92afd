package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIsTerminal_DevNullPipeAndFileAreNot: /dev/null is a character device
// but no terminal; neither is a pipe, a regular file or a non-file reader.
func TestIsTerminal_DevNullPipeAndFileAreNot(t *testing.T) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, v := range map[string]any{"/dev/null": devnull, "pipe": pr, "file": f, "buffer": &bytes.Buffer{}, "nil file": (*os.File)(nil)} {
		if isTerminal(v) {
			t.Errorf("%s counts as a terminal", name)
		}
	}
}

// TestDangerousCommand_StdinDevNullRequiresForce: with stdin redirected
// from /dev/null (no TTY) a dangerous command refuses with exit 64 instead
// of prompting and reading EOF (07-tools §1.3).
func TestDangerousCommand_StdinDevNullRequiresForce(t *testing.T) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	home := t.TempDir()
	env := map[string]string{"HOME": home, "XDG_CONFIG_HOME": home}
	for _, args := range [][]string{
		{"session", "revoke", "tmss-x"},
		{"session", "revoke-all", "-u", "u-1"},
		{"apikey", "disable", "tmak-x"},
	} {
		var out, errb bytes.Buffer
		// StdinTTY left nil: Main decides from the real stdin.
		code := Main(args, Env{Stdin: devnull, Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }})
		res := result{code, out.String(), errb.String()}
		expectExit(t, res, ExitUsage, "TM-CLI-1005", "--force")
		if strings.Contains(res.stderr, "[y/N]") || strings.Contains(res.stderr, "to confirm") {
			t.Fatalf("%v prompted off a terminal:\n%s", args, res.stderr)
		}
	}
}
