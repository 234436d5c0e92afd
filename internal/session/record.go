package session

import (
	"encoding/binary"
	"math"
	"net/netip"
	"strconv"
	"unsafe"
)

// RecordType is the type of a state-change record (05-storage §4.1). The
// engine writes it in the WAL frame; the payload is Record.AppendBinary.
type RecordType uint8

// Record types. The numbers are part of the WAL format.
const (
	RecordPut           RecordType = 1 // SESSION_PUT: full session (create, renew)
	RecordTouch         RecordType = 2 // SESSION_TOUCH: touch fields
	RecordRevoke        RecordType = 3 // SESSION_REVOKE: tombstone
	RecordExpire        RecordType = 4 // SESSION_EXPIRE: ID and version (session or tombstone removed)
	RecordPartitionDrop RecordType = 5 // PARTITION_DROP: the node no longer holds the partition
	RecordReset         RecordType = 6 // RESET: everything before is obsolete
)

var recordTypeNames = [...]string{
	RecordPut:           "SESSION_PUT",
	RecordTouch:         "SESSION_TOUCH",
	RecordRevoke:        "SESSION_REVOKE",
	RecordExpire:        "SESSION_EXPIRE",
	RecordPartitionDrop: "PARTITION_DROP",
	RecordReset:         "RESET",
}

// String returns the record type name of 05-storage §4.1, e.g. "SESSION_PUT".
func (t RecordType) String() string {
	if t.Valid() {
		return recordTypeNames[t]
	}
	return "RecordType(" + strconv.Itoa(int(t)) + ")"
}

// Valid reports whether t is a known record type.
func (t RecordType) Valid() bool { return t >= RecordPut && t <= RecordReset }

// ParseRecordType maps a name such as "SESSION_REVOKE" back to its type.
func ParseRecordType(name string) (RecordType, bool) {
	for t := RecordPut; t <= RecordReset; t++ {
		if recordTypeNames[t] == name {
			return t, true
		}
	}
	return 0, false
}

// Touch carries the fields a touch changes.
type Touch struct {
	ID           ID
	LastActive   int64
	LastAccessIP netip.Addr
	LastAccessUA string
	Version      uint64
}

// Record is one accepted state change, as handed to the Journal and as
// replayed by Store.Apply. Which fields are meaningful depends on Type.
type Record struct {
	Type      RecordType
	Partition uint16 // set by the store for session records; Journal may overwrite
	Epoch     uint64 // filled in by the Journal
	PSeq      uint64 // filled in by the Journal

	Session   *Session  // Put: an immutable copy taken under the shard lock
	Touch     Touch     // Touch
	Tombstone Tombstone // Revoke
	ID        ID        // Expire
	Version   uint64    // Expire: version of the removed session or tombstone
}

// PayloadVersion is the first byte of every payload this package encodes.
const PayloadVersion = 1

// Binary payload format, version 1. All integers are varints
// (encoding/binary: uvarint for unsigned, zig-zag varint for signed).
//
//	record    = version:1 partition:uvarint epoch:uvarint pseq:uvarint body
//	Put       = session-body
//	Touch     = id:16 last_active:varint addr last_ua:str version:uvarint
//	Revoke    = tombstone-body
//	Expire    = id:16 version:uvarint
//	PartitionDrop, Reset = (empty)
//	session   = version:1 session-body
//	session-body = id:16 token_hash:32 user:str device:str ip:addr ua:str
//	            last_ip:addr last_ua:str created_by:str created_at:varint
//	            expires_at-created_at:varint last_active-created_at:varint
//	            data:str idle_timeout:uvarint version:uvarint
//	tombstone = version:1 tombstone-body
//	tombstone-body = id:16 token_hash:32 user:str expires_at:varint
//	            revoked_at:varint version:uvarint
//	str       = len:uvarint bytes
//	addr      = 0 | 4 a:4 | 6 a:16   (zones are not stored)
//
// Differences are computed with wrapping int64 arithmetic, so every int64
// survives a round trip.

