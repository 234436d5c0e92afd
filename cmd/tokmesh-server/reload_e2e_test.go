//go:build !windows

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func reloadE2EConfig(quota int, level, syncMode string) string {
	return fmt.Sprintf("session: {quota: {max_per_user: %d}}\ntelemetry: {logging: {level: %s}}\nstorage: {wal: {sync_mode: %s}}\n",
		quota, level, syncMode)
}

// waitLog waits until the node's stdout holds want at least count times.
func waitLog(t *testing.T, n *node, want string, count int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(n.logs(), want) < count {
		if time.Now().After(deadline) {
			t.Fatalf("no %d× %s in the logs:\n%s", count, want, n.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SIGHUP re-reads the file (with the flags applied again), applies the hot
// keys, lists the others as restart-required, and ignores an invalid file.
func TestSIGHUP_ReloadsTheConfigurationFileOfARealProcess(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(reloadE2EConfig(1, "info", "interval"))
	// The flag keeps winning over the file on reload.
	n := startNode(t, dir, "--config", file, "--set", "security.auth.rotation_grace=10m")
	create := func(user string) int {
		return n.do(n.local, "http://local", "POST", "/sessions", "", `{"user_id":"`+user+`"}`).status
	}
	if st := create("u"); st != 201 {
		t.Fatalf("first create: %d", st)
	}
	if st := create("u"); st != 429 {
		t.Fatalf("second create under quota 1: %d", st)
	}

	write(reloadE2EConfig(2, "info", "always") + "security: {auth: {rotation_grace: 1m}}\n")
	n.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, n, `"msg":"configuration reloaded"`, 1)
	if !strings.Contains(n.logs(), `"applied":["session.quota.max_per_user"],"restart_required":["storage.wal.sync_mode"]`) {
		t.Fatalf("reload line:\n%s", n.logs())
	}
	waitLog(t, n, `"level":"WARN","msg":"configuration keys changed that take effect only after a restart","keys":["storage.wal.sync_mode"]`, 1)
	if st := create("u"); st != 201 {
		t.Fatalf("second create under quota 2: %d", st)
	}
	if st := create("u"); st != 429 {
		t.Fatalf("third create under quota 2: %d", st)
	}

	// An invalid file: ERROR, nothing changes.
	write(reloadE2EConfig(0, "warn", "always") + "nope: 1\n")
	n.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, n, `"msg":"SIGHUP: configuration reload failed; nothing was changed"`, 1)
	logs := n.logs()
	if !strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, "TM-CFG-1001") {
		t.Fatalf("error line:\n%s", logs)
	}
	if st := create("v"); st != 201 {
		t.Fatalf("create after an invalid reload: %d", st)
	}
	create("v")
	if st := create("v"); st != 429 {
		t.Fatalf("quota 2 no longer enforced after an invalid reload: %d", st)
	}

	// The log level is hot: at warn the INFO reload line disappears while
	// the WARN line still comes.
	write(reloadE2EConfig(2, "warn", "always"))
	n.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, n, `"msg":"configuration reloaded"`, 2) // logged under the old level
	write(reloadE2EConfig(3, "warn", "always"))
	n.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, n, `"msg":"configuration keys changed that take effect only after a restart"`, 3)
	if got := strings.Count(n.logs(), `"msg":"configuration reloaded"`); got != 2 {
		t.Fatalf("INFO line logged at level warn (%d lines):\n%s", got, n.logs())
	}
	if st := create("u"); st != 201 {
		t.Fatalf("create under quota 3: %d", st)
	}
	if code := n.stop(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, n.logs())
	}
}

// A SIGHUP that arrives while the node is still starting does not kill it
// (the Go default for an uncaught SIGHUP is to exit): it is handled once
// the node is up.
func TestSIGHUP_DuringStartupIsHandledAfterIt(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte(reloadE2EConfig(1, "info", "interval")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "--config", file, "--http-address", "127.0.0.1:0", "--set", "server.resp.enabled=false",
		"--set", "server.shutdown.grace_period=0s")
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKMESH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var logs strings.Builder
	want := func(msg string) {
		t.Helper()
		timeout := time.After(15 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the node exited before %s:\n%s", msg, logs.String())
				}
				logs.WriteString(l + "\n")
				if strings.Contains(l, `"msg":"`+msg+`"`) {
					return
				}
			case <-timeout:
				t.Fatalf("no %s:\n%s", msg, logs.String())
			}
		}
	}
	want("starting tokmesh-server") // logged by Start, before recovery
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	want("node ready")
	want("configuration reloaded")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
}
