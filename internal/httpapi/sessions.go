package httpapi

import (
	"errors"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unsafe"

	"github.com/gorilla/mux"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/session"
)

func (h *Handler) health(w http.ResponseWriter, rq *request) {
	writeData(w, http.StatusOK, rq.id, []byte(`{"status":"healthy"}`))
}

func (h *Handler) ready(w http.ResponseWriter, rq *request) {
	// Whatever keeps the node from serving (recovery, a restore, shutdown,
	// a storage failure), the probe answers TM-SYS-5030 and the checks say
	// why (02 §6); business routes use the specific code.
	ok, checks, _ := h.cfg.Ready()
	if checks == nil {
		checks = map[string]string{"storage": "ok", "cluster": "standalone", "maintenance": "off"}
	}
	if !ok {
		writeError(w, rq.id, apierr.New(apierr.SysNotReady).WithDetail("status", "not_ready").WithDetail("checks", checks))
		return
	}
	writeJSON(w, http.StatusOK, rq.id, map[string]any{"status": "ready", "checks": checks})
}

// sessionID parses the {session_id} path variable; a malformed ID names no
// session (TM-SESS-4040), exactly like an unknown one.
func (h *Handler) sessionID(rq *request) (session.ID, bool) {
	raw := mux.Vars(rq.Request)["session_id"]
	s, err := url.PathUnescape(raw)
	if err != nil {
		return session.ID{}, false
	}
	return session.ParseID(s, h.cfg.Engine.Partitions())
}

func appendSessionData(s *session.Session) []byte {
	return s.AppendJSON(make([]byte, 0, 512))
}

// DecodeCreateSession decodes a create body (02-http-api §4.1) with the
// strict rules; TM.CREATE uses the same function, so both protocols accept
// exactly the same bodies. A client-supplied token that fails the format
// rule is TM-TOKN-4000.
func DecodeCreateSession(body []byte) (req session.CreateRequest, token string, tokenSet bool, aerr *apierr.Error) {
	var ttlSet, idleSet bool
	aerr = decodeStrict(body,
		field{name: "user_id", dst: &req.UserID, required: true},
		field{name: "device_id", dst: &req.DeviceID},
		field{name: "ttl_seconds", dst: &req.TTLSeconds, set: &ttlSet, bounded: true},
		field{name: "data", dst: &req.Data},
		field{name: "token", dst: &token, set: &tokenSet},
		field{name: "idle_timeout_seconds", dst: &req.IdleTimeoutSeconds, set: &idleSet, bounded: true},
	)
	req.TTLSet, req.IdleSet = ttlSet, idleSet
	if aerr != nil {
		return req, token, tokenSet, aerr
	}
	if tokenSet && !session.ValidToken(token) {
		return req, token, tokenSet, apierr.New(apierr.TokenMalformed).WithDetail("field", "token")
	}
	req.Token = token
	return req, token, tokenSet, nil
}

func (h *Handler) createSession(w http.ResponseWriter, rq *request) {
	var (
		req      session.CreateRequest
		tokenSet bool
	)
	body, aerr := readBody(rq)
	if aerr != nil {
		h.auditSessionCreate(rq, &req, nil, aerr)
		h.fail(w, rq, aerr)
		return
	}
	req, _, tokenSet, aerr = DecodeCreateSession(body)
	if aerr != nil {
		h.auditSessionCreate(rq, &req, nil, aerr)
		h.fail(w, rq, aerr)
		return
	}
	req.IP, req.UserAgent, req.CreatedBy = rq.caller.ClientIP, rq.caller.UserAgent, rq.caller.KeyID
	res, err := h.cfg.Engine.Create(req)
	if err != nil {
		aerr := engineError(err)
		h.auditSessionCreate(rq, &req, nil, aerr)
		h.fail(w, rq, aerr)
		return
	}
	h.auditSessionCreate(rq, &req, &res, nil)
	writeData(w, http.StatusCreated, rq.id, AppendCreateResult(make([]byte, 0, 160), &res, tokenSet))
}

// AppendCreateResult appends the create reply {"session_id","token"?,
// "expires_at","evicted_session_id"?} — the token only when the server
// generated it. TM.CREATE replies with the same object.
func AppendCreateResult(b []byte, res *session.CreateResult, tokenSupplied bool) []byte {
	b = append(b, `{"session_id":"`...)
	b = append(b, res.Session.ID.String()...)
	b = append(b, '"')
	if !tokenSupplied {
		b = append(b, `,"token":`...)
		b = appendJSONString(b, res.Token)
	}
	b = append(b, `,"expires_at":`...)
	b = strconv.AppendInt(b, res.Session.ExpiresAt, 10)
	if !res.EvictedID.IsZero() {
		b = append(b, `,"evicted_session_id":"`...)
		b = append(b, res.EvictedID.String()...)
		b = append(b, '"')
	}
	return append(b, '}')
}

