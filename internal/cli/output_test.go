package cli

import (
	"regexp"
	"testing"
)

// TestOutput_IntegersStayIntegers: Unix-ms times and byte counts print as
// integers in every format (07-tools §1.4 "times stay Unix ms"), never as
// floats in scientific notation (1.795752414203e+12).
func TestOutput_IntegersStayIntegers(t *testing.T) {
	r, _ := setup(t)
	created := r.must("session", "create", "-u", "u-yaml", "-o", "json").json(t)
	id := created["session_id"].(string)
	r.must("backup", "snapshot", "--description", "yaml test")

	sci := regexp.MustCompile(`\d\.\d+e\+\d+`)
	for _, args := range [][]string{
		{"session", "get", id},
		{"session", "list", "-u", "u-yaml"},
		{"apikey", "list"},
		{"backup", "list"},
		{"system", "status"},
		{"system", "wal"},
		{"config", "server", "show"},
	} {
		for _, o := range []string{"yaml", "json", "table", "wide"} {
			out := r.must(append(args, "-o", o)...).stdout
			if m := sci.FindString(out); m != "" {
				t.Errorf("%v -o %s prints %s:\n%s", args, o, m, out)
			}
		}
	}
	y := r.must("session", "get", id, "-o", "yaml").stdout
	if !regexp.MustCompile(`(?m)^created_at: \d{13}$`).MatchString(y) || !regexp.MustCompile(`(?m)^expires_at: \d{13}$`).MatchString(y) {
		t.Fatalf("session times in YAML:\n%s", y)
	}
	y = r.must("backup", "list", "-o", "yaml").stdout
	if !regexp.MustCompile(`(?m)^\s+size_bytes: \d+$`).MatchString(y) || !regexp.MustCompile(`(?m)^\s+created_at: \d{13}$`).MatchString(y) {
		t.Fatalf("backup size and time in YAML:\n%s", y)
	}
	y = r.must("system", "status", "-o", "yaml").stdout
	if !regexp.MustCompile(`(?m)^\s+rss_bytes: \d+$`).MatchString(y) {
		t.Fatalf("memory bytes in YAML:\n%s", y)
	}
}

// TestToGeneric_Numbers: integers of any size come back as integers,
// fractions as floats, in nested maps and lists.
func TestToGeneric_Numbers(t *testing.T) {
	in := map[string]any{"ms": int64(1795752414203), "big": uint64(18446744073709551615), "neg": -5, "f": 0.25,
		"list": []any{int64(1e15), 1.5}, "nested": map[string]any{"n": int64(1 << 53)}}
	g := toGeneric(in).(map[string]any)
	want := map[string]any{"ms": int64(1795752414203), "big": uint64(18446744073709551615), "neg": int64(-5), "f": 0.25}
	for k, v := range want {
		if g[k] != v {
			t.Errorf("%s: %T %v, want %T %v", k, g[k], g[k], v, v)
		}
	}
	if l := g["list"].([]any); l[0] != int64(1e15) || l[1] != 1.5 {
		t.Errorf("list: %#v", l)
	}
	if n := g["nested"].(map[string]any)["n"]; n != int64(1<<53) {
		t.Errorf("nested: %#v", n)
	}
	if s := scalar(float64(1795752414203)); s != "1795752414203" {
		t.Errorf("scalar: %s", s)
	}
}
