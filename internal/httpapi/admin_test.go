package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/routers"

	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/crypt"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/session"
)

// adminHarness is a node's HTTP layer on a real engine, a real key manager
// (control store in a temp dir, cheap Argon2) and a real audit log: one
// handler as the local admin socket sees it, one as a TCP listener does.
// Every exchange made through call is checked against openapi.json.
type adminHarness struct {
	t         *testing.T
	dir       string
	eng       *engine.Engine
	keys      *auth.Manager
	audit     *audit.Log
	auditDir  string
	cfg       *config.Config
	admin     *Admin
	local     *Handler
	tcp       *Handler
	localSrv  *httptest.Server
	tcpSrv    *httptest.Server
	router    routers.Router
	mu        sync.Mutex
	exercised map[string]bool // "METHOD /template" of the operations called
}

type harnessOptions struct {
	noAudit bool
	backups bool // also serve the backup and restore routes
	engine  func(*engine.Config)
	admin   func(*Admin)
}

// fakeMetrics stands in for the Prometheus handler.
var fakeMetrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	io.WriteString(w, "# HELP tokmesh_ready Ready.\n# TYPE tokmesh_ready gauge\ntokmesh_ready 1\n")
})

func newAdminHarness(t *testing.T, opt func(*harnessOptions)) *adminHarness {
	t.Helper()
	var o harnessOptions
	if opt != nil {
		opt(&o)
	}
	hs := &adminHarness{t: t, dir: t.TempDir(), exercised: map[string]bool{}}

	ec := engine.DefaultConfig(filepath.Join(hs.dir, "data"))
	ec.Getenv = func(k string) string {
		if k == "TOKMESH_ENCRYPTION_KEY" {
			return strings.Repeat("42", 32)
		}
		return ""
	}
	ec.SweepInterval, ec.SnapshotInterval, ec.SnapshotWALThreshold, ec.SnapshotOnClose = -1, 0, 0, false
	if o.engine != nil {
		o.engine(&ec)
	}
	e, err := engine.Open(ec)
	if err != nil {
		t.Fatal(err)
	}
	hs.eng = e
	t.Cleanup(func() { e.Close() })

	mk, err := crypt.NewMasterKey(bytes.Repeat([]byte{7}, crypt.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	store, err := auth.OpenStore(auth.StoreOptions{Dir: filepath.Join(hs.dir, "control"), MasterKey: mk})
	if err != nil {
		t.Fatal(err)
	}
	acfg := auth.DefaultConfig()
	acfg.Argon2 = auth.Params{Memory: 64, Iterations: 1, Parallelism: 1}
	authn, err := auth.NewAuthenticator(acfg)
	if err != nil {
		t.Fatal(err)
	}
	hs.keys = auth.NewManager(acfg, store, authn)
	t.Cleanup(func() { hs.keys.Close(); store.Close() })

	if !o.noAudit {
		hs.auditDir = filepath.Join(hs.dir, "audit")
		if hs.audit, err = audit.Open(hs.auditDir, e.Node().NodeID, audit.Options{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { hs.audit.Close() })
	}

	hs.cfg = config.Default()
	hs.cfg.Storage.DataDir = ec.DataDir
	hs.admin = &Admin{Keys: hs.keys, Engine: func() *engine.Engine { return e }, Config: func() *config.Config { return hs.cfg },
		NodeID: e.Node().NodeID, StartedAt: time.Now().Add(-time.Minute), ConfigFile: "/etc/tokmesh/config.yaml",
		Reload: func() ([]string, []string, error) {
			return []string{"telemetry.logging.level"}, []string{"server.http.address"}, nil
		}}
	if o.admin != nil {
		o.admin(hs.admin)
	}
	var al *audit.Log
	if hs.audit != nil {
		al = hs.audit
	}
	var bk *Backups
	if o.backups {
		bk = &Backups{Engine: func() *engine.Engine { return e }}
	}
	mk2 := func(local bool) *Handler {
		return New(Config{Engine: e, Guard: &localGuard{}, Admin: hs.admin, Backups: bk, Audit: al, Local: local, Metrics: fakeMetrics})
	}
	hs.local, hs.tcp = mk2(true), mk2(false)
	hs.localSrv, hs.tcpSrv = httptest.NewServer(hs.local), httptest.NewServer(hs.tcp)
	t.Cleanup(func() { hs.localSrv.Close(); hs.tcpSrv.Close() })
	hs.router = specRouter(t, hs.localSrv.URL, hs.tcpSrv.URL)
	return hs
}

// reply is one answered request.
type reply struct {
	status int
	env    envelope
	raw    []byte
	header http.Header
}

// data decodes the envelope's data into v.
func (r reply) data(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.env.Data, v); err != nil {
		t.Fatalf("data %s: %v", r.env.Data, err)
	}
}

// call sends one request to srv (the local handler when srv is nil),
// checks the envelope invariants and the exchange against openapi.json.
func (hs *adminHarness) call(srv *httptest.Server, method, path, body string) reply {
	hs.t.Helper()
	if srv == nil {
		srv = hs.localSrv
	}
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		hs.t.Fatal(err)
	}
	req.Header.Set("User-Agent", "admin-test/1.0")
	if rng, ok := strings.CutPrefix(body, "RANGE "); ok { // a GET with a Range header
		req.Body, req.ContentLength, body = http.NoBody, 0, ""
		req.Header.Set("Range", rng)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		hs.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, raw: raw, header: resp.Header}
	if resp.Header.Get("X-Request-ID") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		hs.t.Errorf("%s %s: missing X-Request-ID or Cache-Control: no-store", method, path)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && path != "/openapi.json" {
		if err := json.Unmarshal(raw, &r.env); err != nil {
			hs.t.Fatalf("%s %s: not an envelope: %q", method, path, raw)
		}
		if r.env.RequestID != resp.Header.Get("X-Request-ID") {
			hs.t.Errorf("%s %s: envelope request_id %q vs header %q", method, path, r.env.RequestID, resp.Header.Get("X-Request-ID"))
		}
	}
	// 404 TM-SYS-4040 and 405 TM-SYS-4050 belong to no operation: the
	// document's info describes them.
	if rt, _, err := hs.router.FindRoute(req); err == nil || (r.env.Code != "TM-SYS-4040" && r.env.Code != "TM-SYS-4050") {
		checkAgainstSpec(hs.t, hs.router, req, []byte(body), resp.StatusCode, resp.Header, raw)
		if err == nil {
			hs.mu.Lock()
			hs.exercised[method+" "+rt.Path] = true
			hs.mu.Unlock()
		}
	}
	return r
}

// expect calls and checks status and code.
func (hs *adminHarness) expect(srv *httptest.Server, method, path, body string, status int, code string) reply {
	hs.t.Helper()
	r := hs.call(srv, method, path, body)
	if r.status != status || (code != "" && r.env.Code != code) {
		hs.t.Errorf("%s %s %.80s: got %d %s (%s) %v, want %d %s", method, path, body, r.status, r.env.Code, r.env.Message, r.env.Details, status, code)
	}
	return r
}

// auditRecords closes the audit log (flushing the queue) and returns every record.
func (hs *adminHarness) auditRecords() []map[string]any {
	hs.t.Helper()
	if err := hs.audit.Close(); err != nil {
		hs.t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(hs.auditDir, "audit-*.jsonl"))
	var out []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			hs.t.Fatal(err)
		}
		for _, ln := range bytes.Split(bytes.TrimSpace(b), []byte{'\n'}) {
			if len(ln) == 0 {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(ln, &m); err != nil {
				hs.t.Fatalf("audit line %q: %v", ln, err)
			}
			out = append(out, m)
		}
	}
	return out
}

