package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/auth"
)

// maxGraceSeconds is the rotate grace_seconds bound (24 h).
const maxGraceSeconds = 86400

var keyListParams = []string{"role", "status", "page", "size"}

// keys returns the key manager, or 503 while the control store is not loaded.
func (h *Handler) keys() (*auth.Manager, *apierr.Error) {
	if m := h.admin().Keys; m != nil {
		return m, nil
	}
	return nil, apierr.Newf(apierr.SysNotReady, "the control store is not loaded yet")
}

// endedGrace shows a rotation grace that has ended as 0 ("none", 02 §5.1):
// the previous secret no longer works, whatever the stored bound says.
func endedGrace(k auth.Key, nowMs int64) auth.Key {
	if k.RotationGraceUntil != 0 && k.RotationGraceUntil <= nowMs {
		k.RotationGraceUntil = 0
	}
	return k
}

// keyJSON renders the key object, plus secret, api_key and warning when
// given (create, emergency).
func keyJSON(k auth.Key, secret, warning string) ([]byte, *apierr.Error) {
	b, err := json.Marshal(endedGrace(k, time.Now().UnixMilli()))
	if err != nil {
		return nil, &apierr.Error{Code: apierr.SysInternal, Err: err}
	}
	if secret == "" && warning == "" {
		return b, nil
	}
	b = b[:len(b)-1] // reopen the object
	if secret != "" {
		b = append(b, `,"secret":`...)
		b = appendJSONString(b, secret)
		b = append(b, `,"api_key":`...)
		b = appendJSONString(b, k.ID+":"+secret)
	}
	if warning != "" {
		b = append(b, `,"warning":`...)
		b = appendJSONString(b, warning)
	}
	return append(b, '}'), nil
}

// expiryWarning is the create/rotate warning of 04-security §1.
func expiryWarning(expiresAt int64, now time.Time) string {
	switch {
	case expiresAt == 0:
		return auth.WarnNeverExpires
	case expiresAt-now.UnixMilli() > (365 * 24 * time.Hour).Milliseconds():
		return auth.WarnExpiresFar
	}
	return ""
}

// POST /admin/v1/keys
func (h *Handler) adminKeyCreate(w http.ResponseWriter, rq *request) {
	var (
		req       auth.CreateRequest
		role      string
		allowlist []string
		rlSet     bool
	)
	aerr := adminBody(rq,
		field{name: "role", dst: &role, required: true},
		field{name: "description", dst: &req.Description},
		field{name: "allowlist", dst: &allowlist},
		field{name: "rate_limit", dst: &req.RateLimit, set: &rlSet},
		field{name: "expires_at", dst: &req.ExpiresAt},
	)
	if aerr == nil && !auth.Role(role).Valid() {
		aerr = badField("role", "must be metrics, validator, issuer or admin")
	}
	if aerr == nil && rlSet && (req.RateLimit < 1 || req.RateLimit > auth.MaxRateLimit) {
		aerr = badField("rate_limit", "must be 1..1000000")
	}
	if aerr != nil {
		h.adminReject(w, rq, actionKeyCreate, "", aerr)
		return
	}
	req.Role, req.AllowList = auth.Role(role), allowlist
	m, aerr := h.keys()
	if aerr != nil {
		h.adminReject(w, rq, actionKeyCreate, "", aerr)
		return
	}
	h.adminWrite(w, rq, actionKeyCreate, "", map[string]any{"role": role}, func(out *auditOut) (int, []byte, *apierr.Error) {
		k, secret, warning, err := m.Create(rq.Context(), req, rq.caller.KeyID)
		if err != nil {
			return 0, nil, keyError(err)
		}
		out.resource = k.ID
		out.set("status", string(k.Status))
		b, aerr := keyJSON(k, secret, warning)
		return http.StatusCreated, b, aerr
	})
}

// POST /admin/v1/keys/emergency (local admin socket only)
func (h *Handler) adminKeyEmergency(w http.ResponseWriter, rq *request) {
	var desc string
	if aerr := adminBody(rq, field{name: "description", dst: &desc}); aerr != nil {
		h.adminReject(w, rq, actionKeyEmergency, "", aerr)
		return
	}
	m, aerr := h.keys()
	if aerr != nil {
		h.adminReject(w, rq, actionKeyEmergency, "", aerr)
		return
	}
	h.adminWrite(w, rq, actionKeyEmergency, "", map[string]any{"role": string(auth.RoleAdmin)}, func(out *auditOut) (int, []byte, *apierr.Error) {
		k, secret, warning, err := m.Emergency(rq.Context(), desc)
		if err != nil {
			return 0, nil, keyError(err)
		}
		out.resource = k.ID
		out.set("status", string(k.Status))
		h.log.Warn("emergency admin key created through the local admin socket; it expires in 24 hours",
			"request_id", rq.id, "key_id", k.ID, "expires_at", k.ExpiresAt)
		b, aerr := keyJSON(k, secret, warning)
		return http.StatusCreated, b, aerr
	})
}

