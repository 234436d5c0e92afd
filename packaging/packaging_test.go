// Package packaging_test checks the packaging sources against
// 10-packaging: the systemd unit (§3.1), the container image's Dockerfile
// (§5) and what the release archives carry (§2). scripts/test-package.sh
// checks the built artefacts; these tests check the sources and need no
// packaging tools, so they run with go test ./... .
//
// The spec text the files must match is kept here verbatim. When the spec
// itself is at hand (TOKMESH_SPEC_DIR, or ../../shared/spec next to the
// repository), the tests also check that this copy still equals it.
package packaging_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// specUnit is the systemd unit of 10-packaging §3.1, verbatim.
const specUnit = `[Unit]
Description=TokMesh session cache and token validation service
Documentation=https://github.com/yndnr/tokmesh-go
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=tokmesh
Group=tokmesh
ExecStart=/usr/bin/tokmesh-server --config /etc/tokmesh-server/config.yaml
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5s
TimeoutStopSec=45s
LimitNOFILE=65535
WorkingDirectory=/var/lib/tokmesh-server
StateDirectory=tokmesh-server
StateDirectoryMode=0700
UMask=0077
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ReadWritePaths=/var/lib/tokmesh-server
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources

[Install]
WantedBy=multi-user.target
`

// specDockerLines are the Dockerfile instructions 10-packaging §5 writes
// out; each must be a line of packaging/Dockerfile as written.
var specDockerLines = []string{
	"FROM gcr.io/distroless/static-debian12:nonroot",
	"VOLUME /var/lib/tokmesh-server",
	"WORKDIR /var/lib/tokmesh-server",
	"EXPOSE 5443 6380 5343",
	`ENTRYPOINT ["/usr/bin/tokmesh-server"]`,
	`CMD ["--config","/etc/tokmesh-server/config.yaml"]`,
	`HEALTHCHECK CMD ["/usr/bin/tokmesh-cli","system","health","-t","http://127.0.0.1:5080","-q"]`,
}

