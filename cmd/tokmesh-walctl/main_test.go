package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The test binary doubles as tokmesh-walctl when this variable is set, so
// tests can run the real command in a child process with real stdio.
const runMainEnv = "TOKMESH_WALCTL_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// The key of internal/wal/testdata (see internal/wal fixtures).
const walFixtureKey = "7f3a9c2e5b1d4f6081a2c3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728"

func TestRepair_StdinFromDevNullRequiresYes(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("..", "..", "internal", "wal", "testdata", "flipped-byte-mid-segment", "wal")
	if err := os.CopyFS(filepath.Join(dir, "wal"), os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(keyFile, []byte(walFixtureKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "repair", "--data-dir", dir, "--key-file", keyFile)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Stdin = nil // the child's stdin is os.DevNull: a character device, not a terminal
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 64 || !strings.Contains(stderr.String(), "--yes") || strings.Contains(stderr.String(), "[y/N]") {
		t.Fatalf("repair with stdin from %s: %v, stdout %q, stderr %q", os.DevNull, err, stdout.String(), stderr.String())
	}
	if baks, _ := filepath.Glob(filepath.Join(dir, "wal", "*.bak")); len(baks) != 0 {
		t.Fatalf("repair changed the WAL without confirmation: %v", baks)
	}
}
