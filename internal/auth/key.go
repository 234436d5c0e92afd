package auth

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
)

// Status is a key's status; disable and enable are reversible.
type Status string

// Key statuses.
const (
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s == StatusActive || s == StatusDisabled }

// Limits of 04-security §1.
const (
	MaxDescriptionBytes = 256
	MaxAllowList        = 100
	MaxRateLimit        = 1_000_000
)

// Key is an API key record as held by the control store. Times are Unix ms
// (0 = never / none). SecretHash and PrevSecretHash are Argon2id PHC strings;
// a Key never holds a secret. Values returned by this package are copies the
// caller may keep; AllowList must not be modified.
type Key struct {
	ID                 string
	Role               Role
	Description        string
	Status             Status
	AllowList          []netip.Prefix
	RateLimit          int
	CreatedAt          int64
	CreatedBy          string
	ExpiresAt          int64
	LastUsedAt         int64
	RotationGraceUntil int64
	SecretHash         string
	PrevSecretHash     string
}

// Expired reports whether the key has expired at nowMs (now > expires_at).
func (k *Key) Expired(nowMs int64) bool { return k.ExpiresAt != 0 && nowMs > k.ExpiresAt }

// matchValid reports which generation a matched PHC string is at nowMs, or
// false when it is neither the current hash nor a previous hash within its
// grace period.
func (k *Key) matchValid(matched string, nowMs int64) (Generation, bool) {
	if matched == k.SecretHash {
		return GenCurrent, true
	}
	if k.PrevSecretHash != "" && matched == k.PrevSecretHash && nowMs < k.RotationGraceUntil {
		return GenPrevious, true
	}
	return 0, false
}

// keyObject is the public key object of 02-http-api §5.1, field order as specified.
type keyObject struct {
	KeyID              string   `json:"key_id"`
	Role               Role     `json:"role"`
	Description        string   `json:"description"`
	Status             Status   `json:"status"`
	AllowList          []string `json:"allowlist"`
	RateLimit          int      `json:"rate_limit"`
	CreatedAt          int64    `json:"created_at"`
	CreatedBy          string   `json:"created_by"`
	ExpiresAt          int64    `json:"expires_at"`
	LastUsedAt         int64    `json:"last_used_at"`
	RotationGraceUntil int64    `json:"rotation_grace_until"`
}

// MarshalJSON renders the public key object of 02-http-api §5.1 (allowlist
// in canonical CIDR form). Hashes are never serialized.
func (k Key) MarshalJSON() ([]byte, error) {
	o := keyObject{KeyID: k.ID, Role: k.Role, Description: k.Description, Status: k.Status,
		AllowList: make([]string, len(k.AllowList)), RateLimit: k.RateLimit,
		CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy, ExpiresAt: k.ExpiresAt,
		LastUsedAt: k.LastUsedAt, RotationGraceUntil: k.RotationGraceUntil}
	for i, p := range k.AllowList {
		o.AllowList[i] = p.String()
	}
	return json.Marshal(o)
}

// String describes the key without hashes.
func (k Key) String() string {
	return fmt.Sprintf("Key(%s role=%s status=%s)", k.ID, k.Role, k.Status)
}

// GoString keeps %#v from printing hashes.
func (k Key) GoString() string { return k.String() }

// LogValue keeps slog from printing hashes.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key_id", k.ID), slog.String("role", string(k.Role)),
		slog.String("status", string(k.Status)))
}

// CommandType identifies a control-store command. Values are persisted.
type CommandType uint8

// Command types.
const (
	CmdCreate          CommandType = 1
	CmdSetStatus       CommandType = 2
	CmdRotate          CommandType = 3
	CmdEmergencyCreate CommandType = 4
	CmdTouch           CommandType = 5
)

func (t CommandType) String() string {
	switch t {
	case CmdCreate:
		return "create"
	case CmdSetStatus:
		return "set_status"
	case CmdRotate:
		return "rotate"
	case CmdEmergencyCreate:
		return "emergency_create"
	case CmdTouch:
		return "touch"
	}
	return fmt.Sprintf("command(%d)", uint8(t))
}