func (hs *adminHarness) auditBytes() []byte {
	hs.t.Helper()
	files, _ := filepath.Glob(filepath.Join(hs.auditDir, "audit-*.jsonl"))
	var all []byte
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all = append(all, b...)
	}
	return all
}

type createdKey struct {
	KeyID   string   `json:"key_id"`
	Role    string   `json:"role"`
	Status  string   `json:"status"`
	Secret  string   `json:"secret"`
	APIKey  string   `json:"api_key"`
	Warning string   `json:"warning"`
	Allow   []string `json:"allowlist"`
	Expires int64    `json:"expires_at"`
	Rate    int      `json:"rate_limit"`
	By      string   `json:"created_by"`
}

func (hs *adminHarness) createKey(body string) createdKey {
	hs.t.Helper()
	r := hs.expect(nil, "POST", "/admin/v1/keys", body, 201, "OK")
	var k createdKey
	r.data(hs.t, &k)
	return k
}

func TestAdminKeys_CreateListGetStatusRotate(t *testing.T) {
	hs := newAdminHarness(t, nil)
	exp := time.Now().Add(time.Hour).UnixMilli()
	iss := hs.createKey(fmt.Sprintf(`{"role":"issuer","description":"gateway","allowlist":["10.0.0.1","2001:db8::/32"],"rate_limit":50,"expires_at":%d}`, exp))
	if iss.Secret == "" || iss.APIKey != iss.KeyID+":"+iss.Secret || iss.Warning != "" || iss.Rate != 50 || iss.Expires != exp ||
		fmt.Sprint(iss.Allow) != "[10.0.0.1/32 2001:db8::/32]" || iss.By != "LOCAL_ADMIN" {
		t.Fatalf("issuer key %+v", iss)
	}
	adm := hs.createKey(`{"role":"admin"}`)
	if adm.Warning != auth.WarnNeverExpires || adm.Rate != 1000 {
		t.Fatalf("admin key %+v", adm)
	}
	far := hs.createKey(fmt.Sprintf(`{"role":"metrics","expires_at":%d}`, time.Now().Add(400*24*time.Hour).UnixMilli()))
	if far.Warning != auth.WarnExpiresFar {
		t.Fatalf("far key %+v", far)
	}

	r := hs.expect(nil, "GET", "/admin/v1/keys", "", 200, "OK")
	var list struct {
		Items []map[string]any `json:"items"`
		Page  int              `json:"page"`
		Size  int              `json:"size"`
		Total int              `json:"total"`
	}
	r.data(t, &list)
	if list.Total != 3 || len(list.Items) != 3 || list.Page != 1 || list.Size != 20 {
		t.Fatalf("list %s", r.env.Data)
	}
	if bytes.Contains(r.raw, []byte("tmas_")) || bytes.Contains(r.raw, []byte("argon2")) {
		t.Fatal("list shows a secret or a hash")
	}
	r = hs.expect(nil, "GET", "/admin/v1/keys?role=issuer&size=1&page=1", "", 200, "OK")
	r.data(t, &list)
	if list.Total != 1 || list.Items[0]["key_id"] != iss.KeyID {
		t.Fatalf("role filter %s", r.env.Data)
	}
	r = hs.expect(nil, "GET", "/admin/v1/keys?status=disabled", "", 200, "OK")
	r.data(t, &list)
	if list.Total != 0 || list.Items == nil {
		t.Fatalf("status filter %s", r.env.Data)
	}

	// Path IDs are case-insensitive; the secret is never shown again.
	r = hs.expect(nil, "GET", "/admin/v1/keys/"+strings.ToUpper(iss.KeyID), "", 200, "OK")
	if !bytes.Contains(r.env.Data, []byte(`"key_id":"`+iss.KeyID+`"`)) || bytes.Contains(r.raw, []byte(iss.Secret)) {
		t.Fatalf("get %s", r.env.Data)
	}

	r = hs.expect(nil, "POST", "/admin/v1/keys/"+iss.KeyID+"/status", `{"status":"disabled"}`, 200, "OK")
	var k createdKey
	r.data(t, &k)
	if k.Status != "disabled" || k.Warning != "" {
		t.Fatalf("disable %s", r.env.Data)
	}
	r = hs.expect(nil, "POST", "/admin/v1/keys/"+strings.ToUpper(adm.KeyID)+"/status", `{"status":"disabled"}`, 200, "OK")
	r.data(t, &k)
	if k.Status != "disabled" || k.Warning != auth.WarnLastAdminGone {
		t.Fatalf("disabling the last admin key: %s", r.env.Data)
	}
	hs.expect(nil, "POST", "/admin/v1/keys/"+adm.KeyID+"/status", `{"status":"active"}`, 200, "OK")

	var rot struct {
		KeyID      string `json:"key_id"`
		Secret     string `json:"secret"`
		APIKey     string `json:"api_key"`
		ValidUntil int64  `json:"old_secret_valid_until"`
		Warning    string `json:"warning"`
	}
	r = hs.expect(nil, "POST", "/admin/v1/keys/"+iss.KeyID+"/rotate", "", 200, "OK")
	r.data(t, &rot)
	if rot.KeyID != iss.KeyID || rot.Secret == iss.Secret || rot.APIKey != iss.KeyID+":"+rot.Secret ||
		rot.ValidUntil < time.Now().Add(59*time.Minute).UnixMilli() || rot.Warning != "" {
		t.Fatalf("rotate with the configured grace: %s", r.env.Data)
	}
	issUntil := rot.ValidUntil
	r = hs.expect(nil, "POST", "/admin/v1/keys/"+adm.KeyID+"/rotate", `{"grace_seconds":0}`, 200, "OK")
	r.data(t, &rot)
	if rot.ValidUntil > time.Now().UnixMilli() || rot.Warning != auth.WarnNeverExpires {
		t.Fatalf("rotate with grace 0: %s", r.env.Data)
	}
	r = hs.expect(nil, "GET", "/admin/v1/keys/"+iss.KeyID, "", 200, "OK")
	if !bytes.Contains(r.env.Data, []byte(`"rotation_grace_until":`+fmt.Sprint(issUntil))) {
		t.Fatalf("after rotate %s", r.env.Data)
	}
	// Once the grace has ended there is none: 0 (02 §5.1), in get and list.
	short := hs.createKey(`{"role":"validator"}`)
	hs.expect(nil, "POST", "/admin/v1/keys/"+short.KeyID+"/rotate", `{"grace_seconds":1}`, 200, "OK")
	r = hs.expect(nil, "GET", "/admin/v1/keys/"+short.KeyID, "", 200, "OK")
	if bytes.Contains(r.env.Data, []byte(`"rotation_grace_until":0`)) {
		t.Fatalf("during the grace: %s", r.env.Data)
	}
	time.Sleep(1100 * time.Millisecond)
	r = hs.expect(nil, "GET", "/admin/v1/keys/"+short.KeyID, "", 200, "OK")
	if !bytes.Contains(r.env.Data, []byte(`"rotation_grace_until":0`)) {
		t.Fatalf("after the grace: %s", r.env.Data)
	}
	var page struct {
		Items []struct {
			KeyID string `json:"key_id"`
			Until int64  `json:"rotation_grace_until"`
		} `json:"items"`
	}
	hs.expect(nil, "GET", "/admin/v1/keys?size=100", "", 200, "OK").data(t, &page)
	for _, it := range page.Items {
		if it.KeyID == short.KeyID && it.Until != 0 {
			t.Fatalf("list after the grace: %+v", it)
		}
	}
}