func (h *Handler) getSession(w http.ResponseWriter, rq *request) {
	id, ok := h.sessionID(rq)
	if !ok {
		h.fail(w, rq, apierr.New(apierr.SessNotFound))
		return
	}
	s, err := h.cfg.Engine.Get(id)
	if err != nil {
		h.fail(w, rq, engineError(err))
		return
	}
	writeData(w, http.StatusOK, rq.id, appendSessionData(&s))
}

// emptyBody accepts an empty body or {}.
func emptyBody(rq *request) *apierr.Error {
	body, aerr := readBody(rq)
	if aerr != nil {
		return aerr
	}
	return decodeStrict(body)
}

func (h *Handler) touchSession(w http.ResponseWriter, rq *request) {
	if aerr := emptyBody(rq); aerr != nil {
		h.fail(w, rq, aerr)
		return
	}
	id, ok := h.sessionID(rq)
	if !ok {
		h.fail(w, rq, apierr.New(apierr.SessNotFound))
		return
	}
	s, err := h.cfg.Engine.Touch(id, rq.caller.ClientIP, rq.caller.UserAgent)
	if err != nil {
		h.fail(w, rq, engineError(err))
		return
	}
	writeData(w, http.StatusOK, rq.id, appendSessionData(&s))
}

func (h *Handler) renewSession(w http.ResponseWriter, rq *request) {
	body, aerr := readBody(rq)
	if aerr != nil {
		h.fail(w, rq, aerr)
		return
	}
	var ttl int64
	if aerr := decodeStrict(body, field{name: "ttl_seconds", dst: &ttl, required: true, bounded: true}); aerr != nil {
		h.fail(w, rq, aerr)
		return
	}
	// A malformed ID is looked up as the zero ID, which names no session:
	// the TTL range is checked first either way, exactly as for an unknown
	// well-formed ID (01 §1).
	id, ok := h.sessionID(rq)
	if !ok {
		id = session.ID{}
	}
	s, err := h.cfg.Engine.Renew(id, ttl)
	if err != nil {
		h.fail(w, rq, engineError(err))
		return
	}
	writeData(w, http.StatusOK, rq.id, appendSessionData(&s))
}

func (h *Handler) revokeSession(w http.ResponseWriter, rq *request) {
	if aerr := emptyBody(rq); aerr != nil {
		h.auditSessionRevoke(rq, "", false, aerr)
		h.fail(w, rq, aerr)
		return
	}
	raw, _ := url.PathUnescape(mux.Vars(rq.Request)["session_id"])
	id, ok := h.sessionID(rq)
	revoked := false
	if ok {
		var err error
		revoked, err = h.cfg.Engine.Revoke(id)
		if err != nil {
			aerr := engineError(err)
			h.auditSessionRevoke(rq, id.String(), false, aerr)
			h.fail(w, rq, aerr)
			return
		}
		raw = id.String()
		h.auditSessionRevoke(rq, raw, revoked, nil)
	} else {
		raw = strings.ToLower(raw)
		h.auditSessionRevoke(rq, "", false, nil)
	}
	b := append([]byte(`{"session_id":`), appendJSONString(nil, raw)...)
	b = append(b, `,"revoked":`...)
	b = strconv.AppendBool(b, revoked)
	writeData(w, http.StatusOK, rq.id, append(b, '}'))
}

