package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// writePEMPair writes a self-signed certificate valid until notAfter and its
// key, returning both paths.
func writePEMPair(t *testing.T, dir, name string, notAfter time.Time) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             notAfter.Add(-48 * time.Hour),
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath = filepath.Join(dir, name+".crt")
	keyPath = filepath.Join(dir, name+".key")
	writeFile(t, certPath, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	writeFile(t, keyPath, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})), 0o600)
	return certPath, keyPath
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask-independent
		t.Fatal(err)
	}
}

const testKeyHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

type want struct{ code, key string }

func errSet(errs []*Error) []want {
	out := make([]want, 0, len(errs))
	for _, e := range errs {
		out = append(out, want{e.Code, e.Key})
	}
	slices.SortFunc(out, func(a, b want) int { return strings.Compare(a.code+a.key, b.code+b.key) })
	return out
}

func TestValidate_Rules(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	cert, key := writePEMPair(t, dir, "server", now.Add(365*24*time.Hour))
	otherCert, otherKey := writePEMPair(t, dir, "other", now.Add(365*24*time.Hour))
	_ = otherCert
	oldCert, oldKey := writePEMPair(t, dir, "old", now.Add(-time.Hour))
	nodeCert, nodeKey := writePEMPair(t, dir, "node", now.Add(365*24*time.Hour))
	garbage := filepath.Join(dir, "garbage.pem")
	writeFile(t, garbage, "not a PEM file\n", 0o644)
	missing := filepath.Join(dir, "missing.pem")

	goodKey := filepath.Join(dir, "good.key")
	writeFile(t, goodKey, testKeyHex+"\n", 0o600)
	groupKey := filepath.Join(dir, "group.key")
	writeFile(t, groupKey, testKeyHex+"\n", 0o640)
	openKey := filepath.Join(dir, "open.key")
	writeFile(t, openKey, testKeyHex+"\n", 0o644)
	badKey := filepath.Join(dir, "bad.key")
	writeFile(t, badKey, "not hex\n", 0o600)

	withTLS := func(c *Config) { c.Server.TLS.CertFile, c.Server.TLS.KeyFile = cert, key }
	withCluster := func(c *Config) {
		c.Cluster.Enabled = true
		c.Cluster.AdvertiseAddress = "10.0.0.11:5343"
		c.Cluster.TLS.CertFile, c.Cluster.TLS.KeyFile, c.Cluster.TLS.CAFile = nodeCert, nodeKey, nodeCert
	}

	tests := []struct {
		name    string
		mutate  func(c *Config)
		environ []string
		want    []want
	}{
		{"defaults are valid", func(c *Config) {}, nil, nil},

		// Per-key ranges, enums and formats (TM-CFG-1002).
		{"ttl max above 8760h", func(c *Config) { c.Session.TTL.Max = 9000 * time.Hour }, nil, []want{{CodeOutOfRange, "session.ttl.max"}}},
		// TTLs are whole seconds (01 §2): no silent truncation.
		{"ttl default not whole seconds", func(c *Config) { c.Session.TTL.Default = 1500 * time.Millisecond }, nil, []want{{CodeOutOfRange, "session.ttl.default"}}},
		{"idle default not whole seconds", func(c *Config) { c.Session.TTL.IdleDefault = 2500 * time.Millisecond }, nil, []want{{CodeOutOfRange, "session.ttl.idle_default"}}},
		{"ttl max not whole seconds", func(c *Config) { c.Session.TTL.Max = time.Hour + time.Millisecond }, nil, []want{{CodeOutOfRange, "session.ttl.max"}}},
		{"ttl whole seconds", func(c *Config) { c.Session.TTL.Default, c.Session.TTL.IdleDefault = 90*time.Second, 1500*time.Second }, nil, nil},
		{"sync interval too short", func(c *Config) { c.Storage.WAL.SyncInterval = 0 }, nil, []want{{CodeOutOfRange, "storage.wal.sync_interval"}}},
		{"body size above 1MiB", func(c *Config) { c.Server.Limits.MaxBodySize = 2 * MiB }, nil, []want{{CodeOutOfRange, "server.limits.max_body_size"}}},
		{"rate below 1Kbps", func(c *Config) { c.Cluster.Rebalance.MaxRate = 500 }, nil, []want{{CodeOutOfRange, "cluster.rebalance.max_rate"}}},
		{"sampling ratio above 1", func(c *Config) { c.Telemetry.Tracing.SamplingRatio = 1.5 }, nil, []want{{CodeOutOfRange, "telemetry.tracing.sampling_ratio"}}},
		{"trailing logs below 100", func(c *Config) { c.Cluster.Raft.TrailingLogs = 10 }, nil, []want{{CodeOutOfRange, "cluster.raft.trailing_logs"}}},
		{"retain below 2", func(c *Config) { c.Storage.Snapshot.Retain = 1 }, nil, []want{{CodeOutOfRange, "storage.snapshot.retain"}}},
		{"retention 0 keeps forever", func(c *Config) { c.Storage.Backup.RetentionDays = 0 }, nil, nil},
		{"sync mode not in enum", func(c *Config) { c.Storage.WAL.SyncMode = "sometimes" }, nil, []want{{CodeOutOfRange, "storage.wal.sync_mode"}}},
		{"voters 4", func(c *Config) { c.Cluster.Voters = 4 }, nil, []want{{CodeOutOfRange, "cluster.voters"}}},
		{"voters 5", func(c *Config) { c.Cluster.Voters = 5 }, nil, nil},
		{"log level", func(c *Config) { c.Telemetry.Logging.Level = "trace" }, nil, []want{{CodeOutOfRange, "telemetry.logging.level"}}},
		{"empty data dir", func(c *Config) { c.Storage.DataDir = "" }, nil, []want{{CodeOutOfRange, "storage.data_dir"}}},
		{"bad listener address", func(c *Config) { c.Server.HTTP.Address = "localhost" }, nil, []want{{CodeOutOfRange, "server.http.address"}}},
		{"bad port", func(c *Config) { c.Server.RESP.Address = "127.0.0.1:70000" }, nil, []want{{CodeOutOfRange, "server.resp.address"}}},
		{"bad CIDR", func(c *Config) { c.Security.Network.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.0/33"} }, nil, []want{{CodeOutOfRange, "security.network.trusted_proxies"}}},
		{"IPs and CIDRs", func(c *Config) {
			c.Security.Auth.AllowList = []string{"10.0.0.1", "::1", "192.168.0.0/16"}
			c.Security.BruteForce.Exempt = []string{"2001:db8::/32"}
		}, nil, nil},
		{"node id pattern", func(c *Config) { c.Cluster.NodeID = "node-1" }, nil, []want{{CodeOutOfRange, "cluster.node_id"}}},
		{"node id upper case", func(c *Config) { c.Cluster.NodeID = "tmnd-ABC" }, nil, []want{{CodeOutOfRange, "cluster.node_id"}}},
		{"node id too long", func(c *Config) { c.Cluster.NodeID = "tmnd-" + strings.Repeat("a", 59) }, nil, []want{{CodeOutOfRange, "cluster.node_id"}}},
		{"node id ok", func(c *Config) { c.Cluster.NodeID = "tmnd-" + strings.Repeat("a", 58) }, nil, nil},
		{"advertise wildcard", func(c *Config) { withCluster(c); c.Cluster.AdvertiseAddress = "0.0.0.0:5343" }, nil, []want{{CodeOutOfRange, "cluster.advertise_address"}}},
		{"tracing endpoint bad", func(c *Config) { c.Telemetry.Tracing.Endpoint = "http://" }, nil, []want{{CodeOutOfRange, "telemetry.tracing.endpoint"}}},
		{"tracing endpoint host:port", func(c *Config) {
			c.Telemetry.Tracing.Enabled, c.Telemetry.Tracing.Endpoint = true, "otel-collector:4317"
		}, nil, nil},
		{"pipe name", func(c *Config) { c.Server.Local.PipeName = "tokmesh" }, nil, []want{{CodeOutOfRange, "server.local.pipe_name"}}},

		// Cross-key conflicts (TM-CFG-1005).
		{"ttl default above max", func(c *Config) { c.Session.TTL.Default = 800 * time.Hour }, nil, []want{{CodeConflict, "session.ttl.default"}}},
		{"idle default above max", func(c *Config) {
			c.Session.TTL.Max = time.Hour
			c.Session.TTL.Default = time.Hour
			c.Session.TTL.IdleDefault = 2 * time.Hour
		}, nil, []want{{CodeConflict, "session.ttl.idle_default"}}},
		{"ttl default equal max", func(c *Config) { c.Session.TTL.Default = 720 * time.Hour }, nil, nil},
		{"grace above timeout", func(c *Config) { c.Server.Shutdown.GracePeriod = 60 * time.Second }, nil, []want{{CodeConflict, "server.shutdown.grace_period"}}},
		{"nonce ttl below 2x window", func(c *Config) { c.Security.AntiReplay.NonceTTL = 59 * time.Second }, nil, []want{{CodeConflict, "security.anti_replay.nonce_ttl"}}},
		{"plaintext http on 0.0.0.0", func(c *Config) { c.Server.HTTP.Address = "0.0.0.0:5080" }, nil, []want{{CodeConflict, "server.http.address"}}},
		{"plaintext resp on empty host", func(c *Config) { c.Server.RESP.Address = ":6379" }, nil, []want{{CodeConflict, "server.resp.address"}}},
		{"plaintext http on public IP", func(c *Config) { c.Server.HTTP.Address = "10.1.2.3:5080" }, nil, []want{{CodeConflict, "server.http.address"}}},
		{"plaintext disabled listener not checked", func(c *Config) { c.Server.HTTP.Enabled = false; c.Server.HTTP.Address = "0.0.0.0:5080" }, nil, nil},
		{"allow_insecure_public permits", func(c *Config) { c.Server.AllowInsecurePublic = true; c.Server.HTTP.Address = "0.0.0.0:5080" }, nil, nil},
		{"loopback forms", func(c *Config) { c.Server.HTTP.Address = "localhost:5080"; c.Server.RESP.Address = "[::1]:6379" }, nil, nil},
		{"127.0.0.2 is loopback", func(c *Config) { c.Server.HTTP.Address = "127.0.0.2:5080" }, nil, nil},
		{"port clash same host", func(c *Config) { c.Server.RESP.Address = "127.0.0.1:5080" }, nil, []want{{CodeConflict, "server.resp.address"}}},
		{"port clash localhost vs 127.0.0.1", func(c *Config) { c.Server.RESP.Address = "localhost:5080" }, nil, []want{{CodeConflict, "server.resp.address"}}},
		{"port clash wildcard", func(c *Config) {
			c.Server.AllowInsecurePublic = true
			c.Server.HTTP.Address = "0.0.0.0:5080"
			c.Server.RESP.Address = "127.0.0.1:5080"
		}, nil, []want{{CodeConflict, "server.resp.address"}}},
		{"different loopback IPs do not clash", func(c *Config) { c.Server.RESP.Address = "127.0.0.2:5080" }, nil, nil},
		{"ipv4 wildcard vs ::1 do not clash", func(c *Config) {
			c.Server.AllowInsecurePublic = true
			c.Server.HTTP.Address = "0.0.0.0:5080"
			c.Server.RESP.Address = "[::1]:5080"
		}, nil, nil},
		{"dual-stack wildcard clashes", func(c *Config) {
			c.Server.AllowInsecurePublic = true
			c.Server.HTTP.Address = "[::]:5080"
			c.Server.RESP.Address = "127.0.0.1:5080"
		}, nil, []want{{CodeConflict, "server.resp.address"}}},
		{"port 0 never clashes", func(c *Config) { c.Server.HTTP.Address = "127.0.0.1:0"; c.Server.RESP.Address = "127.0.0.1:0" }, nil, nil},
		{"https without TLS does not count", func(c *Config) { c.Server.HTTPS.Address = "127.0.0.1:5080" }, nil, nil},
		{"https with TLS clashes", func(c *Config) { withTLS(c); c.Server.HTTPS.Address = "127.0.0.1:5080" }, nil, []want{{CodeConflict, "server.https.address"}}},
		{"resp_tls with TLS clashes", func(c *Config) { withTLS(c); c.Server.RESPTLS.Address = "127.0.0.1:5443" }, nil, []want{{CodeConflict, "server.resp_tls.address"}}},
		{"disabled cluster port does not count", func(c *Config) { c.Cluster.ListenAddress = "127.0.0.1:5080" }, nil, nil},
		{"enabled cluster port clashes", func(c *Config) { withCluster(c); c.Cluster.ListenAddress = "0.0.0.0:6379" }, nil, []want{{CodeConflict, "cluster.listen_address"}}},
		{"seeds with cluster disabled", func(c *Config) { c.Cluster.Seeds = []string{"10.0.0.1:5343"} }, nil, []want{{CodeConflict, "cluster.seeds"}}},
		{"bad seed", func(c *Config) { withCluster(c); c.Cluster.Seeds = []string{"10.0.0.1:5343", "10.0.0.2"} }, nil, []want{{CodeOutOfRange, "cluster.seeds"}}},

		// Missing dependencies (TM-CFG-1006).
		{"cert without key", func(c *Config) { c.Server.TLS.CertFile = cert }, nil, []want{{CodeMissingDependency, "server.tls.key_file"}}},
		{"key without cert", func(c *Config) { c.Server.TLS.KeyFile = key }, nil, []want{{CodeMissingDependency, "server.tls.cert_file"}}},
		{"cluster tls cert without key, cluster off", func(c *Config) { c.Cluster.TLS.CertFile = nodeCert }, nil, []want{{CodeMissingDependency, "cluster.tls.key_file"}}},
		{"client_auth require without CA", func(c *Config) { withTLS(c); c.Server.TLS.ClientAuth = "require" }, nil, []want{{CodeMissingDependency, "server.tls.client_auth"}}},
		{"client_auth require without TLS is not checked", func(c *Config) { c.Server.TLS.ClientAuth = "require" }, nil, nil},
		{"client_auth require with CA", func(c *Config) {
			withTLS(c)
			c.Server.TLS.ClientAuth = "require"
			c.Server.TLS.ClientCAFile = otherCert
		}, nil, nil},
		{"cluster without advertise and TLS", func(c *Config) { c.Cluster.Enabled = true }, nil, []want{
			{CodeMissingDependency, "cluster.advertise_address"}, {CodeMissingDependency, "cluster.tls.ca_file"},
			{CodeMissingDependency, "cluster.tls.cert_file"}, {CodeMissingDependency, "cluster.tls.key_file"},
		}},
		{"cluster complete", func(c *Config) { withCluster(c); c.Cluster.Seeds = []string{"10.0.0.11:5343", "node2.example:5343"} }, nil, nil},
		{"tracing without endpoint", func(c *Config) { c.Telemetry.Tracing.Enabled = true }, nil, []want{{CodeMissingDependency, "telemetry.tracing.endpoint"}}},

		// TLS files (TM-CFG-1003, 1007, 1008).
		{"valid TLS pair", withTLS, nil, nil},
		{"cert file missing", func(c *Config) { withTLS(c); c.Server.TLS.CertFile = missing }, nil, []want{{CodeFileUnreadable, "server.tls.cert_file"}}},
		{"both files missing", func(c *Config) { c.Server.TLS.CertFile, c.Server.TLS.KeyFile = missing, missing+"2" }, nil, []want{{CodeFileUnreadable, "server.tls.cert_file"}, {CodeFileUnreadable, "server.tls.key_file"}}},
		{"cert and key mismatch", func(c *Config) { c.Server.TLS.CertFile, c.Server.TLS.KeyFile = cert, otherKey }, nil, []want{{CodeInvalidPEM, "server.tls.cert_file"}}},
		{"garbage PEM", func(c *Config) { c.Server.TLS.CertFile, c.Server.TLS.KeyFile = garbage, key }, nil, []want{{CodeInvalidPEM, "server.tls.cert_file"}}},
		{"expired cert", func(c *Config) { c.Server.TLS.CertFile, c.Server.TLS.KeyFile = oldCert, oldKey }, nil, []want{{CodeCertExpired, "server.tls.cert_file"}}},
		{"client CA garbage", func(c *Config) { withTLS(c); c.Server.TLS.ClientCAFile = garbage }, nil, []want{{CodeInvalidPEM, "server.tls.client_ca_file"}}},
		{"client CA missing", func(c *Config) { withTLS(c); c.Server.TLS.ClientCAFile = missing }, nil, []want{{CodeFileUnreadable, "server.tls.client_ca_file"}}},
		{"client CA not checked without TLS", func(c *Config) { c.Server.TLS.ClientCAFile = missing }, nil, nil},
		{"cluster expired cert", func(c *Config) { withCluster(c); c.Cluster.TLS.CertFile, c.Cluster.TLS.KeyFile = oldCert, oldKey }, nil, []want{{CodeCertExpired, "cluster.tls.cert_file"}}},
		{"cluster CA missing", func(c *Config) { withCluster(c); c.Cluster.TLS.CAFile = missing }, nil, []want{{CodeFileUnreadable, "cluster.tls.ca_file"}}},
		{"cluster files not checked when disabled", func(c *Config) {
			c.Cluster.TLS.CertFile, c.Cluster.TLS.KeyFile, c.Cluster.TLS.CAFile = missing, missing, missing
		}, nil, nil},

		// Master key file (TM-CFG-1003, 1004).
		{"key file ok", func(c *Config) { c.Security.Encryption.KeyFile = goodKey }, []string{}, nil},
		{"key file 0640 ok", func(c *Config) { c.Security.Encryption.KeyFile = groupKey }, []string{}, nil},
		{"key file missing", func(c *Config) { c.Security.Encryption.KeyFile = missing }, []string{}, []want{{CodeFileUnreadable, "security.encryption.key_file"}}},
		{"key file bad content", func(c *Config) { c.Security.Encryption.KeyFile = badKey }, []string{}, []want{{CodeOutOfRange, "security.encryption.key_file"}}},
		{"key file ignored when env key set", func(c *Config) { c.Security.Encryption.KeyFile = missing }, []string{"TOKMESH_ENCRYPTION_KEY=" + testKeyHex}, nil},
		{"env key malformed", func(c *Config) {}, []string{"TOKMESH_ENCRYPTION_KEY=abc"}, []want{{CodeOutOfRange, "TOKMESH_ENCRYPTION_KEY"}}},

		// Local socket path length.
		{"socket path too long", func(c *Config) { c.Server.Local.SocketPath = "/" + strings.Repeat("s", 104) }, nil, []want{{CodeOutOfRange, "server.local.socket_path"}}},
		{"derived socket path too long", func(c *Config) { c.Storage.DataDir = "/" + strings.Repeat("d", 100) }, nil, []want{{CodeOutOfRange, "server.local.socket_path"}}},
		{"long path fine when local disabled", func(c *Config) {
			c.Server.Local.Enabled = false
			c.Server.Local.SocketPath = "/" + strings.Repeat("s", 200)
		}, nil, nil},

		// Several problems at once are all reported.
		{"all errors reported", func(c *Config) {
			c.Session.TTL.Default = 800 * time.Hour
			c.Storage.WAL.SyncMode = "bogus"
			c.Server.HTTP.Address = "0.0.0.0:5080"
			c.Cluster.Seeds = []string{"10.0.0.1:5343"}
		}, nil, []want{
			{CodeOutOfRange, "storage.wal.sync_mode"}, {CodeConflict, "cluster.seeds"},
			{CodeConflict, "server.http.address"}, {CodeConflict, "session.ttl.default"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && strings.Contains(tt.name, "socket") {
				t.Skip("no Unix socket on Windows")
			}
			c := Default()
			tt.mutate(c)
			env := tt.environ
			if env == nil {
				env = []string{}
			}
			got := errSet(c.ValidateWith(ValidateOptions{Environ: env, Now: now}))
			wantSorted := append([]want(nil), tt.want...)
			slices.SortFunc(wantSorted, func(a, b want) int { return strings.Compare(a.code+a.key, b.code+b.key) })
			if !slices.Equal(got, wantSorted) {
				t.Errorf("errors = %v\nwant     %v\nfull: %v", got, wantSorted, c.ValidateWith(ValidateOptions{Environ: env, Now: now}))
			}
		})
	}
}

func TestValidate_KeyFilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX permissions")
	}
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o644, 0o604, 0o620, 0o602, 0o666} {
		p := filepath.Join(dir, "k"+mode.String())
		writeFile(t, p, testKeyHex+"\n", mode)
		c := Default()
		c.Security.Encryption.KeyFile = p
		got := errSet(c.ValidateWith(ValidateOptions{Environ: []string{}}))
		if !slices.Equal(got, []want{{CodeUnsafePermissions, "security.encryption.key_file"}}) {
			t.Errorf("mode %04o: %v", mode, got)
		}
	}
}

