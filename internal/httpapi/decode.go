package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"

	"github.com/yndnr/tokmesh-go/internal/apierr"
)

// field is one accepted member of a strict JSON object.
type field struct {
	name     string
	dst      any // pointer passed to json.Unmarshal, or *map[string]string
	required bool
	set      *bool // optional: records presence (non-null)
	// bounded: an *int64 field with an upper and lower range check; a
	// JSON integer beyond int64 is stored saturated so that check refuses
	// it with the field's code (out of range, not of the wrong type).
	bounded bool
}

// decodeStrict decodes body as one JSON object: field names match exactly
// (case-sensitive), unknown or duplicate fields, wrong types, invalid
// UTF-8 and trailing data are TM-SYS-4000; an absent or null required
// field is TM-ARG-1002. An empty body is {}.
func decodeStrict(body []byte, fields ...field) *apierr.Error {
	if decodeFast(body, fields) {
		return nil
	}
	return decodeGeneral(body, fields)
}

// decodeGeneral is decodeStrict without the fast path: every body the fast
// path does not accept ends here, and it alone writes error messages.
func decodeGeneral(body []byte, fields []field) *apierr.Error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if !utf8.Valid(body) {
		return apierr.Newf(apierr.SysMalformed, "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return apierr.Newf(apierr.SysMalformed, "request body must be a JSON object")
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return apierr.Newf(apierr.SysMalformed, "invalid JSON")
		}
		name, _ := tok.(string)
		if seen[name] {
			return apierr.Newf(apierr.SysMalformed, "duplicate field %q", name).WithDetail("field", name)
		}
		seen[name] = true
		var f *field
		for i := range fields {
			if fields[i].name == name {
				f = &fields[i]
				break
			}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return apierr.Newf(apierr.SysMalformed, "invalid JSON")
		}
		if f == nil {
			return apierr.Newf(apierr.SysMalformed, "unknown field %q", name).WithDetail("field", name)
		}
		if string(raw) == "null" {
			seen[name] = false
			continue
		}
		if loneSurrogate(raw) {
			// encoding/json would store U+FFFD, a value the client never
			// sent (01 §2: strings are valid UTF-8); refuse instead.
			return apierr.Newf(apierr.SysMalformed, "field %q: a \\u escape encodes half of a UTF-16 surrogate pair", name).WithDetail("field", name)
		}
		if m, ok := f.dst.(*map[string]string); ok {
			v, err := decodeStringMap(raw)
			if err != nil {
				return apierr.Newf(apierr.SysMalformed, "field %q: %v", name, err).WithDetail("field", name)
			}
			*m = v
		} else if err := json.Unmarshal(raw, f.dst); err != nil {
			n, isInt := f.dst.(*int64)
			if !isInt || !f.bounded || !saturateInt(raw, n) {
				return apierr.Newf(apierr.SysMalformed, "field %q has the wrong type", name).WithDetail("field", name)
			}
		}
		if f.set != nil {
			*f.set = true
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return apierr.Newf(apierr.SysMalformed, "invalid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apierr.Newf(apierr.SysMalformed, "trailing data after the JSON object")
	}
	for _, f := range fields {
		if f.required && !seen[f.name] {
			return apierr.Newf(apierr.ArgMissing, "field %q is required", f.name).WithDetail("field", f.name)
		}
	}
	return nil
}

// saturateInt stores a JSON integer too large for an int64 as the nearest
// int64 and reports whether raw was such an integer.
func saturateInt(raw []byte, dst *int64) bool {
	digits := bytes.TrimPrefix(raw, []byte("-"))
	if len(digits) == 0 || (digits[0] == '0' && len(digits) > 1) {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	if len(digits) < len(raw) {
		*dst = math.MinInt64
	} else {
		*dst = math.MaxInt64
	}
	return true
}

// decodeStringMap decodes a JSON object of strings, rejecting duplicate
// keys and non-string values.
func decodeStringMap(raw []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errors.New("must be an object of strings")
	}
	m := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := tok.(string)
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("duplicate key %q", k)
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, err
		}
		v, ok := tok.(string)
		if !ok {
			return nil, errors.New("values must be strings")
		}
		m[k] = v
	}
	return m, nil
}

// loneSurrogate reports whether the JSON value raw has a string with a
// \uD800–\uDFFF escape that is not half of a high-low pair.
func loneSurrogate(raw []byte) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return false
	}
	inStr := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case !inStr:
			inStr = c == '"'
		case c == '"':
			inStr = false
		case c == '\\' && i+1 < len(raw):
			if raw[i+1] != 'u' {
				i++ // a two-byte escape
				continue
			}
			r, ok := hex4(raw, i+2)
			i += 5
			switch {
			case !ok || r < 0xD800 || r > 0xDFFF:
			case r >= 0xDC00:
				return true // a low half first
			default:
				lo, ok := hex4(raw, i+3)
				if i+2 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' || !ok || lo < 0xDC00 || lo > 0xDFFF {
					return true
				}
				i += 6
			}
		}
	}
	return false
}

// hex4 parses the four hex digits at raw[i:].
func hex4(raw []byte, i int) (rune, bool) {
	if i+4 > len(raw) {
		return 0, false
	}
	var r rune
	for _, c := range raw[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
