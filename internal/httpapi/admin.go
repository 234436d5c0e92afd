package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/engine"
)

// Admin holds what the admin API (02-http-api §5) needs.
//
// One *Admin should be shared by the TCP handlers and the local-socket
// handler: the gc throttle and the status cache live in it, and both are
// node-wide. It must not be copied after first use.
type Admin struct {
	Keys   *auth.Manager
	Engine func() *engine.Engine // nil until recovery completed
	Config func() *config.Config
	// Reload re-reads and applies the configuration (POST
	// /admin/v1/config/reload). On failure nothing may have changed and err
	// should be (or wrap, possibly via errors.Join) the *config.Error values
	// found; the first one's code becomes the response code. Reload must not
	// write the config.reload audit record: the handler does.
	Reload    func() (applied, restartRequired []string, err error)
	NodeID    string
	StartedAt time.Time

	// ConfigFile is the configuration file path ("" when running on
	// defaults, env and flags); it is the resource of config.reload audit
	// records.
	ConfigFile string
	// Traffic returns the business request rate (requests/s) and latency
	// P99 (ms) over the last 10 s, for the status object's qps and p99_ms
	// (the same numbers /metrics exposes). nil reports 0 for both.
	Traffic func() (qps, p99ms float64)

	gcMu   sync.Mutex           // one gc at a time; guards lastGC
	lastGC map[string]time.Time // gc type → last run (TM-ADMIN-4291 within 60 s)

	statusMu    sync.Mutex // guards the two fields below
	statusAt    time.Time  // when statusCache was built
	statusCache []byte
}

// gcThrottle is how long a gc of one type blocks another of the same type.
const gcThrottle = 60 * time.Second

// statusCacheTTL bounds the age of a served status object.
const statusCacheTTL = time.Second

// configValidateMaxBody is the body limit of POST /admin/v1/config/validate.
const configValidateMaxBody = 1 << 20

// adminFn is an admin handler that returns its data (already JSON) or an
// error; status 0 means 200.
type adminFn func(rq *request) (status int, data []byte, aerr *apierr.Error)

// registerAdmin registers the /admin/v1 routes. The emergency-key route
// exists only on the local admin socket's handler; on TCP listeners any
// non-GET request to its path is answered exactly like an unknown route.
func (h *Handler) registerAdmin() {
	read := func(name, tmpl string, params []string, fn adminFn) {
		h.Handle(Route{Name: name, Method: "GET", Template: tmpl, Cap: CapAdmin}, h.adminRead(params, fn))
	}
	read("admin.status", "/admin/v1/status", nil, h.adminStatus)
	h.Handle(Route{Name: "admin.gc", Method: "POST", Template: "/admin/v1/gc", Cap: CapAdmin, Write: true}, h.adminGC)

	h.Handle(Route{Name: "admin.keys.create", Method: "POST", Template: "/admin/v1/keys", Cap: CapAdmin, Write: true}, h.adminKeyCreate)
	read("admin.keys.list", "/admin/v1/keys", keyListParams, h.adminKeyList)
	if h.cfg.Local {
		h.Handle(Route{Name: "admin.keys.emergency", Method: "POST", Template: "/admin/v1/keys/emergency", Cap: CapAdmin, Write: true}, h.adminKeyEmergency)
	} else {
		// Without this, POST would match the path of GET /admin/v1/keys/{key_id}
		// and get a 405 that reveals the route.
		unknown := func(w http.ResponseWriter, r *http.Request) { h.router.NotFoundHandler.ServeHTTP(w, r) }
		h.router.Handle("/admin/v1/keys/emergency", http.HandlerFunc(unknown)).
			MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool { return r.Method != http.MethodGet })
	}
	read("admin.keys.get", "/admin/v1/keys/{key_id}", nil, h.adminKeyGet)
	h.Handle(Route{Name: "admin.keys.status", Method: "POST", Template: "/admin/v1/keys/{key_id}/status", Cap: CapAdmin, Write: true}, h.adminKeyStatus)
	h.Handle(Route{Name: "admin.keys.rotate", Method: "POST", Template: "/admin/v1/keys/{key_id}/rotate", Cap: CapAdmin, Write: true}, h.adminKeyRotate)

	read("admin.audit.logs", "/admin/v1/audit/logs", auditQueryParams, h.adminAuditLogs)

	read("admin.cluster.status", "/admin/v1/cluster/status", nil, h.adminClusterStatus)
	read("admin.cluster.nodes", "/admin/v1/cluster/nodes", nil, h.adminClusterNodes)
	read("admin.cluster.partitions", "/admin/v1/cluster/partitions", nil, h.adminClusterPartitions)
	h.Handle(Route{Name: "admin.cluster.node_remove", Method: "POST", Template: "/admin/v1/cluster/nodes/{node_id}/remove", Cap: CapAdmin, Write: true}, h.adminNodeRemove)
	h.Handle(Route{Name: "admin.cluster.rebalance", Method: "POST", Template: "/admin/v1/cluster/rebalance", Cap: CapAdmin, Write: true}, h.adminRebalance)

	read("admin.config.get", "/admin/v1/config", nil, h.adminConfigGet)
	h.Handle(Route{Name: "admin.config.validate", Method: "POST", Template: "/admin/v1/config/validate", Cap: CapAdmin, Write: true, MaxBody: configValidateMaxBody},
		h.adminRead(nil, h.adminConfigValidate))
	h.Handle(Route{Name: "admin.config.reload", Method: "POST", Template: "/admin/v1/config/reload", Cap: CapAdmin, Write: true}, h.adminConfigReload)

	read("admin.wal.status", "/admin/v1/wal/status", nil, h.adminWALStatus)
}

