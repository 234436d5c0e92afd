package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// node is a real tokmesh-server process on a temp data dir.
type node struct {
	t    *testing.T
	cmd  *exec.Cmd
	dir  string
	http string // host:port
	// listeners maps listener names (http, resp, local, …) to bound addresses.
	listeners map[string]string
	mu        sync.Mutex
	stdout    bytes.Buffer
	local     *http.Client
	tcp       *http.Client
}

func startNode(t *testing.T, dir string, args ...string) *node {
	t.Helper()
	n := &node{t: t, dir: dir}
	all := append([]string{"--http-address", "127.0.0.1:0", "--set", "server.shutdown.grace_period=0s",
		"--set", "server.resp.enabled=false"}, args...)
	n.cmd = exec.Command(binary, all...)
	n.cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKMESH_") {
			n.cmd.Env = append(n.cmd.Env, kv)
		}
	}
	pr, pw := io.Pipe()
	n.cmd.Stdout, n.cmd.Stderr = pw, pw
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan map[string]string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			n.mu.Lock()
			n.stdout.WriteString(line + "\n")
			n.mu.Unlock()
			var rec struct {
				Msg       string            `json:"msg"`
				Listeners map[string]string `json:"listeners"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "node ready" {
				ready <- rec.Listeners
			}
		}
	}()
	select {
	case ls := <-ready:
		n.http, n.listeners = ls["http"], ls
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		t.Fatalf("node did not become ready:\n%s", n.logs())
	}
	sock := filepath.Join(dir, "data", "admin.sock")
	n.local = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	n.tcp = &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(func() { n.stop() })
	return n
}

func (n *node) logs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stdout.String()
}

func (n *node) stop() int {
	if n.cmd.ProcessState != nil {
		return n.cmd.ProcessState.ExitCode()
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		<-done
		n.t.Errorf("node did not stop within 30 s")
	}
	return n.cmd.ProcessState.ExitCode()
}

type apiResp struct {
	status int
	Code   string          `json:"code"`
	Data   json.RawMessage `json:"data"`
}

func (n *node) do(c *http.Client, base, method, path, apiKey, body string) apiResp {
	n.t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	resp, err := c.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r apiResp
	if err := json.Unmarshal(raw, &r); err != nil {
		if path == "/metrics" && resp.StatusCode == 200 { // Prometheus text, not an envelope
			r.status = resp.StatusCode
			return r
		}
		n.t.Fatalf("%s %s: not an envelope: %s", method, path, raw)
	}
	r.status = resp.StatusCode
	return r
}

func field(t *testing.T, raw json.RawMessage, name string) string {
	t.Helper()
	var m map[string]any
	json.Unmarshal(raw, &m)
	s, _ := m[name].(string)
	if s == "" {
		t.Fatalf("no %q in %s", name, raw)
	}
	return s
}

// The README quick start, exactly: admin key over the socket, issuer key
// over HTTP, create, validate, revoke, validate → TM-TOKN-4012. Then no
// token or secret may appear in the logs or the audit file.
func TestQuickstart_EndToEndWithRealProcess(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	base := "http://" + n.http

	r := n.do(n.local, "http://local", "POST", "/admin/v1/keys", "", `{"role":"admin","description":"bootstrap"}`)
	if r.status != 201 {
		t.Fatalf("admin key over the socket: %d %s %s", r.status, r.Code, r.Data)
	}
	adminKey := field(t, r.Data, "api_key")
	r = n.do(n.tcp, base, "POST", "/admin/v1/keys", adminKey, `{"role":"issuer","description":"sso"}`)
	if r.status != 201 {
		t.Fatalf("issuer key: %d %s", r.status, r.Code)
	}
	issuerKey := field(t, r.Data, "api_key")

	r = n.do(n.tcp, base, "POST", "/sessions", issuerKey, `{"user_id":"u-1001","ttl_seconds":3600}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.Code)
	}
	sid, token := field(t, r.Data, "session_id"), field(t, r.Data, "token")
	r = n.do(n.tcp, base, "POST", "/tokens/validate", issuerKey, `{"token":"`+token+`"}`)
	if !bytes.Contains(r.Data, []byte(`"valid":true`)) {
		t.Fatalf("validate: %s", r.Data)
	}
	r = n.do(n.tcp, base, "POST", "/sessions/"+sid+"/revoke", issuerKey, "")
	if !bytes.Contains(r.Data, []byte(`"revoked":true`)) {
		t.Fatalf("revoke: %d %s", r.status, r.Data)
	}
	r = n.do(n.tcp, base, "POST", "/tokens/validate", issuerKey, `{"token":"`+token+`"}`)
	if !bytes.Contains(r.Data, []byte(`"TM-TOKN-4012"`)) {
		t.Fatalf("validate after revoke: %s", r.Data)
	}
	// A wrong secret and no key are refused.
	if r := n.do(n.tcp, base, "POST", "/tokens/validate", "", `{"token":"`+token+`"}`); r.status != 401 || r.Code != "TM-AUTH-4010" {
		t.Fatalf("no key: %d %s", r.status, r.Code)
	}
	if code := n.stop(); code != 0 {
		t.Fatalf("SIGTERM exit code %d:\n%s", code, n.logs())
	}

	// The revocation and the keys survive a restart.
	n2 := startNode(t, dir)
	r = n2.do(n2.tcp, "http://"+n2.http, "POST", "/tokens/validate", issuerKey, `{"token":"`+token+`"}`)
	if r.status != 200 || !bytes.Contains(r.Data, []byte(`"TM-TOKN-4012"`)) {
		t.Fatalf("after restart: %d %s %s", r.status, r.Code, r.Data)
	}
	n2.stop()

	secrets := []string{token, adminKey, issuerKey, adminKey[strings.IndexByte(adminKey, ':')+1:], issuerKey[strings.IndexByte(issuerKey, ':')+1:]}
	haystacks := map[string]string{"stdout": n.logs() + n2.logs()}
	files, _ := filepath.Glob(filepath.Join(dir, "data", "audit", "*.jsonl"))
	if len(files) == 0 {
		t.Fatal("no audit file written")
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		haystacks[f] = string(b)
	}
	for where, text := range haystacks {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Fatalf("%s contains a secret", where)
			}
		}
	}
}

// A second SIGTERM ends the drain at once: the node still stops cleanly
// (exit 0, "stopped"), long before the grace period is over.
func TestShutdown_SecondSignalEndsTheDrain(t *testing.T) {
	n := startNode(t, t.TempDir(), "--set", "server.shutdown.grace_period=30s", "--set", "server.shutdown.timeout=60s")
	n.cmd.Process.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(n.logs(), `"shutting down"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no shutdown after SIGTERM:\n%s", n.logs())
		}
	}
	time.Sleep(200 * time.Millisecond) // draining now
	start := time.Now()
	n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-done
		t.Fatalf("still draining 10 s after the second signal:\n%s", n.logs())
	}
	if code := n.cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(n.logs(), "second signal") || !strings.Contains(n.logs(), `"stopped"`) {
		t.Fatalf("exit %d after %v:\n%s", code, time.Since(start), n.logs())
	}
}
