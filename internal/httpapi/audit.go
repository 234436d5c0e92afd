package httpapi

import (
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/session"
)

// Audit actions written by the HTTP layer (04-security §9).
const (
	actionAdminRead        = "admin.read"
	actionKeyCreate        = "apikey.create"
	actionKeyStatus        = "apikey.status"
	actionKeyRotate        = "apikey.rotate"
	actionKeyEmergency     = "apikey.emergency_create"
	actionGC               = "gc.run"
	actionNodeRemove       = "cluster.node_remove"
	actionRebalance        = "cluster.rebalance"
	actionConfigReload     = "config.reload"
	actionSessionCreate    = "session.create"
	actionSessionRevoke    = "session.revoke"
	actionSessionRevokeAll = "session.revoke_all"
	actionSessionEvict     = "session.evict"
)

// maxAuditUA bounds the caller user agent copied into a record.
const maxAuditUA = 512

// auditRecord fills the caller fields of a record. It never touches the
// body, headers other than the peer address, or any credential.
func (h *Handler) auditRecord(rq *request, action, resource string) audit.Record {
	return h.auditCaller(rq).record(action, resource)
}

// auditCaller describes the caller of rq for its audit records.
func (h *Handler) auditCaller(rq *request) AuditCaller {
	return AuditCaller{RequestID: rq.id, KeyID: rq.caller.KeyID, Role: rq.caller.Role,
		TCPRemoteIP: peerIP(rq.RemoteAddr), ClientIP: addrString(rq.caller.ClientIP), UserAgent: rq.caller.UserAgent}
}

// AuditCaller is who made a session write, for its audit record: the same
// fields whatever the protocol (HTTP, RESP), never a credential.
type AuditCaller struct {
	RequestID   string // "" when the protocol has none (RESP)
	KeyID       string // API key ID or LOCAL_ADMIN: the record's actor
	Role        string
	TCPRemoteIP string
	ClientIP    string
	UserAgent   string // the caller's (HTTP User-Agent, RESP connection name)
}

func (c AuditCaller) record(action, resource string) audit.Record {
	ua := c.UserAgent
	if len(ua) > maxAuditUA {
		ua = truncateUTF8(ua, maxAuditUA)
	}
	return audit.Record{
		RequestID: c.RequestID, Actor: c.KeyID, Role: c.Role, Action: action, Resource: resource,
		TCPRemoteIP: c.TCPRemoteIP, ClientIP: c.ClientIP, UserAgent: ua,
	}
}

// auditAttempt writes the synchronous attempt record of an admin write. A
// failure refuses the operation: 503 TM-SYS-5032. Without an audit log
// (tests) it admits everything.
func (h *Handler) auditAttempt(rec audit.Record) *apierr.Error {
	if h.cfg.Audit == nil {
		return nil
	}
	if err := h.cfg.Audit.Attempt(rec); err != nil {
		// Logged once, by fail, with the request ID and the cause.
		return &apierr.Error{Code: apierr.SysAuditDown, Message: "audit log unavailable: the admin write was refused and nothing changed", Err: err}
	}
	return nil
}

// auditOutcome queues the success or failure record (never blocks). The
// record's Details map is handed over to the log.
func (h *Handler) auditOutcome(rec audit.Record, aerr *apierr.Error) {
	auditOutcome(h.cfg.Audit, rec, aerr)
}

func auditOutcome(l *audit.Log, rec audit.Record, aerr *apierr.Error) {
	if l == nil {
		return
	}
	rec.Result = audit.ResultSuccess
	if aerr != nil {
		rec.Result, rec.Code = audit.ResultFailure, string(aerr.Code)
	}
	l.Record(rec)
}

func cloneDetails(d map[string]any) map[string]any {
	if d == nil {
		return nil
	}
	return maps.Clone(d)
}

