package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryExitCodes builds the binary and checks that the process exit
// code is the CLI's (69 without a reachable server, 64 on a usage error).
func TestBinaryExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tokmesh-cli")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	run := func(args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := run("apikey", "create", "--role", "admin"); code != 69 || !strings.Contains(out, "cannot connect") {
		t.Fatalf("no server: exit %d\n%s", code, out)
	}
	if code, out := run("session", "nosuch-flag", "--bogus"); code != 64 {
		t.Fatalf("usage: exit %d\n%s", code, out)
	}
	if code, out := run("version"); code != 0 || !strings.Contains(out, "tokmesh-cli") {
		t.Fatalf("version: exit %d\n%s", code, out)
	}
}
