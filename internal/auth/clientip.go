package auth

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// ClientIP resolves the client IP of 04-security §6. It is the TCP peer,
// unless the peer is in trusted. Only then the chain from Forwarded (for=
// parameters), else X-Forwarded-For, else X-Real-IP is read, and the
// right-most address that is not a trusted proxy is the client. A missing
// header, an invalid entry reached while walking the chain from the right,
// or a chain of trusted addresses only yields the peer: with no untrusted
// entry there is no client address the proxies vouch for, and the left-most
// entry may be anything a client inside a trusted range wrote.
// IPv4-mapped IPv6 addresses are unmapped and zones dropped.
func ClientIP(remote netip.AddrPort, header http.Header, trusted []netip.Prefix) netip.Addr {
	peer := remote.Addr().Unmap().WithZone("")
	if len(trusted) == 0 || !containsAddr(trusted, peer) {
		return peer
	}
	var chain []string
	if v := header.Values("Forwarded"); len(v) > 0 {
		var ok bool
		if chain, ok = forwardedFor(v); !ok {
			return peer
		}
		if !slices.ContainsFunc(chain, func(s string) bool { return s != "" }) {
			// No element names a for= node (e.g. "Forwarded: proto=https"):
			// the header has no chain, so the next one is asked (04 §6:
			// "Forwarded (for= chain), else X-Forwarded-For").
			chain = nil
		}
	}
	if chain == nil {
		if v := header.Values("X-Forwarded-For"); len(v) > 0 {
			for _, line := range v {
				for _, part := range strings.Split(line, ",") {
					chain = append(chain, strings.TrimSpace(part))
				}
			}
		} else if v := header.Get("X-Real-IP"); v != "" {
			chain = []string{strings.TrimSpace(v)}
		}
	}
	if len(chain) == 0 {
		return peer
	}
	for i := len(chain) - 1; i >= 0; i-- {
		a, ok := parseNode(chain[i])
		if !ok {
			return peer
		}
		if !containsAddr(trusted, a) {
			return a
		}
	}
	return peer
}

// parseNode parses an address as proxies write it: "192.0.2.1",
// "192.0.2.1:8080", "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:443".
// "unknown" and obfuscated identifiers ("_hidden") are invalid.
func parseNode(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// forwardedFor extracts the for= value of every element of RFC 7239
// Forwarded header lines, in order. An element without for= contributes an
// empty (invalid) entry; a syntax error makes the whole header invalid.
func forwardedFor(lines []string) ([]string, bool) {
	var out []string
	for _, line := range lines {
		elems, ok := splitQuoted(line, ',')
		if !ok {
			return nil, false
		}
		for _, el := range elems {
			if strings.TrimSpace(el) == "" {
				continue
			}
			pairs, ok := splitQuoted(el, ';')
			if !ok {
				return nil, false
			}
			val := ""
			for _, p := range pairs {
				name, v, found := strings.Cut(strings.TrimSpace(p), "=")
				if !found {
					return nil, false
				}
				if strings.EqualFold(strings.TrimSpace(name), "for") {
					if val, ok = unquote(strings.TrimSpace(v)); !ok {
						return nil, false
					}
				}
			}
			out = append(out, val)
		}
	}
	return out, true
}

// splitQuoted splits s at sep outside double-quoted strings.
func splitQuoted(s string, sep byte) ([]string, bool) {
	var out []string
	start, inQ := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQ && c == '\\':
			i++
		case c == '"':
			inQ = !inQ
		case !inQ && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if inQ {
		return nil, false
	}
	return append(out, s[start:]), true
}

// unquote removes RFC 7230 quoting from a token or quoted-string.
func unquote(v string) (string, bool) {
	if len(v) == 0 || v[0] != '"' {
		return v, !strings.ContainsAny(v, "\" \t")
	}
	if len(v) < 2 || v[len(v)-1] != '"' {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(v)-1; i++ {
		c := v[i]
		if c == '\\' {
			i++
			if i >= len(v)-1 {
				return "", false
			}
			c = v[i]
		} else if c == '"' {
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}