func TestAdminKeys_FieldAndLookupErrors(t *testing.T) {
	hs := newAdminHarness(t, nil)
	k := hs.createKey(`{"role":"validator"}`)
	unknown := "tmak-01jh8v9k2c3n4p5q6r7s8t9v0w"
	many := `"` + strings.Repeat(`10.0.0.1","`, 100) + `10.0.0.2"`
	for _, tc := range []struct {
		method, path, body string
		status             int
		code, field, param string
	}{
		{"POST", "/admin/v1/keys", `{}`, 400, "TM-ARG-1002", "role", ""},
		{"POST", "/admin/v1/keys", `{"role":null}`, 400, "TM-ARG-1002", "role", ""},
		{"POST", "/admin/v1/keys", `{"role":"root"}`, 400, "TM-ARG-1001", "role", ""},
		{"POST", "/admin/v1/keys", `{"role":"issuer","rate_limit":0}`, 400, "TM-ARG-1001", "rate_limit", ""},
		{"POST", "/admin/v1/keys", `{"role":"issuer","rate_limit":1000001}`, 400, "TM-ARG-1001", "rate_limit", ""},
		{"POST", "/admin/v1/keys", `{"role":"issuer","allowlist":["not-an-ip"]}`, 400, "TM-ARG-1001", "allowlist", ""},
		{"POST", "/admin/v1/keys", `{"role":"issuer","allowlist":[` + many + `]}`, 400, "TM-ARG-1001", "allowlist", ""},
		{"POST", "/admin/v1/keys", `{"role":"issuer","description":"` + strings.Repeat("d", 257) + `"}`, 400, "TM-ARG-1001", "description", ""},
		{"POST", "/admin/v1/keys", `{"role":"issuer","expires_at":1}`, 400, "TM-ARG-1001", "expires_at", ""},
		{"POST", "/admin/v1/keys", `{"role":"issuer","expires_at":99999999999999999999}`, 400, "TM-SYS-4000", "", ""},
		{"POST", "/admin/v1/keys", `{"role":"issuer","Role":"admin"}`, 400, "TM-SYS-4000", "", ""},
		{"POST", "/admin/v1/keys", `{"role":"issuer","rate_limit":"5"}`, 400, "TM-SYS-4000", "", ""},
		{"POST", "/admin/v1/keys?x=1", `{"role":"issuer"}`, 400, "TM-ARG-1001", "", "x"},
		{"GET", "/admin/v1/keys?role=root", "", 400, "TM-ARG-1001", "", "role"},
		{"GET", "/admin/v1/keys?status=gone", "", 400, "TM-ARG-1001", "", "status"},
		{"GET", "/admin/v1/keys?size=101", "", 400, "TM-ARG-1001", "", "size"},
		{"GET", "/admin/v1/keys?page=0", "", 400, "TM-ARG-1001", "", "page"},
		{"GET", "/admin/v1/keys?bogus=1", "", 400, "TM-ARG-1001", "", "bogus"},
		{"GET", "/admin/v1/keys/" + unknown, "", 404, "TM-ADMIN-4041", "", ""},
		{"GET", "/admin/v1/keys/tmak-nope", "", 404, "TM-ADMIN-4041", "", ""},
		{"GET", "/admin/v1/keys/" + k.KeyID + "?x=1", "", 400, "TM-ARG-1001", "", "x"},
		{"POST", "/admin/v1/keys/" + k.KeyID + "/status", `{}`, 400, "TM-ARG-1002", "status", ""},
		{"POST", "/admin/v1/keys/" + k.KeyID + "/status", `{"status":"paused"}`, 400, "TM-ARG-1001", "status", ""},
		{"POST", "/admin/v1/keys/" + unknown + "/status", `{"status":"active"}`, 404, "TM-ADMIN-4041", "", ""},
		{"POST", "/admin/v1/keys/tmak-nope/status", `{"status":"active"}`, 404, "TM-ADMIN-4041", "", ""},
		{"POST", "/admin/v1/keys/" + k.KeyID + "/rotate", `{"grace_seconds":86401}`, 400, "TM-ARG-1001", "grace_seconds", ""},
		{"POST", "/admin/v1/keys/" + k.KeyID + "/rotate", `{"grace_seconds":-1}`, 400, "TM-ARG-1001", "grace_seconds", ""},
		{"POST", "/admin/v1/keys/" + k.KeyID + "/rotate", `{"grace_seconds":123456789012345678901234}`, 400, "TM-ARG-1001", "grace_seconds", ""},
		{"POST", "/admin/v1/keys/" + k.KeyID + "/rotate", `{"grace":1}`, 400, "TM-SYS-4000", "", ""},
		{"POST", "/admin/v1/keys/" + unknown + "/rotate", ``, 404, "TM-ADMIN-4041", "", ""},
		{"POST", "/admin/v1/keys/emergency", `{"description":"` + strings.Repeat("d", 257) + `"}`, 400, "TM-ARG-1001", "description", ""},
		{"POST", "/admin/v1/keys/emergency", `{"role":"admin"}`, 400, "TM-SYS-4000", "", ""},
	} {
		r := hs.expect(nil, tc.method, tc.path, tc.body, tc.status, tc.code)
		if tc.field != "" && r.env.Details["field"] != tc.field {
			t.Errorf("%s %s %.60s: details %v, want field %q", tc.method, tc.path, tc.body, r.env.Details, tc.field)
		}
		if tc.param != "" && r.env.Details["param"] != tc.param {
			t.Errorf("%s %s: details %v, want param %q", tc.method, tc.path, r.env.Details, tc.param)
		}
	}
	// Nothing was created by the failures.
	var list struct{ Total int }
	hs.expect(nil, "GET", "/admin/v1/keys", "", 200, "OK").data(t, &list)
	if list.Total != 1 {
		t.Fatalf("%d keys", list.Total)
	}
}

