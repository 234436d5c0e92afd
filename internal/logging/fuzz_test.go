package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// FuzzRedact checks the redactor against the specification's regular
// expressions and, end to end through New, that a secret embedded anywhere
// in a record never reaches the output. Seeds live in testdata/fuzz.
func FuzzRedact(f *testing.F) {
	f.Add("prefix ", "AbC-123_xyz", " suffix")
	f.Add("", "a", "")
	f.Add("tmas_", "tmtk_x", "tmtk_")
	f.Add("tmtm", "---", "\xff\x00\"\\")
	f.Fuzz(func(t *testing.T, prefix, body, suffix string) {
		for _, in := range []string{prefix, prefix + body + suffix} {
			got := RedactString(in)
			if want := refRedact(in); got != want {
				t.Fatalf("RedactString(%q) = %q, reference %q", in, got, want)
			}
			if leakRE.MatchString(got) {
				t.Fatalf("RedactString(%q) = %q still matches", in, got)
			}
		}

		// Build one token and one API secret from the fuzzed body.
		tokBody := keep(body, isTokenByte)
		secBody := keep(body, isAlnum)
		if tokBody == "" || secBody == "" {
			return
		}
		tok, sec := tokenPrefix+tokBody, secretPrefix+secBody
		s := prefix + tok + " " + sec + suffix

		var buf bytes.Buffer
		log := New(&buf, slog.LevelInfo).With("w", s).WithGroup(prefix)
		log.Info(s, "a", s, s, "key-is-secret",
			slog.Any("e", errors.New(s)), slog.Any("b", []byte(s)), slog.Any("st", stringer{s}),
			slog.Any("m", map[string]string{"k": s}),
			slog.Group("g", slog.String("n", s), slog.Group("h", slog.Any("x", s))))
		out := buf.String()
		for _, secret := range []string{tok, sec} {
			if strings.Contains(out, secret) {
				t.Fatalf("output contains %q:\n%s", secret, out)
			}
		}
		if leakRE.MatchString(out) {
			t.Fatalf("output still has a secret pattern:\n%s", out)
		}
	})
}

func keep(s string, ok func(byte) bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if ok(s[i]) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
