package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/server"
	"github.com/yndnr/tokmesh-go/pkg/client"
)

// node is a real in-process TokMesh server for the integration tests.
type node struct {
	srv               *server.Server
	http, https, resp string
	respTLS           string // "" when the server has no RESP-TLS listener
	certFile, keyFile string
	issuer, validator string // API keys
	slowIssuer        string // issuer key limited to 20 req/s
}

func writeCert(dir string) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

var (
	sharedNode     *node
	sharedNodeOnce sync.Once
	sharedNodeErr  error
)

// startNode starts one node for the whole package (the listeners are
// stateless between runs: every run uses its own users).
func startNode(t *testing.T) *node {
	t.Helper()
	sharedNodeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tmbench")
		if err != nil {
			sharedNodeErr = err
			return
		}
		nodeDir = dir
		sharedNode, sharedNodeErr = newNode(dir, nil)
	})
	if sharedNodeErr != nil {
		t.Fatal(sharedNodeErr)
	}
	return sharedNode
}

var nodeDir string

// newNode starts a node in dir; tweak (may be nil) adjusts its
// configuration.
func newNode(dir string, tweak func(*config.Config)) (*node, error) {
	certFile, keyFile, err := writeCert(dir)
	if err != nil {
		return nil, err
	}
	c := config.Default()
	c.Storage.DataDir = filepath.Join(dir, "data")
	c.Server.HTTP.Address = "127.0.0.1:0"
	c.Server.HTTPS.Address = "127.0.0.1:0"
	c.Server.RESP.Address = "127.0.0.1:0"
	c.Server.RESPTLS.Address = "127.0.0.1:0"
	c.Server.TLS.CertFile, c.Server.TLS.KeyFile = certFile, keyFile
	c.Server.Shutdown.GracePeriod = 0
	c.Server.Local.SocketPath = filepath.Join(dir, "a.sock")
	c.Security.Auth.Argon2.Memory, c.Security.Auth.Argon2.Iterations, c.Security.Auth.Argon2.Parallelism = 8192, 1, 1
	c.Security.BruteForce.Exempt = []string{"127.0.0.0/8"} // --invalid-ratio sends unknown tokens
	if tweak != nil {
		tweak(c)
	}
	env := func(k string) string {
		if k == "TOKMESH_ENCRYPTION_KEY" {
			return strings.Repeat("5a", 32)
		}
		return ""
	}
	srv := server.New(c, server.Options{Getenv: env})
	if err := srv.Start(context.Background()); err != nil {
		return nil, err
	}
	n := &node{srv: srv, http: "http://" + srv.Addr("http").String(), https: "https://" + srv.Addr("https").String(),
		resp: srv.Addr("resp").String(), certFile: certFile, keyFile: keyFile}
	for _, name := range []string{"resp-tls", "resp_tls", "resptls"} {
		if a := srv.Addr(name); a != nil {
			n.respTLS = a.String()
		}
	}
	admin, err := client.New(client.Config{Target: "unix:" + c.Server.Local.SocketPath})
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	for _, k := range []struct {
		dst  *string
		role string
		rate int
	}{{&n.issuer, "issuer", 1000000}, {&n.validator, "validator", 1000000}, {&n.slowIssuer, "issuer", 20}} {
		nk, err := admin.CreateKey(context.Background(), client.CreateKeyRequest{Role: k.role, RateLimit: k.rate})
		if err != nil {
			return nil, err
		}
		*k.dst = nk.APIKey
	}
	return n, nil
}

func shortConfig(n *node, scenario, protocol string) Config {
	c := DefaultConfig()
	c.Scenario, c.Protocol, c.APIKey = scenario, protocol, n.issuer
	c.Target = n.http
	if protocol == ProtoRESP {
		c.Target = n.resp
	}
	c.Concurrency, c.Duration, c.Warmup, c.Preload = 8, 1500*time.Millisecond, 300*time.Millisecond, 300
	return c
}

