package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/server"
	"github.com/yndnr/tokmesh-go/pkg/client"
)

// The end-to-end test runs this test binary as tokmesh-cli inside tmux:
// with topChildEnv set, the binary is the CLI (same code path as
// cmd/tokmesh-cli: Run on the real stdin/stdout) and writes its exit code
// to the file named by topExitEnv.
const (
	topChildEnv = "TOKMESH_TOP_E2E_CHILD"
	topExitEnv  = "TOKMESH_TOP_E2E_EXIT_FILE"
)

func init() {
	if os.Getenv(topChildEnv) != "1" {
		return
	}
	code := Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if f := os.Getenv(topExitEnv); f != "" {
		_ = os.WriteFile(f, []byte(strconv.Itoa(code)), 0o600)
	}
	os.Exit(code)
}

func TestTop_IntervalBelowMinimumExits64(t *testing.T) {
	t.Chdir(t.TempDir())
	r := newRunner(t)
	r.tty = true // the interval is checked whatever the terminal
	expectExit(t, r.run("top", "--interval", "100ms"), ExitUsage, "--interval 100ms is too short", "minimum is 250ms", "TM-CLI-1005")
	expectExit(t, r.run("top", "--interval", "0s"), ExitUsage, "minimum is 250ms")
	expectExit(t, r.run("top", "--interval", "soon"), ExitUsage, "TM-CLI-1005")
	// -o json renders the usage error as JSON, like every command.
	res := r.run("top", "--interval", "249ms", "-o", "json")
	expectExit(t, res, ExitUsage, `"code": "TM-CLI-1005"`)
}

func TestTop_WithoutTTYExits64(t *testing.T) {
	t.Chdir(t.TempDir())
	r := newRunner(t)
	res := r.run("top")
	expectExit(t, res, ExitUsage, "top needs an interactive terminal", "stdin and stdout must both be a TTY", "Hint:")
	if res.stdout != "" {
		t.Fatalf("stdout not empty: %q", res.stdout)
	}
	// A valid interval does not change that.
	expectExit(t, r.run("top", "--interval", "2s"), ExitUsage, "interactive terminal")
}

func TestTop_HelpHasExample(t *testing.T) {
	r := newRunner(t)
	res := r.must("top", "--help")
	for _, s := range []string{"Examples:", "--interval", "tokmesh-cli top --interval 500ms"} {
		if !strings.Contains(res.stdout, s) {
			t.Fatalf("help lacks %q:\n%s", s, res.stdout)
		}
	}
}

// topServer is a real node on dir/data that the test can stop and start
// again on the same data dir (and so the same admin socket).
type topServer struct {
	t   *testing.T
	dir string
	srv *server.Server
}

func (s *topServer) start() {
	s.t.Helper()
	c := config.Default()
	c.Storage.DataDir = filepath.Join(s.dir, "data")
	c.Server.HTTP.Address = "127.0.0.1:0"
	c.Server.HTTPS.Address = "127.0.0.1:0"
	c.Server.RESP.Enabled = false
	c.Server.RESPTLS.Enabled = false
	c.Server.Shutdown.GracePeriod = 0
	srv := server.New(c, server.Options{Getenv: testEnv})
	if err := srv.Start(context.Background()); err != nil {
		s.t.Fatal(err)
	}
	s.srv = srv
}

func (s *topServer) stop() {
	if s.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	s.srv = nil
}

func (s *topServer) socket() string { return filepath.Join(s.dir, "data", "admin.sock") }

// tmuxPane drives one tmux session on a private tmux server.
type tmuxPane struct {
	t    *testing.T
	sock string
}