// specFile returns the text of a spec file, or "" when the spec is not
// next to the repository (CI checkouts hold only the repository).
func specFile(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("TOKMESH_SPEC_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "spec")
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return string(b)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withoutComments drops the full-line comments: the unit may explain
// itself, but its directives are the spec's, in the spec's order.
func withoutComments(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.HasPrefix(strings.TrimSpace(sc.Text()), "#") {
			continue
		}
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestSystemdUnit_IsTheSpecUnitVerbatim(t *testing.T) {
	got := withoutComments(readFile(t, filepath.Join("linux", "tokmesh-server.service")))
	if got != specUnit {
		t.Errorf("packaging/linux/tokmesh-server.service differs from 10-packaging §3.1:\n%s", lineDiff(specUnit, got))
	}
}

func TestSystemdUnit_CopyInTestEqualsSpec(t *testing.T) {
	spec := specFile(t, "10-packaging.md")
	if spec == "" {
		t.Skip("spec not found (set TOKMESH_SPEC_DIR)")
	}
	m := regexp.MustCompile("(?s)### 3\\.1 systemd unit\\s*```ini\n(.*?)```").FindStringSubmatch(spec)
	if m == nil {
		t.Fatal("10-packaging.md: no ```ini block under §3.1")
	}
	if m[1] != specUnit {
		t.Errorf("specUnit is stale against 10-packaging §3.1:\n%s", lineDiff(m[1], specUnit))
	}
}

func TestDockerfile_HasTheSpecInstructions(t *testing.T) {
	lines := map[string]bool{}
	for _, l := range strings.Split(readFile(t, "Dockerfile"), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range specDockerLines {
		if !lines[want] {
			t.Errorf("packaging/Dockerfile lacks the line %s", want)
		}
	}
}

func TestDockerfile_CopyInTestEqualsSpec(t *testing.T) {
	spec := specFile(t, "10-packaging.md")
	if spec == "" {
		t.Skip("spec not found (set TOKMESH_SPEC_DIR)")
	}
	sec := spec[strings.Index(spec, "## 5. Container image"):]
	sec = sec[:strings.Index(sec, "\n## 6.")]
	for _, m := range regexp.MustCompile("`((?:VOLUME|WORKDIR|EXPOSE|ENTRYPOINT|CMD|HEALTHCHECK) [^`]*)`").FindAllStringSubmatch(sec, -1) {
		found := false
		for _, l := range specDockerLines {
			found = found || l == m[1]
		}
		if !found {
			t.Errorf("10-packaging §5 has %s; specDockerLines does not", m[1])
		}
	}
}

// The HEALTHCHECK runs a binary the image must ship: tokmesh-cli is built
// unconditionally into /out, which is copied to /usr/bin.
func TestDockerfile_ShipsTheHealthcheckBinary(t *testing.T) {
	df := readFile(t, "Dockerfile")
	if !regexp.MustCompile(`for b in [^;]*\btokmesh-cli\b[^;]*; do`).MatchString(df) {
		t.Error("packaging/Dockerfile does not build tokmesh-cli")
	}
	if strings.Contains(df, "|| continue") {
		t.Error("packaging/Dockerfile may skip a binary; the HEALTHCHECK needs tokmesh-cli")
	}
	if !strings.Contains(df, "COPY --from=build /out/ /usr/bin/") {
		t.Error("packaging/Dockerfile does not copy the built binaries to /usr/bin")
	}
}

// healthcheckArgs is the HEALTHCHECK command of packaging/Dockerfile.
func healthcheckArgs(t *testing.T) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^HEALTHCHECK CMD (\[.*\])$`).FindStringSubmatch(readFile(t, "Dockerfile"))
	if m == nil {
		t.Fatal("packaging/Dockerfile: no HEALTHCHECK CMD [...] line")
	}
	var argv []string
	if err := json.Unmarshal([]byte(m[1]), &argv); err != nil {
		t.Fatalf("HEALTHCHECK: %v", err)
	}
	return argv
}

// TestHealthcheck_ExitsZeroOnlyWhileTheServerAnswers runs the image's
// HEALTHCHECK command against tokmesh-server started with the packaged
// config, as in the container, with the data dir and key file in a temp
// dir and the HTTP listener moved from 127.0.0.1:5080 to a free port.
func TestHealthcheck_ExitsZeroOnlyWhileTheServerAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tokmesh-server and tokmesh-cli")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	argv := healthcheckArgs(t)
	if argv[0] != "/usr/bin/tokmesh-cli" {
		t.Fatalf("HEALTHCHECK runs %s, want /usr/bin/tokmesh-cli", argv[0])
	}
	bin := t.TempDir()
	build := exec.Command(goBin, "build", "-o", bin+string(filepath.Separator), "../cmd/tokmesh-server", "../cmd/tokmesh-cli")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	addr := freeAddr(t)
	const imageURL = "http://127.0.0.1:5080"
	args := append([]string(nil), argv[1:]...)
	replaced := false
	for i, a := range args {
		if a == imageURL {
			args[i], replaced = "http://"+addr, true
		}
	}
	if !replaced {
		t.Fatalf("HEALTHCHECK %v does not target %s", argv, imageURL)
	}
	home := t.TempDir() // no CLI profile: the command must work without one
	probe := func() (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "tokmesh-cli"), args...)
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}

	if code, out := probe(); code == 0 {
		t.Fatalf("no server running: HEALTHCHECK exited 0\n%s", out)
	}

	dir := t.TempDir()
	key := filepath.Join(dir, "master.key")
	if out, err := exec.Command(filepath.Join(bin, "tokmesh-server"), "keygen", "--out", key).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	conf, err := filepath.Abs("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	srv := exec.Command(filepath.Join(bin, "tokmesh-server"),
		"--config", conf,
		"--data-dir", filepath.Join(dir, "data"),
		"--set", "security.encryption.key_file="+key,
		"--set", "server.http.address="+addr,
		"--set", "server.resp.address=127.0.0.1:0",
		"--set", "server.local.socket_path="+filepath.Join(dir, "data", "admin.sock"))
	srv.Env = []string{"HOME=" + home}
	srv.Dir = dir
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(45 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(stop)

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not answer /health: %v\n%s", err, log.String())
		}
		select {
		case err := <-exited:
			t.Fatalf("server exited: %v\n%s", err, log.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if code, out := probe(); code != 0 {
		t.Fatalf("server running: HEALTHCHECK exited %d\n%s", code, out)
	}

	stop()
	if code, out := probe(); code == 0 {
		t.Fatalf("server stopped: HEALTHCHECK exited 0\n%s", out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestArchives_CarryLicense: §2 archives hold README.md, LICENSE and the
// config; goreleaser names LICENSE exactly so a missing file fails the build.
func TestArchives_CarryLicense(t *testing.T) {
	if _, err := os.Stat(filepath.Join("..", "LICENSE")); err != nil {
		t.Errorf("LICENSE at the repository root: %v", err)
	}
	gr := readFile(t, filepath.Join("..", "goreleaser.yaml"))
	archives := gr[strings.Index(gr, "\narchives:"):]
	archives = archives[:strings.Index(archives, "\nchecksum:")]
	for _, want := range []string{"      - README.md\n", "      - LICENSE\n", "packaging/config.yaml"} {
		if !strings.Contains(archives, want) {
			t.Errorf("goreleaser.yaml archives.files lacks %q", strings.TrimSpace(want))
		}
	}
}

// lineDiff lists the lines only in want (-) or only in got (+), in order.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	inW, inG := map[string]int{}, map[string]int{}
	for _, l := range w {
		inW[l]++
	}
	for _, l := range g {
		inG[l]++
	}
	var b strings.Builder
	for _, l := range w {
		if inG[l] == 0 {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	for _, l := range g {
		if inW[l] == 0 {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	if b.Len() == 0 {
		b.WriteString("(same lines, different order or count)\n")
	}
	return b.String()
}
