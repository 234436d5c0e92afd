package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestTargets(t *testing.T) {
	for _, tc := range []struct{ target, want string }{
		{"http://127.0.0.1:5080", "http://127.0.0.1:5080"},
		{"https://tokmesh.internal:5443/", "https://tokmesh.internal:5443"},
		{"unix:/tmp/a.sock", "unix:/tmp/a.sock"},
		{"unix:///tmp/a.sock", "unix:/tmp/a.sock"},
	} {
		c, err := New(Config{Target: tc.target})
		if err != nil || c.Target() != tc.want {
			t.Errorf("%q: %v %v, want %q", tc.target, c, err, tc.want)
		}
	}
	for _, target := range []string{"", "local"} {
		c, err := New(Config{Target: target})
		if err != nil || !c.IsSocket() || !strings.HasSuffix(c.Target(), "admin.sock") {
			t.Errorf("%q: %v %v", target, c, err)
		}
	}
	for _, bad := range []string{"ftp://x", "http://", "http://h:1/path", "npipe:x", "tokmesh"} {
		if _, err := New(Config{Target: bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := New(Config{Target: "http://h:1", Protocol: "resp"}); err == nil {
		t.Error("resp accepted")
	}
}

func writeEnv(w http.ResponseWriter, status int, body string) {
	w.Header().Set("X-Request-ID", "tmrq-test")
	w.WriteHeader(status)
	w.Write([]byte(body))
}

func TestRetryOnlyIdempotentAndHonourRetryAfter(t *testing.T) {
	var gets, posts, revokes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if r.Header.Get("X-Nonce") == "" || r.Header.Get("X-Timestamp") == "" {
				t.Errorf("write without anti-replay headers: %s", r.URL.Path)
			}
			if r.Header.Get("Authorization") != "Bearer k:s" {
				t.Errorf("auth header %q", r.Header.Get("Authorization"))
			}
		} else if r.Header.Get("X-Nonce") != "" {
			t.Errorf("GET with a nonce")
		}
		switch {
		case r.Method == http.MethodGet:
			if gets.Add(1) < 3 {
				w.Header().Set("Retry-After", "0")
				writeEnv(w, 503, `{"code":"TM-SYS-5030","message":"not ready","request_id":"tmrq-1","details":{}}`)
				return
			}
			writeEnv(w, 200, `{"code":"OK","message":"success","request_id":"tmrq-2","data":{"id":"tmss-1","user_id":"u"}}`)
		case strings.HasSuffix(r.URL.Path, "/revoke"):
			if revokes.Add(1) == 1 {
				writeEnv(w, 504, `{"code":"TM-CLST-5040","message":"timeout","request_id":"tmrq-3","details":{"revoked_count":1}}`)
				return
			}
			writeEnv(w, 200, `{"code":"OK","message":"success","request_id":"tmrq-4","data":{"session_id":"tmss-1","revoked":true}}`)
		default:
			posts.Add(1)
			w.Header().Set("Retry-After", "0")
			writeEnv(w, 503, `{"code":"TM-ADMIN-5031","message":"maintenance","request_id":"tmrq-5","details":{}}`)
		}
	}))
	defer srv.Close()
	c, err := New(Config{Target: srv.URL, APIKey: "k:s", MaxRetries: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := c.GetSession(ctx, "tmss-1")
	if err != nil || s.UserID != "u" || gets.Load() != 3 {
		t.Fatalf("get: %v %v after %d attempts", s, err, gets.Load())
	}
	rv, err := c.Revoke(ctx, "tmss-1")
	if err != nil || !rv.Revoked || revokes.Load() != 2 {
		t.Fatalf("revoke: %v %v after %d", rv, err, revokes.Load())
	}
	_, err = c.CreateSession(ctx, CreateSessionRequest{UserID: "u"})
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != "TM-ADMIN-5031" || ae.HTTPStatus != 503 || ae.RequestID != "tmrq-5" || posts.Load() != 1 {
		t.Fatalf("create: %v (attempts %d)", err, posts.Load())
	}
	if _, err := c.Touch(ctx, "tmss-1"); !errors.As(err, &ae) || posts.Load() != 2 {
		t.Fatalf("touch retried: %d", posts.Load())
	}
}

func TestRetryWaitIsBounded(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", "3600")
		writeEnv(w, 503, `{"code":"TM-SYS-5030","message":"not ready","request_id":"tmrq-1","details":{}}`)
	}))
	defer srv.Close()
	c, _ := New(Config{Target: srv.URL, MaxRetries: 2, MaxRetryWait: 20 * time.Millisecond})
	start := time.Now()
	_, err := c.GetKey(context.Background(), "tmak-1")
	var ae *Error
	if !errors.As(err, &ae) || ae.RetryAfter != time.Hour || n.Load() != 3 || time.Since(start) > 5*time.Second {
		t.Fatalf("%v attempts=%d in %v", err, n.Load(), time.Since(start))
	}
}

func TestTransportErrors(t *testing.T) {
	c, _ := New(Config{Target: "unix:/nonexistent/admin.sock", Timeout: time.Second})
	_, err := c.ListKeys(context.Background(), ListKeysOptions{})
	var te *TransportError
	if !errors.As(err, &te) || te.Kind != KindConnect || !strings.Contains(err.Error(), "cannot connect to unix:/nonexistent/admin.sock") {
		t.Fatalf("%#v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) }))
	defer srv.Close()
	c, _ = New(Config{Target: srv.URL})
	if _, err := c.Health(context.Background()); !errors.As(err, &te) || te.Kind != KindBadData {
		t.Fatalf("bad data: %v", err)
	}
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tls.Close()
	c, _ = New(Config{Target: tls.URL})
	if _, err := c.Health(context.Background()); !errors.As(err, &te) || te.Kind != KindTLS {
		t.Fatalf("tls: %v", err)
	}
	// An https:// target on a plaintext HTTP port is a TLS failure too
	// (the server answers the ClientHello in plain HTTP).
	c, _ = New(Config{Target: strings.Replace(srv.URL, "http://", "https://", 1)})
	if _, err := c.Health(context.Background()); !errors.As(err, &te) || te.Kind != KindTLS {
		t.Fatalf("https to a plaintext port: %v", err)
	}
	// And on a port that is not HTTP at all ("first record does not look
	// like a TLS handshake").
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			nc.Write([]byte("-ERR not TLS\r\n"))
			nc.Close()
		}
	}()
	c, _ = New(Config{Target: "https://" + ln.Addr().String()})
	if _, err := c.Health(context.Background()); !errors.As(err, &te) || te.Kind != KindTLS {
		t.Fatalf("https to a non-HTTP port: %v", err)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(300 * time.Millisecond) }))
	defer slow.Close()
	c, _ = New(Config{Target: slow.URL, Timeout: 50 * time.Millisecond})
	if _, err := c.Health(context.Background()); !errors.As(err, &te) || te.Kind != KindTimeout {
		t.Fatalf("timeout: %v", err)
	}
}