func (h *Handler) revokeUser(w http.ResponseWriter, rq *request) {
	body, aerr := readBody(rq)
	if aerr != nil {
		h.auditRevokeAll(rq, "", 0, aerr)
		h.fail(w, rq, aerr)
		return
	}
	var except string
	if aerr := decodeStrict(body, field{name: "except_session_id", dst: &except}); aerr != nil {
		h.auditRevokeAll(rq, "", 0, aerr)
		h.fail(w, rq, aerr)
		return
	}
	userID, err := url.PathUnescape(mux.Vars(rq.Request)["user_id"])
	if err != nil || session.CheckUserID(userID) != nil {
		// No session can have it (01 §2): say so rather than revoke nothing.
		aerr := apierr.Newf(apierr.SessInvalidField, "user_id is not valid").WithDetail("field", "user_id")
		h.auditRevokeAll(rq, "", 0, aerr)
		h.fail(w, rq, aerr)
		return
	}
	var exceptID session.ID
	if except != "" {
		// A malformed except ID names no session: nothing is kept.
		exceptID, _ = session.ParseID(except, h.cfg.Engine.Partitions())
	}
	n, err := h.cfg.Engine.RevokeUser(userID, exceptID)
	if err != nil {
		aerr := engineError(err)
		h.auditRevokeAll(rq, userID, n, aerr)
		h.fail(w, rq, aerr)
		return
	}
	h.auditRevokeAll(rq, userID, n, nil)
	b := append([]byte(`{"user_id":`), appendJSONString(nil, userID)...)
	b = append(b, `,"revoked_count":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	writeData(w, http.StatusOK, rq.id, append(b, '}'))
}

var validateFailures = map[apierr.Code][]byte{}

func init() {
	for _, c := range []apierr.Code{apierr.TokenMalformed, apierr.TokenUnknown, apierr.TokenExpired, apierr.TokenRevoked} {
		validateFailures[c] = []byte(`{"valid":false,"error":{"code":"` + string(c) + `","message":"` + c.Message() + `"}}`)
	}
}

func (h *Handler) validate(w http.ResponseWriter, rq *request) {
	bodyBuf := getBuf()
	body, aerr := readBodyInto(rq, *bodyBuf)
	defer putBuf(bodyBuf, body) // decodeStrict copies what it keeps
	if aerr != nil {
		h.fail(w, rq, aerr)
		return
	}
	// The token is read in place (the body buffer outlives Validate); the
	// engine hashes it and keeps nothing.
	tok, touch, ok := decodeValidate(body)
	token := unsafe.String(unsafe.SliceData(tok), len(tok))
	if !ok {
		var aerr *apierr.Error
		if token, touch, aerr = decodeValidateBody(body); aerr != nil {
			h.fail(w, rq, aerr)
			return
		}
	}
	var code apierr.Code
	s, err := h.cfg.Engine.Validate(token, touch, rq.caller.ClientIP, rq.caller.UserAgent)
	switch {
	case err == nil:
		// The envelope is built in one pooled buffer (writeData would copy).
		bp := getBuf()
		b := appendEnvelopeHead(*bp, rq.id, rq.start.UnixMilli())
		b = append(b, `{"valid":true,"session":`...)
		b = s.AppendJSON(b)
		b = append(b, "}}"...)
		writeRaw(w, http.StatusOK, b)
		putBuf(bp, b)
		return
	case errors.Is(err, session.ErrTokenMalformed):
		code = apierr.TokenMalformed
	case errors.Is(err, session.ErrNotFound):
		code = apierr.TokenUnknown
	case errors.Is(err, session.ErrExpired):
		code = apierr.TokenExpired
	case errors.Is(err, session.ErrRevoked):
		code = apierr.TokenRevoked
	default:
		h.fail(w, rq, engineError(err))
		return
	}
	if (code == apierr.TokenMalformed || code == apierr.TokenUnknown) && h.cfg.Guard != nil {
		h.cfg.Guard.TokenFailure(rq.Request, rq.caller.ClientIP, rq.id)
	}
	writeData(w, http.StatusOK, rq.id, validateFailures[code])
}

// decodeValidateBody decodes a validate body the fast path left over (its
// locals escape to the heap, so it is kept out of the hot path).
func decodeValidateBody(body []byte) (token string, touch bool, aerr *apierr.Error) {
	aerr = decodeStrict(body, field{name: "token", dst: &token, required: true}, field{name: "touch", dst: &touch})
	return token, touch, aerr
}

func (h *Handler) routing(w http.ResponseWriter, rq *request) {
	n := h.cfg.Engine.Partitions()
	b := []byte(`{"mode":"standalone","cluster_id":"","partitions":`)
	b = strconv.AppendInt(b, int64(n), 10)
	var node NodeEndpoints
	if h.cfg.Endpoints != nil {
		node = h.cfg.Endpoints()
	}
	b = append(b, `,"table_version":0,"nodes":[{"node_id":`...)
	b = appendJSONString(b, node.NodeID)
	for _, f := range [...]struct{ name, v string }{{"http", node.HTTP}, {"https", node.HTTPS}, {"resp", node.RESP}, {"resp_tls", node.RESPTLS}} {
		b = append(b, ',', '"')
		b = append(b, f.name...)
		b = append(b, '"', ':')
		b = appendJSONString(b, f.v)
	}
	b = append(b, `}],"primaries":[`...)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '0')
	}
	writeData(w, http.StatusOK, rq.id, append(b, "]}"...))
}

var listParams = map[string]bool{"user_id": true, "device_id": true, "created_by": true, "ip_address": true,
	"created_after": true, "created_before": true, "active_after": true, "sort_by": true, "sort_order": true, "page": true, "size": true}

func badParam(p, msg string) *apierr.Error {
	return apierr.Newf(apierr.ArgInvalid, "%s: %s", p, msg).WithDetail("param", p)
}

// parsePaging reads page/size (02-http-api §2): page ≥ 1, size 1..100,
// page×size ≤ 10,000; never clamped.
func parsePaging(q url.Values) (page, size int, aerr *apierr.Error) {
	page, size = 1, 20
	for _, p := range []struct {
		name string
		dst  *int
		min  int
		max  int
	}{{"page", &page, 1, 10000}, {"size", &size, 1, 100}} {
		if v, ok := q[p.name]; ok {
			n, err := strconv.Atoi(v[0])
			if err != nil || len(v) > 1 || n < p.min || n > p.max {
				return 0, 0, badParam(p.name, "out of range")
			}
			*p.dst = n
		}
	}
	if page*size > 10000 {
		return 0, 0, badParam("page", "page × size must not exceed 10000")
	}
	return page, size, nil
}

func (h *Handler) listSessions(w http.ResponseWriter, rq *request) {
	q := rq.URL.Query()
	for k, v := range q {
		if !listParams[k] {
			h.fail(w, rq, badParam(k, "unknown parameter"))
			return
		}
		if len(v) > 1 { // which one would count is a guess: refuse
			h.fail(w, rq, badParam(k, "given more than once"))
			return
		}
	}
	page, size, aerr := parsePaging(q)
	if aerr != nil {
		h.fail(w, rq, aerr)
		return
	}
	// A parameter sent with an empty value ("created_after=") is a bad
	// value, not an absent one (02 §2): "" is no Unix time, IP, CIDR or
	// enum member, no user ID (1..128 bytes) and no key ID; for device_id
	// it would be a filter a templated URL with a missing value sends by
	// mistake, and answering it with every session hides that (D29).
	for _, k := range [...]string{"user_id", "device_id", "created_by", "ip_address", "created_after", "created_before", "active_after", "sort_by", "sort_order"} {
		if v, ok := q[k]; ok && v[0] == "" {
			h.fail(w, rq, badParam(k, "must not be empty"))
			return
		}
	}
	lq := session.ListQuery{UserID: q.Get("user_id"), DeviceID: q.Get("device_id"), CreatedBy: createdByFilter(q.Get("created_by")),
		SortBy: "created_at", Desc: true, Page: page, Size: size}
	if v := q.Get("ip_address"); v != "" {
		if p, err := netip.ParsePrefix(v); err == nil {
			lq.IPPrefix = p.Masked()
		} else if a, err := netip.ParseAddr(v); err == nil {
			lq.IPPrefix = netip.PrefixFrom(a, a.BitLen())
		} else {
			h.fail(w, rq, badParam("ip_address", "not an IP address or CIDR"))
			return
		}
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"created_after", &lq.CreatedAfter}, {"created_before", &lq.CreatedBefore}, {"active_after", &lq.ActiveAfter}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				h.fail(w, rq, badParam(p.name, "must be a Unix time in milliseconds"))
				return
			}
			*p.dst = n
			if p.dst == &lq.CreatedBefore && n == 0 {
				// ListQuery reads 0 as "no bound", but created_before=0
				// is a bound nothing meets: the lowest one stands in.
				lq.CreatedBefore = math.MinInt64
			}
		}
	}
	switch v := q.Get("sort_by"); v {
	case "", "created_at":
	case "last_active":
		lq.SortBy = v
	default:
		h.fail(w, rq, badParam("sort_by", "must be created_at or last_active"))
		return
	}
	switch v := q.Get("sort_order"); v {
	case "", "desc":
	case "asc":
		lq.Desc = false
	default:
		h.fail(w, rq, badParam("sort_order", "must be asc or desc"))
		return
	}
	res, err := h.cfg.Engine.List(lq)
	if err != nil {
		h.fail(w, rq, engineError(err))
		return
	}
	if !res.IndexUsed {
		h.log.Warn("session list without an indexed filter scans every shard", "request_id", rq.id)
	}
	b := make([]byte, 0, 64+len(res.Items)*512)
	b = append(b, `{"items":[`...)
	for i := range res.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = res.Items[i].AppendJSON(b)
	}
	b = append(b, `],"page":`...)
	b = strconv.AppendInt(b, int64(page), 10)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, int64(size), 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(res.Total), 10)
	writeData(w, http.StatusOK, rq.id, append(b, '}'))
}

// createdByFilter is the created_by value to match: API key IDs are
// accepted in any case (01 §1) and stored lower-cased; LOCAL_ADMIN (the
// admin socket's sessions) is matched as written.
func createdByFilter(v string) string {
	if len(v) >= 5 && strings.EqualFold(v[:5], "tmak-") {
		return strings.ToLower(v)
	}
	return v
}
