package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/metrics"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue returns PEM certificate and key for cn (a server certificate for
// 127.0.0.1, or a client certificate).
func (ca *testCA) issue(t *testing.T, cn string, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// writeAtomic replaces path by renaming a temporary file over it, as
// certificate tooling does.
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

// servedCN dials addr over TLS (trusting ca) and returns the served
// certificate's common name.
func servedCN(t *testing.T, addr string, ca *testCA) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// gatherValue reads one series of the node's registry (-1 when absent).
func gatherValue(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			if s.Counter != nil {
				return s.GetCounter().GetValue()
			}
			return s.GetGauge().GetValue()
		}
	}
	return -1
}

type tlsNode struct {
	srv                *Server
	ca                 *testCA
	certFile, keyFile  string
	issuerID, issuerPW string
}

// startTLSNode starts a node with HTTPS and RESP-TLS on a certificate of a
// fresh CA; mod may change the configuration (caFile holds the CA).
func startTLSNode(t *testing.T, mod func(c *config.Config, caFile string)) *tlsNode {
	t.Helper()
	n := &tlsNode{ca: newTestCA(t, "test-ca")}
	dir := t.TempDir()
	n.certFile, n.keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	cert, key := n.ca.issue(t, "cert-a", false)
	writeAtomic(t, n.certFile, cert)
	writeAtomic(t, n.keyFile, key)
	c := baseConfig(t)
	c.Server.TLS.CertFile, c.Server.TLS.KeyFile = n.certFile, n.keyFile
	c.Server.RESPTLS.Enabled, c.Server.RESPTLS.Address = true, "127.0.0.1:0"
	c.Security.Auth.Argon2.Memory, c.Security.Auth.Argon2.Iterations, c.Security.Auth.Argon2.Parallelism = 8192, 1, 1
	if mod != nil {
		caFile := filepath.Join(dir, "client-ca.crt")
		writeAtomic(t, caFile, n.ca.pem)
		mod(c, caFile)
	}
	n.srv = New(c, Options{Getenv: testEnv})
	if err := n.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.srv.Close() })
	k, secret, _, err := n.srv.sec.keys.Create(context.Background(), auth.CreateRequest{Role: auth.RoleIssuer}, "LOCAL_ADMIN")
	if err != nil {
		t.Fatal(err)
	}
	n.issuerID, n.issuerPW = k.ID, secret
	return n
}

func (n *tlsNode) client(t *testing.T, tc *tls.Config) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: n.srv.Addr("resp_tls").String(), Username: n.issuerID, Password: n.issuerPW,
		TLSConfig: tc, PoolSize: 1, MaxRetries: -1, DialTimeout: 5 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// RESP-TLS serves go-redis with the server certificate; it shares the