// checkSane asserts what every healthy run must show.
func checkSane(t *testing.T, where string, m *Measurement) {
	t.Helper()
	if m.Requests == 0 || m.ThroughputRPS <= 0 {
		t.Errorf("%s: requests %d, throughput %.1f", where, m.Requests, m.ThroughputRPS)
	}
	if n := m.ErrorCount(); n != 0 {
		t.Errorf("%s: %d unexpected errors: %v", where, n, m.Errors)
	}
	ordered := func(name string, l Latency) {
		if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.Mean > 0 && l.Mean <= l.Max) {
			t.Errorf("%s %s: percentiles out of order: %+v", where, name, l)
		}
	}
	ordered("total", m.LatencyMS)
	var sum int64
	for op, o := range m.Operations {
		ordered(op, o.LatencyMS)
		sum += o.Requests
	}
	if sum != m.Requests {
		t.Errorf("%s: operations add up to %d of %d requests", where, sum, m.Requests)
	}
}

func runBench(t *testing.T, cfg Config) (*Report, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg, Output{Stdout: &out, Stderr: &errb})
	for _, secret := range []string{cfg.APIKey, cfg.RedisPassword} {
		if secret != "" && (strings.Contains(out.String(), secret) || strings.Contains(errb.String(), secret)) {
			t.Errorf("a secret appears in the output")
		}
	}
	if rep != nil {
		b, _ := os.ReadFile(cfg.ReportFile)
		if cfg.ReportFile != "" && (len(b) == 0 || strings.Contains(string(b), cfg.APIKey)) {
			t.Errorf("report file empty or holds the API key")
		}
	}
	return rep, out.String() + errb.String(), err
}

func TestScenarios_AgainstARealServer(t *testing.T) {
	n := startNode(t)
	for _, proto := range []string{ProtoHTTP, ProtoRESP} {
		for _, sc := range []string{ScenarioValidate, ScenarioCreate, ScenarioMixed, ScenarioRevokeStorm} {
			t.Run(proto+"/"+sc, func(t *testing.T) {
				cfg := shortConfig(n, sc, proto)
				cfg.ReportFile = filepath.Join(t.TempDir(), "report.json")
				if sc == ScenarioValidate {
					cfg.InvalidRatio = 0.1
					if proto == ProtoRESP {
						cfg.Pipeline, cfg.Touch = 4, true
					}
				}
				rep, out, err := runBench(t, cfg)
				if err != nil {
					t.Fatalf("exit %d: %v\n%s", ExitCode(err), err, out)
				}
				checkSane(t, sc, &rep.Measurement)
				// 07-tools §2: the storm revokes the preloaded sessions, one by one.
				want := map[string][]string{
					ScenarioValidate:    {"validate"},
					ScenarioCreate:      {"create"},
					ScenarioMixed:       {"validate", "create", "touch", "renew", "revoke"},
					ScenarioRevokeStorm: {"validate", "revoke"},
				}[sc]
				for _, op := range want {
					if rep.Operations[op].Requests == 0 {
						t.Errorf("no %s operations: %v", op, rep.Operations)
					}
				}
				if sc == ScenarioRevokeStorm {
					// Every preloaded session revoked once, by its ID; no per-user revokes.
					if n := rep.Operations["revoke"].Requests; n != int64(cfg.Preload) {
						t.Errorf("%d revokes for %d preloaded sessions", n, cfg.Preload)
					}
					if _, ok := rep.Operations["revoke_all"]; ok {
						t.Errorf("revoke_all operations in a storm: %v", rep.Operations)
					}
					if rep.StaleValidAfterAck == nil || *rep.StaleValidAfterAck != 0 {
						t.Errorf("stale_valid_after_ack: %v", rep.StaleValidAfterAck)
					}
					v := rep.RevocationVisibility
					if v == nil || v.Count == 0 || v.P50 > v.P99 || v.P99 > v.Max {
						t.Errorf("visibility table: %+v", v)
					}
					if !strings.Contains(out, "revocation visibility") {
						t.Errorf("summary has no visibility row:\n%s", out)
					}
				} else if rep.StaleValidAfterAck != nil || rep.RevocationVisibility != nil {
					t.Errorf("storm fields in a %s report", sc)
				}
				if _, err := ReadReport(cfg.ReportFile); err != nil {
					t.Error(err)
				}
				if rep.DurationS < 1.4 || rep.DurationS > 1.7 {
					t.Errorf("duration_s %.3f for --duration 1.5s", rep.DurationS)
				}
			})
		}
	}
}

