package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// Session is the public session object (01-data-model §2). Times are Unix ms.
type Session struct {
	ID           string            `json:"id"`
	UserID       string            `json:"user_id"`
	DeviceID     string            `json:"device_id"`
	IPAddress    string            `json:"ip_address"`
	UserAgent    string            `json:"user_agent"`
	LastAccessIP string            `json:"last_access_ip"`
	LastAccessUA string            `json:"last_access_ua"`
	CreatedBy    string            `json:"created_by"`
	CreatedAt    int64             `json:"created_at"`
	ExpiresAt    int64             `json:"expires_at"`
	LastActive   int64             `json:"last_active"`
	Data         map[string]string `json:"data"`
	IdleTimeout  int64             `json:"idle_timeout"`
	Version      uint64            `json:"version"`
}

// CreateSessionRequest is the body of POST /sessions.
type CreateSessionRequest struct {
	UserID     string            `json:"user_id"`
	DeviceID   string            `json:"device_id,omitempty"`
	TTLSeconds int64             `json:"ttl_seconds,omitempty"`
	Data       map[string]string `json:"data,omitempty"`
	// Token is a client-supplied token; empty: the server generates one.
	Token string `json:"token,omitempty"`
	// IdleTimeoutSeconds: nil = server default, 0 = no idle expiry.
	IdleTimeoutSeconds *int64 `json:"idle_timeout_seconds,omitempty"`
}

// CreateSessionResult is the data of a successful create.
type CreateSessionResult struct {
	SessionID        string `json:"session_id"`
	Token            string `json:"token,omitempty"`
	ExpiresAt        int64  `json:"expires_at"`
	EvictedSessionID string `json:"evicted_session_id,omitempty"`
}

// ValidateResult is the data of POST /tokens/validate.
type ValidateResult struct {
	Valid   bool           `json:"valid"`
	Session *Session       `json:"session,omitempty"`
	Error   *ValidateError `json:"error,omitempty"`
}

// ValidateError says why a token is not valid.
type ValidateError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// RevokeResult is the data of a session revoke.
type RevokeResult struct {
	SessionID string `json:"session_id"`
	Revoked   bool   `json:"revoked"`
}

// RevokeUserResult is the data of a revoke-all.
type RevokeUserResult struct {
	UserID       string `json:"user_id"`
	RevokedCount int    `json:"revoked_count"`
}

// ListSessionsOptions filters GET /sessions; zero values are omitted.
// Times are Unix ms.
type ListSessionsOptions struct {
	UserID        string
	DeviceID      string
	CreatedBy     string
	IPAddress     string
	CreatedAfter  int64
	CreatedBefore int64
	ActiveAfter   int64
	SortBy        string
	SortOrder     string
	Page          int
	Size          int
}

func (o ListSessionsOptions) values() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	num := func(k string, v int64) {
		if v != 0 {
			q.Set(k, strconv.FormatInt(v, 10))
		}
	}
	set("user_id", o.UserID)
	set("device_id", o.DeviceID)
	set("created_by", o.CreatedBy)
	set("ip_address", o.IPAddress)
	num("created_after", o.CreatedAfter)
	num("created_before", o.CreatedBefore)
	num("active_after", o.ActiveAfter)
	set("sort_by", o.SortBy)
	set("sort_order", o.SortOrder)
	num("page", int64(o.Page))
	num("size", int64(o.Size))
	return q
}

// SessionList is a page of sessions.
type SessionList struct {
	Items []Session `json:"items"`
	Page  int       `json:"page"`
	Size  int       `json:"size"`
	Total int       `json:"total"`
}

func sessPath(id string) string { return "/sessions/" + url.PathEscape(id) }

