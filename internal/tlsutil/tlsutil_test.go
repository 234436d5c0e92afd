package tlsutil

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ---- certificate fixtures ---------------------------------------------------

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial atomic.Int64

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newCA(t *testing.T, name string) *ca {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &ca{cert: c, key: k, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

type leafOpts struct {
	notBefore, notAfter time.Time
	client              bool
}

// issue returns a PEM certificate and key signed by c.
func (c *ca) issue(t *testing.T, cn string, o leafOpts) (certPEM, keyPEM []byte) {
	t.Helper()
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(90 * 24 * time.Hour)
	}
	k := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	if o.client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &k.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func (c *ca) clientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	cp, kp := c.issue(t, cn, leafOpts{client: true})
	cert, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// writeAtomic replaces path the way cert managers do: temp file + rename.
func writeAtomic(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type files struct{ cert, key, ca string }

func writeFiles(t *testing.T, dir string, certPEM, keyPEM, caPEM []byte) files {
	t.Helper()
	f := files{cert: filepath.Join(dir, "tls.crt"), key: filepath.Join(dir, "tls.key")}
	writeAtomic(t, f.cert, certPEM)
	writeAtomic(t, f.key, keyPEM)
	if caPEM != nil {
		f.ca = filepath.Join(dir, "ca.crt")
		writeAtomic(t, f.ca, caPEM)
	}
	return f
}

// ---- a real TLS echo server -------------------------------------------------

type echoServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startEcho(t *testing.T, cfg *tls.Config) *echoServer {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				io.Copy(c, c) // handshake happens on first read; errors end the copy
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

// clientConfig trusts roots and optionally presents a client certificate.
func clientConfig(roots *ca, cert *tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(roots.cert)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// conn is an open client connection.
type conn struct {
	*tls.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string, cfg *tls.Config) (*conn, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	cc := &conn{Conn: c, r: bufio.NewReader(c)}
	// With TLS 1.3 a rejected client certificate shows on the first read.
	if err := cc.ping(); err != nil {
		c.Close()
		return nil, err
	}
	return cc, nil
}

func (c *conn) ping() error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return errors.New("bad echo " + line)
	}
	return nil
}

func (c *conn) serverCN() string {
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// servedCN dials a fresh connection and returns the CN the server presented.
func servedCN(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	c, err := dial(t, addr, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	return c.serverCN()
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger() (*slog.Logger, *logBuf) {
	lb := &logBuf{}
	return slog.New(slog.NewJSONHandler(lb, nil)), lb
}

// ---- tests ------------------------------------------------------------------

func TestReloader_ReplacedFilesServeNewConnectionsOpenOneKeepsWorking(t *testing.T) {
	root := newCA(t, "root")
	dir := t.TempDir()
	certA, keyA := root.issue(t, "cert-a", leafOpts{})
	f := writeFiles(t, dir, certA, keyA, nil)
	var failures atomic.Int32
	log, _ := newLogger()
	r, err := NewReloader(Options{CertFile: f.cert, KeyFile: f.key, Logger: log, PollInterval: 50 * time.Millisecond,
		OnFailure: func(error) { failures.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	r.Start(context.Background())
	defer r.Close()
	srv := startEcho(t, r.TLSConfig())
	cfg := clientConfig(root, nil)

	open, err := dial(t, srv.addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if open.serverCN() != "cert-a" {
		t.Fatalf("served %s", open.serverCN())
	}

	certB, keyB := root.issue(t, "cert-b", leafOpts{})
	writeFiles(t, dir, certB, keyB, nil)
	start := time.Now()
	waitFor(t, 5*time.Second, "new certificate on new connections", func() bool { return servedCN(t, srv.addr(), cfg) == "cert-b" })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v, want within poll interval + debounce", d)
	}
	if err := open.ping(); err != nil {
		t.Fatalf("open connection broke: %v", err)
	}
	if open.serverCN() != "cert-a" {
		t.Fatal("open connection changed identity")
	}
	if failures.Load() != 0 {
		t.Fatalf("failures %d (key written after cert may be debounced, but not fail here)", failures.Load())
	}
}

func TestReloader_SymlinkSwapIsSeen(t *testing.T) {
	root := newCA(t, "root")
	dir := t.TempDir()
	// Kubernetes layout: tls.crt -> ..data/tls.crt, ..data -> ..ts1
	mk := func(name, cn string) {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		c, k := root.issue(t, cn, leafOpts{})
		writeFiles(t, d, c, k, nil)
	}
	mk("..ts1", "ts1")
	mk("..ts2", "ts2")
	if err := os.Symlink("..ts1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", n), filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewReloader(Options{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.Start(context.Background())
	defer r.Close()
	srv := startEcho(t, r.TLSConfig())
	cfg := clientConfig(root, nil)
	if cn := servedCN(t, srv.addr(), cfg); cn != "ts1" {
		t.Fatalf("served %s", cn)
	}
	// Atomic symlink swap: new link, rename over ..data.
	if err := os.Symlink("..ts2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "swapped certificate", func() bool { return servedCN(t, srv.addr(), cfg) == "ts2" })
}

func TestReloader_MismatchedPairRejectedOldCertKeepsServing(t *testing.T) {
	root := newCA(t, "root")
	dir := t.TempDir()
	certA, keyA := root.issue(t, "cert-a", leafOpts{})
	f := writeFiles(t, dir, certA, keyA, nil)
	var failures atomic.Int32
	var lastErr atomic.Value
	log, logs := newLogger()
	r, err := NewReloader(Options{CertFile: f.cert, KeyFile: f.key, Logger: log, PollInterval: 50 * time.Millisecond,
		OnFailure: func(err error) { failures.Add(1); lastErr.Store(err) }})
	if err != nil {
		t.Fatal(err)
	}
	r.Start(context.Background())
	defer r.Close()
	srv := startEcho(t, r.TLSConfig())
	cfg := clientConfig(root, nil)

	certB, _ := root.issue(t, "cert-b", leafOpts{})
	writeAtomic(t, f.cert, certB) // key A stays: mismatch
	waitFor(t, 5*time.Second, "reload failure", func() bool { return failures.Load() >= 1 })
	time.Sleep(300 * time.Millisecond) // the watcher must not retry unchanged broken files
	if n := failures.Load(); n != 1 {
		t.Fatalf("failures = %d, want 1", n)
	}
	var le *LoadError
	if err := lastErr.Load().(error); !errors.As(err, &le) || le.Code != CodeInvalid || le.Field != "key_file" || !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v", err)
	}
	if cn := servedCN(t, srv.addr(), cfg); cn != "cert-a" {
		t.Fatalf("served %s after failed reload", cn)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), CodeInvalid) {
		t.Fatalf("no ERROR log: %s", logs.String())
	}

	// A direct Reload (SIGHUP) fails the same way and is counted too.
	if err := r.Reload(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Reload = %v", err)
	}
	if failures.Load() != 2 {
		t.Fatalf("failures = %d", failures.Load())
	}

	// Fixing the key recovers.
	certC, keyC := root.issue(t, "cert-c", leafOpts{})
	writeFiles(t, dir, certC, keyC, nil)
	waitFor(t, 5*time.Second, "recovery", func() bool { return servedCN(t, srv.addr(), cfg) == "cert-c" })
}

func TestReloader_RejectsBrokenExpiredAndUnreadable(t *testing.T) {
	root := newCA(t, "root")
	good, goodKey := root.issue(t, "good", leafOpts{})
	expired, expiredKey := root.issue(t, "old", leafOpts{notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	_, otherKey := root.issue(t, "other", leafOpts{})
	cases := []struct {
		name          string
		cert, key, ca []byte
		removeKey     bool
		code, field   string
		sentinel      error
	}{
		{name: "garbage cert", cert: []byte("not a pem"), key: goodKey, code: CodeInvalid, field: "cert_file", sentinel: ErrInvalid},
		{name: "key in cert file", cert: goodKey, key: goodKey, code: CodeInvalid, field: "cert_file", sentinel: ErrInvalid},
		{name: "truncated cert", cert: good[:len(good)/2], key: goodKey, code: CodeInvalid, field: "cert_file", sentinel: ErrInvalid},
		{name: "garbage key", cert: good, key: []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), code: CodeInvalid, field: "key_file", sentinel: ErrInvalid},
		{name: "mismatched key", cert: good, key: otherKey, code: CodeInvalid, field: "key_file", sentinel: ErrInvalid},
		{name: "expired", cert: expired, key: expiredKey, code: CodeExpired, field: "cert_file", sentinel: ErrExpired},
		{name: "missing key file", cert: good, key: goodKey, removeKey: true, code: CodeUnreadable, field: "key_file", sentinel: ErrUnreadable},
		{name: "garbage CA", cert: good, key: goodKey, ca: []byte("junk"), code: CodeInvalid, field: "client_ca_file", sentinel: ErrInvalid},
		{name: "key as CA", cert: good, key: goodKey, ca: goodKey, code: CodeInvalid, field: "client_ca_file", sentinel: ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// At startup: NewReloader fails with the typed error.
			dir := t.TempDir()
			f := writeFiles(t, dir, c.cert, c.key, c.ca)
			if c.removeKey {
				os.Remove(f.key)
			}
			_, err := NewReloader(Options{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca, ClientAuth: "optional"})
			var le *LoadError
			if !errors.As(err, &le) || le.Code != c.code || le.Field != c.field || !errors.Is(err, c.sentinel) {
				t.Fatalf("NewReloader error = %v, want %s %s", err, c.code, c.field)
			}
			if !strings.HasPrefix(err.Error(), c.code+" "+c.field) {
				t.Errorf("message %q", err.Error())
			}

			// On reload: rejected, old material kept, failure counted.
			dir2 := t.TempDir()
			var caPEM []byte
			if c.ca != nil {
				caPEM = root.pem
			}
			f2 := writeFiles(t, dir2, good, goodKey, caPEM)
			var failures atomic.Int32
			r, err := NewReloader(Options{CertFile: f2.cert, KeyFile: f2.key, ClientCAFile: f2.ca, ClientAuth: "optional", OnFailure: func(error) { failures.Add(1) }})
			if err != nil {
				t.Fatal(err)
			}
			before := r.Expiry()
			writeFiles(t, dir2, c.cert, c.key, c.ca)
			if c.removeKey {
				os.Remove(f2.key)
			}
			if err := r.Reload(); !errors.Is(err, c.sentinel) {
				t.Fatalf("Reload = %v", err)
			}
			if failures.Load() != 1 || !r.Expiry().Equal(before) {
				t.Fatalf("failures %d, expiry changed %v", failures.Load(), !r.Expiry().Equal(before))
			}
			if cert, _ := r.getCertificate(nil); cert.Leaf.Subject.CommonName != "good" {
				t.Fatal("old certificate not kept")
			}
		})
	}
}

func TestNewReloader_OptionErrors(t *testing.T) {
	root := newCA(t, "root")
	c, k := root.issue(t, "x", leafOpts{})
	f := writeFiles(t, t.TempDir(), c, k, nil)
	for _, o := range []Options{
		{CertFile: f.cert},
		{CertFile: f.cert, KeyFile: f.key, ClientAuth: "require"},
		{CertFile: f.cert, KeyFile: f.key, ClientAuth: "maybe"},
		{CertFile: f.cert, KeyFile: f.key, MinVersion: "1.1"},
	} {
		if _, err := NewReloader(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestReloader_ExpiryAndWarning(t *testing.T) {
	root := newCA(t, "root")
	soon := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
	c, k := root.issue(t, "soon", leafOpts{notAfter: soon})
	f := writeFiles(t, t.TempDir(), c, k, nil)
	log, logs := newLogger()
	r, err := NewReloader(Options{CertFile: f.cert, KeyFile: f.key, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Expiry().Equal(soon) {
		t.Fatalf("Expiry %v want %v", r.Expiry(), soon)
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "expires soon") {
		t.Fatalf("no WARN: %s", logs.String())
	}

	far, fk := root.issue(t, "far", leafOpts{notAfter: time.Now().Add(200 * 24 * time.Hour)})
	f2 := writeFiles(t, t.TempDir(), far, fk, nil)
	log2, logs2 := newLogger()
	if _, err := NewReloader(Options{CertFile: f2.cert, KeyFile: f2.key, Logger: log2}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs2.String(), "WARN") {
		t.Fatalf("unexpected WARN: %s", logs2.String())
	}
}

func TestReloader_ClientAuthRequire(t *testing.T) {
	root, clients, other := newCA(t, "root"), newCA(t, "clients"), newCA(t, "other")
	c, k := root.issue(t, "srv", leafOpts{})
	dir := t.TempDir()
	f := writeFiles(t, dir, c, k, clients.pem)
	r, err := NewReloader(Options{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca, ClientAuth: "require"})
	if err != nil {
		t.Fatal(err)
	}
	srv := startEcho(t, r.TLSConfig())
	good, bad := clients.clientCert(t, "good-client"), other.clientCert(t, "bad-client")

	if _, err := dial(t, srv.addr(), clientConfig(root, nil)); err == nil {
		t.Error("no client certificate accepted")
	}
	if _, err := dial(t, srv.addr(), clientConfig(root, &bad)); err == nil {
		t.Error("certificate from an unknown CA accepted")
	}
	if _, err := dial(t, srv.addr(), clientConfig(root, &good)); err != nil {
		t.Errorf("valid client certificate refused: %v", err)
	}
	// A server certificate (ServerAuth only) is not a client certificate.
	sc, sk := clients.issue(t, "not-a-client", leafOpts{})
	srvAsClient, _ := tls.X509KeyPair(sc, sk)
	if _, err := dial(t, srv.addr(), clientConfig(root, &srvAsClient)); err == nil {
		t.Error("certificate without ClientAuth usage accepted")
	}

	// The CA pool is swapped on reload: now "other" is trusted, "clients" is not.
	writeAtomic(t, f.ca, other.pem)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(t, srv.addr(), clientConfig(root, &bad)); err != nil {
		t.Errorf("client of the new CA refused: %v", err)
	}
	if _, err := dial(t, srv.addr(), clientConfig(root, &good)); err == nil {
		t.Error("client of the removed CA still accepted")
	}
}

func TestReloader_ClientAuthOptional(t *testing.T) {
	root, clients, other := newCA(t, "root"), newCA(t, "clients"), newCA(t, "other")
	c, k := root.issue(t, "srv", leafOpts{})
	f := writeFiles(t, t.TempDir(), c, k, clients.pem)
	r, err := NewReloader(Options{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca, ClientAuth: "optional"})
	if err != nil {
		t.Fatal(err)
	}
	srv := startEcho(t, r.TLSConfig())
	good, bad := clients.clientCert(t, "good"), other.clientCert(t, "bad")
	if _, err := dial(t, srv.addr(), clientConfig(root, nil)); err != nil {
		t.Errorf("anonymous client refused: %v", err)
	}
	if _, err := dial(t, srv.addr(), clientConfig(root, &good)); err != nil {
		t.Errorf("valid client refused: %v", err)
	}
	if _, err := dial(t, srv.addr(), clientConfig(root, &bad)); err == nil {
		t.Error("presented but invalid certificate accepted")
	}
}

func TestReloader_VersionsAndSuites(t *testing.T) {
	root := newCA(t, "root")
	c, k := root.issue(t, "srv", leafOpts{})
	f := writeFiles(t, t.TempDir(), c, k, nil)

	r12, err := NewReloader(Options{CertFile: f.cert, KeyFile: f.key})
	if err != nil {
		t.Fatal(err)
	}
	srv12 := startEcho(t, r12.TLSConfig())
	cc, err := dial(t, srv12.addr(), clientConfig(root, nil))
	if err != nil {
		t.Fatal(err)
	}
	if cc.ConnectionState().Version != tls.VersionTLS13 {
		t.Errorf("TLS 1.3 not preferred: %x", cc.ConnectionState().Version)
	}
	only12 := clientConfig(root, nil)
	only12.MaxVersion = tls.VersionTLS12
	if _, err := dial(t, srv12.addr(), only12); err != nil {
		t.Errorf("TLS 1.2 with ECDHE-GCM refused: %v", err)
	}
	cbc := clientConfig(root, nil)
	cbc.MaxVersion = tls.VersionTLS12
	cbc.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}
	if _, err := dial(t, srv12.addr(), cbc); err == nil {
		t.Error("CBC suite accepted")
	}

	r13, err := NewReloader(Options{CertFile: f.cert, KeyFile: f.key, MinVersion: "1.3"})
	if err != nil {
		t.Fatal(err)
	}
	srv13 := startEcho(t, r13.TLSConfig())
	if _, err := dial(t, srv13.addr(), only12); err == nil {
		t.Error("TLS 1.2 accepted with min_version 1.3")
	}
}

func TestReloader_ClientConfigMutualTLS(t *testing.T) {
	// Two cluster nodes sharing one CA: each serves and dials with its own
	// Reloader (TLS 1.3, require).
	clusterCA, rogue := newCA(t, "cluster-ca"), newCA(t, "rogue")
	mk := func(issuer *ca, cn string) *Reloader {
		t.Helper()
		c, k := issueBoth(t, issuer, cn) // cluster certificates serve both ways
		f := writeFiles(t, t.TempDir(), c, k, clusterCA.pem)
		r, err := NewReloader(Options{Name: "cluster", CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca, ClientAuth: "require", MinVersion: "1.3"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b, evil := mk(clusterCA, "node-a"), mk(clusterCA, "node-b"), mk(rogue, "evil")
	srv := startEcho(t, a.TLSConfig())
	cc, err := dial(t, srv.addr(), b.ClientConfig("localhost"))
	if err != nil {
		t.Fatalf("node b → node a: %v", err)
	}
	if cc.serverCN() != "node-a" {
		t.Fatal(cc.serverCN())
	}
	if _, err := dial(t, srv.addr(), evil.ClientConfig("localhost")); err == nil {
		t.Error("rogue node accepted")
	}
	if _, err := dial(t, srv.addr(), b.ClientConfig("wrong-name")); err == nil {
		t.Error("server name not verified")
	}
	evilSrv := startEcho(t, evil.TLSConfig())
	if _, err := dial(t, evilSrv.addr(), b.ClientConfig("localhost")); err == nil {
		t.Error("rogue server trusted")
	}
}

// issueBoth issues a certificate usable as TLS server and client.
func issueBoth(t *testing.T, issuer *ca, cn string) ([]byte, []byte) {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.cert, &k.PublicKey, issuer.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func TestReloader_StartCloseIdempotentAndContextStops(t *testing.T) {
	root := newCA(t, "root")
	c, k := root.issue(t, "x", leafOpts{})
	f := writeFiles(t, t.TempDir(), c, k, nil)
	r, err := NewReloader(Options{CertFile: f.cert, KeyFile: f.key, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil { // never started
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.Start(ctx)
	r.Start(ctx)
	cancel()
	r.Close()
	r.Close()
}
