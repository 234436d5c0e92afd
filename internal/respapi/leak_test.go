package respapi

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// selfSigned returns a server certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "resp-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Every kind of bad client leaves no goroutine behind once it is gone, and
// the server keeps serving (issue 3 acceptance). The snapshot of running
// goroutines is taken after the server started, so only connection
// goroutines are compared.
func TestLeaks_BadClientsLeaveNoGoroutinesAndTheServerKeepsServing(t *testing.T) {
	old := tlsHandshakeTimeout
	tlsHandshakeTimeout = 300 * time.Millisecond
	// Restored by a cleanup registered before newEnv's: cleanups run last
	// first, so the server and its connection goroutines (which read the
	// variable) are gone by then — a defer would run before they are.
	t.Cleanup(func() { tlsHandshakeTimeout = old })

	e := newEnv(t)
	// The same server also serves a TLS listener.
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := tln.Addr().String()
	go e.srv.Serve(tls.NewListener(tln, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}))

	// Warm up: one served connection on each listener.
	for _, dial := range []func() (net.Conn, error){
		func() (net.Conn, error) { return net.Dial("tcp", e.addr) },
		func() (net.Conn, error) { return tls.Dial("tcp", tlsAddr, &tls.Config{InsecureSkipVerify: true}) },
	} {
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("PING\r\n"))
		if got, _ := io.ReadAll(io.LimitReader(c, 7)); string(got) != "+PONG\r\n" {
			t.Fatalf("warm-up: %q", got)
		}
		c.Close()
	}

	readSome := func(c net.Conn, n int) string {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, n)
		k, _ := io.ReadAtLeast(c, b, 1)
		return string(b[:k])
	}
	scenarios := []struct {
		name string
		run  func(t *testing.T) // leaves its client open unless the scenario is the client going away
	}{
		{"half a command, then disconnect", func(t *testing.T) {
			c := rawConn(t, e.addr)
			c.Write([]byte("*3\r\n$3\r\nSET\r\n$2\r\nab"))
			time.Sleep(20 * time.Millisecond)
			c.Close()
		}},
		{"binary garbage", func(t *testing.T) {
			c := rawConn(t, e.addr)
			c.Write([]byte("\x00\x01\x02garbage\xff\xfe\r\n"))
			readSome(c, 64) // unknown command (inline)
			c.Write([]byte("*\x00\x01\r\n"))
			expectProtocolError(t, c, msgMultiBulkLen) // the server closes it
		}},
		{"huge bulk, client stays connected", func(t *testing.T) {
			c := rawConn(t, e.addr)
			go func() {
				c.Write([]byte("*2\r\n$4\r\nPING\r\n$1000000000\r\n"))
				c.Write(bytes.Repeat([]byte("z"), 1<<20))
			}()
			expectProtocolError(t, c, msgBulkLen) // c is not closed by the client
		}},
		{"commands before AUTH", func(t *testing.T) {
			r := dialRaw(t, e.addr)
			r.send("GET", "tmss-x")
			r.expect("-TM-AUTH-4010 authentication required")
			r.send("TM.VALIDATE", "tok")
			r.expect("-TM-AUTH-4010 authentication required")
			r.c.Close()
		}},
		{"wrong arity", func(t *testing.T) {
			r := dialRaw(t, e.addr)
			r.send("get")
			r.expect("-ERR wrong number of arguments for 'get' command")
			r.send("TM.RENEW", "x")
			r.expect("-ERR wrong number of arguments for 'tm.renew' command")
			r.c.Close()
		}},
		{"TLS client that never completes a handshake", func(t *testing.T) {
			c := rawConn(t, tlsAddr) // TCP only: the server waits for a ClientHello
			if got := readSome(c, 16); got != "" {
				t.Fatalf("got %q", got)
			}
		}},
		{"TLS client sending plaintext", func(t *testing.T) {
			c := rawConn(t, tlsAddr)
			c.Write([]byte("*1\r\n$4\r\nPING\r\n"))
			readSome(c, 64) // a TLS alert, then the close
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			baseline := goleak.IgnoreCurrent()
			sc.run(t)
			// The server keeps serving.
			r := dialRaw(t, e.addr)
			r.send("PING")
			r.expect("+PONG")
			r.c.Close()
			goleak.VerifyNone(t, baseline)
		})
	}
}
