package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/yndnr/tokmesh-go/internal/apierr"
)

var (
	specOnce sync.Once
	specDoc  *openapi3.T
	specErr  error
)

// loadSpec loads and validates the embedded document once.
func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	specOnce.Do(func() {
		l := openapi3.NewLoader()
		specDoc, specErr = l.LoadFromData(openAPIDoc)
		if specErr == nil {
			specErr = specDoc.Validate(l.Context)
		}
	})
	if specErr != nil {
		t.Fatalf("openapi.json: %v", specErr)
	}
	return specDoc
}

// specRouter is a router over a copy of the document whose servers are the
// given test server URLs.
func specRouter(t testing.TB, urls ...string) routers.Router {
	t.Helper()
	doc := *loadSpec(t)
	doc.Servers = nil
	for _, u := range urls {
		doc.Servers = append(doc.Servers, &openapi3.Server{URL: u})
	}
	r, err := legacy.NewRouter(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkAgainstSpec validates one exchange: the response always (its status
// must be documented for the operation), the request when it succeeded.
func checkAgainstSpec(t testing.TB, r routers.Router, req *http.Request, reqBody []byte, status int, hdr http.Header, body []byte) {
	t.Helper()
	vreq := req.Clone(context.Background())
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := r.FindRoute(vreq)
	if err != nil {
		t.Errorf("%s %s: not in openapi.json: %v", req.Method, req.URL.Path, err)
		return
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	if status < 300 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s %s: request does not match openapi.json: %v", req.Method, req.URL.Path, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: hdr, Options: opts}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s → %d: response does not match openapi.json: %v\nbody: %.400s", req.Method, req.URL.Path, status, err, body)
	}
	if status >= 400 && !json.Valid(body) {
		return
	}
	// The code must be listed in the operation's x-error-codes.
	if status >= 400 {
		var env struct{ Code string }
		_ = json.Unmarshal(body, &env)
		if !opErrorCodes(route.Operation)[env.Code] {
			t.Errorf("%s %s: code %s is not in the operation's x-error-codes", req.Method, req.URL.Path, env.Code)
		}
	}
}

func opErrorCodes(op *openapi3.Operation) map[string]bool {
	m := map[string]bool{}
	raw, _ := json.Marshal(op.Extensions["x-error-codes"])
	var codes []string
	_ = json.Unmarshal(raw, &codes)
	for _, c := range codes {
		m[c] = true
	}
	return m
}

func TestOpenAPI_DocumentLoadsAndValidates(t *testing.T) {
	doc := loadSpec(t)
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
}

// TestOpenAPI_ErrorCodesMatchTheCatalogue checks that the document's
// catalogue is internal/apierr's, that every code an operation lists exists,
// and that each error response's codes carry that response's status.
func TestOpenAPI_ErrorCodesMatchTheCatalogue(t *testing.T) {
	doc := loadSpec(t)
	raw, _ := json.Marshal(doc.Components.Extensions["x-error-catalogue"])
	var got []apierr.Entry
	var rows []struct {
		Code    string
		Status  int
		Message string
	}
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		got = append(got, apierr.Entry{Code: apierr.Code(r.Code), Status: r.Status, Message: r.Message})
	}
	want := apierr.All()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("x-error-catalogue differs from apierr.All():\n got %v\nwant %v", got, want)
	}
	used := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			listed := opErrorCodes(op)
			seen := map[string]bool{}
			for st, rr := range op.Responses.Map() {
				resp := rr.Value
				mt := resp.Content.Get("application/json")
				if mt == nil || mt.Schema == nil || len(mt.Schema.Value.AllOf) != 2 || st[0] < '4' {
					continue
				}
				for _, c := range mt.Schema.Value.AllOf[1].Value.Properties["code"].Value.Enum {
					code := c.(string)
					e, ok := apierr.Lookup(apierr.Code(code))
					if !ok || fmt.Sprint(e.Status) != st {
						t.Errorf("%s %s: response %s lists %s (catalogue status %d)", method, path, st, code, e.Status)
					}
					if !listed[code] {
						t.Errorf("%s %s: %s answered but missing from x-error-codes", method, path, code)
					}
					seen[code], used[code] = true, true
				}
			}
			for c := range listed {
				if !seen[c] {
					t.Errorf("%s %s: x-error-codes lists %s but no response does", method, path, c)
				}
			}
		}
	}
	// Codes that never form an HTTP error on a documented operation.
	notHTTP := map[string]bool{"OK": true, "TM-SYS-4040": true, "TM-SYS-4050": true, "TM-TOKN-4010": true, "TM-TOKN-4011": true,
		"TM-TOKN-4012": true, "TM-ARG-1003": true, "TM-CLST-4090": true, "TM-CLST-4091": true}
	for _, e := range want {
		if !used[string(e.Code)] && !notHTTP[string(e.Code)] {
			t.Errorf("catalogue code %s is answered by no documented operation", e.Code)
		}
	}
}

