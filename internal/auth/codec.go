package auth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Codec versions (first byte of every encoded command or state).
const (
	commandCodecVersion = 1
	stateCodecVersion   = 1
	maxCodecString      = 4096
	maxStateKeys        = 10_000_000
)

var errShort = errors.New("truncated")

type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)       { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) i64(v int64)      { e.b = binary.BigEndian.AppendUint64(e.b, uint64(v)) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }

func (e *encoder) key(k *Key) {
	e.str(k.ID)
	e.str(string(k.Role))
	e.str(k.Description)
	e.str(string(k.Status))
	e.uvarint(uint64(len(k.AllowList)))
	for _, p := range k.AllowList {
		a := p.Addr()
		if a.Is4() {
			e.u8(4)
			b := a.As4()
			e.b = append(e.b, b[:]...)
		} else {
			e.u8(16)
			b := a.As16()
			e.b = append(e.b, b[:]...)
		}
		e.u8(uint8(p.Bits()))
	}
	e.uvarint(uint64(k.RateLimit))
	e.i64(k.CreatedAt)
	e.str(k.CreatedBy)
	e.i64(k.ExpiresAt)
	e.i64(k.LastUsedAt)
	e.i64(k.RotationGraceUntil)
	e.str(k.SecretHash)
	e.str(k.PrevSecretHash)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) u8() uint8 {
	if d.err != nil || len(d.b) < 1 {
		d.fail(errShort)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) i64() int64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail(errShort)
		return 0
	}
	v := int64(binary.BigEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.fail(errShort)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > maxCodecString {
		d.fail(fmt.Errorf("string of %d bytes", n))
		return ""
	}
	return string(d.bytes(int(n)))
}

func (d *decoder) key() Key {
	var k Key
	k.ID = d.str()
	k.Role = Role(d.str())
	k.Description = d.str()
	k.Status = Status(d.str())
	n := d.uvarint()
	if n > MaxAllowList {
		d.fail(fmt.Errorf("allowlist of %d entries", n))
		return k
	}
	if n > 0 {
		k.AllowList = make([]netip.Prefix, 0, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var a netip.Addr
		n := int(d.u8())
		b := d.bytes(n)
		if d.err != nil {
			return k
		}
		switch n {
		case 4:
			a = netip.AddrFrom4([4]byte(b))
		case 16:
			a = netip.AddrFrom16([16]byte(b))
		default:
			d.fail(errors.New("bad address length"))
			return k
		}
		p, err := a.Prefix(int(d.u8()))
		if err != nil {
			d.fail(err)
			return k
		}
		k.AllowList = append(k.AllowList, p)
	}
	rl := d.uvarint()
	if rl > MaxRateLimit {
		d.fail(fmt.Errorf("rate limit %d", rl))
		return k
	}
	k.RateLimit = int(rl)
	k.CreatedAt = d.i64()
	k.CreatedBy = d.str()
	k.ExpiresAt = d.i64()
	k.LastUsedAt = d.i64()
	k.RotationGraceUntil = d.i64()
	k.SecretHash = d.str()
	k.PrevSecretHash = d.str()
	return k
}

// EncodeCommand returns the versioned binary form of cmd (the payload of a
// control-store record or a Raft log entry).
func EncodeCommand(cmd *Command) []byte {
	e := encoder{b: make([]byte, 0, 256)}
	e.u8(commandCodecVersion)
	e.u8(uint8(cmd.Type))
	switch cmd.Type {
	case CmdCreate, CmdEmergencyCreate:
		e.key(&cmd.Key)
	case CmdSetStatus:
		e.str(cmd.ID)
		e.str(string(cmd.Status))
	case CmdRotate:
		e.str(cmd.ID)
		e.str(cmd.SecretHash)
		e.i64(cmd.GraceUntil)
	case CmdTouch:
		e.uvarint(uint64(len(cmd.Touches)))
		for _, t := range cmd.Touches {
			e.str(t.ID)
			e.i64(t.At)
		}
	}
	return e.b
}

// DecodeCommand parses EncodeCommand's output. It checks structure only
// (State.Check validates the rules) and never panics.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	d := decoder{b: b}
	if v := d.u8(); d.err == nil && v != commandCodecVersion {
		return c, fmt.Errorf("command codec version %d", v)
	}
	c.Type = CommandType(d.u8())
	switch c.Type {
	case CmdCreate, CmdEmergencyCreate:
		c.Key = d.key()
	case CmdSetStatus:
		c.ID = d.str()
		c.Status = Status(d.str())
	case CmdRotate:
		c.ID = d.str()
		c.SecretHash = d.str()
		c.GraceUntil = d.i64()
	case CmdTouch:
		n := d.uvarint()
		if n > MaxTouchesPerCommand {
			return c, fmt.Errorf("touch batch of %d", n)
		}
		if n > 0 {
			c.Touches = make([]Touch, 0, n)
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			c.Touches = append(c.Touches, Touch{ID: d.str(), At: d.i64()})
		}
	default:
		if d.err == nil {
			return c, fmt.Errorf("unknown command type %d", c.Type)
		}
	}
	if d.err != nil {
		return c, fmt.Errorf("decode command: %w", d.err)
	}
	if len(d.b) != 0 {
		return c, fmt.Errorf("decode command: %d trailing bytes", len(d.b))
	}
	return c, nil
}

// MarshalBinary encodes the whole table (keys ordered by ID) with the
// control-store index it reflects, for snapshots and Raft snapshots.
func (s *State) MarshalBinary(index uint64) []byte {
	ids := make([]string, 0, len(s.keys))
	for id := range s.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	e := encoder{b: make([]byte, 0, 64+len(ids)*320)}
	e.u8(stateCodecVersion)
	e.i64(int64(index))
	e.uvarint(uint64(len(ids)))
	for _, id := range ids {
		e.key(s.keys[id])
	}
	return e.b
}

// UnmarshalState decodes MarshalBinary's output, checking every key record
// and that IDs are unique and ordered.
func UnmarshalState(b []byte) (*State, uint64, error) {
	d := decoder{b: b}
	if v := d.u8(); d.err == nil && v != stateCodecVersion {
		return nil, 0, fmt.Errorf("state codec version %d", v)
	}
	index := uint64(d.i64())
	n := d.uvarint()
	if n > maxStateKeys {
		return nil, 0, fmt.Errorf("state of %d keys", n)
	}
	s := NewState()
	prev := ""
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.key()
		if d.err != nil {
			break
		}
		if err := checkKey(&k); err != nil {
			return nil, 0, err
		}
		if strings.Compare(k.ID, prev) <= 0 {
			return nil, 0, fmt.Errorf("key %s out of order", k.ID)
		}
		prev = k.ID
		s.keys[k.ID] = &k
	}
	if d.err != nil {
		return nil, 0, fmt.Errorf("decode state: %w", d.err)
	}
	if len(d.b) != 0 {
		return nil, 0, fmt.Errorf("decode state: %d trailing bytes", len(d.b))
	}
	return s, index, nil
}
