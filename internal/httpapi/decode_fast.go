package httpapi

// maxFastFields bounds the field sets the fast path handles (the validate
// body has two; create-session six).
const maxFastFields = 8

// decodeFast is a fast path of decodeStrict for the common case: one
// object of known, distinct, non-null-or-null members whose destinations
// are *string, *bool, *int64 (plain integers) or *map[string]string (an
// object of plain strings with distinct keys), with plain printable-ASCII
// strings (no escapes), JSON whitespace only and nothing after the object.
// It allocates only the decoded strings and maps. It commits
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
		case *string, *bool, *int64, *map[string]string:
		default:
			return false
		}
	}
	// Per field: the string value's (or object's) bounds in body, the bool
	// or the integer; state 0 = absent, 1 = null, 2 = set.
	var (
		state      [maxFastFields]uint8
		start, end [maxFastFields]int
		bval       [maxFastFields]bool
		ival       [maxFastFields]int64
		npairs     [maxFastFields]int
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
				case *int64:
					v, next, ok := scanPlainInt(body, i)
					if !ok {
						return false
					}
					state[f], ival[f] = 2, v
					i = next
				case *map[string]string:
					next, n, ok := scanPlainStringMap(body, i)
					if !ok {
						return false
					}
					state[f], start[f], end[f], npairs[f] = 2, i, next, n
					i = next
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
		case *int64:
			*d = ival[j]
		case *map[string]string:
			*d = buildPlainStringMap(body[start[j]:end[j]], npairs[j])
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

// scanPlainInt scans a JSON integer at b[i] (-?(0|[1-9][0-9]*), at most 18
// digits, so it fits in an int64) followed by a delimiter; it returns the
// value and the index after it. Fractions, exponents, leading zeros and
// longer numbers are left to the general decoder.
func scanPlainInt(b []byte, i int) (v int64, next int, ok bool) {
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		v = v*10 + int64(b[j]-'0')
		j++
	}
	if n := j - i; n == 0 || n > 18 || (n > 1 && b[i] == '0') {
		return 0, 0, false
	}
	if j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		return 0, 0, false // e.g. 1.5, 1e3, 12x
	}
	if neg {
		v = -v
	}
	return v, j, true
}

// maxFastPairs bounds the objects scanPlainStringMap accepts (duplicate
// keys are checked pairwise).
const maxFastPairs = 16

// scanPlainStringMap scans a JSON object of plain strings at b[i] (keys
// and values as scanPlainString accepts them, distinct keys, at most
// maxFastPairs pairs); it returns the index after the closing brace and
// the number of pairs.
func scanPlainStringMap(b []byte, i int) (next, n int, ok bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, 0, false
	}
	var ks, ke [maxFastPairs]int
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, 0, true
	}
	for {
		if n == maxFastPairs {
			return 0, 0, false
		}
		s, e, ok := scanPlainString(b, i)
		if !ok {
			return 0, 0, false
		}
		for p := 0; p < n; p++ {
			if string(b[ks[p]:ke[p]]) == string(b[s:e]) {
				return 0, 0, false // duplicate: the general decoder reports it
			}
		}
		ks[n], ke[n] = s, e
		n++
		i = skipWS(b, e+1)
		if i >= len(b) || b[i] != ':' {
			return 0, 0, false
		}
		if _, ve, ok := scanPlainString(b, skipWS(b, i+1)); ok {
			i = skipWS(b, ve+1)
		} else {
			return 0, 0, false
		}
		if i >= len(b) {
			return 0, 0, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, n, true
		default:
			return 0, 0, false
		}
	}
}

// buildPlainStringMap decodes an object scanPlainStringMap accepted.
func buildPlainStringMap(obj []byte, n int) map[string]string {
	m := make(map[string]string, n)
	i := skipWS(obj, 1)
	for len(m) < n {
		ks, ke, _ := scanPlainString(obj, i)
		i = skipWS(obj, ke+1) // ':'
		vs, ve, _ := scanPlainString(obj, skipWS(obj, i+1))
		m[string(obj[ks:ke])] = string(obj[vs:ve])
		i = skipWS(obj, ve+1) // ',' or '}'
		i = skipWS(obj, i+1)
	}
	return m
}

// decodeValidate is the fast path of the validate body, {"token":…} with
// an optional "touch": it accepts what decodeFast would accept for those
// two fields and returns the token as a slice of body — no allocation and
// no copy of the secret (the engine hashes it and keeps nothing). ok false
// leaves the body to decodeStrict (escapes, nulls, unknown or duplicate
// fields, errors and their messages).
func decodeValidate(body []byte) (token []byte, touch, ok bool) {
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false, false
	}
	i = skipWS(body, i+1)
	haveToken, haveTouch := false, false
	for {
		ks, ke, ok := scanPlainString(body, i)
		if !ok {
			return nil, false, false
		}
		i = skipWS(body, ke+1)
		if i >= len(body) || body[i] != ':' {
			return nil, false, false
		}
		i = skipWS(body, i+1)
		switch string(body[ks:ke]) {
		case "token":
			vs, ve, ok := scanPlainString(body, i)
			if !ok || haveToken {
				return nil, false, false
			}
			token, haveToken, i = body[vs:ve], true, ve+1
		case "touch":
			if haveTouch {
				return nil, false, false
			}
			switch {
			case hasLiteral(body, i, "true"):
				touch, i = true, i+4
			case hasLiteral(body, i, "false"):
				i += 5
			default:
				return nil, false, false
			}
			haveTouch = true
		default:
			return nil, false, false
		}
		i = skipWS(body, i)
		if i >= len(body) {
			return nil, false, false
		}
		if body[i] == ',' {
			i = skipWS(body, i+1)
			continue
		}
		if body[i] != '}' || skipWS(body, i+1) != len(body) || !haveToken {
			return nil, false, false
		}
		return token, touch, true
	}
}