// Touch sets a key's last_used_at to max(last_used_at, At).
type Touch struct {
	ID string
	At int64
}

// Command is one deterministic change to the key table. Everything that is
// not deterministic (IDs, times, salts, hashes) is decided by the proposer
// and carried in the command, so every replica (or a replay) computes the
// same State.
type Command struct {
	Type CommandType
	// Key is the new record (CmdCreate, CmdEmergencyCreate).
	Key Key
	// ID names the key (CmdSetStatus, CmdRotate).
	ID string
	// Status is the new status (CmdSetStatus).
	Status Status
	// SecretHash is the new current hash (CmdRotate).
	SecretHash string
	// GraceUntil is the Unix ms until which the replaced hash stays valid;
	// 0 invalidates it at once (CmdRotate).
	GraceUntil int64
	// Touches are last-used updates; unknown IDs are ignored (CmdTouch).
	Touches []Touch
}

// MaxTouchesPerCommand bounds a CmdTouch batch.
const MaxTouchesPerCommand = 4096

// Change tells subscribers what a command changed.
type Change struct {
	Type CommandType
	IDs  []string
}

// State is the key table: the deterministic state machine shared by the
// standalone Store and (later) the Raft FSM. It is not safe for concurrent
// use; Key records are copy-on-write, so Views taken from it stay valid.
type State struct {
	keys map[string]*Key
}

// NewState returns an empty key table.
func NewState() *State { return &State{keys: map[string]*Key{}} }

// Len returns the number of keys.
func (s *State) Len() int { return len(s.keys) }

// Check reports whether Apply would accept cmd, without changing anything.
func (s *State) Check(cmd *Command) error {
	switch cmd.Type {
	case CmdCreate, CmdEmergencyCreate:
		if err := checkKey(&cmd.Key); err != nil {
			return err
		}
		if _, ok := s.keys[cmd.Key.ID]; ok {
			return fmt.Errorf("%w: %s", ErrKeyExists, cmd.Key.ID)
		}
	case CmdSetStatus:
		if !cmd.Status.Valid() {
			return fmt.Errorf("%w: status %q", ErrInvalidCommand, cmd.Status)
		}
		if _, ok := s.keys[cmd.ID]; !ok {
			return fmt.Errorf("%w: %s", ErrNotFound, cmd.ID)
		}
	case CmdRotate:
		if _, err := parsePHC(cmd.SecretHash); err != nil {
			return fmt.Errorf("%w: rotate: %v", ErrInvalidCommand, err)
		}
		if cmd.GraceUntil < 0 {
			return fmt.Errorf("%w: negative grace", ErrInvalidCommand)
		}
		if _, ok := s.keys[cmd.ID]; !ok {
			return fmt.Errorf("%w: %s", ErrNotFound, cmd.ID)
		}
	case CmdTouch:
		if len(cmd.Touches) > MaxTouchesPerCommand {
			return fmt.Errorf("%w: %d touches", ErrInvalidCommand, len(cmd.Touches))
		}
	default:
		return fmt.Errorf("%w: type %d", ErrInvalidCommand, cmd.Type)
	}
	return nil
}