// AppendBinary appends the record's binary payload to dst. A Put record
// with a nil Session encodes an empty session, which DecodeRecord rejects.
func (r *Record) AppendBinary(dst []byte) []byte {
	dst = append(dst, PayloadVersion)
	dst = binary.AppendUvarint(dst, uint64(r.Partition))
	dst = binary.AppendUvarint(dst, r.Epoch)
	dst = binary.AppendUvarint(dst, r.PSeq)
	switch r.Type {
	case RecordPut:
		s := r.Session
		if s == nil {
			s = &Session{}
		}
		dst = appendSessionBody(dst, s)
	case RecordTouch:
		t := &r.Touch
		dst = append(dst, t.ID[:]...)
		dst = binary.AppendVarint(dst, t.LastActive)
		dst = appendAddr(dst, t.LastAccessIP)
		dst = appendStr(dst, t.LastAccessUA)
		dst = binary.AppendUvarint(dst, t.Version)
	case RecordRevoke:
		dst = appendTombstoneBody(dst, &r.Tombstone)
	case RecordExpire:
		dst = append(dst, r.ID[:]...)
		dst = binary.AppendUvarint(dst, r.Version)
	}
	return dst
}

// AppendSessionBinary appends the binary form of s (used by snapshots).
func AppendSessionBinary(dst []byte, s *Session) []byte {
	return appendSessionBody(append(dst, PayloadVersion), s)
}

// AppendTombstoneBinary appends the binary form of t (used by snapshots).
func AppendTombstoneBinary(dst []byte, t *Tombstone) []byte {
	return appendTombstoneBody(append(dst, PayloadVersion), t)
}

func appendSessionBody(dst []byte, s *Session) []byte {
	dst = append(dst, s.ID[:]...)
	dst = append(dst, s.TokenHash[:]...)
	dst = appendStr(dst, s.UserID)
	dst = appendStr(dst, s.DeviceID)
	dst = appendAddr(dst, s.IPAddress)
	dst = appendStr(dst, s.UserAgent)
	// last_access_ip/ua usually equal the creation values: one byte each
	// then (kind 1 / length 0 mean "same as ip_address / user_agent"),
	// which keeps snapshots and PUT records about 15 % smaller.
	if s.LastAccessIP == s.IPAddress && s.IPAddress.IsValid() {
		dst = append(dst, 1)
	} else {
		dst = appendAddr(dst, s.LastAccessIP)
	}
	if s.LastAccessUA == s.UserAgent {
		dst = append(dst, 0)
	} else {
		dst = binary.AppendUvarint(dst, uint64(len(s.LastAccessUA))+1)
		dst = append(dst, s.LastAccessUA...)
	}
	dst = appendStr(dst, s.CreatedBy)
	dst = binary.AppendVarint(dst, s.CreatedAt)
	dst = binary.AppendVarint(dst, s.ExpiresAt-s.CreatedAt)
	dst = binary.AppendVarint(dst, s.LastActive-s.CreatedAt)
	data := s.Data
	if len(data) == 0 {
		data = emptyData
	}
	dst = binary.AppendUvarint(dst, uint64(len(data)))
	dst = append(dst, data...)
	dst = binary.AppendUvarint(dst, uint64(s.IdleTimeout))
	return binary.AppendUvarint(dst, s.Version)
}

