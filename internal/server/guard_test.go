package server

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
)

func TestGuard_AuthFailureWarnsOncePerIPPer10s(t *testing.T) {
	var buf bytes.Buffer
	g := &tcpGuard{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for range 5 {
		g.warnAuthFailure(a, "tmak-x", "bad_secret")
	}
	g.warnAuthFailure(b, "", "malformed")
	if n := strings.Count(buf.String(), "authentication failed"); n != 2 {
		t.Fatalf("%d WARN lines, want 2:\n%s", n, buf.String())
	}
}