// GET /admin/v1/keys
func (h *Handler) adminKeyList(rq *request) (int, []byte, *apierr.Error) {
	q := rq.URL.Query()
	page, size, aerr := parsePaging(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	var role, status string
	for _, p := range []struct {
		name string
		dst  *string
	}{{"role", &role}, {"status", &status}} {
		if v, ok := q[p.name]; ok {
			if len(v) > 1 {
				return 0, nil, badParam(p.name, "must be given once")
			}
			*p.dst = v[0]
		}
	}
	if _, ok := q["role"]; ok && !auth.Role(role).Valid() {
		return 0, nil, badParam("role", "must be metrics, validator, issuer or admin")
	}
	if _, ok := q["status"]; ok && !auth.Status(status).Valid() {
		return 0, nil, badParam("status", "must be active or disabled")
	}
	m, aerr := h.keys()
	if aerr != nil {
		return 0, nil, aerr
	}
	items, total, err := m.List(auth.Role(role), auth.Status(status), page, size)
	if err != nil {
		var fe *auth.FieldError
		if errors.As(err, &fe) {
			return 0, nil, badParam(fe.Field, fe.Reason)
		}
		return 0, nil, keyError(err)
	}
	now := time.Now().UnixMilli()
	for i := range items {
		items[i] = endedGrace(items[i], now)
	}
	b, err := json.Marshal(listPage[auth.Key]{Items: items, Page: page, Size: size, Total: total})
	if err != nil {
		return 0, nil, &apierr.Error{Code: apierr.SysInternal, Err: err}
	}
	return http.StatusOK, b, nil
}

// GET /admin/v1/keys/{key_id}
func (h *Handler) adminKeyGet(rq *request) (int, []byte, *apierr.Error) {
	m, aerr := h.keys()
	if aerr != nil {
		return 0, nil, aerr
	}
	k, err := m.Get(pathVar(rq, "key_id"))
	if err != nil {
		return 0, nil, keyError(err)
	}
	b, aerr := keyJSON(k, "", "")
	return http.StatusOK, b, aerr
}

// pathKeyID returns the lower-cased key ID of the path, or "" when it is
// not a well-formed key ID (which names no key: 404 TM-ADMIN-4041).
func pathKeyID(rq *request) string {
	id, _ := auth.ParseKeyID(pathVar(rq, "key_id"))
	return id
}

// POST /admin/v1/keys/{key_id}/status
func (h *Handler) adminKeyStatus(w http.ResponseWriter, rq *request) {
	id := pathKeyID(rq)
	var status string
	aerr := adminBody(rq, field{name: "status", dst: &status, required: true})
	if aerr == nil && !auth.Status(status).Valid() {
		aerr = badField("status", "must be active or disabled")
	}
	if aerr == nil {
		_, aerr = h.keys()
	}
	if aerr == nil && id == "" {
		aerr = keyError(auth.ErrNotFound)
	}
	if aerr != nil {
		h.adminReject(w, rq, actionKeyStatus, id, aerr)
		return
	}
	m := h.admin().Keys
	h.adminWrite(w, rq, actionKeyStatus, id, map[string]any{"status": status}, func(out *auditOut) (int, []byte, *apierr.Error) {
		k, warning, err := m.SetStatus(rq.Context(), id, auth.Status(status))
		if err != nil {
			return 0, nil, keyError(err)
		}
		out.set("role", string(k.Role))
		b, aerr := keyJSON(k, "", warning)
		return http.StatusOK, b, aerr
	})
}

// POST /admin/v1/keys/{key_id}/rotate
func (h *Handler) adminKeyRotate(w http.ResponseWriter, rq *request) {
	id := pathKeyID(rq)
	var (
		grace    int64
		graceSet bool
	)
	aerr := adminBody(rq, field{name: "grace_seconds", dst: &grace, set: &graceSet, bounded: true})
	if aerr == nil && graceSet && (grace < 0 || grace > maxGraceSeconds) {
		aerr = badField("grace_seconds", "must be 0..86400")
	}
	if aerr == nil {
		_, aerr = h.keys()
	}
	if aerr == nil && id == "" {
		aerr = keyError(auth.ErrNotFound)
	}
	if aerr != nil {
		h.adminReject(w, rq, actionKeyRotate, id, aerr)
		return
	}
	d := time.Duration(-1) // the configured security.auth.rotation_grace
	details := map[string]any{}
	if graceSet {
		d = time.Duration(grace) * time.Second
		details["grace_seconds"] = grace
	}
	m := h.admin().Keys
	h.adminWrite(w, rq, actionKeyRotate, id, details, func(out *auditOut) (int, []byte, *apierr.Error) {
		k, secret, until, err := m.Rotate(rq.Context(), id, d)
		if err != nil {
			return 0, nil, keyError(err)
		}
		out.set("role", string(k.Role))
		out.set("status", string(k.Status))
		b := []byte(`{"key_id":`)
		b = appendJSONString(b, k.ID)
		b = append(b, `,"secret":`...)
		b = appendJSONString(b, secret)
		b = append(b, `,"api_key":`...)
		b = appendJSONString(b, k.ID+":"+secret)
		b = append(b, `,"old_secret_valid_until":`...)
		b = append(b, itoa(until)...)
		if wn := expiryWarning(k.ExpiresAt, time.Now()); wn != "" {
			b = append(b, `,"warning":`...)
			b = appendJSONString(b, wn)
		}
		return http.StatusOK, append(b, '}'), nil
	})
}
