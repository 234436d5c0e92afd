package session

import (
	"net/netip"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Field limits of 01-data-model §2, in bytes.
const (
	MaxUserIDLen    = 128
	MaxDeviceIDLen  = 128
	MaxUserAgentLen = 512
	MaxCreatedByLen = 128
	MaxDataKeyLen   = 64
	MaxDataValueLen = 1024
	MaxDataLen      = 4096 // whole data map as compact JSON
)

// Session is one session as the store hands it out: a value copy taken under
// the shard lock. Strings are shared with the store (Go strings are
// immutable); Data is shared too and must never be modified.
type Session struct {
	ID           ID
	TokenHash    TokenHash
	UserID       string
	DeviceID     string
	IPAddress    netip.Addr
	UserAgent    string
	LastAccessIP netip.Addr
	LastAccessUA string
	CreatedBy    string
	CreatedAt    int64 // Unix ms
	ExpiresAt    int64 // Unix ms
	LastActive   int64 // Unix ms
	// Data is the data map as compact JSON with sorted keys, only `"` and
	// `\` escaped; "{}" when empty. Immutable after create and shared: it
	// may alias the store's immutable memory, so it must never be written
	// to (appending is safe: its capacity equals its length).
	Data        []byte
	IdleTimeout int64 // seconds, 0 = none
	Version     uint64
}

// EffectiveExpiry returns the instant after which the session is expired:
// ExpiresAt, or LastActive + IdleTimeout when IdleTimeout > 0, whichever is
// first. The session is expired when now > EffectiveExpiry().
func (s *Session) EffectiveExpiry() int64 {
	return effectiveExpiry(s.ExpiresAt, s.LastActive, s.IdleTimeout)
}

func effectiveExpiry(expiresAt, lastActive, idleSeconds int64) int64 {
	if idleSeconds > 0 {
		if ie := satAdd(lastActive, idleSeconds*1000); ie < expiresAt {
			return ie
		}
	}
	return expiresAt
}

// satAdd returns a+b clamped to the int64 range (b ≥ 0 in every use).
func satAdd(a, b int64) int64 {
	c := a + b
	if b > 0 && c < a {
		return 1<<63 - 1
	}
	if b < 0 && c > a {
		return -1 << 63
	}
	return c
}

// Tombstone is what remains of a revoked session until its original
// expires_at + expired_grace.
type Tombstone struct {
	ID        ID
	TokenHash TokenHash
	UserID    string
	ExpiresAt int64 // original expires_at, Unix ms
	RevokedAt int64 // Unix ms
	Version   uint64
}

// AppendJSON appends the public session object (the 14 fields of
// 01-data-model §2, in that order) to dst. It never includes the token hash.
// IPs are rendered as text, "" for the zero Addr. It does not allocate when
// dst has enough capacity (about 600 bytes plus the data).
func (s *Session) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":"`...)
	dst = s.ID.appendTo(dst)
	dst = append(dst, `","user_id":`...)
	dst = appendJSONString(dst, s.UserID)
	dst = append(dst, `,"device_id":`...)
	dst = appendJSONString(dst, s.DeviceID)
	dst = append(dst, `,"ip_address":"`...)
	dst = s.IPAddress.AppendTo(dst)
	dst = append(dst, `","user_agent":`...)
	dst = appendJSONString(dst, s.UserAgent)
	dst = append(dst, `,"last_access_ip":"`...)
	dst = s.LastAccessIP.AppendTo(dst)
	dst = append(dst, `","last_access_ua":`...)
	dst = appendJSONString(dst, s.LastAccessUA)
	dst = append(dst, `,"created_by":`...)
	dst = appendJSONString(dst, s.CreatedBy)
	dst = append(dst, `,"created_at":`...)
	dst = strconv.AppendInt(dst, s.CreatedAt, 10)
	dst = append(dst, `,"expires_at":`...)
	dst = strconv.AppendInt(dst, s.ExpiresAt, 10)
	dst = append(dst, `,"last_active":`...)
	dst = strconv.AppendInt(dst, s.LastActive, 10)
	dst = append(dst, `,"data":`...)
	if len(s.Data) == 0 {
		dst = append(dst, "{}"...)
	} else {
		dst = append(dst, s.Data...)
	}
	dst = append(dst, `,"idle_timeout":`...)
	dst = strconv.AppendInt(dst, s.IdleTimeout, 10)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendUint(dst, s.Version, 10)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// load64 reads s[i:i+8] little-endian (the compiler merges it into one load).
func load64(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// needsEscape8 reports whether any of the 8 bytes in w is a control
// character, '"', '\\', DEL or not ASCII (SWAR; false positives are harmless,
// false negatives impossible).
func needsEscape8(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	return (w&highs)|((w-ones*0x20)&^w&highs)|hasZero(w^(ones*'"'))|hasZero(w^(ones*'\\'))|hasZero(w^(ones*0x7F)) != 0
}

// appendJSONString appends s as a JSON string. Fields validated on create
// never need more than `\"` and `\\`, but user agents are stored as sent,
// so control characters are escaped and invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	// Fast path: skip 8 bytes at a time while none needs escaping (the
	// common case for IDs, user agents and creators); the byte loop below
	// takes over from the first word that might.
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if needsEscape8(load64(s, i)) {
			break
		}
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7F {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// checkText applies the string rule of 01-data-model §2 (valid UTF-8, no
// control characters U+0000..U+001F and U+007F) and a byte-length range. It
// returns "" when s is fine, else the reason.
func checkText(s string, minLen, maxLen int) string {
	if len(s) < minLen || len(s) > maxLen {
		if minLen > 0 {
			return "must be " + strconv.Itoa(minLen) + ".." + strconv.Itoa(maxLen) + " bytes"
		}
		return "must be at most " + strconv.Itoa(maxLen) + " bytes"
	}
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if hasControl(s) {
		return "must not contain control characters"
	}
	return ""
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7F {
			return true
		}
	}
	return false
}

// CheckUserID returns a *FieldError if s is not a valid user_id.
func CheckUserID(s string) error {
	if r := checkText(s, 1, MaxUserIDLen); r != "" {
		return fieldErr("user_id", r)
	}
	return nil
}

// CheckDeviceID returns a *FieldError if s is not a valid device_id.
func CheckDeviceID(s string) error {
	if r := checkText(s, 0, MaxDeviceIDLen); r != "" {
		return fieldErr("device_id", r)
	}
	return nil
}

// TruncateUserAgent cuts ua to at most 512 bytes without splitting a UTF-8
// sequence. User agents are never rejected.
func TruncateUserAgent(ua string) string {
	if len(ua) <= MaxUserAgentLen {
		return ua
	}
	cut := MaxUserAgentLen
	// Back up over at most 3 continuation bytes to the start of the rune
	// that straddles the limit.
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(ua[cut]); i++ {
		cut--
	}
	return ua[:cut]
}

// EncodeData validates a data map against 01-data-model §2 and returns it as
// compact JSON with sorted keys, escaping only `"` and `\`. A nil or empty
// map gives "{}". Errors are *FieldError with Field "data.<key>" for one
// entry (or "data" when the key itself is empty or not valid UTF-8) and
// "data" when the whole map exceeds 4096 bytes.
func EncodeData(m map[string]string) ([]byte, error) {
	if len(m) == 0 {
		return []byte("{}"), nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	size := 1 // '{' ... '}' minus the first comma
	for _, k := range keys {
		v := m[k]
		if len(k) == 0 || !utf8.ValidString(k) {
			return nil, fieldErr("data", "keys must be 1..64 bytes of valid UTF-8")
		}
		if r := checkText(k, 1, MaxDataKeyLen); r != "" {
			return nil, fieldErr("data."+k, "key "+r)
		}
		if r := checkText(v, 0, MaxDataValueLen); r != "" {
			return nil, fieldErr("data."+k, "value "+r)
		}
		size += 1 + jsonLen(k) + 1 + jsonLen(v) // ,"k":"v" with quotes counted in jsonLen
	}
	if size > MaxDataLen {
		return nil, fieldErr("data", "must be at most 4096 bytes as compact JSON")
	}
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendDataString(b, k)
		b = append(b, ':')
		b = appendDataString(b, m[k])
	}
	return append(b, '}'), nil
}

// jsonLen is the length of s as a data JSON string, quotes included.
func jsonLen(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			n++
		}
	}
	return n
}