func appendTombstoneBody(dst []byte, t *Tombstone) []byte {
	dst = append(dst, t.ID[:]...)
	dst = append(dst, t.TokenHash[:]...)
	dst = appendStr(dst, t.UserID)
	dst = binary.AppendVarint(dst, t.ExpiresAt)
	dst = binary.AppendVarint(dst, t.RevokedAt)
	return binary.AppendUvarint(dst, t.Version)
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendAddr(dst []byte, a netip.Addr) []byte {
	switch {
	case !a.IsValid():
		return append(dst, 0)
	case a.Is4():
		b := a.As4()
		return append(append(dst, 4), b[:]...)
	default:
		b := a.As16()
		return append(append(dst, 6), b[:]...)
	}
}

// DecodeRecord decodes the payload of a record of type t. It never panics;
// an unknown type or payload version, a truncated or over-long payload, or
// a field that breaks a rule returns an error that Is(ErrCorrupt).
func DecodeRecord(t RecordType, payload []byte) (Record, error) {
	if !t.Valid() {
		return Record{}, corrupt("unknown record type " + strconv.Itoa(int(t)))
	}
	d := decoder{b: payload}
	if err := d.recordHead(); err != nil {
		return Record{}, err
	}
	r := Record{Type: t}
	r.Partition, r.Epoch, r.PSeq = d.head()
	switch t {
	case RecordPut:
		s := new(Session)
		d.sessionBody(s)
		r.Session = s
	case RecordTouch:
		r.Touch.ID = d.id()
		r.Touch.LastActive = d.varint()
		r.Touch.LastAccessIP = d.addr()
		r.Touch.LastAccessUA = d.str(MaxUserAgentLen)
		r.Touch.Version = d.uvarint()
		if d.err == nil && (r.Touch.ID.IsZero() || r.Touch.Version == 0) {
			d.fail("touch without ID or version")
		}
	case RecordRevoke:
		d.tombstoneBody(&r.Tombstone)
	case RecordExpire:
		r.ID = d.id()
		r.Version = d.uvarint()
		if d.err == nil && (r.ID.IsZero() || r.Version == 0) {
			d.fail("expire without ID or version")
		}
	}
	d.end()
	if d.err != nil {
		return Record{}, d.err
	}
	return r, nil
}

// recordHead checks the payload version of a record.
func (d *decoder) recordHead() error {
	if v := d.byte(); d.err == nil && v != PayloadVersion {
		return corrupt("unknown payload version " + strconv.Itoa(int(v)))
	}
	return nil
}

// head reads the partition position every record starts with.
func (d *decoder) head() (part uint16, epoch, pseq uint64) {
	p := d.uvarint()
	if p > math.MaxUint16 {
		d.fail("partition out of range")
	}
	return uint16(p), d.uvarint(), d.uvarint()
}

// RecordHead is what every record payload starts with.
type RecordHead struct {
	Partition   uint16
	Epoch, PSeq uint64
	ID          ID // zero for PARTITION_DROP and RESET
}

// PeekRecord decodes the head of a record payload (and the session ID of
// the record types about one session) without decoding the rest, for
// routing records before DecodeRecord or Loader.ApplyRecordBinary.
func PeekRecord(t RecordType, payload []byte) (RecordHead, error) {
	if !t.Valid() {
		return RecordHead{}, corrupt("unknown record type " + strconv.Itoa(int(t)))
	}
	d := decoder{b: payload}
	if err := d.recordHead(); err != nil {
		return RecordHead{}, err
	}
	var h RecordHead
	h.Partition, h.Epoch, h.PSeq = d.head()
	switch t {
	case RecordPut, RecordTouch, RecordRevoke, RecordExpire:
		h.ID = d.id()
	}
	if d.err != nil {
		return RecordHead{}, d.err
	}
	return h, nil
}

// DecodeSessionBinary decodes what AppendSessionBinary wrote. It never
// panics; errors Is(ErrCorrupt).
func DecodeSessionBinary(b []byte) (*Session, error) {
	return decodeSession(decoder{b: b})
}

// DecodeTrustedSessionBinary is DecodeSessionBinary for payloads whose
// integrity an AEAD tag already proved (this node's own snapshots): it
// skips re-validating the field rules, which dominates recovery time, but
// keeps every bounds check, so it never panics either.
func DecodeTrustedSessionBinary(b []byte) (*Session, error) {
	return decodeSession(decoder{b: b, trusted: true})
}

func decodeSession(d decoder) (*Session, error) {
	if v := d.byte(); d.err == nil && v != PayloadVersion {
		return nil, corrupt("unknown session version " + strconv.Itoa(int(v)))
	}
	s := new(Session)
	d.sessionBody(s)
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}

// DecodeTombstoneBinary decodes what AppendTombstoneBinary wrote. It never
// panics; errors Is(ErrCorrupt).
func DecodeTombstoneBinary(b []byte) (Tombstone, error) {
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != PayloadVersion {
		return Tombstone{}, corrupt("unknown tombstone version " + strconv.Itoa(int(v)))
	}
	var t Tombstone
	d.tombstoneBody(&t)
	d.end()
	if d.err != nil {
		return Tombstone{}, d.err
	}
	return t, nil
}

// decoder reads a payload; after the first error every read returns zero
// values and the error sticks.
type decoder struct {
	b   []byte
	err error
	// trusted skips the field-rule re-validation (UTF-8, control
	// characters, canonical data JSON) for payloads an AEAD tag already
	// authenticated; every bounds check still runs.
	trusted bool
	// view makes strings and Data alias b instead of copying it (Loader:
	// the session is consumed before b changes; see viewString).
	view bool
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = corrupt(what)
	}
	d.b = nil
}

