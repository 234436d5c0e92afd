package config

import (
	"fmt"
	"strings"
)

// Configuration error codes (02-http-api error catalogue, TM-CFG-*).
const (
	// CodeInvalidValue: unknown key or a value of the wrong type.
	CodeInvalidValue = "TM-CFG-1001"
	// CodeOutOfRange: value out of range, not in the allowed set, or malformed.
	CodeOutOfRange = "TM-CFG-1002"
	// CodeFileUnreadable: a named file is missing or unreadable.
	CodeFileUnreadable = "TM-CFG-1003"
	// CodeUnsafePermissions: a secret file is readable by others or writable by group/others.
	CodeUnsafePermissions = "TM-CFG-1004"
	// CodeConflict: logical conflict or unsafe combination of keys.
	CodeConflict = "TM-CFG-1005"
	// CodeMissingDependency: a key requires another key that is not set.
	CodeMissingDependency = "TM-CFG-1006"
	// CodeInvalidPEM: invalid PEM, or certificate and key do not match.
	CodeInvalidPEM = "TM-CFG-1007"
	// CodeCertExpired: certificate expired.
	CodeCertExpired = "TM-CFG-1008"
)

// Error is one configuration problem. Validation and Load report all of
// them, never just the first.
type Error struct {
	Code     string // TM-CFG-1001 .. TM-CFG-1008
	Key      string // dotted key; for file errors the source ("--config", "TOKMESH_CONFIG")
	Value    string // offending value in configuration syntax; "" when not applicable
	Expected string // what would be accepted
	Message  string // short description, e.g. "out of range"
	Source   string // where Value came from: "file", "TOKMESH_…" (env name) or "--set"/shortcut flag; "" for defaults
}

// Error renders `CODE key: message (value "v" from SOURCE, expected E)`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code)
	b.WriteByte(' ')
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	var paren []string
	switch {
	case e.Value != "" && e.Source != "":
		paren = append(paren, fmt.Sprintf("value %q from %s", e.Value, e.Source))
	case e.Value != "":
		paren = append(paren, fmt.Sprintf("value %q", e.Value))
	case e.Source != "":
		paren = append(paren, "from "+e.Source)
	}
	if e.Expected != "" {
		paren = append(paren, "expected "+e.Expected)
	}
	if len(paren) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(paren, ", "))
		b.WriteByte(')')
	}
	return b.String()
}

// parseErr builds the error for a value of this key that does not parse.
func (l *leaf) parseErr(value string, err error) *Error {
	code, msg := CodeInvalidValue, "invalid "+l.kind.typeText()
	if pe, ok := err.(*parseError); ok && pe.code == CodeOutOfRange {
		code, msg = CodeOutOfRange, "out of range"
	}
	exp := l.kind.syntaxText()
	if r := l.rangeText(); r != "" {
		exp += "; range " + r
	}
	return &Error{Code: code, Key: l.key, Value: value, Message: msg, Expected: exp}
}

// unknownKeyErr reports a key that does not exist, suggesting a close one.
func unknownKeyErr(key, value, source, where string) *Error {
	exp := "a key listed by `tokmesh-server config default`"
	if s := suggestKey(key); s != "" {
		exp = "a known key; did you mean " + s + "?"
	}
	return &Error{Code: CodeInvalidValue, Key: key, Value: value, Source: source, Message: "unknown key" + where, Expected: exp}
}

// suggestKey returns the known key closest to key (edit distance at most 3),
// or "".
func suggestKey(key string) string {
	best, bestD := "", 4
	for _, l := range schema().leaves {
		if d := editDistance(key, l.key, bestD); d < bestD {
			best, bestD = l.key, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, or max when it is at
// least max.
func editDistance(a, b string, max int) int {
	if d := len(a) - len(b); d >= max || -d >= max {
		return max
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= max {
			return max
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], max)
}