func TestAdminKeys_EmergencyExistsOnlyOnTheLocalSocket(t *testing.T) {
	hs := newAdminHarness(t, nil)
	r := hs.expect(hs.localSrv, "POST", "/admin/v1/keys/emergency", `{"description":"break glass"}`, 201, "OK")
	var k createdKey
	r.data(t, &k)
	if k.Role != "admin" || k.By != "LOCAL_ADMIN" || k.Warning != auth.WarnEmergency || k.Secret == "" ||
		k.Expires < time.Now().Add(23*time.Hour).UnixMilli() || k.Expires > time.Now().Add(25*time.Hour).UnixMilli() {
		t.Fatalf("emergency key %s", r.env.Data)
	}
	hs.expect(hs.localSrv, "POST", "/admin/v1/keys/emergency", ``, 201, "OK")

	// On TCP listeners the route answers exactly like an unknown one.
	unknown := hs.expect(hs.tcpSrv, "POST", "/admin/v1/no-such-route", `{}`, 404, "TM-SYS-4040")
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		r := hs.expect(hs.tcpSrv, m, "/admin/v1/keys/emergency", `{"description":"x"}`, 404, "TM-SYS-4040")
		if r.env.Message != unknown.env.Message || r.header.Get("Allow") != "" || fmt.Sprint(r.env.Details) != fmt.Sprint(unknown.env.Details) {
			t.Errorf("TCP %s emergency: %+v vs unknown route %+v", m, r.env, unknown.env)
		}
	}
	// GET is a key lookup everywhere (a malformed key ID names no key).
	hs.expect(hs.tcpSrv, "GET", "/admin/v1/keys/emergency", "", 404, "TM-ADMIN-4041")
	hs.expect(hs.localSrv, "GET", "/admin/v1/keys/emergency", "", 404, "TM-ADMIN-4041")
	r = hs.expect(hs.localSrv, "PUT", "/admin/v1/keys/emergency", "", 405, "TM-SYS-4050")
	if r.header.Get("Allow") != "GET, POST" {
		t.Errorf("local PUT: Allow %q", r.header.Get("Allow"))
	}
	var list struct{ Total int }
	hs.expect(nil, "GET", "/admin/v1/keys", "", 200, "OK").data(t, &list)
	if list.Total != 2 {
		t.Fatalf("%d keys after two local emergencies and refused TCP ones", list.Total)
	}
}

func TestAdminStatus_DescribesTheNode(t *testing.T) {
	hs := newAdminHarness(t, func(o *harnessOptions) {
		o.admin = func(a *Admin) { a.Traffic = func() (float64, float64) { return 12.5, 3.25 } }
	})
	hs.expect(nil, "POST", "/sessions", `{"user_id":"u-status"}`, 201, "OK")
	t0 := time.Now()
	r := hs.expect(nil, "GET", "/admin/v1/status", "", 200, "OK")
	var st statusObject
	r.data(t, &st)
	if st.NodeID != hs.eng.Node().NodeID || st.Mode != "standalone" || !st.Ready || st.Maintenance || st.Sessions.Live != 1 ||
		st.UptimeSeconds < 59 || st.StartedAt == 0 || st.GoVersion == "" || st.Goroutines == 0 || st.Memory.HeapBytes == 0 ||
		st.Memory.RSSBytes == 0 || st.WAL.SyncMode != "interval" || st.WAL.LastSeq == 0 || st.KeyID != hs.eng.KeyID().String() ||
		st.QPS != 12.5 || st.P99Ms != 3.25 || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(st.AuditLastHash) ||
		st.Cluster.PartitionsPrimary != 256 || !st.Cluster.LeaseValid || st.Cluster.RaftRole != "leader" || st.Cluster.LeaderID != st.NodeID || st.Cipher == "" {
		t.Fatalf("status %s", r.env.Data)
	}
	// Cached for up to a second: a new session does not show at once...
	hs.expect(nil, "POST", "/sessions", `{"user_id":"u-status"}`, 201, "OK")
	hs.expect(nil, "GET", "/admin/v1/status", "", 200, "OK").data(t, &st)
	if st.Sessions.Live != 1 && time.Since(t0) < 900*time.Millisecond {
		t.Fatalf("status not cached: %d live", st.Sessions.Live)
	}
	// ...but within about one.
	time.Sleep(1100 * time.Millisecond)
	hs.expect(nil, "GET", "/admin/v1/status", "", 200, "OK").data(t, &st)
	if st.Sessions.Live != 2 {
		t.Fatalf("status cached too long: %d live", st.Sessions.Live)
	}
	hs.expect(nil, "GET", "/admin/v1/status?verbose=1", "", 400, "TM-ARG-1001")
}

