package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"unsafe"
)

// IDPrefix is the prefix of every session ID string.
const IDPrefix = "tmss-"

// IDLen is the length of a session ID string: "tmss-" + 26 ULID characters.
const IDLen = len(IDPrefix) + 26

// TokenPrefix is the prefix of server-generated tokens. It has no meaning on
// input: a client token starting with it is treated like any other.
const TokenPrefix = "tmtk_"

// Token length limits of 01-data-model §1 (bytes).
const (
	MinTokenLen = 16
	MaxTokenLen = 1024
)

// maxIDTime is the largest millisecond timestamp a ULID can hold (48 bits).
const maxIDTime = 1<<48 - 1

// ID is a session ID in its 16-byte ULID binary form.
//
// Layout: bytes 0–5 the creation time in Unix milliseconds (big-endian),
// bytes 6–7 the partition (big-endian), byte 8 a copy of the token hash's
// third byte (from which the store derives the shard), bytes 9–15 random.
type ID [16]byte

// crockford is the lower-case Crockford base32 alphabet used for ULIDs.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// crockfordDec maps an input byte to its 5-bit value, or 0xFF. Both cases are
// accepted; i, l, o and u are not part of the alphabet.
var crockfordDec = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	for i := 0; i < len(crockford); i++ {
		c := crockford[i]
		t[c] = byte(i)
		if c >= 'a' && c <= 'z' {
			t[c-'a'+'A'] = byte(i)
		}
	}
	return t
}()

// NewID returns a new session ID for a session created at nowMs in the given
// partition. shard is stored in byte 8 unchanged (the store passes the token
// hash's byte 2). The remaining 56 bits come from crypto/rand.
func NewID(partition uint16, shard byte, nowMs int64) (ID, error) {
	var id ID
	if nowMs < 0 || nowMs > maxIDTime {
		return id, errors.New("session: ID timestamp out of range")
	}
	if _, err := rand.Read(id[9:]); err != nil {
		return ID{}, err
	}
	putIDHeader(&id, partition, shard, nowMs)
	return id, nil
}

func putIDHeader(id *ID, partition uint16, shard byte, nowMs int64) {
	ms := uint64(nowMs)
	id[0] = byte(ms >> 40)
	id[1] = byte(ms >> 32)
	id[2] = byte(ms >> 24)
	id[3] = byte(ms >> 16)
	id[4] = byte(ms >> 8)
	id[5] = byte(ms)
	binary.BigEndian.PutUint16(id[6:8], partition)
	id[8] = shard
}

// ParseID parses a session ID string ("tmss-" + 26 Crockford base32
// characters, any case). It reports false for anything that is not a
// well-formed session ID: wrong prefix or length, a character outside the
// alphabet (including i, l, o, u), a first ULID character above '7', or a
// partition ≥ partitions. partitions ≤ 0 disables the partition check (for
// offline tools that do not know P).
func ParseID(s string, partitions int) (ID, bool) {
	var id ID
	if len(s) != IDLen {
		return id, false
	}
	for i := 0; i < len(IDPrefix); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != IDPrefix[i] {
			return id, false
		}
	}
	var hi, lo uint64
	for i := len(IDPrefix); i < IDLen; i++ {
		d := crockfordDec[s[i]]
		if d == 0xFF {
			return id, false
		}
		if i == len(IDPrefix) && d > 7 {
			return id, false // would overflow 128 bits
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(d)
	}
	binary.BigEndian.PutUint64(id[0:8], hi)
	binary.BigEndian.PutUint64(id[8:16], lo)
	if partitions > 0 && int(id.Partition()) >= partitions {
		return ID{}, false
	}
	return id, true
}

// String returns "tmss-" followed by the lower-case ULID (31 characters).
func (id ID) String() string {
	var b [IDLen]byte
	return string(id.appendTo(b[:0]))
}

// AppendText implements encoding.TextAppender (the String form).
func (id ID) AppendText(dst []byte) ([]byte, error) { return id.appendTo(dst), nil }

// MarshalText implements encoding.TextMarshaler (the String form).
func (id ID) MarshalText() ([]byte, error) { return id.appendTo(make([]byte, 0, IDLen)), nil }

// UnmarshalText implements encoding.TextUnmarshaler. It accepts what
// ParseID accepts without a partition limit.
func (id *ID) UnmarshalText(b []byte) error {
	v, ok := ParseID(string(b), 0)
	if !ok {
		return errors.New("session: malformed session ID")
	}
	*id = v
	return nil
}

func (id ID) appendTo(dst []byte) []byte {
	hi := binary.BigEndian.Uint64(id[0:8])
	lo := binary.BigEndian.Uint64(id[8:16])
	// The 128 bits are read as a 130-bit number (two leading zero bits) in
	// 26 groups of 5 bits, most significant first: one group of 3 bits from
	// hi, 12 from hi, one straddling hi and lo, 12 from lo. Branch-free: this
	// runs for every session JSON reply.
	var out [26]byte
	out[0] = crockford[hi>>61]
	for i := 1; i <= 12; i++ {
		out[i] = crockford[(hi>>(61-5*i))&31]
	}
	out[13] = crockford[(hi&1)<<4|lo>>60]
	for i := 14; i < 26; i++ {
		out[i] = crockford[(lo>>(125-5*i))&31]
	}
	dst = append(dst, IDPrefix...)
	return append(dst, out[:]...)
}

// Partition returns the partition stored in bytes 6–7.
func (id ID) Partition() uint16 { return binary.BigEndian.Uint16(id[6:8]) }

// Time returns the creation time stored in the ID (Unix ms).
func (id ID) Time() int64 {
	return int64(id[0])<<40 | int64(id[1])<<32 | int64(id[2])<<24 | int64(id[3])<<16 | int64(id[4])<<8 | int64(id[5])
}

// IsZero reports whether id is the zero ID (never a valid session).
func (id ID) IsZero() bool { return id == ID{} }

// TokenHash is the SHA-256 of a token's exact bytes, the only form of a token
// the store keeps.
type TokenHash [32]byte

// String returns the hash in lower-case hex (for tools; it is not secret).
func (h TokenHash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText implements encoding.TextMarshaler (lower-case hex).
func (h TokenHash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (hex, 64 digits).
func (h *TokenHash) UnmarshalText(b []byte) error {
	if len(b) != 2*len(h) {
		return errors.New("session: token hash must be 64 hex digits")
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// HashToken returns the SHA-256 of the exact bytes of token. It does not
// allocate.
func HashToken(token string) TokenHash {
	// sha256.Sum256 only reads its input; viewing the string's bytes avoids
	// a copy on the validate hot path.
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// Partition returns (h[0]<<8 | h[1]) mod partitions. It returns 0 when
// partitions ≤ 0.
func (h TokenHash) Partition(partitions int) uint16 {
	if partitions <= 0 {
		return 0
	}
	return uint16((int(h[0])<<8 | int(h[1])) % partitions)
}

// ValidToken reports whether token satisfies the token format rule: 16..1024
// bytes, each printable ASCII 0x21..0x7E.
func ValidToken(token string) bool {
	if len(token) < MinTokenLen || len(token) > MaxTokenLen {
		return false
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c < 0x21 || c > 0x7E {
			return false
		}
	}
	return true
}

// GenerateToken returns a new server token: "tmtk_" followed by the unpadded
// base64url encoding of 32 bytes from crypto/rand (48 characters).
func GenerateToken() (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	var b [len(TokenPrefix) + 43]byte
	copy(b[:], TokenPrefix)
	base64.RawURLEncoding.Encode(b[len(TokenPrefix):], raw[:])
	return string(b[:]), nil
}
