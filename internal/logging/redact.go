package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Replacement texts (04-security §10).
const (
	tokenPrefix  = "tmtk_"
	secretPrefix = "tmas_"

	// Redacted is the value given to attributes whose key names a credential.
	Redacted = "***REDACTED***"

	redactedToken  = tokenPrefix + Redacted
	redactedSecret = secretPrefix + Redacted
)

// sensitiveKeys are attribute keys whose values are replaced whatever they
// hold. Compared case-insensitively.
var sensitiveKeys = [...]string{"token", "secret", "api_key", "authorization", "x-api-key", "password"}

// isSensitiveKey reports whether an attribute with this key must have its
// value replaced. It does not allocate.
func isSensitiveKey(k string) bool {
	if len(k) < 5 || len(k) > 13 { // shortest "token", longest "authorization"
		return false
	}
	for _, s := range sensitiveKeys {
		if strings.EqualFold(k, s) {
			return true
		}
	}
	return false
}

// isTokenByte is the character class after tmtk_: [A-Za-z0-9_-].
func isTokenByte(c byte) bool {
	return isAlnum(c) || c == '_' || c == '-'
}

// isAlnum is the character class after tmas_: [0-9A-Za-z].
func isAlnum(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// nextMatch finds the leftmost match of `tmtk_[A-Za-z0-9_-]+|tmas_[0-9A-Za-z]+`
// in s at or after from, returning its bounds and replacement, or start < 0.
// It is what regexp would find with leftmost-first semantics and greedy
// repetition, without the regexp engine's cost.
func nextMatch(s string, from int) (start, end int, repl string) {
	for i := from; i+5 < len(s); {
		j := strings.Index(s[i:], "tm")
		if j < 0 {
			return -1, -1, ""
		}
		i += j
		if i+5 >= len(s) { // a match needs the 5-byte prefix plus one byte
			return -1, -1, ""
		}
		switch {
		case s[i+2:i+5] == "tk_" && isTokenByte(s[i+5]):
			e := i + 6
			for e < len(s) && isTokenByte(s[e]) {
				e++
			}
			return i, e, redactedToken
		case s[i+2:i+5] == "as_" && isAlnum(s[i+5]):
			e := i + 6
			for e < len(s) && isAlnum(s[e]) {
				e++
			}
			return i, e, redactedSecret
		}
		i++
	}
	return -1, -1, ""
}

// containsSecret reports whether RedactString would change s. It does not
// allocate.
func containsSecret(s string) bool {
	start, _, _ := nextMatch(s, 0)
	return start >= 0
}

// RedactString replaces every server token (`tmtk_…`) and API-key secret
// (`tmas_…`) in s with its redacted form. It returns s itself, without
// allocating, when there is nothing to replace.
func RedactString(s string) string {
	start, end, repl := nextMatch(s, 0)
	if start < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(Redacted))
	last := 0
	for start >= 0 {
		b.WriteString(s[last:start])
		b.WriteString(repl)
		last = end
		start, end, repl = nextMatch(s, end)
	}
	b.WriteString(s[last:])
	return b.String()
}

// renderAny returns the text a handler would print for an arbitrary value
// (JSON, as slog's JSON handler does; fmt as a fallback) so that secrets
// inside structs, maps and slices are found too. It allocates, which is why
// it runs only for slog.KindAny values that are not strings or errors.
func renderAny(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // as slog's JSON handler
	if err := enc.Encode(v); err == nil {
		return strings.TrimSuffix(b.String(), "\n")
	}
	return fmt.Sprintf("%+v", v)
}