func TestAdminGC_RunsAndThrottlesPerType(t *testing.T) {
	hs := newAdminHarness(t, func(o *harnessOptions) {
		o.engine = func(c *engine.Config) { c.Session.ExpiredGrace = -1 }
	})
	var res gcResult
	hs.expect(nil, "POST", "/admin/v1/gc", `{"type":"memory"}`, 200, "OK").data(t, &res)
	if res.Type != "memory" || res.CleanedCount != 0 {
		t.Fatalf("memory gc %+v", res)
	}
	r := hs.expect(nil, "POST", "/admin/v1/gc", `{"type":"memory"}`, 429, "TM-ADMIN-4291")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
	hs.expect(nil, "POST", "/admin/v1/gc", ``, 200, "OK").data(t, &res)
	if res.Type != "all" {
		t.Fatalf("default type %+v", res)
	}
	hs.expect(nil, "POST", "/admin/v1/gc", `{}`, 429, "TM-ADMIN-4291")
	hs.expect(nil, "POST", "/admin/v1/gc", `{"type":"expired"}`, 200, "OK")
	hs.expect(nil, "POST", "/admin/v1/gc", `{"type":"expired"}`, 429, "TM-ADMIN-4291")
	r = hs.expect(nil, "POST", "/admin/v1/gc", `{"type":"everything"}`, 400, "TM-ARG-1001")
	if r.env.Details["field"] != "type" {
		t.Fatalf("details %v", r.env.Details)
	}
	hs.expect(nil, "POST", "/admin/v1/gc", `{"Type":"all"}`, 400, "TM-SYS-4000")
}

func TestAdminGC_ExpiredRemovesExpiredSessions(t *testing.T) {
	now := time.Now().UnixMilli()
	var mu sync.Mutex
	hs := newAdminHarness(t, func(o *harnessOptions) {
		o.engine = func(c *engine.Config) {
			c.Session.ExpiredGrace = -1
			c.Now = func() int64 { mu.Lock(); defer mu.Unlock(); return now }
		}
	})
	for range 3 {
		hs.expect(nil, "POST", "/sessions", `{"user_id":"u-gc","ttl_seconds":1}`, 201, "OK")
	}
	mu.Lock()
	now += 5000
	mu.Unlock()
	var res gcResult
	hs.expect(nil, "POST", "/admin/v1/gc", `{"type":"expired"}`, 200, "OK").data(t, &res)
	if res.CleanedCount != 3 {
		t.Fatalf("gc expired %+v", res)
	}
}

func TestAdminCluster_StandaloneDescriptions(t *testing.T) {
	hs := newAdminHarness(t, nil)
	var cs clusterSummary
	hs.expect(nil, "GET", "/admin/v1/cluster/status", "", 200, "OK").data(t, &cs)
	self := hs.eng.Node().NodeID
	if cs.Mode != "standalone" || cs.Health != "healthy" || cs.Nodes.Alive != 1 || cs.Partitions.Total != 256 ||
		cs.LeaderID != self || len(cs.Voters) != 1 || cs.Voters[0] != self {
		t.Fatalf("cluster status %+v", cs)
	}
	var nodes struct {
		ClusterID string        `json:"cluster_id"`
		LeaderID  string        `json:"leader_id"`
		Nodes     []clusterNode `json:"nodes"`
	}
	hs.expect(nil, "GET", "/admin/v1/cluster/nodes", "", 200, "OK").data(t, &nodes)
	if len(nodes.Nodes) != 1 || nodes.Nodes[0].NodeID != self || nodes.Nodes[0].State != "alive" || nodes.Nodes[0].PartitionsPrimary != 256 ||
		nodes.LeaderID != self || nodes.Nodes[0].RaftRole != "leader" {
		t.Fatalf("nodes %+v", nodes)
	}
	var parts struct {
		Partitions []clusterPartition `json:"partitions"`
	}
	hs.expect(nil, "GET", "/admin/v1/cluster/partitions", "", 200, "OK").data(t, &parts)
	if len(parts.Partitions) != 256 || parts.Partitions[255].Partition != 255 || parts.Partitions[7].Primary != hs.eng.Node().NodeID {
		t.Fatalf("%d partitions", len(parts.Partitions))
	}
	hs.expect(nil, "POST", "/admin/v1/cluster/nodes/"+strings.ToUpper(hs.eng.Node().NodeID)+"/remove", ``, 400, "TM-CLST-4001")
	hs.expect(nil, "POST", "/admin/v1/cluster/nodes/tmnd-other/remove", `{"force":true}`, 400, "TM-CLST-4001")
	hs.expect(nil, "POST", "/admin/v1/cluster/nodes/tmnd-other/remove", `{"force":"yes"}`, 400, "TM-SYS-4000")
	hs.expect(nil, "POST", "/admin/v1/cluster/rebalance", ``, 400, "TM-CLST-4001")
	hs.expect(nil, "POST", "/admin/v1/cluster/rebalance", `{"now":true}`, 400, "TM-SYS-4000")
	hs.expect(nil, "GET", "/admin/v1/cluster/partitions?page=1", "", 400, "TM-ARG-1001")
}