func TestValidate_EnvKeyNeverEchoed(t *testing.T) {
	const secretish = "zz0123456789" // malformed key material
	errs := Default().ValidateWith(ValidateOptions{Environ: []string{"TOKMESH_ENCRYPTION_KEY=" + secretish}})
	if len(errs) != 1 {
		t.Fatalf("errs = %v", errs)
	}
	if strings.Contains(errs[0].Error(), secretish) {
		t.Fatalf("error echoes key material: %s", errs[0])
	}
}

func TestWarnings(t *testing.T) {
	c := Default()
	if w := c.Warnings(); len(w) != 0 {
		t.Fatalf("default warnings: %v", w)
	}
	c.Server.AllowInsecurePublic = true
	c.Server.HTTP.Address = "0.0.0.0:5080"
	c.Server.Local.Enabled = false
	w := c.Warnings()
	if len(w) != 3 || !strings.Contains(w[0], "server.http.address") || !strings.Contains(w[1], "HTTPS is off") ||
		!strings.Contains(w[2], "server.local.enabled") {
		t.Fatalf("warnings: %q", w)
	}
}

// 09-observability §2: HTTPS off while any listener that will start binds a
// non-loopback address is a startup WARN; loopback-only nodes, nodes with
// HTTPS running and listeners that do not start give none.
func TestWarnings_HTTPSOffWithNonLoopbackListener(t *testing.T) {
	certFile, keyFile := "/etc/tokmesh/server.crt", "/etc/tokmesh/server.key"
	cases := []struct {
		name string
		set  func(c *Config)
		want string // key named in the warning; "" = no HTTPS warning
	}{
		{"defaults", func(c *Config) {}, ""},
		{"public plaintext HTTP", func(c *Config) {
			c.Server.AllowInsecurePublic = true
			c.Server.HTTP.Address = "0.0.0.0:5080"
		}, "server.http.address"},
		{"public plaintext RESP", func(c *Config) {
			c.Server.AllowInsecurePublic = true
			c.Server.RESP.Address = "10.0.0.5:6379"
		}, "server.resp.address"},
		{"public RESP-TLS, HTTPS disabled", func(c *Config) {
			c.Server.TLS.CertFile, c.Server.TLS.KeyFile = certFile, keyFile
			c.Server.HTTPS.Enabled = false
			c.Server.RESPTLS.Address = "0.0.0.0:6380"
		}, "server.resp_tls.address"},
		{"public cluster port, no TLS material", func(c *Config) {
			c.Cluster.Enabled = true
			c.Cluster.ListenAddress = "10.0.0.11:5343"
		}, "cluster.listen_address"},
		{"public RESP-TLS with HTTPS running", func(c *Config) {
			c.Server.TLS.CertFile, c.Server.TLS.KeyFile = certFile, keyFile
			c.Server.RESPTLS.Address = "0.0.0.0:6380"
		}, ""},
		{"public RESP-TLS address without TLS material (does not start)", func(c *Config) {
			c.Server.RESPTLS.Address = "0.0.0.0:6380"
		}, ""},
		{"public cluster address, cluster disabled", func(c *Config) {
			c.Cluster.ListenAddress = "0.0.0.0:5343"
		}, ""},
		{"public plaintext HTTP, listener disabled", func(c *Config) {
			c.Server.HTTP.Enabled = false
			c.Server.HTTP.Address = "0.0.0.0:5080"
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.set(c)
			var https []string
			for _, w := range c.Warnings() {
				if strings.Contains(w, "HTTPS is off") {
					https = append(https, w)
				}
			}
			switch {
			case tc.want == "" && len(https) != 0:
				t.Fatalf("unexpected HTTPS warning: %q", https)
			case tc.want != "" && (len(https) != 1 || !strings.Contains(https[0], tc.want)):
				t.Fatalf("HTTPS warnings %q, want one naming %s", https, tc.want)
			}
		})
	}
}

func TestError_Format(t *testing.T) {
	e := &Error{Code: CodeOutOfRange, Key: "session.ttl.max", Value: "9000h", Message: "out of range", Expected: "1s to 8760h", Source: "TOKMESH_SESSION__TTL__MAX"}
	want := `TM-CFG-1002 session.ttl.max: out of range (value "9000h" from TOKMESH_SESSION__TTL__MAX, expected 1s to 8760h)`
	if e.Error() != want {
		t.Fatalf("got  %s\nwant %s", e.Error(), want)
	}
	e = &Error{Code: CodeMissingDependency, Key: "cluster.advertise_address", Message: "required", Expected: "host:port"}
	if got := e.Error(); got != "TM-CFG-1006 cluster.advertise_address: required (expected host:port)" {
		t.Fatalf("got %s", got)
	}
}