func (p *tmuxPane) tmux(args ...string) string {
	p.t.Helper()
	// -u: the pane is UTF-8 whatever this process's locale says.
	out, err := exec.Command("tmux", append([]string{"-u", "-S", p.sock}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (p *tmuxPane) capture() string {
	p.t.Helper()
	return p.tmux("capture-pane", "-p", "-t", "top")
}

func (p *tmuxPane) keys(keys ...string) {
	p.t.Helper()
	p.tmux(append([]string{"send-keys", "-t", "top"}, keys...)...)
}

func (p *tmuxPane) typeText(s string) {
	p.t.Helper()
	p.tmux("send-keys", "-t", "top", "-l", s)
}

// waitFor polls the captured screen until cond holds.
func (p *tmuxPane) waitFor(what string, timeout time.Duration, cond func(screen string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var screen string
	for time.Now().Before(deadline) {
		screen = p.capture()
		if cond(screen) {
			return screen
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("timed out after %s waiting for %s; screen:\n%s", timeout, what, screen)
	return ""
}

func (p *tmuxPane) waitText(timeout time.Duration, want ...string) string {
	p.t.Helper()
	return p.waitFor(fmt.Sprintf("%q", want), timeout, func(s string) bool {
		for _, w := range want {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	})
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestTop_EndToEndInTmux runs `tokmesh-cli top` in a real terminal (tmux,
// 100×30) against a real server over its admin socket: the header shows,
// a session created beforehand is found with / and revoked with x + y
// (checked through the API), the disconnected banner appears when the
// server stops, and the dashboard recovers when it comes back.
func TestTop_EndToEndInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (apt-get install -y tmux): skipping the end-to-end test of top")
	}
	if testing.Short() {
		t.Skip("end-to-end tmux test skipped in -short mode")
	}
	dir := t.TempDir()
	srv := &topServer{t: t, dir: dir}
	srv.start()
	t.Cleanup(srv.stop)

	api, err := client.New(client.Config{Target: "unix:" + srv.socket(), Timeout: 5 * time.Second, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	ctx := context.Background()
	created, err := api.CreateSession(ctx, client.CreateSessionRequest{UserID: "u-e2e", DeviceID: "tmux-laptop", TTLSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	sid := created.SessionID

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exitFile := filepath.Join(dir, "exit")
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	// The pane keeps running after the CLI exits, so a crash stays visible.
	cmdline := fmt.Sprintf("env %s=1 %s=%s HOME=%s XDG_CONFIG_HOME=%s %s top -t %s --interval 250ms; echo TOP-EXITED; sleep 60",
		topChildEnv, topExitEnv, shellQuote(exitFile), shellQuote(home), shellQuote(home), shellQuote(exe),
		shellQuote("unix:"+srv.socket()))
	pane := &tmuxPane{t: t, sock: filepath.Join(dir, "tmux.sock")}
	pane.tmux("-f", "/dev/null", "new-session", "-d", "-s", "top", "-x", "100", "-y", "30", cmdline)
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", pane.sock, "kill-server").Run() })

	// Header, node and the metrics of the real /metrics.
	screen := pane.waitText(15*time.Second, "TokMesh top", "healthy", "standalone mode", "[Nodes]", "tmnd-", "Partitions 256")
	if strings.Contains(screen, "disconnected") {
		t.Fatalf("disconnected at start:\n%s", screen)
	}
	screen = pane.waitText(10*time.Second, "Traffic  validate", "WAL      fsync")
	t.Logf("running:\n%s", screen)

	// / search, then x + y revokes the session.
	pane.typeText("/")
	pane.waitText(5*time.Second, "user ID: ")
	pane.typeText("u-e2e")
	pane.keys("Enter")
	pane.waitText(5*time.Second, "User u-e2e · 1 live session", sid, "tmux-laptop")
	pane.typeText("x")
	pane.waitText(5*time.Second, "Revoke session "+sid, "y revoke")
	pane.typeText("y")
	pane.waitText(5*time.Second, "Revoked session "+sid, "No live sessions for user u-e2e")
	_, err = api.GetSession(ctx, sid)
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Code != "TM-SESS-4042" {
		t.Fatalf("after revoke from top, get session: %v (want TM-SESS-4042)", err)
	}

	// The server goes away: banner, and top keeps running.
	srv.stop()
	screen = pane.waitText(10*time.Second, "disconnected — retrying every 250ms", "cannot connect to unix:")
	if !strings.Contains(screen, "[Sessions]") {
		t.Fatalf("layout lost while disconnected:\n%s", screen)
	}
	t.Logf("disconnected:\n%s", screen)
	// It comes back on the same data dir: the banner goes, data flows.
	srv.start()
	screen = pane.waitFor("recovery", 15*time.Second, func(s string) bool {
		return !strings.Contains(s, "disconnected") && strings.Contains(s, "healthy") &&
			(strings.Contains(s, "reconnected to unix:") || strings.Contains(s, "No live sessions for user u-e2e"))
	})

	t.Logf("recovered:\n%s", screen)

	pane.typeText("q")
	pane.waitText(10*time.Second, "TOP-EXITED")
	b, err := os.ReadFile(exitFile)
	if err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Fatalf("top exit code %q (%v), want 0", b, err)
	}
}