func TestAdminConfig_GetValidateReload(t *testing.T) {
	reloadErr := error(nil)
	hs := newAdminHarness(t, func(o *harnessOptions) {
		o.admin = func(a *Admin) {
			a.Reload = func() ([]string, []string, error) {
				if reloadErr != nil {
					return nil, nil, reloadErr
				}
				return []string{"telemetry.logging.level"}, nil, nil
			}
		}
	})
	var tree struct {
		Config map[string]map[string]any `json:"config"`
	}
	r := hs.expect(nil, "GET", "/admin/v1/config", "", 200, "OK")
	r.data(t, &tree)
	if tree.Config["storage"]["data_dir"] != hs.cfg.Storage.DataDir || tree.Config["session"] == nil {
		t.Fatalf("config %s", r.env.Data)
	}

	var v struct {
		Valid  bool            `json:"valid"`
		Errors []configProblem `json:"errors"`
	}
	hs.expect(nil, "POST", "/admin/v1/config/validate", `{"config_yaml":"session:\n  ttl:\n    default: 1h\n"}`, 200, "OK").data(t, &v)
	if !v.Valid || v.Errors == nil || len(v.Errors) != 0 {
		t.Fatalf("valid doc: %+v", v)
	}
	hs.expect(nil, "POST", "/admin/v1/config/validate", `{"config_yaml":"session:\n  ttl:\n    max: 99999h\n  bogus: 1\n"}`, 200, "OK").data(t, &v)
	if v.Valid || len(v.Errors) < 2 {
		t.Fatalf("invalid doc: %+v", v)
	}
	codes := map[string]string{}
	for _, e := range v.Errors {
		codes[e.Key] = e.Code
		if e.Message == "" || strings.HasPrefix(e.Message, "TM-") {
			t.Errorf("message %q", e.Message)
		}
	}
	if codes["session.ttl.max"] != "TM-CFG-1002" || codes["session.bogus"] != "TM-CFG-1001" {
		t.Fatalf("codes %v", codes)
	}
	hs.expect(nil, "POST", "/admin/v1/config/validate", `{"config_yaml":": : :"}`, 200, "OK").data(t, &v)
	if v.Valid || len(v.Errors) == 0 {
		t.Fatalf("bad YAML: %+v", v)
	}
	hs.expect(nil, "POST", "/admin/v1/config/validate", `{}`, 400, "TM-ARG-1002")
	// This route's limit is 1 MiB, above the 64 KiB default.
	big := `{"config_yaml":"# ` + strings.Repeat("x", 200<<10) + `\n"}`
	hs.expect(nil, "POST", "/admin/v1/config/validate", big, 200, "OK")
	huge := `{"config_yaml":"# ` + strings.Repeat("x", 1<<20) + `\n"}`
	hs.expect(nil, "POST", "/admin/v1/config/validate", huge, 413, "TM-SYS-4130")

	var rl struct {
		Applied []string `json:"applied"`
		Restart []string `json:"restart_required"`
	}
	r = hs.expect(nil, "POST", "/admin/v1/config/reload", ``, 200, "OK")
	r.data(t, &rl)
	if fmt.Sprint(rl.Applied) != "[telemetry.logging.level]" || rl.Restart == nil {
		t.Fatalf("reload %s", r.env.Data)
	}
	reloadErr = fmt.Errorf("reload: %w", errors.Join(
		&config.Error{Code: config.CodeOutOfRange, Key: "session.ttl.max", Value: "99999h", Message: "out of range", Expected: "1s..8760h"},
		&config.Error{Code: config.CodeInvalidValue, Key: "session.bogus", Message: "unknown key"}))
	r = hs.expect(nil, "POST", "/admin/v1/config/reload", `{}`, 400, "TM-CFG-1002")
	errs, _ := r.env.Details["errors"].([]any)
	if len(errs) != 2 {
		t.Fatalf("reload details %v", r.env.Details)
	}
	hs.expect(nil, "POST", "/admin/v1/config/reload", `{"now":1}`, 400, "TM-SYS-4000")
}

func TestAdminWALStatus_ReportsSegmentsAndSnapshot(t *testing.T) {
	hs := newAdminHarness(t, nil)
	hs.expect(nil, "POST", "/sessions", `{"user_id":"u-wal"}`, 201, "OK")
	before := time.Now().UnixMilli()
	if err := hs.eng.Sync(); err != nil {
		t.Fatal(err)
	}
	snap, err := hs.eng.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var ws walStatus
	r := hs.expect(nil, "GET", "/admin/v1/wal/status", "", 200, "OK")
	r.data(t, &ws)
	if ws.Dir != filepath.Join(hs.cfg.Storage.DataDir, "wal") || ws.SyncMode != "interval" || !ws.SyncRevocations || ws.Segments < 1 ||
		ws.TotalBytes <= 0 || ws.FirstSeq != 1 || ws.LastSeq < 1 || ws.KeyID != hs.eng.KeyID().String() || ws.Cipher == "" ||
		ws.LastSnapshot.File != filepath.Base(snap.Path) || ws.LastSnapshot.CoveredSeq != snap.CoveredSeq || ws.LastSnapshot.CreatedAt == 0 {
		t.Fatalf("wal status %s (snapshot %+v)", r.env.Data, snap)
	}
	// The snapshot may fsync the WAL again; either way it is after Sync began.
	if ws.LastFsyncAt < before || ws.LastFsyncAt > time.Now().UnixMilli() {
		t.Fatalf("last_fsync_at %d, want within [%d, now]", ws.LastFsyncAt, before)
	}
}

func TestAdminRoutes_WithoutEngineOrKeys(t *testing.T) {
	hs := newAdminHarness(t, func(o *harnessOptions) {
		o.admin = func(a *Admin) {
			a.Engine = func() *engine.Engine { return nil }
			a.Keys = nil
		}
	})
	hs.expect(nil, "GET", "/admin/v1/wal/status", "", 503, "TM-SYS-5030")
	hs.expect(nil, "POST", "/admin/v1/gc", `{"type":"expired"}`, 503, "TM-SYS-5030")
	hs.expect(nil, "POST", "/admin/v1/gc", `{"type":"memory"}`, 200, "OK")
	hs.expect(nil, "GET", "/admin/v1/keys", "", 503, "TM-SYS-5030")
	hs.expect(nil, "POST", "/admin/v1/keys", `{"role":"admin"}`, 503, "TM-SYS-5030")
	var st statusObject
	hs.expect(nil, "GET", "/admin/v1/status", "", 200, "OK").data(t, &st)
	if st.NodeID == "" || st.KeyID != "" || st.Cluster.PartitionsPrimary != 256 {
		t.Fatalf("status without engine %+v", st)
	}
}