func appendDataString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// DecodeData parses data JSON produced by EncodeData back into a map. It
// reports false for anything that is not in that exact canonical form.
func DecodeData(b []byte) (map[string]string, bool) {
	m := map[string]string{}
	ok := walkData(b, func(k, v string) { m[k] = v })
	if !ok {
		return nil, false
	}
	return m, true
}

// validData reports whether b is data JSON in the canonical form EncodeData
// produces (keys strictly ascending, rule-abiding strings, size limit).
func validData(b []byte) bool {
	return walkData(b, nil)
}

// walkData parses canonical data JSON and calls fn for every entry (fn may
// be nil).
func walkData(b []byte, fn func(k, v string)) bool {
	if len(b) < 2 || len(b) > MaxDataLen || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	p := 1
	end := len(b) - 1
	var prev string
	first := true
	var buf []byte
	readStr := func(maxLen int) (string, bool) {
		if p >= end || b[p] != '"' {
			return "", false
		}
		p++
		buf = buf[:0]
		for {
			if p >= end {
				return "", false
			}
			c := b[p]
			switch {
			case c == '"':
				p++
				s := string(buf)
				if len(s) > maxLen || !utf8.ValidString(s) || hasControl(s) {
					return "", false
				}
				return s, true
			case c == '\\':
				if p+1 >= end || (b[p+1] != '"' && b[p+1] != '\\') {
					return "", false
				}
				buf = append(buf, b[p+1])
				p += 2
			default:
				buf = append(buf, c)
				p++
			}
		}
	}
	for p < end {
		if !first {
			if b[p] != ',' {
				return false
			}
			p++
		}
		k, ok := readStr(MaxDataKeyLen)
		if !ok || k == "" || (!first && k <= prev) {
			return false
		}
		if p >= end || b[p] != ':' {
			return false
		}
		p++
		v, ok := readStr(MaxDataValueLen)
		if !ok {
			return false
		}
		if fn != nil {
			fn(k, v)
		}
		prev = k
		first = false
	}
	return true
}

// emptyData is the data JSON of an empty map. It is shared and never modified.
var emptyData = []byte("{}")
