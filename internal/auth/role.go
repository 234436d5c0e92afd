package auth

import (
	"fmt"
	"log/slog"
	"net/netip"
)

// Role is an API key's role (immutable). Business privilege order:
// validator < issuer < admin; metrics may only scrape and read INFO.
type Role string

// Roles of 04-security §1.
const (
	RoleMetrics   Role = "metrics"
	RoleValidator Role = "validator"
	RoleIssuer    Role = "issuer"
	RoleAdmin     Role = "admin"
)

// Roles lists every role in privilege order.
var Roles = []Role{RoleMetrics, RoleValidator, RoleIssuer, RoleAdmin}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleMetrics, RoleValidator, RoleIssuer, RoleAdmin:
		return true
	}
	return false
}

// Capability is one row of the permission matrix (04-security §2). Public
// routes (/health, /ready, /openapi.json, PING) need none.
type Capability uint8

// Capabilities of 04-security §2.
const (
	// CapMetrics: GET /metrics.
	CapMetrics Capability = iota + 1
	// CapInfo: RESP INFO.
	CapInfo
	// CapValidate: POST /tokens/validate, TM.VALIDATE.
	CapValidate
	// CapReadSession: GET /sessions/{id}, GET, EXISTS, TTL, PTTL.
	CapReadSession
	// CapTouch: POST …/touch, TM.TOUCH.
	CapTouch
	// CapRouting: GET /cluster/routing.
	CapRouting
	// CapWrite: create, renew, revoke (POST /sessions, …/renew, …/revoke;
	// TM.CREATE, TM.RENEW, EXPIRE, TM.REVOKE, DEL).
	CapWrite
	// CapRevokeUser: POST /users/{uid}/sessions/revoke, TM.REVOKE_USER.
	CapRevokeUser
	// CapListOwnUser: GET /sessions, TM.LIST with a user_id filter.
	CapListOwnUser
	// CapListAny: GET /sessions, TM.LIST with any filter (or none).
	CapListAny
	// CapScan: RESP SCAN.
	CapScan
	// CapAdmin: /admin/v1/*.
	CapAdmin
)

// Capabilities lists every capability.
var Capabilities = []Capability{CapMetrics, CapInfo, CapValidate, CapReadSession, CapTouch,
	CapRouting, CapWrite, CapRevokeUser, CapListOwnUser, CapListAny, CapScan, CapAdmin}

var capNames = [...]string{"", "metrics", "info", "validate", "read_session", "touch", "routing",
	"write", "revoke_user", "list_own_user", "list_any", "scan", "admin"}

func (c Capability) String() string {
	if int(c) < len(capNames) && c != 0 {
		return capNames[c]
	}
	return "capability(?)"
}

// Allows implements the permission matrix of 04-security §2 exactly.
// Denied → 403 TM-AUTH-4030.
func (r Role) Allows(c Capability) bool {
	switch c {
	case CapMetrics:
		return r == RoleMetrics || r == RoleAdmin
	case CapInfo:
		return r.Valid()
	case CapValidate, CapReadSession, CapTouch, CapRouting:
		return r == RoleValidator || r == RoleIssuer || r == RoleAdmin
	case CapWrite, CapRevokeUser, CapListOwnUser:
		return r == RoleIssuer || r == RoleAdmin
	case CapListAny, CapScan, CapAdmin:
		return r == RoleAdmin
	}
	return false
}

// Generation says which secret of a key a credential matched.
type Generation uint8

const (
	// GenCurrent is the key's current secret.
	GenCurrent Generation = iota
	// GenPrevious is the secret replaced by the last rotation, valid until
	// rotation_grace_until.
	GenPrevious
)

// Principal is an authenticated caller.
type Principal struct {
	// KeyID is the API key ID, or LocalAdminID.
	KeyID string
	// Role is the key's role (admin for LOCAL_ADMIN).
	Role Role
	// ClientIP is the address the caller authenticated from (04-security §6).
	ClientIP netip.Addr
	// Local is true for LOCAL_ADMIN: no rate limit, no brute-force guard,
	// no allowlists.
	Local bool
	// Generation is the secret generation the credential matched.
	Generation Generation

	matched string // the PHC string that matched; a hash, never a secret
	// ak is the key record the principal was admitted with, valid while
	// the key table is tbl (Recheck skips the lookup then). Set once.
	ak  *authKey
	tbl *authTable
}

// String describes the principal without the matched hash.
func (p Principal) String() string {
	return fmt.Sprintf("Principal(%s role=%s ip=%s)", p.KeyID, p.Role, p.ClientIP)
}

// GoString keeps %#v from printing the matched hash.
func (p Principal) GoString() string { return p.String() }

// LogValue keeps slog from printing the matched hash.
func (p Principal) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key_id", p.KeyID), slog.String("role", string(p.Role)))
}

// Can reports whether the principal's role allows c.
func (p *Principal) Can(c Capability) bool { return p != nil && p.Role.Allows(c) }

// LocalAdmin returns the principal of local admin socket callers: admin
// rights, exempt from rate limits, allowlists and the brute-force guard.
func LocalAdmin() *Principal {
	return &Principal{KeyID: LocalAdminID, Role: RoleAdmin, Local: true}
}
