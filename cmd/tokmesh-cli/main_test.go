package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildBinary builds the CLI once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tokmesh-cli-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "tokmesh-cli")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestBinaryExitCodes builds the binary and checks that the process exit
// code is the CLI's (69 without a reachable server, 64 on a usage error or
// a dangerous command off a terminal).
func TestBinaryExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t)
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
	// exec gives the child /dev/null as stdin: not a terminal, so a
	// dangerous command needs --force (64), with no prompt.
	if code, out := run("session", "revoke", "tmss-x"); code != 64 || strings.Contains(out, "[y/N]") || !strings.Contains(out, "--force") {
		t.Fatalf("dangerous command with stdin /dev/null: exit %d\n%s", code, out)
	}
	if code, out := run("version"); code != 0 || !strings.Contains(out, "tokmesh-cli") {
		t.Fatalf("version: exit %d\n%s", code, out)
	}
}

// TestBinaryInterruptExits2: Ctrl+C (SIGINT) while waiting for a server
// that never answers ends the command with exit 2, not a signal death.
func TestBinaryInterruptExits2(t *testing.T) {
	if testing.Short() || runtime.GOOS == "windows" {
		t.Skip("builds the binary; needs POSIX signals")
	}
	// A server that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	dir := t.TempDir()
	cmd := exec.Command(buildBinary(t), "-t", "http://"+ln.Addr().String(), "-k", "tmak-x:tmas_y", "system", "status")
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(out.String(), "interrupted") {
		t.Fatalf("after SIGINT: %v\n%s", err, out.String())
	}
}
