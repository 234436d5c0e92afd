package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// Formats of 01-data-model §1.
const (
	// KeyIDPrefix starts every API key ID.
	KeyIDPrefix = "tmak-"
	// KeyIDLen is the length of a key ID: prefix + 26 ULID characters.
	KeyIDLen = len(KeyIDPrefix) + 26
	// SecretPrefix starts every API secret.
	SecretPrefix = "tmas_"
	// SecretLen is the length of a secret: prefix + 43 Base62 characters.
	SecretLen = len(SecretPrefix) + secretDigits
	// CredentialLen is the length of "<key_id>:<secret>".
	CredentialLen = KeyIDLen + 1 + SecretLen
	// LocalAdminID is the principal ID of local admin socket callers.
	LocalAdminID = "LOCAL_ADMIN"

	secretDigits = 43
	crockford    = "0123456789abcdefghjkmnpqrstvwxyz"
	base62       = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// crockTab marks bytes valid in a ULID: 1 lower-case, 2 upper-case.
var crockTab = func() (t [256]uint8) {
	for i := 0; i < len(crockford); i++ {
		c := crockford[i]
		t[c] = 1
		if c >= 'a' && c <= 'z' {
			t[c-'a'+'A'] = 2
		}
	}
	return t
}()

var base62Tab = func() (t [256]bool) {
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = true
	}
	return t
}()

// NewKeyID returns a fresh key ID: "tmak-" + lower-case ULID with the
// current time and random bits from crypto/rand.
func NewKeyID() string { return newKeyID(time.Now()) }

func newKeyID(now time.Time) string {
	id, err := ulid.New(ulid.Timestamp(now), rand.Reader)
	if err != nil {
		// crypto/rand does not fail on supported platforms (Go ≥ 1.24
		// crashes the program instead); ulid.New only fails on a time
		// beyond year 10889.
		panic("auth: ulid: " + err.Error())
	}
	return KeyIDPrefix + strings.ToLower(id.String())
}

// ParseKeyID checks that s is a well-formed key ID (any case) and returns it
// lower-cased. It does not allocate when s is already lower-case.
func ParseKeyID(s string) (string, bool) {
	if len(s) != KeyIDLen {
		return "", false
	}
	upper := false
	for i := 0; i < len(KeyIDPrefix); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
			upper = true
		}
		if c != KeyIDPrefix[i] {
			return "", false
		}
	}
	// The first ULID character encodes the top 3 bits of a 48-bit time.
	if s[len(KeyIDPrefix)] > '7' {
		return "", false
	}
	for i := len(KeyIDPrefix); i < len(s); i++ {
		switch crockTab[s[i]] {
		case 0:
			return "", false
		case 2:
			upper = true
		}
	}
	if upper {
		return strings.ToLower(s), true
	}
	return s, true
}

// NewSecret returns a fresh secret: "tmas_" + the Base62 encoding of 32
// crypto/rand bytes read as a big-endian integer, left-padded with '0' to 43
// characters. The caller must hand it to the client once and forget it.
func NewSecret() string {
	var n [32]byte
	if _, err := rand.Read(n[:]); err != nil {
		panic("auth: crypto/rand: " + err.Error())
	}
	s := encodeBase62(&n)
	clear(n[:])
	return s
}

// encodeBase62 consumes n (it is left zero).
func encodeBase62(n *[32]byte) string {
	var out [SecretLen]byte
	copy(out[:], SecretPrefix)
	// 62^43 > 2^256, so 43 divisions always reduce n to zero.
	for i := SecretLen - 1; i >= len(SecretPrefix); i-- {
		var rem uint32
		for j := range n {
			cur := rem<<8 | uint32(n[j])
			n[j] = byte(cur / 62)
			rem = cur % 62
		}
		out[i] = base62[rem]
	}
	return string(out[:])
}

// validSecret reports whether s has the secret format.
func validSecret(s string) bool {
	if len(s) != SecretLen || s[:len(SecretPrefix)] != SecretPrefix {
		return false
	}
	for i := len(SecretPrefix); i < len(s); i++ {
		if !base62Tab[s[i]] {
			return false
		}
	}
	return true
}

// ParseCredential splits "<key_id>:<secret>" into a lower-cased key ID and
// the secret. The key ID is accepted in any case; the secret is
// case-sensitive. ok is false for anything else (TM-AUTH-4011).
func ParseCredential(s string) (keyID, secret string, ok bool) {
	if len(s) != CredentialLen || s[KeyIDLen] != ':' {
		return "", "", false
	}
	keyID, ok = ParseKeyID(s[:KeyIDLen])
	if !ok {
		return "", "", false
	}
	secret = s[KeyIDLen+1:]
	if !validSecret(secret) {
		return "", "", false
	}
	return keyID, secret, true
}

// CredentialFromHeader extracts the credential of 02-http-api §2.2:
// "Authorization: Bearer <credential>" (scheme case-insensitive; when the
// header is present X-API-Key is ignored) or "X-API-Key: <credential>".
// present is false when neither header is set (TM-AUTH-4010). An
// Authorization header with another scheme is present but yields a value
// ParseCredential rejects (TM-AUTH-4011).
func CredentialFromHeader(h http.Header) (credential string, present bool) {
	if v, ok := h["Authorization"]; ok && len(v) > 0 {
		a := strings.TrimSpace(v[0])
		if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			return strings.TrimSpace(a[7:]), true
		}
		if strings.EqualFold(a, "bearer") {
			return "", true
		}
		// Another scheme: a value that never parses (TM-AUTH-4011).
		return "\x00", true
	}
	if v, ok := h["X-Api-Key"]; ok && len(v) > 0 {
		return strings.TrimSpace(v[0]), true
	}
	return "", false
}

// ParsePrefix parses an allowlist or CIDR entry: a CIDR (host bits are
// masked off) or a bare IPv4/IPv6 address (/32 or /128). IPv4-mapped IPv6
// addresses are unmapped; zones are rejected.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("%q: zones are not allowed", s)
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParsePrefixes parses a list with ParsePrefix, for mapping config values
// (allow_list, trusted_proxies, exempt) into Config.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range list {
		p, err := ParsePrefix(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// containsAddr reports whether any prefix contains a.
func containsAddr(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
