package auth

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Warnings returned with create, rotate, emergency and status changes.
const (
	WarnNeverExpires   = "the key never expires"
	WarnExpiresFar     = "the key expires more than 365 days ahead"
	WarnEmergency      = "emergency admin key: it expires in 24 hours; create a regular admin key and disable this one"
	WarnLastAdminGone  = "no active admin key remains; recover through the local admin socket"
	emergencyLifetime  = 24 * time.Hour
	farExpiry          = 365 * 24 * time.Hour
	maxRotationGrace   = 24 * time.Hour
	maxListWindow      = 10_000
	maxListSize        = 100
	sweepInterval      = time.Second
	flushTimeoutOnStop = 5 * time.Second
)

// CreateRequest is the body of POST /admin/v1/keys.
type CreateRequest struct {
	// Role is required.
	Role Role
	// Description is ≤ 256 bytes.
	Description string
	// AllowList holds ≤ 100 IPs or CIDRs; bare IPs become /32 or /128.
	AllowList []string
	// RateLimit is 1..1,000,000 requests/s; 0 means the configured default.
	RateLimit int
	// ExpiresAt is Unix ms, 0 = never; must be in the future when set.
	ExpiresAt int64
}

// managerConfig is the part of Config the Manager reads; Reload swaps it
// atomically.
type managerConfig struct {
	defaultRateLimit int
	rotationGrace    time.Duration
	argon2           Params
}

// Manager is the key administration API (02-http-api §5) over a Backend. It
// feeds the Authenticator (subscribed to the backend) and owns one
// background goroutine that purges the auth cache on expiry / grace end
// every second and writes last_used_at every LastUsedFlush. Close stops it.
type Manager struct {
	backend Backend
	authn   *Authenticator
	now     func() time.Time
	log     *slog.Logger
	flush   time.Duration
	cfg     atomic.Pointer[managerConfig]

	unsubscribe func()
	stop        chan struct{}
	done        chan struct{}
	closeOnce   sync.Once
}

// NewManager subscribes authn to backend, loads the current key table into
// it and starts the background loop.
func NewManager(cfg Config, backend Backend, authn *Authenticator) *Manager {
	cfg = cfg.withDefaults()
	m := &Manager{backend: backend, authn: authn, now: cfg.Now, log: cfg.Logger, flush: cfg.LastUsedFlush,
		stop: make(chan struct{}), done: make(chan struct{})}
	m.Reload(cfg)
	m.unsubscribe = backend.Subscribe(authn.Update)
	authn.Update(backend.View(), Change{})
	go m.loop()
	return m
}

// Reload applies hot-reloadable settings: default rate limit, rotation
// grace, Argon2 parameters for new hashes, and the global allowlist.
func (m *Manager) Reload(cfg Config) {
	cfg = cfg.withDefaults()
	m.cfg.Store(&managerConfig{defaultRateLimit: cfg.DefaultRateLimit, rotationGrace: cfg.RotationGrace, argon2: cfg.Argon2})
	m.authn.SetAllowList(cfg.AllowList)
}

func (m *Manager) loop() {
	defer close(m.done)
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	lastFlush := time.Now()
	for {
		select {
		case <-m.stop:
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeoutOnStop)
			m.flushLastUsed(ctx)
			cancel()
			return
		case <-t.C:
			m.authn.Sweep()
			if time.Since(lastFlush) >= m.flush {
				lastFlush = time.Now()
				m.flushLastUsed(context.Background())
			}
		}
	}
}

// FlushLastUsed writes pending last_used_at values now (also done
// periodically and on Close).
func (m *Manager) FlushLastUsed(ctx context.Context) error { return m.flushLastUsed(ctx) }

func (m *Manager) flushLastUsed(ctx context.Context) error {
	ups := m.authn.lastUsedUpdates()
	for len(ups) > 0 {
		n := min(len(ups), MaxTouchesPerCommand)
		if _, err := m.backend.Apply(ctx, Command{Type: CmdTouch, Touches: ups[:n]}); err != nil {
			m.log.Error("auth: writing last_used_at failed", "keys", len(ups), "err", err)
			return err
		}
		ups = ups[n:]
	}
	return nil
}

// Close stops the background loop after a final last_used_at flush and
// unsubscribes the Authenticator. It does not close the backend.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
		m.unsubscribe()
	})
	return nil
}

func (m *Manager) nowMs() int64 { return m.now().UnixMilli() }

