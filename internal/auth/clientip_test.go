package auth

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	proxy := netip.MustParseAddrPort("10.0.0.2:40000")
	stranger := netip.MustParseAddrPort("198.51.100.9:40000")
	for _, tc := range []struct {
		name    string
		peer    netip.AddrPort
		h       http.Header
		trusted []netip.Prefix
		want    string
	}{
		{"untrusted peer's X-Forwarded-For is ignored", stranger, http.Header{"X-Forwarded-For": {"1.2.3.4"}}, trusted, "198.51.100.9"},
		{"no trusted proxies configured", proxy, http.Header{"X-Forwarded-For": {"1.2.3.4"}}, nil, "10.0.0.2"},
		{"trusted peer, X-Forwarded-For", proxy, http.Header{"X-Forwarded-For": {"1.2.3.4"}}, trusted, "1.2.3.4"},
		{"right-most untrusted in a chain", proxy, http.Header{"X-Forwarded-For": {"6.6.6.6, 1.2.3.4, 10.0.0.7"}}, trusted, "1.2.3.4"},
		{"chain across header lines", proxy, http.Header{"X-Forwarded-For": {"6.6.6.6, 1.2.3.4", "10.9.9.9"}}, trusted, "1.2.3.4"},
		{"all trusted: the peer (a client in a trusted range could write the left-most)", proxy, http.Header{"X-Forwarded-For": {"10.1.1.1, 10.2.2.2"}}, trusted, proxy.Addr().String()},
		{"invalid entry reached: peer", proxy, http.Header{"X-Forwarded-For": {"1.2.3.4, garbage, 10.0.0.7"}}, trusted, "10.0.0.2"},
		{"spoofed left part is not reached", proxy, http.Header{"X-Forwarded-For": {"garbage, 1.2.3.4"}}, trusted, "1.2.3.4"},
		{"address with port", proxy, http.Header{"X-Forwarded-For": {"1.2.3.4:5678"}}, trusted, "1.2.3.4"},
		{"X-Real-IP", proxy, http.Header{"X-Real-Ip": {"1.2.3.4"}}, trusted, "1.2.3.4"},
		{"X-Forwarded-For wins over X-Real-IP", proxy, http.Header{"X-Real-Ip": {"5.5.5.5"}, "X-Forwarded-For": {"1.2.3.4"}}, trusted, "1.2.3.4"},
		{"Forwarded wins over X-Forwarded-For", proxy, http.Header{"Forwarded": {"for=1.2.3.4"}, "X-Forwarded-For": {"5.5.5.5"}}, trusted, "1.2.3.4"},
		{"Forwarded chain with quoted IPv6 and port", proxy, http.Header{"Forwarded": {`for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711"`}}, trusted, "2001:db8:cafe::17"},
		{"Forwarded trusted IPv6 hop skipped", proxy, http.Header{"Forwarded": {`for=192.0.2.60, for="[2001:db8:ffff::1]"`}}, trusted, "192.0.2.60"},
		{"Forwarded unknown: peer", proxy, http.Header{"Forwarded": {"for=unknown"}}, trusted, "10.0.0.2"},
		{"Forwarded element without for: peer", proxy, http.Header{"Forwarded": {"proto=https"}}, trusted, "10.0.0.2"},
		{"Forwarded without any for=: X-Forwarded-For", proxy, http.Header{"Forwarded": {"proto=https;by=10.0.0.2"}, "X-Forwarded-For": {"1.2.3.4"}}, trusted, "1.2.3.4"},
		{"Forwarded without any for=: X-Real-IP", proxy, http.Header{"Forwarded": {"proto=https"}, "X-Real-Ip": {"1.2.3.4"}}, trusted, "1.2.3.4"},
		{"Forwarded with a hop lacking for=: peer", proxy, http.Header{"Forwarded": {"for=1.2.3.4, proto=https"}, "X-Forwarded-For": {"5.5.5.5"}}, trusted, "10.0.0.2"},
		{"Forwarded unterminated quote: peer", proxy, http.Header{"Forwarded": {`for="1.2.3.4`}}, trusted, "10.0.0.2"},
		{"no header", proxy, http.Header{}, trusted, "10.0.0.2"},
		{"IPv4-mapped peer is unmapped", netip.MustParseAddrPort("[::ffff:198.51.100.9]:1"), http.Header{}, trusted, "198.51.100.9"},
		{"IPv4-mapped forwarded address is unmapped", proxy, http.Header{"X-Forwarded-For": {"::ffff:1.2.3.4"}}, trusted, "1.2.3.4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClientIP(tc.peer, tc.h, tc.trusted); got.String() != tc.want {
				t.Fatalf("got %s want %s", got, tc.want)
			}
		})
	}
}