// docOperations lists "METHOD template" of every documented operation.
func docOperations(t testing.TB) map[string]bool {
	doc := loadSpec(t)
	ops := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops[strings.ToUpper(method)+" "+path] = true
		}
	}
	return ops
}

// notYetRegistered are documented routes another part of the code base
// registers (backups, metrics); they may be missing from Routes() until then.
func notYetRegistered(op string) bool {
	return strings.Contains(op, " /admin/v1/backups/") || op == "GET /metrics"
}

func TestOpenAPI_RoutesAndDocumentAgree(t *testing.T) {
	hs := newAdminHarness(t, func(o *harnessOptions) { o.backups = true })
	ops := docOperations(t)
	registered := map[string]bool{}
	for _, rt := range hs.local.Routes() {
		k := rt.Method + " " + rt.Template
		registered[k] = true
		if !ops[k] {
			t.Errorf("route %s (%s) is not in openapi.json", k, rt.Name)
		}
		if want := rt.Name; opID(t, rt.Method, rt.Template) != want {
			t.Errorf("route %s: operationId %q, want the route name %q", k, opID(t, rt.Method, rt.Template), want)
		}
	}
	var missing []string
	for k := range ops {
		if !registered[k] && !notYetRegistered(k) {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("documented but not registered: %v", missing)
	}
	for _, must := range []string{"POST /admin/v1/backups/snapshots", "GET /admin/v1/backups/snapshots", "GET /admin/v1/backups/snapshots/{backup_id}",
		"GET /admin/v1/backups/snapshots/{backup_id}/file", "POST /admin/v1/backups/restores", "GET /admin/v1/backups/restores/{job_id}", "GET /metrics"} {
		if !ops[must] {
			t.Errorf("%s is not documented", must)
		}
	}
	// The TCP handler has every route except the emergency key.
	for _, rt := range hs.tcp.Routes() {
		if rt.Template == "/admin/v1/keys/emergency" {
			t.Error("the TCP handler registers the emergency key route")
		}
	}
}

func opID(t testing.TB, method, path string) string {
	item := loadSpec(t).Paths.Value(path)
	if item == nil {
		return ""
	}
	op := item.GetOperation(method)
	if op == nil {
		return ""
	}
	return op.OperationID
}

func TestOpenAPI_ServedPublicly(t *testing.T) {
	hs := newAdminHarness(t, nil)
	resp, err := http.Get(hs.tcpSrv.URL + "/openapi.json?cache-bust=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(b, openAPIDoc) {
		t.Fatalf("%d %q %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}
	if resp.Header.Get("X-Request-ID") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", resp.Header)
	}
}

// TestOpenAPI_EveryRouteAnswersAsDocumented drives every registered route
// (success and main errors) through the real handler and validates each
// exchange against the document (harness.call does), then checks that no
// registered route was left out.
func TestOpenAPI_EveryRouteAnswersAsDocumented(t *testing.T) {
	hs := newAdminHarness(t, nil)
	// Public.
	hs.expect(hs.tcpSrv, "GET", "/health?lb=1", "", 200, "OK")
	hs.expect(hs.tcpSrv, "GET", "/ready", "", 200, "OK")
	hs.call(hs.tcpSrv, "GET", "/openapi.json", "")
	if r := hs.call(hs.tcpSrv, "GET", "/metrics", ""); r.status != 200 && r.status != 404 {
		t.Errorf("/metrics: %d", r.status)
	}
	// Business.
	r := hs.expect(nil, "POST", "/sessions", `{"user_id":"u-doc","device_id":"d1","ttl_seconds":600,"data":{"k":"v"},"idle_timeout_seconds":60}`, 201, "OK")
	var cr struct {
		SessionID string `json:"session_id"`
		Token     string `json:"token"`
	}
	r.data(t, &cr)
	hs.expect(nil, "POST", "/sessions", `{"user_id":"u-doc","token":"client-supplied-token-01"}`, 201, "OK")
	hs.expect(nil, "POST", "/sessions", `{"device_id":"d"}`, 400, "TM-ARG-1002")
	hs.expect(nil, "POST", "/sessions", `{"user_id":"u","ttl_seconds":0}`, 400, "TM-SESS-4001")
	hs.expect(nil, "POST", "/sessions", `{"user_id":"u","token":"short"}`, 400, "TM-TOKN-4000")
	hs.expect(nil, "POST", "/sessions", `{"user_id":"u","token":"client-supplied-token-01"}`, 409, "TM-TOKN-4090")
	hs.expect(nil, "POST", "/sessions", `{"user_id":"u","x":1}`, 400, "TM-SYS-4000")
	hs.expect(nil, "POST", "/sessions", `{"user_id":"`+strings.Repeat("u", 70<<10)+`"}`, 413, "TM-SYS-4130")
	hs.expect(nil, "GET", "/sessions/"+cr.SessionID, "", 200, "OK")
	hs.expect(nil, "GET", "/sessions/tmss-nope", "", 404, "TM-SESS-4040")
	hs.expect(nil, "POST", "/sessions/"+cr.SessionID+"/touch", "", 200, "OK")
	hs.expect(nil, "POST", "/sessions/"+cr.SessionID+"/renew", `{"ttl_seconds":900}`, 200, "OK")
	hs.expect(nil, "POST", "/sessions/"+cr.SessionID+"/renew", `{}`, 400, "TM-ARG-1002")
	hs.expect(nil, "GET", "/sessions?user_id=u-doc&sort_by=last_active&sort_order=asc&page=1&size=10", "", 200, "OK")
	hs.expect(nil, "GET", "/sessions?size=101", "", 400, "TM-ARG-1001")
	hs.expect(nil, "POST", "/tokens/validate", `{"token":"`+cr.Token+`","touch":true}`, 200, "OK")
	hs.expect(nil, "POST", "/tokens/validate", `{"token":"unknown-token-000001"}`, 200, "OK")
	hs.expect(nil, "POST", "/tokens/validate", `{}`, 400, "TM-ARG-1002")
	hs.expect(nil, "GET", "/cluster/routing", "", 200, "OK")
	for _, q := range []struct{ method, path, body string }{
		{"POST", "/sessions", `{"user_id":"u-doc"}`}, {"GET", "/sessions/" + cr.SessionID, ""},
		{"POST", "/sessions/" + cr.SessionID + "/touch", ""}, {"POST", "/sessions/" + cr.SessionID + "/renew", `{"ttl_seconds":900}`},
		{"POST", "/sessions/" + cr.SessionID + "/revoke", ""}, {"POST", "/users/u-doc/sessions/revoke", ""},
		{"POST", "/tokens/validate", `{"token":"` + cr.Token + `"}`}, {"GET", "/cluster/routing", ""},
	} {
		hs.expect(nil, q.method, q.path+"?unknown=1", q.body, 400, "TM-ARG-1001")
	}
	hs.expect(nil, "POST", "/sessions/"+cr.SessionID+"/revoke", "", 200, "OK")
	hs.expect(nil, "GET", "/sessions/"+cr.SessionID, "", 404, "TM-SESS-4042")
	hs.expect(nil, "POST", "/sessions/"+cr.SessionID+"/touch", "{}", 404, "TM-SESS-4042")
	hs.expect(nil, "POST", "/users/u-doc/sessions/revoke", `{"except_session_id":"tmss-x"}`, 200, "OK")

	// Admin.
	hs.expect(nil, "GET", "/admin/v1/status", "", 200, "OK")
	hs.expect(nil, "GET", "/admin/v1/status?x=1", "", 400, "TM-ARG-1001")
	hs.expect(nil, "POST", "/admin/v1/gc", `{"type":"memory"}`, 200, "OK")
	hs.expect(nil, "POST", "/admin/v1/gc", `{"type":"memory"}`, 429, "TM-ADMIN-4291")
	hs.expect(nil, "POST", "/admin/v1/gc", `{"type":"x"}`, 400, "TM-ARG-1001")
	k := hs.createKey(`{"role":"issuer","allowlist":["192.0.2.0/24"],"description":"doc"}`)
	hs.createKey(`{"role":"admin","expires_at":` + fmt.Sprint(time.Now().Add(time.Hour).UnixMilli()) + `}`)
	hs.expect(nil, "POST", "/admin/v1/keys", `{}`, 400, "TM-ARG-1002")
	hs.expect(nil, "GET", "/admin/v1/keys?role=issuer&status=active&page=1&size=5", "", 200, "OK")
	hs.expect(nil, "GET", "/admin/v1/keys?size=0", "", 400, "TM-ARG-1001")
	hs.expect(nil, "GET", "/admin/v1/keys/"+k.KeyID, "", 200, "OK")
	hs.expect(nil, "GET", "/admin/v1/keys/tmak-x", "", 404, "TM-ADMIN-4041")
	hs.expect(nil, "POST", "/admin/v1/keys/"+k.KeyID+"/status", `{"status":"disabled"}`, 200, "OK")
	hs.expect(nil, "POST", "/admin/v1/keys/"+k.KeyID+"/status", `{"status":"off"}`, 400, "TM-ARG-1001")
	hs.expect(nil, "POST", "/admin/v1/keys/"+k.KeyID+"/rotate", `{"grace_seconds":30}`, 200, "OK")
	hs.expect(nil, "POST", "/admin/v1/keys/tmak-x/rotate", ``, 404, "TM-ADMIN-4041")
	hs.expect(hs.localSrv, "POST", "/admin/v1/keys/emergency", `{"description":"doc"}`, 201, "OK")
	hs.expect(hs.tcpSrv, "POST", "/admin/v1/keys/emergency", `{}`, 404, "TM-SYS-4040")
	hs.expect(nil, "GET", "/admin/v1/audit/logs?action=apikey.create&page=1&size=2", "", 200, "OK")
	hs.expect(nil, "GET", "/admin/v1/audit/logs?result=x", "", 400, "TM-ARG-1001")
	hs.expect(nil, "GET", "/admin/v1/cluster/status", "", 200, "OK")
	hs.expect(nil, "GET", "/admin/v1/cluster/nodes", "", 200, "OK")
	hs.expect(nil, "GET", "/admin/v1/cluster/partitions", "", 200, "OK")
	hs.expect(nil, "POST", "/admin/v1/cluster/nodes/tmnd-a/remove", `{"force":false}`, 400, "TM-CLST-4001")
	hs.expect(nil, "POST", "/admin/v1/cluster/rebalance", `{}`, 400, "TM-CLST-4001")
	hs.expect(nil, "GET", "/admin/v1/config", "", 200, "OK")
	hs.expect(nil, "POST", "/admin/v1/config/validate", `{"config_yaml":"cluster:\n  partitions: 7\n"}`, 200, "OK")
	hs.expect(nil, "POST", "/admin/v1/config/validate", `{"config_yaml":1}`, 400, "TM-SYS-4000")
	hs.expect(nil, "POST", "/admin/v1/config/reload", ``, 200, "OK")
	hs.expect(nil, "GET", "/admin/v1/wal/status", "", 200, "OK")
	if err := hs.audit.Close(); err != nil {
		t.Fatal(err)
	}
	hs.expect(nil, "POST", "/admin/v1/keys", `{"role":"issuer"}`, 503, "TM-SYS-5032")

	for _, h := range []*Handler{hs.local, hs.tcp} {
		for _, rt := range h.Routes() {
			if !hs.exercised[rt.Method+" "+rt.Template] {
				t.Errorf("route %s %s was not exercised", rt.Method, rt.Template)
			}
		}
	}
}

// TestOpenAPI_BackupRoutesAnswerAsDocumented does the same for the backup
// and restore routes (registered with Config.Backups).
func TestOpenAPI_BackupRoutesAnswerAsDocumented(t *testing.T) {
	hs := newAdminHarness(t, func(o *harnessOptions) { o.backups = true })
	hs.expect(nil, "POST", "/sessions", `{"user_id":"u-backup"}`, 201, "OK")
	r := hs.expect(nil, "POST", "/admin/v1/backups/snapshots", `{"description":"doc"}`, 201, "OK")
	var b struct {
		BackupID string `json:"backup_id"`
	}
	r.data(t, &b)
	hs.expect(nil, "POST", "/admin/v1/backups/snapshots", `{"description":"`+strings.Repeat("d", 257)+`"}`, 400, "TM-ARG-1001")
	hs.expect(nil, "GET", "/admin/v1/backups/snapshots?page=1&size=5", "", 200, "OK")
	hs.expect(nil, "GET", "/admin/v1/backups/snapshots?x=1", "", 400, "TM-ARG-1001")
	hs.expect(nil, "GET", "/admin/v1/backups/snapshots/"+strings.ToUpper(b.BackupID), "", 200, "OK")
	hs.expect(nil, "GET", "/admin/v1/backups/snapshots/tmbk-nope", "", 404, "TM-ADMIN-4041")
	if r := hs.call(nil, "GET", "/admin/v1/backups/snapshots/"+b.BackupID+"/file", ""); r.status != 200 || len(r.raw) == 0 {
		t.Errorf("download: %d, %d bytes", r.status, len(r.raw))
	}
	if r := hs.call(nil, "GET", "/admin/v1/backups/snapshots/"+b.BackupID+"/file", "RANGE bytes=0-9"); r.status != 206 || len(r.raw) != 10 {
		t.Errorf("range download: %d, %d bytes", r.status, len(r.raw))
	}
	// Not exercised: an unsatisfiable Range gets net/http's plain-text 416,
	// which drops Cache-Control: no-store (backups.go uses http.ServeContent).
	hs.expect(nil, "GET", "/admin/v1/backups/snapshots/tmbk-nope/file", "", 404, "TM-ADMIN-4041")
	hs.expect(nil, "POST", "/admin/v1/backups/restores", `{}`, 400, "TM-ARG-1002")
	hs.expect(nil, "POST", "/admin/v1/backups/restores", `{"backup_id":"tmbk-01jh8v9k2c3n4p5q6r7s8t9v0w"}`, 404, "TM-ADMIN-4041")
	hs.expect(nil, "GET", "/admin/v1/backups/restores/latest", "", 404, "TM-ADMIN-4041")
	r = hs.expect(nil, "POST", "/admin/v1/backups/restores", `{"backup_id":"`+b.BackupID+`"}`, 202, "OK")
	var job struct {
		JobID  string `json:"job_id"`
		Status string `json:"status"`
	}
	r.data(t, &job)
	deadline := time.Now().Add(10 * time.Second)
	for job.Status != "succeeded" && job.Status != "failed" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		hs.expect(nil, "GET", "/admin/v1/backups/restores/"+job.JobID, "", 200, "OK").data(t, &job)
	}
	if job.Status != "succeeded" {
		t.Fatalf("restore job %+v", job)
	}
	hs.expect(nil, "GET", "/admin/v1/backups/restores/latest", "", 200, "OK")
	hs.expect(nil, "GET", "/admin/v1/backups/restores/tmrj-nope", "", 404, "TM-ADMIN-4041")
	for _, rt := range hs.local.Routes() {
		if strings.HasPrefix(rt.Template, "/admin/v1/backups/") && !hs.exercised[rt.Method+" "+rt.Template] {
			t.Errorf("route %s %s was not exercised", rt.Method, rt.Template)
		}
	}
}