// validate checks a create request and builds the key (without hash).
func (m *Manager) validate(req CreateRequest, nowMs int64) (Key, error) {
	cfg := m.cfg.Load()
	if req.Role == "" {
		return Key{}, &FieldError{Field: "role", Missing: true}
	}
	if !req.Role.Valid() {
		return Key{}, &FieldError{Field: "role", Reason: fmt.Sprintf("%q is not metrics, validator, issuer or admin", req.Role)}
	}
	if len(req.Description) > MaxDescriptionBytes {
		return Key{}, &FieldError{Field: "description", Reason: fmt.Sprintf("%d bytes exceed %d", len(req.Description), MaxDescriptionBytes)}
	}
	if len(req.AllowList) > MaxAllowList {
		return Key{}, &FieldError{Field: "allowlist", Reason: fmt.Sprintf("%d entries exceed %d", len(req.AllowList), MaxAllowList)}
	}
	var al []netip.Prefix
	for _, s := range req.AllowList {
		p, err := ParsePrefix(s)
		if err != nil {
			return Key{}, &FieldError{Field: "allowlist", Reason: fmt.Sprintf("%q is not an IP address or CIDR", s)}
		}
		al = append(al, p)
	}
	rl := req.RateLimit
	if rl == 0 {
		rl = cfg.defaultRateLimit
	}
	if rl < 1 || rl > MaxRateLimit {
		return Key{}, &FieldError{Field: "rate_limit", Reason: fmt.Sprintf("%d outside 1..%d", req.RateLimit, MaxRateLimit)}
	}
	if req.ExpiresAt < 0 || (req.ExpiresAt != 0 && req.ExpiresAt <= nowMs) {
		return Key{}, &FieldError{Field: "expires_at", Reason: "must be 0 (never) or in the future"}
	}
	return Key{Role: req.Role, Description: req.Description, Status: StatusActive, AllowList: al,
		RateLimit: rl, CreatedAt: nowMs, ExpiresAt: req.ExpiresAt}, nil
}

func expiryWarning(expiresAt, nowMs int64) string {
	switch {
	case expiresAt == 0:
		return WarnNeverExpires
	case expiresAt-nowMs > farExpiry.Milliseconds():
		return WarnExpiresFar
	}
	return ""
}

// Create validates req (field errors are *FieldError), hashes a new secret
// and stores the key. The secret is returned once and never kept; warning
// is set when the key never expires or expires more than 365 days ahead.
func (m *Manager) Create(ctx context.Context, req CreateRequest, createdBy string) (k Key, secret, warning string, err error) {
	now := m.now()
	k, err = m.validate(req, now.UnixMilli())
	if err != nil {
		return Key{}, "", "", err
	}
	k, secret, err = m.create(ctx, CmdCreate, k, createdBy, now)
	if err != nil {
		return Key{}, "", "", err
	}
	return k, secret, expiryWarning(k.ExpiresAt, k.CreatedAt), nil
}

func (m *Manager) create(ctx context.Context, t CommandType, k Key, createdBy string, now time.Time) (Key, string, error) {
	secret := NewSecret()
	h, err := m.authn.hashSecret(ctx, secret, m.cfg.Load().argon2)
	if err != nil {
		return Key{}, "", err
	}
	k.ID = newKeyID(now)
	k.CreatedBy = createdBy
	k.SecretHash = h
	out, err := m.backend.Apply(ctx, Command{Type: t, Key: k})
	if err != nil {
		return Key{}, "", err
	}
	return out, secret, nil
}

// Emergency creates an admin key that expires in 24 h, created by
// LOCAL_ADMIN (local admin socket only; the caller logs a WARN and audits
// apikey.emergency_create). The warning is always set.
func (m *Manager) Emergency(ctx context.Context, description string) (Key, string, string, error) {
	if len(description) > MaxDescriptionBytes {
		return Key{}, "", "", &FieldError{Field: "description", Reason: fmt.Sprintf("%d bytes exceed %d", len(description), MaxDescriptionBytes)}
	}
	now := m.now()
	k := Key{Role: RoleAdmin, Description: description, Status: StatusActive, RateLimit: m.cfg.Load().defaultRateLimit,
		CreatedAt: now.UnixMilli(), ExpiresAt: now.Add(emergencyLifetime).UnixMilli()}
	k, secret, err := m.create(ctx, CmdEmergencyCreate, k, LocalAdminID, now)
	if err != nil {
		return Key{}, "", "", err
	}
	return k, secret, WarnEmergency, nil
}