func TestAdminAuditLogs_QueryNewestFirstWithFilters(t *testing.T) {
	hs := newAdminHarness(t, nil)
	start := time.Now().Add(-time.Second).UnixMilli()
	k := hs.createKey(`{"role":"issuer"}`)
	hs.expect(nil, "POST", "/admin/v1/keys/"+k.KeyID+"/status", `{"status":"disabled"}`, 200, "OK")
	// Outcome records are asynchronous: wait until they are in.
	deadline := time.Now().Add(5 * time.Second)
	for hs.audit.LastSeq() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var page struct {
		Items []map[string]any `json:"items"`
		Total int              `json:"total"`
		Size  int              `json:"size"`
	}
	hs.expect(nil, "GET", "/admin/v1/audit/logs", "", 200, "OK").data(t, &page)
	if page.Total < 4 || len(page.Items) < 4 || page.Size != 20 {
		t.Fatalf("audit page %+v", page)
	}
	for i := 1; i < len(page.Items); i++ {
		a, _ := page.Items[i-1]["seq"].(float64)
		b, _ := page.Items[i]["seq"].(float64)
		if a <= b {
			t.Fatalf("not newest first: %v then %v", a, b)
		}
	}
	hs.expect(nil, "GET", fmt.Sprintf("/admin/v1/audit/logs?action=apikey.status&result=attempt&actor=LOCAL_ADMIN&start_time=%d&end_time=%d&page=1&size=5",
		start, time.Now().Add(time.Minute).UnixMilli()), "", 200, "OK").data(t, &page)
	if page.Total != 1 || page.Items[0]["resource"] != k.KeyID || page.Items[0]["action"] != "apikey.status" {
		t.Fatalf("filtered %+v", page)
	}
	hs.expect(nil, "GET", "/admin/v1/audit/logs?end_time=1", "", 200, "OK").data(t, &page)
	if page.Total != 0 || page.Items == nil {
		t.Fatalf("end_time=1: %+v", page)
	}
	for _, q := range []string{"result=maybe", "start_time=yesterday", "end_time=-5", "start_time=10&end_time=5", "size=0", "page=10001", "who=me", "actor="} {
		hs.expect(nil, "GET", "/admin/v1/audit/logs?"+q, "", 400, "TM-ARG-1001")
	}
}

func TestAudit_AdminCallsAreRecorded(t *testing.T) {
	hs := newAdminHarness(t, nil)
	k := hs.createKey(`{"role":"issuer","description":"audit me"}`)
	hs.expect(nil, "GET", "/admin/v1/keys?role=issuer&bogus=1", "", 400, "TM-ARG-1001")
	hs.expect(nil, "GET", "/admin/v1/keys?role=issuer&size=5", "", 200, "OK")
	hs.expect(nil, "POST", "/admin/v1/keys", `{"role":"root"}`, 400, "TM-ARG-1001")
	hs.expect(nil, "POST", "/admin/v1/keys/"+k.KeyID+"/rotate", `{"grace_seconds":5}`, 200, "OK")
	hs.expect(nil, "POST", "/admin/v1/cluster/rebalance", ``, 400, "TM-CLST-4001")
	hs.expect(nil, "POST", "/admin/v1/config/reload", ``, 200, "OK")
	recs := hs.auditRecords()
	all := hs.auditBytes()
	if bytes.Contains(all, []byte(k.Secret)) || bytes.Contains(all, []byte("tmas_")) || bytes.Contains(all, []byte("argon2id")) {
		t.Fatal("the audit log contains a secret or a hash")
	}
	find := func(action, result string) []map[string]any {
		var out []map[string]any
		for _, r := range recs {
			if r["action"] == action && r["result"] == result {
				out = append(out, r)
			}
		}
		return out
	}
	att, ok := find("apikey.create", "attempt"), find("apikey.create", "success")
	if len(att) != 1 || len(ok) != 1 {
		t.Fatalf("apikey.create records: attempt %v success %v", att, ok)
	}
	if att[0]["seq"].(float64) >= ok[0]["seq"].(float64) {
		t.Fatal("the attempt record does not precede the outcome")
	}
	if ok[0]["resource"] != k.KeyID || ok[0]["actor"] != "LOCAL_ADMIN" || ok[0]["role"] != "admin" || ok[0]["user_agent"] != "admin-test/1.0" ||
		ok[0]["tcp_remote_ip"] != "127.0.0.1" || ok[0]["client_ip"] != "127.0.0.1" || ok[0]["request_id"] != att[0]["request_id"] ||
		!strings.HasPrefix(ok[0]["request_id"].(string), "tmrq-") {
		t.Fatalf("success record %v", ok[0])
	}
	if d, _ := att[0]["details"].(map[string]any); d["role"] != "issuer" {
		t.Fatalf("attempt details %v", att[0]["details"])
	}
	if f := find("apikey.create", "failure"); len(f) != 1 || f[0]["code"] != "TM-ARG-1001" {
		t.Fatalf("failed create: %v", f)
	}
	reads := find("admin.read", "success")
	if len(reads) != 1 || reads[0]["resource"] != "/admin/v1/keys" || fmt.Sprint(reads[0]["details"]) != "map[params:[role size]]" {
		t.Fatalf("admin.read success %v", reads)
	}
	if f := find("admin.read", "failure"); len(f) != 1 || f[0]["code"] != "TM-ARG-1001" || fmt.Sprint(f[0]["details"]) != "map[params:[role]]" {
		t.Fatalf("admin.read failure %v", f)
	}
	if len(find("apikey.rotate", "attempt")) != 1 || len(find("apikey.rotate", "success")) != 1 {
		t.Fatal("rotate not audited")
	}
	if f := find("cluster.rebalance", "failure"); len(find("cluster.rebalance", "attempt")) != 1 || len(f) != 1 || f[0]["code"] != "TM-CLST-4001" {
		t.Fatalf("rebalance %v", f)
	}
	rl := find("config.reload", "success")
	if len(rl) != 1 || rl[0]["resource"] != "/etc/tokmesh/config.yaml" || fmt.Sprint(rl[0]["details"]) != "map[applied:[telemetry.logging.level] restart_required:[server.http.address]]" {
		t.Fatalf("reload %v", rl)
	}
}