func TestOpenLoop_AgainstARealServer(t *testing.T) {
	n := startNode(t)
	cfg := shortConfig(n, ScenarioValidate, ProtoRESP)
	cfg.Rate = 1000
	rep, out, err := runBench(t, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	checkSane(t, "open loop", &rep.Measurement)
	if rep.Rate != 1000 || rep.ThroughputRPS < 950 || rep.ThroughputRPS > 1050 {
		t.Fatalf("open loop at 1000/s achieved %.1f", rep.ThroughputRPS)
	}
}

// tlsProxy terminates TLS in front of a plaintext RESP port, for servers
// without their own RESP-TLS listener.
func tlsProxy(t *testing.T, backend, certFile, keyFile string) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(b, c); b.Close() }()
			go func() { defer wg.Done(); io.Copy(c, b); c.Close() }()
		}
	}()
	return l.Addr().String()
}

func TestTLSProtocols_HTTPSAndRESPTLS(t *testing.T) {
	n := startNode(t)
	cfg := shortConfig(n, ScenarioValidate, ProtoHTTPS)
	cfg.Target, cfg.CAFile, cfg.Duration = n.https, n.certFile, time.Second
	rep, out, err := runBench(t, cfg)
	if err != nil {
		t.Fatalf("https: %v\n%s", err, out)
	}
	checkSane(t, "https", &rep.Measurement)

	addr := n.respTLS
	if addr == "" {
		addr = tlsProxy(t, n.resp, n.certFile, n.keyFile)
		t.Log("resp-tls: the server has no RESP-TLS listener; going through a TLS-terminating proxy")
	} else {
		t.Log("resp-tls: the server's own RESP-TLS listener")
	}
	cfg = shortConfig(n, ScenarioValidate, ProtoRESPTLS)
	cfg.Target, cfg.CAFile, cfg.Duration, cfg.Pipeline = addr, n.certFile, time.Second, 8
	rep, out, err = runBench(t, cfg)
	if err != nil {
		t.Fatalf("resp-tls: %v\n%s", err, out)
	}
	checkSane(t, "resp-tls", &rep.Measurement)

	// Without the CA the server's certificate is not trusted: unreachable.
	cfg.CAFile = ""
	if _, _, err := runBench(t, cfg); ExitCode(err) != ExitUnavailable {
		t.Fatalf("untrusted certificate: exit %d (%v)", ExitCode(err), err)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startRedis starts a real redis-server on a free loopback port.
func startRedis(t *testing.T, password string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed (apt-get install redis-server): skipping the --target-redis test")
	}
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}
	if password != "" {
		args = append(args, "--requirepass", password)
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("redis-server did not start on %s", addr)
	return ""
}

func TestTargetRedis_SideBySideRatios(t *testing.T) {
	n := startNode(t)
	addr := startRedis(t, "s3cret-redis")
	for _, sc := range []string{ScenarioValidate, ScenarioRevokeStorm} {
		t.Run(sc, func(t *testing.T) {
			cfg := shortConfig(n, sc, ProtoRESP)
			cfg.Duration = time.Second
			cfg.TargetRedis, cfg.RedisPassword = addr, "s3cret-redis"
			cfg.ReportFile = filepath.Join(t.TempDir(), "r.json")
			rep, out, err := runBench(t, cfg)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			checkSane(t, "tokmesh", &rep.Measurement)
			if rep.Redis == nil || rep.Ratio == nil {
				t.Fatalf("no redis side: %+v", rep)
			}
			checkSane(t, "redis", &rep.Redis.Measurement)
			if rep.Ratio.Throughput <= 0 || rep.Ratio.P99 <= 0 || !strings.Contains(out, "ratio tokmesh/redis") {
				t.Fatalf("ratio %+v\n%s", rep.Ratio, out)
			}
			if sc == ScenarioRevokeStorm && (rep.Redis.StaleValidAfterAck == nil || *rep.Redis.StaleValidAfterAck != 0 || rep.Redis.RevocationVisibility.Count == 0) {
				t.Fatalf("redis storm: %+v", rep.Redis.Measurement)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		cfg := shortConfig(n, ScenarioValidate, ProtoRESP)
		cfg.TargetRedis, cfg.RedisPassword = addr, "wrong"
		if _, out, err := runBench(t, cfg); ExitCode(err) != ExitFailed || !strings.Contains(err.Error(), "redis") {
			t.Fatalf("exit %d: %v\n%s", ExitCode(err), err, out)
		}
	})
}

func TestSetupFailures_ExitCodes(t *testing.T) {
	n := startNode(t)
	t.Run("validator key for create names the issuer role", func(t *testing.T) {
		cfg := shortConfig(n, ScenarioCreate, ProtoRESP)
		cfg.APIKey = n.validator
		_, _, err := runBench(t, cfg)
		if ExitCode(err) != ExitFailed || !strings.Contains(err.Error(), "issuer") {
			t.Fatalf("exit %d: %v", ExitCode(err), err)
		}
	})
	t.Run("validator key for validate with preload names the issuer role", func(t *testing.T) {
		cfg := shortConfig(n, ScenarioValidate, ProtoHTTP)
		cfg.APIKey = n.validator
		_, _, err := runBench(t, cfg)
		if ExitCode(err) != ExitFailed || !strings.Contains(err.Error(), "issuer") {
			t.Fatalf("exit %d: %v", ExitCode(err), err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		cfg := shortConfig(n, ScenarioValidate, ProtoRESP)
		id, _, _ := strings.Cut(n.issuer, ":")
		cfg.APIKey = id + ":tmas_not_the_secret"
		_, out, err := runBench(t, cfg)
		if ExitCode(err) != ExitFailed || !strings.Contains(err.Error(), "TM-AUTH-4011") || strings.Contains(out+err.Error(), "not_the_secret") {
			t.Fatalf("exit %d: %v", ExitCode(err), err)
		}
	})
	t.Run("unreachable tokmesh", func(t *testing.T) {
		for _, proto := range []string{ProtoHTTP, ProtoRESP} {
			cfg := shortConfig(n, ScenarioValidate, proto)
			cfg.Target = freePort(t)
			if proto == ProtoHTTP {
				cfg.Target = "http://" + cfg.Target
			}
			if _, _, err := runBench(t, cfg); ExitCode(err) != ExitUnavailable {
				t.Fatalf("%s: exit %d: %v", proto, ExitCode(err), err)
			}
		}
	})
	t.Run("unreachable redis fails before measuring", func(t *testing.T) {
		cfg := shortConfig(n, ScenarioValidate, ProtoRESP)
		cfg.TargetRedis = freePort(t)
		start := time.Now()
		if _, _, err := runBench(t, cfg); ExitCode(err) != ExitUnavailable || time.Since(start) > cfg.Duration {
			t.Fatalf("exit %d after %v: %v", ExitCode(err), time.Since(start), err)
		}
	})
	t.Run("error rate above the limit", func(t *testing.T) {
		cfg := shortConfig(n, ScenarioCreate, ProtoHTTP)
		cfg.APIKey, cfg.Preload, cfg.Duration, cfg.Warmup = n.slowIssuer, 0, time.Second, 0
		rep, _, err := runBench(t, cfg)
		if ExitCode(err) != ExitFailed || rep == nil || rep.Errors["TM-SYS-4290"] == 0 {
			t.Fatalf("exit %d: %v, report %+v", ExitCode(err), err, rep)
		}
	})
}