// adminRead wraps a non-mutating admin call: unknown query parameters are
// TM-ARG-1001, and the call is audited as admin.read (resource = route
// template, details = the accepted query parameter names — never values).
func (h *Handler) adminRead(params []string, fn adminFn) handlerFunc {
	allowed := make(map[string]bool, len(params))
	for _, p := range params {
		allowed[p] = true
	}
	return func(w http.ResponseWriter, rq *request) {
		q := rq.URL.Query()
		names := make([]string, 0, len(q))
		unknown := ""
		for k := range q {
			if allowed[k] {
				names = append(names, k)
			} else if unknown == "" || k < unknown {
				unknown = k // the smallest name, for stable answers
			}
		}
		sort.Strings(names)
		var (
			status int
			data   []byte
			aerr   *apierr.Error
		)
		if unknown != "" {
			aerr = badParam(unknown, "unknown parameter")
		} else {
			status, data, aerr = fn(rq)
		}
		rec := h.auditRecord(rq, actionAdminRead, rq.route.Template)
		rec.Details = map[string]any{"params": names}
		h.auditOutcome(rec, aerr)
		if aerr != nil {
			h.fail(w, rq, aerr)
			return
		}
		if status == 0 {
			status = http.StatusOK
		}
		writeData(w, status, rq.id, data)
	}
}

// adminWrite runs one audited admin write (04-security §9): the attempt
// record is written synchronously first — when that fails the call is
// refused with 503 TM-SYS-5032 and run is not called — then run, then the
// outcome record (asynchronous). run may replace the record's resource and
// details for the outcome.
func (h *Handler) adminWrite(w http.ResponseWriter, rq *request, action, resource string, details map[string]any,
	run func(out *auditOut) (status int, data []byte, aerr *apierr.Error)) {
	rec := h.auditRecord(rq, action, resource)
	rec.Details = details
	if aerr := h.auditAttempt(rec); aerr != nil {
		h.fail(w, rq, aerr)
		return
	}
	out := &auditOut{resource: resource, details: cloneDetails(details)}
	status, data, aerr := run(out)
	rec.Resource, rec.Details = out.resource, out.details
	h.auditOutcome(rec, aerr)
	if aerr != nil {
		h.fail(w, rq, aerr)
		return
	}
	writeData(w, status, rq.id, data)
}

// auditOut lets an admin write set the outcome record's resource and details.
type auditOut struct {
	resource string
	details  map[string]any
}

func (o *auditOut) set(k string, v any) {
	if o.details == nil {
		o.details = map[string]any{}
	}
	o.details[k] = v
}

// adminReject answers an admin write refused before its attempt record
// (malformed body, bad enum): only a failure record is written.
func (h *Handler) adminReject(w http.ResponseWriter, rq *request, action, resource string, aerr *apierr.Error) {
	h.auditOutcome(h.auditRecord(rq, action, resource), aerr)
	h.fail(w, rq, aerr)
}

// adminBody checks that an admin write has no query parameters (they are
// all unknown: TM-ARG-1001), then reads and strictly decodes its body.
func adminBody(rq *request, fields ...field) *apierr.Error {
	if aerr := noQuery(rq.URL.Query()); aerr != nil {
		return aerr
	}
	body, aerr := readBody(rq)
	if aerr != nil {
		return aerr
	}
	return decodeStrict(body, fields...)
}

// pathVar returns a percent-decoded path variable.
func pathVar(rq *request, name string) string {
	v, err := url.PathUnescape(mux.Vars(rq.Request)[name])
	if err != nil {
		return ""
	}
	return v
}

func (h *Handler) admin() *Admin { return h.cfg.Admin }

// engine returns the running engine or nil.
func (a *Admin) engine() *engine.Engine {
	if a.Engine == nil {
		return nil
	}
	return a.Engine()
}

// config returns the effective configuration (defaults when not wired).
func (a *Admin) config() *config.Config {
	if a.Config != nil {
		if c := a.Config(); c != nil {
			return c
		}
	}
	return config.Default()
}

// nodeID is this node's ID: the engine's, else the configured one.
func (a *Admin) nodeID() string {
	if e := a.engine(); e != nil {
		return e.Node().NodeID
	}
	return a.NodeID
}

// partitions is P: the engine's, else the configured value.
func (a *Admin) partitions() int {
	if e := a.engine(); e != nil {
		return e.Partitions()
	}
	return a.config().Cluster.Partitions
}

// errNoEngine answers admin calls that need the session engine while the
// node is still recovering.
func errNoEngine() *apierr.Error {
	return apierr.Newf(apierr.SysNotReady, "the session engine is not running yet")
}

// keyError maps auth.Manager errors.
func keyError(err error) *apierr.Error {
	var fe *auth.FieldError
	switch {
	case errors.As(err, &fe):
		code := apierr.ArgInvalid
		if fe.Missing {
			code = apierr.ArgMissing
		}
		return apierr.Newf(code, "%s", fieldErrorText(fe)).WithDetail("field", fe.Field)
	case errors.Is(err, auth.ErrNotFound):
		return apierr.Newf(apierr.AdminNotFound, "API key not found")
	case errors.Is(err, auth.ErrStoreFailed):
		return &apierr.Error{Code: apierr.SysStorage, Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apierr.Error{Code: apierr.SysInternal, Message: "request cancelled", Err: err}
	}
	return &apierr.Error{Code: apierr.SysInternal, Err: err}
}

func fieldErrorText(fe *auth.FieldError) string {
	if fe.Missing {
		return "field \"" + fe.Field + "\" is required"
	}
	return fe.Field + ": " + fe.Reason
}

func badField(name, msg string) *apierr.Error {
	return apierr.Newf(apierr.ArgInvalid, "%s: %s", name, msg).WithDetail("field", name)
}