func checkKey(k *Key) error {
	if id, ok := ParseKeyID(k.ID); !ok || id != k.ID {
		return fmt.Errorf("%w: key id %q", ErrInvalidCommand, k.ID)
	}
	switch {
	case !k.Role.Valid():
		return fmt.Errorf("%w: role %q", ErrInvalidCommand, k.Role)
	case !k.Status.Valid():
		return fmt.Errorf("%w: status %q", ErrInvalidCommand, k.Status)
	case len(k.Description) > MaxDescriptionBytes:
		return fmt.Errorf("%w: description too long", ErrInvalidCommand)
	case len(k.AllowList) > MaxAllowList:
		return fmt.Errorf("%w: allowlist too long", ErrInvalidCommand)
	case k.RateLimit < 1 || k.RateLimit > MaxRateLimit:
		return fmt.Errorf("%w: rate_limit %d", ErrInvalidCommand, k.RateLimit)
	case k.ExpiresAt < 0 || k.CreatedAt < 0 || k.LastUsedAt < 0 || k.RotationGraceUntil < 0:
		return fmt.Errorf("%w: negative time", ErrInvalidCommand)
	}
	for _, p := range k.AllowList {
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return fmt.Errorf("%w: allowlist entry %v", ErrInvalidCommand, p)
		}
	}
	if _, err := parsePHC(k.SecretHash); err != nil {
		return fmt.Errorf("%w: secret hash: %v", ErrInvalidCommand, err)
	}
	if k.PrevSecretHash != "" {
		if _, err := parsePHC(k.PrevSecretHash); err != nil {
			return fmt.Errorf("%w: previous secret hash: %v", ErrInvalidCommand, err)
		}
	}
	return nil
}

// Apply checks cmd and applies it. On error nothing changes. It returns the
// resulting key (zero for CmdTouch) and what changed.
func (s *State) Apply(cmd *Command) (Key, Change, error) {
	if err := s.Check(cmd); err != nil {
		return Key{}, Change{}, err
	}
	ch := Change{Type: cmd.Type}
	var out *Key
	switch cmd.Type {
	case CmdCreate, CmdEmergencyCreate:
		k := cloneKey(&cmd.Key)
		s.keys[k.ID] = k
		out = k
		ch.IDs = []string{k.ID}
	case CmdSetStatus:
		k := cloneKey(s.keys[cmd.ID])
		k.Status = cmd.Status
		s.keys[k.ID] = k
		out = k
		ch.IDs = []string{k.ID}
	case CmdRotate:
		k := cloneKey(s.keys[cmd.ID])
		if cmd.GraceUntil > 0 {
			k.PrevSecretHash = k.SecretHash
			k.RotationGraceUntil = cmd.GraceUntil
		} else {
			k.PrevSecretHash = ""
			k.RotationGraceUntil = 0
		}
		k.SecretHash = cmd.SecretHash
		s.keys[k.ID] = k
		out = k
		ch.IDs = []string{k.ID}
	case CmdTouch:
		for _, t := range cmd.Touches {
			old, ok := s.keys[t.ID]
			if !ok || t.At <= old.LastUsedAt {
				continue
			}
			k := cloneKey(old)
			k.LastUsedAt = t.At
			s.keys[k.ID] = k
			ch.IDs = append(ch.IDs, k.ID)
		}
		return Key{}, ch, nil
	}
	return *cloneKey(out), ch, nil
}

func cloneKey(k *Key) *Key {
	c := *k
	c.AllowList = slices.Clone(k.AllowList)
	return &c
}

// View returns an immutable view of the current table. O(keys).
func (s *State) View(index uint64) *View {
	m := make(map[string]*Key, len(s.keys))
	for id, k := range s.keys {
		m[id] = k
	}
	return &View{keys: m, index: index}
}

// Keys returns copies of all keys ordered by ID.
func (s *State) Keys() []Key { return s.View(0).Keys() }

// View is an immutable snapshot of the key table.
type View struct {
	keys  map[string]*Key
	index uint64
}

// Index is the control-store index the view reflects.
func (v *View) Index() uint64 { return v.index }

// Len returns the number of keys.
func (v *View) Len() int { return len(v.keys) }

// Get returns a copy of a key.
func (v *View) Get(id string) (Key, bool) {
	k, ok := v.keys[id]
	if !ok {
		return Key{}, false
	}
	return *cloneKey(k), true
}

// Keys returns copies of all keys ordered by ID (creation order).
func (v *View) Keys() []Key {
	out := make([]Key, 0, len(v.keys))
	for _, k := range v.keys {
		out = append(out, *cloneKey(k))
	}
	slices.SortFunc(out, func(a, b Key) int { return strings.Compare(a.ID, b.ID) })
	return out
}
