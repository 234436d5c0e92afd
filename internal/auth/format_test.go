package auth

import (
	"math/big"
	"net/http"
	"strings"
	"testing"
)

func TestNewKeyID_Is31LowerCaseCrockfordChars(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		id := NewKeyID()
		if len(id) != 31 || !strings.HasPrefix(id, "tmak-") {
			t.Fatalf("bad id %q", id)
		}
		for _, c := range id[5:] {
			if !strings.ContainsRune(crockford, c) {
				t.Fatalf("%q has %q outside the alphabet", id, c)
			}
		}
		if got, ok := ParseKeyID(id); !ok || got != id {
			t.Fatalf("ParseKeyID(%q) = %q %v", id, got, ok)
		}
		if seen[id] {
			t.Fatalf("duplicate %s", id)
		}
		seen[id] = true
	}
}

func TestParseKeyID(t *testing.T) {
	const valid = "tmak-01jh8v9k2c3n4p5q6r7s8t9v0w"
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"lower case", valid, valid, true},
		{"upper case is lower-cased", strings.ToUpper(valid), valid, true},
		{"mixed case", "TMAK-01JH8v9k2c3n4p5q6r7s8t9v0w", valid, true},
		{"first char 7 allowed", "tmak-71jh8v9k2c3n4p5q6r7s8t9v0w", "tmak-71jh8v9k2c3n4p5q6r7s8t9v0w", true},
		{"first char 8 overflows 48 bits", "tmak-81jh8v9k2c3n4p5q6r7s8t9v0w", "", false},
		{"letter i", "tmak-01ih8v9k2c3n4p5q6r7s8t9v0w", "", false},
		{"letter l", "tmak-01lh8v9k2c3n4p5q6r7s8t9v0w", "", false},
		{"letter o", "tmak-01oh8v9k2c3n4p5q6r7s8t9v0w", "", false},
		{"letter u", "tmak-01uh8v9k2c3n4p5q6r7s8t9v0w", "", false},
		{"upper U", "tmak-01Uh8v9k2c3n4p5q6r7s8t9v0w", "", false},
		{"session prefix", "tmss-01jh8v9k2c3n4p5q6r7s8t9v0w", "", false},
		{"too short", valid[:30], "", false},
		{"too long", valid + "0", "", false},
		{"empty", "", "", false},
		{"underscore separator", "tmak_01jh8v9k2c3n4p5q6r7s8t9v0w", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseKeyID(tc.in)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("ParseKeyID(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestNewSecret_Is48CharsOfBase62(t *testing.T) {
	for range 500 {
		s := NewSecret()
		if len(s) != 48 || !strings.HasPrefix(s, "tmas_") || !validSecret(s) {
			t.Fatalf("bad secret %q", s)
		}
	}
}

func TestEncodeBase62_MatchesBigEndianInteger(t *testing.T) {
	for _, fill := range []byte{0x00, 0x01, 0x7f, 0xff} {
		var n [32]byte
		for i := range n {
			n[i] = fill ^ byte(i*31)
		}
		want := new(big.Int).SetBytes(n[:])
		got := encodeBase62(&n)
		// Decode with our alphabet.
		v := new(big.Int)
		for _, c := range got[5:] {
			v.Mul(v, big.NewInt(62))
			v.Add(v, big.NewInt(int64(strings.IndexRune(base62, c))))
		}
		if v.Cmp(want) != 0 || len(got) != 48 {
			t.Fatalf("fill %#x: %s decodes to %s, want %s", fill, got, v, want)
		}
	}
	var zero [32]byte
	if got := encodeBase62(&zero); got != "tmas_"+strings.Repeat("0", 43) {
		t.Fatalf("zero encodes to %s (must be left-padded with '0')", got)
	}
	var maxv [32]byte
	for i := range maxv {
		maxv[i] = 0xff
	}
	if got := encodeBase62(&maxv); got[5] == '0' {
		t.Fatalf("2^256-1 must use all 43 digits: %s", got)
	}
}

func TestParseCredential(t *testing.T) {
	id := "tmak-01jh8v9k2c3n4p5q6r7s8t9v0w"
	secret := "tmas_" + strings.Repeat("aZ9", 14) + "x"
	good := id + ":" + secret
	if len(good) != 80 {
		t.Fatalf("credential length %d", len(good))
	}
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"valid", good, true},
		{"key id upper case", strings.ToUpper(id) + ":" + secret, true},
		{"secret prefix is case-sensitive", id + ":" + strings.ToUpper(secret[:5]) + secret[5:], false},
		{"missing colon", id + secret + "x", false},
		{"79 chars", good[:79], false},
		{"81 chars", good + "a", false},
		{"bad secret char", good[:79] + "-", false},
		{"bad key id", "tmak-01jh8v9k2c3n4p5q6r7s8t9v0u:" + secret, false},
		{"token instead of secret", id + ":tmtk_" + strings.Repeat("a", 43), false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, s, ok := ParseCredential(tc.in)
			if ok != tc.ok {
				t.Fatalf("ok = %v", ok)
			}
			if ok && (k != id || s != secret) {
				t.Fatalf("got %q %q", k, s)
			}
		})
	}
}

func TestCredentialFromHeader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		h       http.Header
		want    string
		present bool
	}{
		{"none", http.Header{}, "", false},
		{"bearer", http.Header{"Authorization": {"Bearer abc"}}, "abc", true},
		{"bearer any case", http.Header{"Authorization": {"bEaReR  abc "}}, "abc", true},
		{"x-api-key", http.Header{"X-Api-Key": {"abc"}}, "abc", true},
		{"authorization wins over x-api-key", http.Header{"Authorization": {"Bearer a"}, "X-Api-Key": {"b"}}, "a", true},
		{"basic is present but unparsable", http.Header{"Authorization": {"Basic Zm9v"}, "X-Api-Key": {"b"}}, "\x00", true},
		{"bare bearer", http.Header{"Authorization": {"Bearer"}}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, present := CredentialFromHeader(tc.h)
			if got != tc.want || present != tc.present {
				t.Fatalf("got %q %v", got, present)
			}
		})
	}
}

func TestParsePrefix_CanonicalisesBareIPsAndCIDRs(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3":            "10.1.2.3/32",
		"2001:db8::1":         "2001:db8::1/128",
		"10.1.2.3/8":          "10.0.0.0/8",
		"::ffff:10.1.2.3":     "10.1.2.3/32",
		" 192.168.0.0/16 ":    "192.168.0.0/16",
		"2001:db8::/32":       "2001:db8::/32",
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
	} {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "10.0.0.256", "fe80::1%eth0", "10.0.0.0/33", "host.example"} {
		if _, err := ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q) accepted", bad)
		}
	}
}
