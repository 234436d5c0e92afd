package session

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
)

func TestID_StringMatchesULIDAndRoundTrips(t *testing.T) {
	for i := 0; i < 1000; i++ {
		id, err := NewID(uint16(i%256), byte(i), t0+int64(i))
		if err != nil {
			t.Fatal(err)
		}
		s := id.String()
		if len(s) != IDLen || !strings.HasPrefix(s, "tmss-") || s != strings.ToLower(s) {
			t.Fatalf("bad ID string %q", s)
		}
		if want := "tmss-" + strings.ToLower(ulid.ULID(id).String()); s != want {
			t.Fatalf("String = %q, oklog/ulid says %q", s, want)
		}
		got, ok := ParseID(s, 256)
		if !ok || got != id {
			t.Fatalf("ParseID(%q) = %v, %v", s, got, ok)
		}
		if got, ok := ParseID(strings.ToUpper(s), 256); !ok || got != id {
			t.Fatalf("upper-case ID not accepted")
		}
		if id.Partition() != uint16(i%256) || id[8] != byte(i) || id.Time() != t0+int64(i) {
			t.Fatalf("layout wrong: %x", id[:])
		}
	}
}

func TestParseID_RejectsMalformed(t *testing.T) {
	id, _ := NewID(5, 0, t0)
	good := id.String()
	max := ID{}
	for i := range max {
		max[i] = 0xFF
	}
	cases := map[string]string{
		"empty":          "",
		"no prefix":      good[5:],
		"wrong prefix":   "tmak-" + good[5:],
		"short":          good[:30],
		"long":           good + "0",
		"letter i":       good[:30] + "i",
		"letter l":       good[:30] + "l",
		"letter o":       good[:30] + "o",
		"letter u":       good[:30] + "u",
		"punctuation":    good[:30] + "-",
		"first char > 7": "tmss-8" + good[6:],
		"non-ascii":      good[:29] + "é",
	}
	for name, s := range cases {
		if _, ok := ParseID(s, 256); ok {
			t.Errorf("%s: ParseID(%q) accepted", name, s)
		}
	}
	if _, ok := ParseID(max.String(), 0); !ok {
		t.Errorf("max ID not accepted without partition check")
	}
	// Partition ≥ P is not a session ID.
	id300, _ := NewID(300, 0, t0)
	if _, ok := ParseID(id300.String(), 256); ok {
		t.Errorf("partition 300 accepted with P=256")
	}
	if _, ok := ParseID(id300.String(), 4096); !ok {
		t.Errorf("partition 300 rejected with P=4096")
	}
	if _, ok := ParseID("TMSS-"+good[5:], 256); !ok {
		t.Errorf("upper-case prefix rejected")
	}
}

func TestNewID_RejectsOutOfRangeTime(t *testing.T) {
	if _, err := NewID(0, 0, -1); err == nil {
		t.Fatal("negative time accepted")
	}
	if _, err := NewID(0, 0, 1<<48); err == nil {
		t.Fatal("49-bit time accepted")
	}
}

func TestToken_FormatRule(t *testing.T) {
	cases := []struct {
		tok  string
		want bool
	}{
		{strings.Repeat("a", 15), false},
		{strings.Repeat("a", 16), true},
		{strings.Repeat("a", 1024), true},
		{strings.Repeat("a", 1025), false},
		{strings.Repeat("a", 16) + " ", false},
		{strings.Repeat("a", 16) + "\x7f", false},
		{strings.Repeat("a", 16) + "é", false},
		{"!~!~!~!~!~!~!~!~", true},
		{"tmtk_short", false},
	}
	for _, c := range cases {
		if got := ValidToken(c.tok); got != c.want {
			t.Errorf("ValidToken(%q) = %v", c.tok, got)
		}
	}
}

func TestGenerateToken_Format(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		tok, err := GenerateToken()
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != 48 || !strings.HasPrefix(tok, "tmtk_") || !ValidToken(tok) || seen[tok] {
			t.Fatalf("bad token %q", tok)
		}
		raw, err := base64.RawURLEncoding.DecodeString(tok[5:])
		if err != nil || len(raw) != 32 {
			t.Fatalf("token body not base64url of 32 bytes: %v", err)
		}
		seen[tok] = true
	}
}

func TestHashToken_SHA256AndPartition(t *testing.T) {
	tok := token(1)
	h := HashToken(tok)
	if h != sha256.Sum256([]byte(tok)) {
		t.Fatal("HashToken is not SHA-256")
	}
	want := (int(h[0])<<8 | int(h[1])) % 256
	if int(h.Partition(256)) != want {
		t.Fatal("partition mismatch")
	}
	if int(h.Partition(7)) != (int(h[0])<<8|int(h[1]))%7 {
		t.Fatal("partition mod 7 mismatch")
	}
	if h.Partition(0) != 0 {
		t.Fatal("partition with P=0")
	}
	if a := testing.AllocsPerRun(100, func() { _ = HashToken(tok) }); a != 0 {
		t.Fatalf("HashToken allocates %v", a)
	}
}

func TestID_TextMarshaling(t *testing.T) {
	id, _ := NewID(7, 9, t0)
	b, err := id.MarshalText()
	if err != nil || string(b) != id.String() {
		t.Fatal("MarshalText")
	}
	var back ID
	if err := back.UnmarshalText(b); err != nil || back != id {
		t.Fatal("UnmarshalText")
	}
	if err := back.UnmarshalText([]byte("tmss-xyz")); err == nil {
		t.Fatal("bad ID accepted")
	}
	h := HashToken(token(1))
	hb, _ := h.MarshalText()
	var h2 TokenHash
	if err := h2.UnmarshalText(hb); err != nil || h2 != h || len(h.String()) != 64 {
		t.Fatal("token hash text")
	}
}
