package audit

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// appendLine appends the record's line without the newline: exactly what
// encoding/json writes for r.toWire() (HTML-safe string escaping, sorted
// Details keys), without reflection. Details values of other types than
// strings, booleans, integers and json.Number go through json.Marshal.
// TestAppendLine_MatchesEncodingJSON and FuzzAppendLine hold it to that.
func appendLine(b []byte, r *Record) ([]byte, error) {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"time":"`...)
	b = r.Time.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","node_id":`...)
	b = appendString(b, r.NodeID)
	b = append(b, `,"request_id":`...)
	b = appendString(b, r.RequestID)
	b = append(b, `,"actor":`...)
	b = appendString(b, r.Actor)
	b = append(b, `,"role":`...)
	b = appendString(b, r.Role)
	b = append(b, `,"action":`...)
	b = appendString(b, r.Action)
	b = append(b, `,"resource":`...)
	b = appendString(b, r.Resource)
	b = append(b, `,"result":`...)
	b = appendString(b, r.Result)
	b = append(b, `,"code":`...)
	b = appendString(b, r.Code)
	b = append(b, `,"tcp_remote_ip":`...)
	b = appendString(b, r.TCPRemoteIP)
	b = append(b, `,"client_ip":`...)
	b = appendString(b, r.ClientIP)
	b = append(b, `,"user_agent":`...)
	b = appendString(b, r.UserAgent)
	b = append(b, `,"details":`...)
	b, err := appendDetails(b, r.Details)
	if err != nil {
		return b, err
	}
	b = append(b, `,"prev_hash":`...)
	b = appendString(b, r.PrevHash)
	return append(b, '}'), nil
}

func appendDetails(b []byte, d map[string]any) ([]byte, error) {
	if len(d) == 0 {
		return append(b, "{}"...), nil
	}
	var small [8]string
	keys := small[:0]
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		switch v := d[k].(type) {
		case string:
			b = appendString(b, v)
		case bool:
			b = strconv.AppendBool(b, v)
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case int32:
			b = strconv.AppendInt(b, int64(v), 10)
		case uint64:
			b = strconv.AppendUint(b, v, 10)
		case nil:
			b = append(b, "null"...)
		default:
			// Floats, json.Number, slices, nested maps, structs: exactly
			// as encoding/json renders them.
			m, err := json.Marshal(v)
			if err != nil {
				return b, err
			}
			b = append(b, m...)
		}
	}
	return append(b, '}'), nil
}

// htmlSafe marks the bytes appendString copies as they are: printable
// ASCII except `"`, `\`, <, > and &.
var htmlSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as encoding/json does with HTML escaping on:
// `"` and `\` escaped, \b \f \n \r \t short, other control characters and
// < > & as \u00XX, U+2028 and U+2029 escaped, invalid UTF-8 as \ufffd.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if htmlSafe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