// peerIP is the TCP peer's address ("" for the local socket).
func peerIP(remoteAddr string) string {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap().String()
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return ""
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// --- session audit (asynchronous: session traffic never blocks on audit) ---
//
// The exported functions write the session records of HTTP and RESP alike
// (one code path, the same action names and fields); l == nil writes none.

func (h *Handler) auditSessionCreate(rq *request, req *session.CreateRequest, res *session.CreateResult, aerr *apierr.Error) {
	if h.cfg.Audit != nil {
		AuditSessionCreate(h.cfg.Audit, h.auditCaller(rq), req, res, aerr)
	}
}

func (h *Handler) auditSessionRevoke(rq *request, id string, revoked bool, aerr *apierr.Error) {
	if h.cfg.Audit != nil {
		AuditSessionRevoke(h.cfg.Audit, h.auditCaller(rq), id, revoked, aerr)
	}
}

func (h *Handler) auditRevokeAll(rq *request, userID string, n int, aerr *apierr.Error) {
	if h.cfg.Audit != nil {
		AuditRevokeAll(h.cfg.Audit, h.auditCaller(rq), userID, n, aerr)
	}
}

// AuditSessionCreate records session.create (and session.evict when the
// quota policy revoked a session). resource is the new session's ID; details
// carry user_id and ttl_seconds — never the token or the data map.
func AuditSessionCreate(l *audit.Log, c AuditCaller, req *session.CreateRequest, res *session.CreateResult, aerr *apierr.Error) {
	if l == nil {
		return
	}
	rec := c.record(actionSessionCreate, "")
	d := map[string]any{"user_id": req.UserID}
	if res != nil {
		rec.Resource = res.Session.ID.String()
		d["ttl_seconds"] = (res.Session.ExpiresAt - res.Session.CreatedAt) / 1000
	} else if req.TTLSet {
		d["ttl_seconds"] = req.TTLSeconds
	}
	rec.Details = d
	auditOutcome(l, rec, aerr)
	if res != nil && !res.EvictedID.IsZero() {
		ev := c.record(actionSessionEvict, res.EvictedID.String())
		ev.Details = map[string]any{"user_id": req.UserID, "new_session_id": res.Session.ID.String()}
		auditOutcome(l, ev, nil)
	}
}

// AuditSessionRevoke records session.revoke; id is "" for a malformed ID
// (the raw value is never recorded: it might be anything).
func AuditSessionRevoke(l *audit.Log, c AuditCaller, id string, revoked bool, aerr *apierr.Error) {
	if l == nil {
		return
	}
	rec := c.record(actionSessionRevoke, id)
	if aerr == nil {
		rec.Details = map[string]any{"revoked": revoked}
	}
	auditOutcome(l, rec, aerr)
}

// AuditRevokeAll records session.revoke_all.
func AuditRevokeAll(l *audit.Log, c AuditCaller, userID string, n int, aerr *apierr.Error) {
	if l == nil {
		return
	}
	rec := c.record(actionSessionRevokeAll, userID)
	rec.Details = map[string]any{"revoked_count": n}
	auditOutcome(l, rec, aerr)
}

// --- GET /admin/v1/audit/logs ---

var auditQueryParams = []string{"start_time", "end_time", "actor", "action", "result", "page", "size"}

func (h *Handler) adminAuditLogs(rq *request) (int, []byte, *apierr.Error) {
	q := rq.URL.Query()
	page, size, aerr := parsePaging(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	f := audit.Filter{Page: page, Size: size}
	var start, end int64 = -1, -1
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"start_time", &start}, {"end_time", &end}} {
		v, ok := q[p.name]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil || len(v) > 1 || n < 0 {
			return 0, nil, badParam(p.name, "must be a Unix time in milliseconds")
		}
		*p.dst = n
	}
	if start >= 0 {
		f.Start = time.UnixMilli(start)
	}
	if end >= 0 {
		f.End = time.UnixMilli(end)
	}
	if start >= 0 && end >= 0 && end < start {
		return 0, nil, badParam("end_time", "must not be before start_time")
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"actor", &f.Actor}, {"action", &f.Action}, {"result", &f.Result}} {
		if v, ok := q[p.name]; ok {
			if len(v) > 1 || v[0] == "" {
				return 0, nil, badParam(p.name, "must be given once and not be empty")
			}
			*p.dst = v[0]
		}
	}
	switch f.Result {
	case "", audit.ResultAttempt, audit.ResultSuccess, audit.ResultFailure:
	default:
		return 0, nil, badParam("result", "must be attempt, success or failure")
	}
	items, total := []audit.Record{}, 0
	if h.cfg.Audit != nil {
		var err error
		if items, total, err = h.cfg.Audit.Query(f); err != nil {
			return 0, nil, &apierr.Error{Code: apierr.SysInternal, Err: err}
		}
	}
	b, err := json.Marshal(listPage[audit.Record]{Items: items, Page: page, Size: size, Total: total})
	if err != nil {
		return 0, nil, &apierr.Error{Code: apierr.SysInternal, Err: err}
	}
	return http.StatusOK, b, nil
}

// listPage is the list shape of 02-http-api §2.
type listPage[T any] struct {
	Items []T `json:"items"`
	Page  int `json:"page"`
	Size  int `json:"size"`
	Total int `json:"total"`
}
