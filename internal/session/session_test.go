package session

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

// dataOfSize returns a data map whose compact JSON is exactly n bytes
// (n ≥ 9).
func dataOfSize(n int) map[string]string {
	m := map[string]string{}
	// {"k00":"v…","k01":"v…"} — each entry "kNN":"…" is 8 bytes + value.
	rest := n - 2
	for i := 0; rest > 0; i++ {
		entry := 8 + MaxDataValueLen
		if i > 0 {
			entry++ // comma
		}
		v := MaxDataValueLen
		if rest < entry {
			v = rest - (entry - MaxDataValueLen)
		}
		m[fmt.Sprintf("k%02d", i)] = strings.Repeat("v", v)
		rest -= entry - MaxDataValueLen + v
	}
	return m
}

func TestEncodeData_Rules(t *testing.T) {
	cases := []struct {
		name  string
		m     map[string]string
		field string // "" = ok
	}{
		{"nil", nil, ""},
		{"4096 bytes accepted", dataOfSize(4096), ""},
		{"4097 bytes rejected", dataOfSize(4097), "data"},
		{"key 64 bytes", map[string]string{strings.Repeat("k", 64): "v"}, ""},
		{"key 65 bytes", map[string]string{strings.Repeat("k", 65): "v"}, "data." + strings.Repeat("k", 65)},
		{"empty key", map[string]string{"": "v"}, "data"},
		{"key invalid utf8", map[string]string{"\xff": "v"}, "data"},
		{"key control char", map[string]string{"a\tb": "v"}, "data.a\tb"},
		{"key DEL", map[string]string{"a\x7fb": "v"}, "data.a\x7fb"},
		{"value 1024 bytes", map[string]string{"k": strings.Repeat("v", 1024)}, ""},
		{"value 1025 bytes", map[string]string{"k": strings.Repeat("v", 1025)}, "data.k"},
		{"value empty", map[string]string{"k": ""}, ""},
		{"value newline", map[string]string{"k": "a\nb"}, "data.k"},
		{"value invalid utf8", map[string]string{"k": "a\xc3"}, "data.k"},
		{"value unicode", map[string]string{"k": "héllo 世界 \u2028"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := EncodeData(c.m)
			if c.field != "" {
				wantField(t, err, c.field)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var back map[string]string
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if len(back) != len(c.m) {
				t.Fatal("entries lost")
			}
			for k, v := range c.m {
				if back[k] != v {
					t.Fatalf("entry %q changed", k)
				}
			}
			if !validData(b) {
				t.Fatalf("validData rejects own output %s", b)
			}
		})
	}
	if b, _ := EncodeData(dataOfSize(4096)); len(b) != 4096 {
		t.Fatalf("dataOfSize(4096) encodes to %d bytes", len(b))
	}
}

func TestEncodeData_CompactSortedMinimalEscaping(t *testing.T) {
	b, err := EncodeData(map[string]string{"z": `a"b\c`, "a": "<&>", "m": "x"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":"<&>","m":"x","z":"a\"b\\c"}`
	if string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
	m, ok := DecodeData(b)
	if !ok || m["z"] != `a"b\c` || m["a"] != "<&>" {
		t.Fatalf("DecodeData = %v, %v", m, ok)
	}
	for _, bad := range []string{``, `{`, `{"a":"b",}`, `{"b":"1","a":"2"}`, `{"a":"1","a":"2"}`, `{"a":1}`, `{"a":"\n"}`, `{"a":"\u0041"}`, `{"":"x"}`, `{"a":"x"} `} {
		if validData([]byte(bad)) {
			t.Errorf("validData(%q) = true", bad)
		}
	}
}

func TestTruncateUserAgent_UTF8Boundary(t *testing.T) {
	if got := TruncateUserAgent(strings.Repeat("a", 600)); len(got) != 512 {
		t.Fatalf("600-byte UA stored as %d bytes", len(got))
	}
	ua := strings.Repeat("a", 511) + "é" + "tail" // é straddles byte 512
	if got := TruncateUserAgent(ua); len(got) != 511 || !utf8.ValidString(got) {
		t.Fatalf("cut inside a rune: len %d", len(got))
	}
	if got := TruncateUserAgent("short"); got != "short" {
		t.Fatal("short UA changed")
	}
}

func exampleSession() *Session {
	id, _ := ParseID("tmss-01jh8w3m5v00gq1t7c2r9x4bzd", 256)
	return &Session{
		ID: id, UserID: "u-1001", DeviceID: "",
		IPAddress: netip.MustParseAddr("203.0.113.7"), UserAgent: "Mozilla/5.0",
		LastAccessIP: netip.MustParseAddr("203.0.113.7"), LastAccessUA: "Mozilla/5.0",
		CreatedBy: "tmak-01jh8v9k2c3n4p5q6r7s8t9v0w", CreatedAt: 1767225600000, ExpiresAt: 1767232800000,
		LastActive: 1767225600000, Data: []byte(`{"tenant":"acme"}`), IdleTimeout: 0, Version: 1,
	}
}

func TestAppendJSON_MatchesSpecExample(t *testing.T) {
	want := `{"id":"tmss-01jh8w3m5v00gq1t7c2r9x4bzd","user_id":"u-1001","device_id":"","ip_address":"203.0.113.7",` +
		`"user_agent":"Mozilla/5.0","last_access_ip":"203.0.113.7","last_access_ua":"Mozilla/5.0",` +
		`"created_by":"tmak-01jh8v9k2c3n4p5q6r7s8t9v0w","created_at":1767225600000,"expires_at":1767232800000,` +
		`"last_active":1767225600000,"data":{"tenant":"acme"},"idle_timeout":0,"version":1}`
	s := exampleSession()
	if got := string(s.AppendJSON(nil)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	buf := make([]byte, 0, 1024)
	if a := testing.AllocsPerRun(100, func() { buf = s.AppendJSON(buf[:0]) }); a != 0 {
		t.Fatalf("AppendJSON allocates %v times", a)
	}
}

func TestAppendJSON_EscapesHostileUserAgent(t *testing.T) {
	s := exampleSession()
	s.UserAgent = "a\"b\\c\x00\x1f\x7f\n\t\xffé"
	s.IPAddress = netip.Addr{}
	s.Data = nil
	out := s.AppendJSON(nil)
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(out))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("invalid JSON %s: %v", out, err)
	}
	if m["user_agent"] != "a\"b\\c\x00\x1f\x7f\n\t\uFFFDé" {
		t.Fatalf("user_agent = %q", m["user_agent"])
	}
	if m["ip_address"] != "" {
		t.Fatal("zero IP not rendered as empty string")
	}
	if _, ok := m["data"].(map[string]any); !ok {
		t.Fatal("nil data not rendered as {}")
	}
	if len(m) != 14 {
		t.Fatalf("%d fields", len(m))
	}
}