func (d *decoder) end() {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail("truncated")
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) id() (id ID) {
	copy(id[:], d.bytes(16))
	return id
}

func (d *decoder) str(maxLen int) string {
	n := d.uvarint()
	if n > uint64(maxLen) {
		d.fail("string too long")
		return ""
	}
	b := d.bytes(int(n))
	if d.view {
		return viewString(b)
	}
	return string(b)
}

// viewString returns b as a string without copying. Only for strings that
// live no longer than the bytes stay unmodified: the Loader's transient
// Session, whose strings are copied (blob) or cloned (unique.Make, map
// keys) before the caller reuses the buffer.
func viewString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// text reads a string that must satisfy the create-time string rule.
func (d *decoder) text(minLen, maxLen int, what string) string {
	s := d.str(maxLen)
	if d.err == nil && !d.trusted && checkText(s, minLen, maxLen) != "" {
		d.fail("invalid " + what)
	}
	return s
}

func (d *decoder) addr() netip.Addr {
	switch d.byte() {
	case 0:
		return netip.Addr{}
	case 4:
		var a [4]byte
		copy(a[:], d.bytes(4))
		return netip.AddrFrom4(a)
	case 6:
		var a [16]byte
		copy(a[:], d.bytes(16))
		return netip.AddrFrom16(a)
	default:
		d.fail("bad address kind")
		return netip.Addr{}
	}
}

func (d *decoder) sessionBody(s *Session) {
	s.ID = d.id()
	copy(s.TokenHash[:], d.bytes(32))
	s.UserID = d.text(1, MaxUserIDLen, "user_id")
	s.DeviceID = d.text(0, MaxDeviceIDLen, "device_id")
	s.IPAddress = d.addr()
	s.UserAgent = d.str(MaxUserAgentLen)
	if len(d.b) > 0 && d.b[0] == 1 {
		d.b = d.b[1:]
		s.LastAccessIP = s.IPAddress
	} else {
		s.LastAccessIP = d.addr()
	}
	switch n := d.uvarint(); {
	case d.err != nil:
	case n == 0:
		s.LastAccessUA = s.UserAgent
	case n-1 > MaxUserAgentLen:
		d.fail("string too long")
	default:
		if b := d.bytes(int(n - 1)); d.view {
			s.LastAccessUA = viewString(b)
		} else {
			s.LastAccessUA = string(b)
		}
	}
	s.CreatedBy = d.str(MaxCreatedByLen)
	s.CreatedAt = d.varint()
	s.ExpiresAt = s.CreatedAt + d.varint()
	s.LastActive = s.CreatedAt + d.varint()
	n := d.uvarint()
	if n > MaxDataLen {
		d.fail("data too long")
	}
	if data := d.bytes(int(n)); d.err == nil {
		if !d.trusted && !validData(data) {
			d.fail("invalid data")
		}
		if d.view {
			s.Data = data
		} else {
			s.Data = append([]byte(nil), data...)
		}
	}
	idle := d.uvarint()
	if idle > math.MaxUint32 {
		d.fail("idle_timeout out of range")
	}
	s.IdleTimeout = int64(idle)
	s.Version = d.uvarint()
	if d.err == nil && (s.ID.IsZero() || s.Version == 0) {
		d.fail("session without ID or version")
	}
}

func (d *decoder) tombstoneBody(t *Tombstone) {
	t.ID = d.id()
	copy(t.TokenHash[:], d.bytes(32))
	t.UserID = d.text(1, MaxUserIDLen, "user_id")
	t.ExpiresAt = d.varint()
	t.RevokedAt = d.varint()
	t.Version = d.uvarint()
	if d.err == nil && (t.ID.IsZero() || t.Version == 0) {
		d.fail("tombstone without ID or version")
	}
}
