package httpapi

// maxFastFields bounds the field sets the fast path handles (the validate
// body has two; create-session six).
const maxFastFields = 8

// decodeFast is an allocation-free fast path of decodeStrict for the common
// case: one flat object of known, distinct, non-null-or-null members whose
// destinations are *string or *bool, with plain printable-ASCII strings (no
// escapes), JSON whitespace only and nothing after the object. It commits
// the values and reports true only when the body is accepted; for anything
// else (errors, escapes, non-ASCII, numbers, nested values, other
// destination types, duplicates, missing required fields, an empty body)
// it changes nothing and reports false, and decodeStrict's general decoder
// decides, so accept/reject results and error messages are the general
// decoder's. FuzzDecodeStrictFastPath checks the equivalence.
func decodeFast(body []byte, fields []field) bool {
	if len(fields) > maxFastFields {
		return false
	}
	for i := range fields {
		switch fields[i].dst.(type) {
		case *string, *bool:
		default:
			return false
		}
	}
	// Per field: the string value's bounds in body, or the bool; state 0 =
	// absent, 1 = null, 2 = set.
	var (
		state      [maxFastFields]uint8
		start, end [maxFastFields]int
		bval       [maxFastFields]bool
	)
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return false
	}
	i = skipWS(body, i+1)
	if i >= len(body) {
		return false
	}
	if body[i] != '}' {
		for {
			ks, ke, ok := scanPlainString(body, i)
			if !ok {
				return false
			}
			f := -1
			for j := range fields {
				if fields[j].name == string(body[ks:ke]) { // no allocation
					f = j
					break
				}
			}
			if f < 0 || state[f] != 0 {
				return false // unknown or duplicate: the general decoder reports it
			}
			i = skipWS(body, ke+1)
			if i >= len(body) || body[i] != ':' {
				return false
			}
			i = skipWS(body, i+1)
			if i >= len(body) {
				return false
			}
			switch {
			case hasLiteral(body, i, "null"):
				state[f] = 1
				i += 4
			default:
				switch fields[f].dst.(type) {
				case *string:
					vs, ve, ok := scanPlainString(body, i)
					if !ok {
						return false
					}
					state[f], start[f], end[f] = 2, vs, ve
					i = ve + 1
				case *bool:
					switch {
					case hasLiteral(body, i, "true"):
						bval[f] = true
						i += 4
					case hasLiteral(body, i, "false"):
						i += 5
					default:
						return false
					}
					state[f] = 2
				}
			}
			i = skipWS(body, i)
			if i >= len(body) {
				return false
			}
			if body[i] == ',' {
				i = skipWS(body, i+1)
				continue
			}
			if body[i] != '}' {
				return false
			}
			break
		}
	}
	if skipWS(body, i+1) != len(body) {
		return false // trailing data
	}
	for j := range fields {
		if fields[j].required && state[j] != 2 {
			return false
		}
	}
	for j := range fields {
		if state[j] != 2 {
			continue
		}
		switch d := fields[j].dst.(type) {
		case *string:
			*d = string(body[start[j]:end[j]])
		case *bool:
			*d = bval[j]
		}
		if fields[j].set != nil {
			*fields[j].set = true
		}
	}
	return true
}

// skipWS skips JSON whitespace (not the wider set bytes.TrimSpace knows).
func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanPlainString scans a JSON string at b[i] made of printable ASCII
// without escapes; it returns the content bounds (end is the closing
// quote's index).
func scanPlainString(b []byte, i int) (start, end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			return i + 1, j, true
		}
		if c < 0x20 || c > 0x7e || c == '\\' {
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// hasLiteral reports whether b[i:] starts with lit followed by a delimiter
// (so "nullx" or "true1" are left to the general decoder).
func hasLiteral(b []byte, i int, lit string) bool {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return false
	}
	j := i + len(lit)
	return j == len(b) || b[j] == ',' || b[j] == '}' || b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r'
}