// Get returns a key; an ID that is not well-formed is ErrNotFound.
func (m *Manager) Get(id string) (Key, error) {
	id, ok := ParseKeyID(id)
	if !ok {
		return Key{}, ErrNotFound
	}
	k, ok := m.backend.View().Get(id)
	if !ok {
		return Key{}, ErrNotFound
	}
	return k, nil
}

// List returns one page of keys ordered by ID (creation order) and the
// total matching. role and status filter when non-empty; page ≥ 1, size
// 1..100, page × size ≤ 10,000 (02-http-api §2), else a *FieldError naming
// the query parameter.
func (m *Manager) List(role Role, status Status, page, size int) ([]Key, int, error) {
	if role != "" && !role.Valid() {
		return nil, 0, &FieldError{Field: "role", Reason: fmt.Sprintf("%q is not a role", role)}
	}
	if status != "" && !status.Valid() {
		return nil, 0, &FieldError{Field: "status", Reason: fmt.Sprintf("%q is not active or disabled", status)}
	}
	if page < 1 {
		return nil, 0, &FieldError{Field: "page", Reason: "must be ≥ 1"}
	}
	if size < 1 || size > maxListSize {
		return nil, 0, &FieldError{Field: "size", Reason: "must be 1..100"}
	}
	if page*size > maxListWindow {
		return nil, 0, &FieldError{Field: "page", Reason: "page × size must be ≤ 10000"}
	}
	all := m.backend.View().Keys()
	matched := all[:0]
	for _, k := range all {
		if (role == "" || k.Role == role) && (status == "" || k.Status == status) {
			matched = append(matched, k)
		}
	}
	total := len(matched)
	lo := (page - 1) * size
	if lo >= total {
		return []Key{}, total, nil
	}
	return matched[lo:min(lo+size, total)], total, nil
}

// SetStatus enables or disables a key; the Authenticator's cache entries
// for it are purged when the command is applied. warning is set when this
// leaves no active, unexpired admin key. Setting the current status again
// changes nothing and writes nothing.
func (m *Manager) SetStatus(ctx context.Context, id string, status Status) (Key, string, error) {
	if !status.Valid() {
		return Key{}, "", &FieldError{Field: "status", Reason: fmt.Sprintf("%q is not active or disabled", status)}
	}
	cur, err := m.Get(id)
	if err != nil {
		return Key{}, "", err
	}
	k := cur
	if cur.Status != status {
		if k, err = m.backend.Apply(ctx, Command{Type: CmdSetStatus, ID: cur.ID, Status: status}); err != nil {
			return Key{}, "", err
		}
	}
	warning := ""
	if status == StatusDisabled && k.Role == RoleAdmin && !m.anyActiveAdmin() {
		warning = WarnLastAdminGone
	}
	return k, warning, nil
}

func (m *Manager) anyActiveAdmin() bool {
	now := m.nowMs()
	for _, k := range m.backend.View().keys {
		if k.Role == RoleAdmin && k.Status == StatusActive && !k.Expired(now) {
			return true
		}
	}
	return false
}

// Rotate gives a key a new secret. The old secret stays valid for grace
// (0..24 h; negative means the configured rotation_grace); validUntil is
// when it stops working (now for grace 0). The secret is returned once.
func (m *Manager) Rotate(ctx context.Context, id string, grace time.Duration) (k Key, secret string, validUntil int64, err error) {
	if grace < 0 {
		grace = m.cfg.Load().rotationGrace
	}
	if grace > maxRotationGrace {
		return Key{}, "", 0, &FieldError{Field: "grace_seconds", Reason: "must be 0..86400"}
	}
	cur, err := m.Get(id)
	if err != nil {
		return Key{}, "", 0, err
	}
	secret = NewSecret()
	h, err := m.authn.hashSecret(ctx, secret, m.cfg.Load().argon2)
	if err != nil {
		return Key{}, "", 0, err
	}
	now := m.now()
	validUntil = now.UnixMilli()
	cmd := Command{Type: CmdRotate, ID: cur.ID, SecretHash: h}
	if grace > 0 {
		validUntil = now.Add(grace).UnixMilli()
		cmd.GraceUntil = validUntil
	}
	if k, err = m.backend.Apply(ctx, cmd); err != nil {
		return Key{}, "", 0, err
	}
	return k, secret, validUntil, nil
}