// HTTPS reloader, so a certificate replaced on disk is served to new
// handshakes of both listeners without a restart while open connections
// stay, and a broken replacement keeps the old one and counts a failure.
func TestRESPTLS_GoRedisAndCertificateHotReloadSharedWithHTTPS(t *testing.T) {
	n := startTLSNode(t, nil)
	ctx := context.Background()
	if n.srv.Addr("https") == nil || n.srv.Addr("resp_tls") == nil {
		t.Fatalf("listeners: https %v resp_tls %v", n.srv.Addr("https"), n.srv.Addr("resp_tls"))
	}
	rdb := n.client(t, &tls.Config{RootCAs: n.ca.pool()})
	s, err := rdb.Do(ctx, "TM.CREATE", `{"user_id":"tls"}`).Text()
	if err != nil {
		t.Fatal(err)
	}
	tok := s[strings.Index(s, `"token":"`)+9:]
	tok = tok[:strings.IndexByte(tok, '"')]
	if v, err := rdb.Do(ctx, "TM.VALIDATE", tok).Text(); err != nil || !strings.Contains(v, `"user_id":"tls"`) {
		t.Fatalf("TM.VALIDATE over TLS: %q %v", v, err)
	}
	if got := gatherValue(t, n.srv.metrics, "tokmesh_resp_commands_total", map[string]string{"command": "tm.validate", "result": "ok"}); got != 1 {
		t.Fatalf("tokmesh_resp_commands_total{tm.validate,ok} = %v", got)
	}
	// Plain RESP to the TLS port gets nowhere.
	if err := redis.NewClient(&redis.Options{Addr: n.srv.Addr("resp_tls").String(), MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: 2 * time.Second}).Ping(ctx).Err(); err == nil {
		t.Fatal("plaintext PING answered on the TLS port")
	}

	respAddr, httpsAddr := n.srv.Addr("resp_tls").String(), n.srv.Addr("https").String()
	if cn := servedCN(t, respAddr, n.ca); cn != "cert-a" {
		t.Fatalf("serving %s", cn)
	}
	cert, key := n.ca.issue(t, "cert-b", false)
	writeAtomic(t, n.keyFile, key)
	writeAtomic(t, n.certFile, cert)
	deadline := time.Now().Add(8 * time.Second) // polled every 1 s, 100 ms debounce
	for servedCN(t, respAddr, n.ca) != "cert-b" {
		if time.Now().After(deadline) {
			t.Fatal("RESP-TLS still serves the old certificate")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cn := servedCN(t, httpsAddr, n.ca); cn != "cert-b" {
		t.Fatalf("HTTPS serves %s after the swap", cn)
	}
	if err := rdb.Ping(ctx).Err(); err != nil { // the open connection stays
		t.Fatalf("open connection after the swap: %v", err)
	}

	// A mismatched pair is not loaded: cert-b keeps serving, failure counted.
	failures := gatherValue(t, n.srv.metrics, "tokmesh_tls_reload_failures_total", map[string]string{"listener": "server"})
	cert, _ = n.ca.issue(t, "cert-c", false)
	writeAtomic(t, n.certFile, cert) // with cert-b's key
	deadline = time.Now().Add(8 * time.Second)
	for gatherValue(t, n.srv.metrics, "tokmesh_tls_reload_failures_total", map[string]string{"listener": "server"}) <= failures {
		if time.Now().After(deadline) {
			t.Fatal("no reload failure counted")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cn := servedCN(t, respAddr, n.ca); cn != "cert-b" {
		t.Fatalf("after a failed reload RESP-TLS serves %s", cn)
	}
	fresh := n.client(t, &tls.Config{RootCAs: n.ca.pool()})
	if err := fresh.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}

// server.tls.client_auth applies to RESP-TLS: require refuses a client
// without a certificate or with one from another CA; optional accepts a
// client without one. The certificate never replaces the API key.
func TestRESPTLS_ClientCertificates(t *testing.T) {
	ctx := context.Background()
	other := newTestCA(t, "other-ca")
	for _, mode := range []string{"require", "optional"} {
		t.Run(mode, func(t *testing.T) {
			n := startTLSNode(t, func(c *config.Config, caFile string) {
				c.Server.HTTPS.Enabled = false // RESP-TLS alone loads the material
				c.Server.TLS.ClientCAFile, c.Server.TLS.ClientAuth = caFile, mode
			})
			if n.srv.Addr("https") != nil {
				t.Fatal("HTTPS started")
			}
			certOf := func(ca *testCA) []tls.Certificate {
				cp, kp := ca.issue(t, "client", true)
				c, err := tls.X509KeyPair(cp, kp)
				if err != nil {
					t.Fatal(err)
				}
				return []tls.Certificate{c}
			}
			good := n.client(t, &tls.Config{RootCAs: n.ca.pool(), Certificates: certOf(n.ca)})
			if err := good.Do(ctx, "TM.CREATE", `{"user_id":"mtls"}`).Err(); err != nil {
				t.Fatalf("client with a certificate of the CA: %v", err)
			}
			if err := n.client(t, &tls.Config{RootCAs: n.ca.pool(), Certificates: certOf(other)}).Ping(ctx).Err(); err == nil {
				t.Fatal("certificate of another CA accepted")
			}
			bare := n.client(t, &tls.Config{RootCAs: n.ca.pool()}).Ping(ctx).Err()
			if mode == "require" && bare == nil {
				t.Fatal("client without a certificate accepted")
			}
			if mode == "optional" && bare != nil {
				t.Fatalf("optional: client without a certificate refused: %v", bare)
			}
			// A certificate is not a credential.
			noKey := redis.NewClient(&redis.Options{Addr: n.srv.Addr("resp_tls").String(), MaxRetries: -1,
				TLSConfig: &tls.Config{RootCAs: n.ca.pool(), Certificates: certOf(n.ca)}})
			defer noKey.Close()
			if err := noKey.Get(ctx, "tmss-x").Err(); err == nil || !strings.HasPrefix(err.Error(), "TM-AUTH-4010") {
				t.Fatalf("GET with a client certificate but no key: %v", err)
			}
		})
	}
}