func TestAudit_UnavailableLogRefusesAdminWrites(t *testing.T) {
	hs := newAdminHarness(t, nil)
	k := hs.createKey(`{"role":"issuer"}`)
	if err := hs.audit.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, body string }{
		{"/admin/v1/keys", `{"role":"admin"}`},
		{"/admin/v1/keys/" + k.KeyID + "/status", `{"status":"disabled"}`},
		{"/admin/v1/keys/" + k.KeyID + "/rotate", ``},
		{"/admin/v1/keys/emergency", ``},
		{"/admin/v1/gc", `{"type":"memory"}`},
		{"/admin/v1/config/reload", ``},
		{"/admin/v1/cluster/rebalance", ``},
	} {
		r := hs.expect(nil, "POST", tc.path, tc.body, 503, "TM-SYS-5032")
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", tc.path)
		}
	}
	// Nothing changed: still one key, active, same secret; and gc was not
	// throttled by the refused call.
	var list struct {
		Total int
		Items []createdKey
	}
	hs.expect(nil, "GET", "/admin/v1/keys", "", 200, "OK").data(t, &list)
	if list.Total != 1 || list.Items[0].Status != "active" {
		t.Fatalf("keys after refused writes: %+v", list)
	}
	got, err := hs.keys.Get(k.KeyID)
	if err != nil || got.RotationGraceUntil != 0 {
		t.Fatalf("key rotated anyway: %+v %v", got, err)
	}
}

func TestAudit_NoLogStillServesAdminWrites(t *testing.T) {
	hs := newAdminHarness(t, func(o *harnessOptions) { o.noAudit = true })
	k := hs.createKey(`{"role":"validator"}`)
	hs.expect(nil, "POST", "/admin/v1/keys/"+k.KeyID+"/status", `{"status":"disabled"}`, 200, "OK")
	var page struct {
		Items []any
		Total int
	}
	hs.expect(nil, "GET", "/admin/v1/audit/logs", "", 200, "OK").data(t, &page)
	if page.Total != 0 || page.Items == nil {
		t.Fatalf("%+v", page)
	}
	var st statusObject
	hs.expect(nil, "GET", "/admin/v1/status", "", 200, "OK").data(t, &st)
	if st.AuditLastHash != "" {
		t.Fatalf("audit_last_hash %q without a log", st.AuditLastHash)
	}
}

func TestAudit_SessionEventsNeverContainTokensOrData(t *testing.T) {
	hs := newAdminHarness(t, func(o *harnessOptions) {
		o.engine = func(c *engine.Config) { c.Session.MaxPerUser = 1; c.Session.OnExceed = session.QuotaEvictOldest }
	})
	clientToken := "client-token-that-must-not-leak-0001"
	r := hs.expect(nil, "POST", "/sessions", `{"user_id":"u-aud","ttl_seconds":600,"data":{"secret":"data-value-must-not-leak"},"token":"`+clientToken+`"}`, 201, "OK")
	var c1 struct {
		SessionID string `json:"session_id"`
	}
	r.data(t, &c1)
	r = hs.expect(nil, "POST", "/sessions", `{"user_id":"u-aud"}`, 201, "OK")
	var c2 struct {
		SessionID string `json:"session_id"`
		Token     string `json:"token"`
		Evicted   string `json:"evicted_session_id"`
	}
	r.data(t, &c2)
	if c2.Evicted != c1.SessionID {
		t.Fatalf("no eviction: %s", r.env.Data)
	}
	hs.expect(nil, "POST", "/sessions", `{"user_id":"u-aud","token":"short"}`, 400, "TM-TOKN-4000")
	hs.expect(nil, "POST", "/sessions", `{"user_id":"u-aud","token":"`+clientToken+`"}`, 409, "TM-TOKN-4090")
	hs.expect(nil, "POST", "/sessions/"+c2.SessionID+"/revoke", ``, 200, "OK")
	hs.expect(nil, "POST", "/sessions/"+c2.Token+"/revoke", ``, 200, "OK") // a token in the path names no session
	hs.expect(nil, "POST", "/users/u-aud/sessions/revoke", ``, 200, "OK")

	recs := hs.auditRecords()
	all := hs.auditBytes()
	for _, secret := range []string{clientToken, c2.Token, "data-value-must-not-leak"} {
		if bytes.Contains(all, []byte(secret)) {
			t.Fatalf("audit log contains %q", secret)
		}
	}
	count := map[string]int{}
	for _, rec := range recs {
		k := fmt.Sprint(rec["action"], " ", rec["result"])
		count[k]++
		d, _ := rec["details"].(map[string]any)
		switch rec["action"] {
		case "session.create":
			if rec["result"] == "success" && (d["user_id"] != "u-aud" || rec["resource"] == "") {
				t.Errorf("create record %v", rec)
			}
			if rec["resource"] == c1.SessionID && d["ttl_seconds"] != float64(600) {
				t.Errorf("create ttl %v", rec)
			}
		case "session.evict":
			if rec["resource"] != c1.SessionID || d["new_session_id"] != c2.SessionID || d["user_id"] != "u-aud" {
				t.Errorf("evict record %v", rec)
			}
		case "session.revoke":
			if rec["resource"] == c2.SessionID && d["revoked"] != true {
				t.Errorf("revoke record %v", rec)
			}
		case "session.revoke_all":
			if rec["resource"] != "u-aud" || d["revoked_count"] != float64(0) {
				t.Errorf("revoke_all record %v", rec)
			}
		}
	}
	want := map[string]int{"session.create success": 2, "session.create failure": 2, "session.evict success": 1,
		"session.revoke success": 2, "session.revoke_all success": 1}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%s: %d records, want %d (all: %v)", k, count[k], n, count)
		}
	}
}