// CreateSession creates a session (POST /sessions). Not retried.
func (c *Client) CreateSession(ctx context.Context, req CreateSessionRequest) (*CreateSessionResult, error) {
	if c.resp != nil {
		return c.respCreateSession(ctx, req)
	}
	var out CreateSessionResult
	if err := c.do(ctx, call{method: http.MethodPost, path: "/sessions", body: req, key: routeKey{token: req.Token}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetSession reads a session. Retried on 503/504.
func (c *Client) GetSession(ctx context.Context, id string) (*Session, error) {
	if c.resp != nil {
		return c.respGetSession(ctx, id)
	}
	var out Session
	if err := c.do(ctx, call{method: http.MethodGet, path: sessPath(id), idempotent: true, key: routeKey{id: id}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Validate checks a token. Retried on 503/504 only when touch is false.
func (c *Client) Validate(ctx context.Context, token string, touch bool) (*ValidateResult, error) {
	if c.resp != nil {
		return c.respValidate(ctx, token, touch)
	}
	body := struct {
		Token string `json:"token"`
		Touch bool   `json:"touch,omitempty"`
	}{token, touch}
	var out ValidateResult
	if err := c.do(ctx, call{method: http.MethodPost, path: "/tokens/validate", body: body, idempotent: !touch, key: routeKey{token: token}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Touch refreshes a session's last activity. Not retried.
func (c *Client) Touch(ctx context.Context, id string) (*Session, error) {
	if c.resp != nil {
		return c.respTouch(ctx, id)
	}
	var out Session
	if err := c.do(ctx, call{method: http.MethodPost, path: sessPath(id) + "/touch", body: struct{}{}, key: routeKey{id: id}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Renew sets a session's remaining TTL. Not retried.
func (c *Client) Renew(ctx context.Context, id string, ttlSeconds int64) (*Session, error) {
	if c.resp != nil {
		return c.respRenew(ctx, id, ttlSeconds)
	}
	body := struct {
		TTLSeconds int64 `json:"ttl_seconds"`
	}{ttlSeconds}
	var out Session
	if err := c.do(ctx, call{method: http.MethodPost, path: sessPath(id) + "/renew", body: body, key: routeKey{id: id}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Revoke revokes a session (idempotent; retried on 503/504).
func (c *Client) Revoke(ctx context.Context, id string) (*RevokeResult, error) {
	if c.resp != nil {
		return c.respRevoke(ctx, id)
	}
	var out RevokeResult
	if err := c.do(ctx, call{method: http.MethodPost, path: sessPath(id) + "/revoke", body: struct{}{}, idempotent: true, key: routeKey{id: id}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeUser revokes every live session of a user, except exceptSessionID
// when not empty (idempotent; retried on 503/504).
func (c *Client) RevokeUser(ctx context.Context, userID, exceptSessionID string) (*RevokeUserResult, error) {
	if c.resp != nil {
		return c.respRevokeUser(ctx, userID, exceptSessionID)
	}
	body := struct {
		Except string `json:"except_session_id,omitempty"`
	}{exceptSessionID}
	var out RevokeUserResult
	if err := c.do(ctx, call{method: http.MethodPost, path: "/users/" + url.PathEscape(userID) + "/sessions/revoke", body: body, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListSessions lists live sessions (one page). Retried on 503/504.
func (c *Client) ListSessions(ctx context.Context, o ListSessionsOptions) (*SessionList, error) {
	if c.resp != nil {
		return c.respListSessions(ctx, o)
	}
	var out SessionList
	if err := c.do(ctx, call{method: http.MethodGet, path: "/sessions", query: o.values(), idempotent: true}, &out); err != nil {
		return nil, err
	}
	if out.Items == nil {
		out.Items = []Session{}
	}
	return &out, nil
}

// Key is the API key object (02-http-api §5.1). Times are Unix ms; 0 = never.
type Key struct {
	KeyID              string   `json:"key_id"`
	Role               string   `json:"role"`
	Description        string   `json:"description"`
	Status             string   `json:"status"`
	Allowlist          []string `json:"allowlist"`
	RateLimit          int      `json:"rate_limit"`
	CreatedAt          int64    `json:"created_at"`
	CreatedBy          string   `json:"created_by"`
	ExpiresAt          int64    `json:"expires_at"`
	LastUsedAt         int64    `json:"last_used_at"`
	RotationGraceUntil int64    `json:"rotation_grace_until"`
}

// NewKey is a created key with its secret (shown once).
type NewKey struct {
	Key
	Secret  string `json:"secret"`
	APIKey  string `json:"api_key"`
	Warning string `json:"warning,omitempty"`
}

// KeyStatusResult is the data of a status change.
type KeyStatusResult struct {
	Key
	Warning string `json:"warning,omitempty"`
}

// CreateKeyRequest is the body of POST /admin/v1/keys.
type CreateKeyRequest struct {
	Role        string   `json:"role"`
	Description string   `json:"description,omitempty"`
	Allowlist   []string `json:"allowlist,omitempty"`
	RateLimit   int      `json:"rate_limit,omitempty"`
	ExpiresAt   int64    `json:"expires_at,omitempty"` // Unix ms; 0 = never
}

// ListKeysOptions filters GET /admin/v1/keys.
type ListKeysOptions struct {
	Role, Status string
	Page, Size   int
}

// KeyList is a page of keys.
type KeyList struct {
	Items []Key `json:"items"`
	Page  int   `json:"page"`
	Size  int   `json:"size"`
	Total int   `json:"total"`
}

// RotateKeyResult is the data of a rotation.
type RotateKeyResult struct {
	KeyID               string `json:"key_id"`
	Secret              string `json:"secret"`
	APIKey              string `json:"api_key"`
	OldSecretValidUntil int64  `json:"old_secret_valid_until"`
	Warning             string `json:"warning,omitempty"`
}

func keyPath(id string) string { return "/admin/v1/keys/" + url.PathEscape(id) }

// CreateKey creates an API key. Not retried.
func (c *Client) CreateKey(ctx context.Context, req CreateKeyRequest) (*NewKey, error) {
	var out NewKey
	if err := c.do(ctx, call{method: http.MethodPost, path: "/admin/v1/keys", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeys lists API keys (one page). Retried on 503/504.
func (c *Client) ListKeys(ctx context.Context, o ListKeysOptions) (*KeyList, error) {
	q := url.Values{}
	if o.Role != "" {
		q.Set("role", o.Role)
	}
	if o.Status != "" {
		q.Set("status", o.Status)
	}
	if o.Page > 0 {
		q.Set("page", strconv.Itoa(o.Page))
	}
	if o.Size > 0 {
		q.Set("size", strconv.Itoa(o.Size))
	}
	var out KeyList
	if err := c.do(ctx, call{method: http.MethodGet, path: "/admin/v1/keys", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	if out.Items == nil {
		out.Items = []Key{}
	}
	return &out, nil
}

// GetKey reads one API key. Retried on 503/504.
func (c *Client) GetKey(ctx context.Context, id string) (*Key, error) {
	var out Key
	if err := c.do(ctx, call{method: http.MethodGet, path: keyPath(id), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetKeyStatus sets a key "active" or "disabled". Not retried.
func (c *Client) SetKeyStatus(ctx context.Context, id, status string) (*KeyStatusResult, error) {
	body := struct {
		Status string `json:"status"`
	}{status}
	var out KeyStatusResult
	if err := c.do(ctx, call{method: http.MethodPost, path: keyPath(id) + "/status", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateKey issues a new secret; graceSeconds < 0 uses the server default.
// Not retried.
func (c *Client) RotateKey(ctx context.Context, id string, graceSeconds int64) (*RotateKeyResult, error) {
	body := map[string]any{}
	if graceSeconds >= 0 {
		body["grace_seconds"] = graceSeconds
	}
	var out RotateKeyResult
	if err := c.do(ctx, call{method: http.MethodPost, path: keyPath(id) + "/rotate", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Health calls GET /health (no key needed).
func (c *Client) Health(ctx context.Context) (string, error) {
	var out struct {
		Status string `json:"status"`
	}
	if err := c.do(ctx, call{method: http.MethodGet, path: "/health", idempotent: true}, &out); err != nil {
		return "", err
	}
	return out.Status, nil
}

// NodeStatus is the subset of GET /admin/v1/status this client decodes.
type NodeStatus struct {
	NodeID    string `json:"node_id"`
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	Mode      string `json:"mode"`
	Ready     bool   `json:"ready"`
}

// Status calls GET /admin/v1/status (admin).
func (c *Client) Status(ctx context.Context) (*NodeStatus, error) {
	var out NodeStatus
	if err := c.do(ctx, call{method: http.MethodGet, path: "/admin/v1/status", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
