package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/engine"
)

// localGuard admits every caller as LOCAL_ADMIN (the admin-socket guard).
type localGuard struct{ tokenFailures int }

func (g *localGuard) Check(r *http.Request, rt *Route, rid string, own bool) (Caller, *apierr.Error) {
	return Caller{KeyID: "LOCAL_ADMIN", Role: "admin", ClientIP: netip.MustParseAddr("127.0.0.1"), UserAgent: r.UserAgent()}, nil
}
func (g *localGuard) TokenFailure(*http.Request, netip.Addr, string) { g.tokenFailures++ }

func newTestServer(t *testing.T) (*httptest.Server, *engine.Engine) {
	t.Helper()
	cfg := engine.DefaultConfig(t.TempDir())
	cfg.Getenv = func(k string) string {
		if k == "TOKMESH_ENCRYPTION_KEY" {
			return strings.Repeat("42", 32)
		}
		return ""
	}
	cfg.SweepInterval, cfg.SnapshotInterval, cfg.SnapshotWALThreshold, cfg.SnapshotOnClose = -1, 0, 0, false
	e, err := engine.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Engine: e, Guard: &localGuard{}})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); e.Close() })
	return srv, e
}

type envelope struct {
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	RequestID string          `json:"request_id"`
	Timestamp int64           `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
	Details   map[string]any  `json:"details"`
}

func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, envelope, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("User-Agent", "httpapi-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	// Never chunked: net/http or writeRaw sets Content-Length.
	if resp.ContentLength != int64(len(raw)) || len(resp.TransferEncoding) != 0 {
		t.Fatalf("%s %s: Content-Length %d, %d bytes read, Transfer-Encoding %v", method, path, resp.ContentLength, len(raw), resp.TransferEncoding)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("%s %s: body is not an envelope: %q", method, path, raw)
	}
	if resp.Header.Get("X-Request-ID") == "" || resp.Header.Get("X-Request-ID") != env.RequestID {
		t.Fatalf("%s %s: X-Request-ID %q vs envelope %q", method, path, resp.Header.Get("X-Request-ID"), env.RequestID)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%s %s: no Cache-Control: no-store", method, path)
	}
	// Date: exactly one, in the IMF-fixdate form, no more than the cache's
	// one second (plus the format's one-second resolution) behind.
	if d := resp.Header.Values("Date"); len(d) != 1 {
		t.Fatalf("%s %s: Date headers %q, want one", method, path, d)
	} else if at, err := time.Parse(http.TimeFormat, d[0]); err != nil || time.Since(at) > 3*time.Second || time.Until(at) > time.Second {
		t.Fatalf("%s %s: Date %q is not the current time (%v)", method, path, d[0], err)
	}
	return resp.StatusCode, env, resp.Header
}

func TestAppendJSONString_AlwaysValidUTF8(t *testing.T) {
	for in, want := range map[string]string{
		"u-1001":            `"u-1001"`,
		"a\"b\\c\x01":       `"a\"b\\c\u0001"`,
		"\xe9":              `"�"`,
		"caf\xc3\xa9 \xff!": `"café �!"`,
		"\xf0\x9f\x94":      `"���"`,
	} {
		got := appendJSONString(nil, in)
		if string(got) != want || !utf8.Valid(got) || !json.Valid(got) {
			t.Errorf("appendJSONString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDateHeader_OneFormatPerSecond(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 4, 5, 6, 100, time.FixedZone("X", 3600))
	a := dateHeader(t0)
	if want := "Fri, 27 Nov 2026 03:05:06 GMT"; len(a) != 1 || a[0] != want {
		t.Fatalf("dateHeader = %q, want [%q]", a, want)
	}
	if b := dateHeader(t0.Add(999 * time.Millisecond)); &b[0] != &a[0] {
		t.Fatal("the same second formatted the header again")
	}
	if c := dateHeader(t0.Add(time.Second)); c[0] != "Fri, 27 Nov 2026 03:05:07 GMT" {
		t.Fatalf("next second: %q", c)
	}
	if a[0] != "Fri, 27 Nov 2026 03:05:06 GMT" {
		t.Fatal("a later second changed an earlier value in place")
	}
}

func TestQuickstartSequence_CreateValidateRevokeValidate(t *testing.T) {
	srv, _ := newTestServer(t)
	st, env, _ := call(t, srv, "POST", "/sessions", `{"user_id":"u-1001","data":{"tenant":"acme"}}`)
	if st != 201 || env.Code != "OK" {
		t.Fatalf("create: %d %+v", st, env)
	}
	var created struct {
		SessionID string `json:"session_id"`
		Token     string `json:"token"`
		ExpiresAt int64  `json:"expires_at"`
	}
	json.Unmarshal(env.Data, &created)
	if !strings.HasPrefix(created.SessionID, "tmss-") || !strings.HasPrefix(created.Token, "tmtk_") || created.ExpiresAt == 0 {
		t.Fatalf("create data %s", env.Data)
	}
	st, env, _ = call(t, srv, "POST", "/tokens/validate", fmt.Sprintf(`{"token":%q}`, created.Token))
	if st != 200 || !bytes.Contains(env.Data, []byte(`"valid":true`)) || !bytes.Contains(env.Data, []byte(`"created_by":"LOCAL_ADMIN"`)) {
		t.Fatalf("validate: %d %s", st, env.Data)
	}
	if bytes.Contains(env.Data, []byte(created.Token)) {
		t.Fatal("validate returned the token")
	}
	st, env, _ = call(t, srv, "POST", "/sessions/"+created.SessionID+"/revoke", "")
	if st != 200 || string(env.Data) != fmt.Sprintf(`{"session_id":%q,"revoked":true}`, created.SessionID) {
		t.Fatalf("revoke: %d %s", st, env.Data)
	}
	st, env, _ = call(t, srv, "GET", "/sessions/tmss-"+strings.ToUpper(created.SessionID[5:]), "")
	if st != 404 || env.Code != "TM-SESS-4042" {
		t.Fatalf("IDs are case-insensitive: %d %s", st, env.Code)
	}
	st, env, _ = call(t, srv, "POST", "/tokens/validate", fmt.Sprintf(`{"token":%q}`, created.Token))
	if st != 200 || !bytes.Contains(env.Data, []byte(`"code":"TM-TOKN-4012"`)) {
		t.Fatalf("validate after revoke: %d %s", st, env.Data)
	}
	st, env, _ = call(t, srv, "GET", "/sessions/"+created.SessionID, "")
	if st != 404 || env.Code != "TM-SESS-4042" {
		t.Fatalf("get revoked: %d %s", st, env.Code)
	}
	st, env, _ = call(t, srv, "POST", "/sessions", fmt.Sprintf(`{"user_id":"u-1001","token":%q}`, created.Token))
	if st != 409 || env.Code != "TM-TOKN-4090" {
		t.Fatalf("reuse revoked token: %d %s", st, env.Code)
	}
}

func TestConventions_RoutingErrorsAndStrictBodies(t *testing.T) {
	srv, _ := newTestServer(t)
	big := `{"user_id":"` + strings.Repeat("a", 70<<10) + `"}`
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/nope", "", 404, "TM-SYS-4040"},
		{"GET", "/sessions/", "", 404, "TM-SYS-4040"},
		{"DELETE", "/sessions", "", 405, "TM-SYS-4050"},
		{"PUT", "/tokens/validate", "", 405, "TM-SYS-4050"},
		{"POST", "/sessions", `{"user_id":"u","User_ID":"x"}`, 400, "TM-SYS-4000"},
		{"POST", "/sessions", `{"user_id":"u","user_id":"v"}`, 400, "TM-SYS-4000"},
		{"POST", "/sessions", `{"user_id":"u"} {}`, 400, "TM-SYS-4000"},
		{"POST", "/sessions", `{"user_id":5}`, 400, "TM-SYS-4000"},
		{"POST", "/sessions", `{"user_id":"u","data":{"a":"1","a":"2"}}`, 400, "TM-SYS-4000"},
		{"POST", "/sessions", `[1]`, 400, "TM-SYS-4000"},
		{"POST", "/sessions", `{"device_id":"d"}`, 400, "TM-ARG-1002"},
		{"POST", "/sessions", `{"user_id":null}`, 400, "TM-ARG-1002"},
		{"POST", "/sessions", `{"user_id":"` + strings.Repeat("x", 129) + `"}`, 400, "TM-SESS-4001"},
		{"POST", "/sessions", `{"user_id":"u","ttl_seconds":0}`, 400, "TM-SESS-4001"},
		{"POST", "/sessions", `{"user_id":"u","ttl_seconds":99999999999999999999}`, 400, "TM-SESS-4001"},
		{"POST", "/sessions", `{"user_id":"u","idle_timeout_seconds":-99999999999999999999}`, 400, "TM-SESS-4001"},
		{"POST", "/sessions", `{"user_id":"u","ttl_seconds":1.5}`, 400, "TM-SYS-4000"},
		{"POST", "/sessions", `{"user_id":"u","ttl_seconds":1e3}`, 400, "TM-SYS-4000"},
		{"POST", "/sessions", `{"user_id":"u","ttl_seconds":"60"}`, 400, "TM-SYS-4000"},
		{"POST", "/sessions", `{"user_id":"u","token":"short-token"}`, 400, "TM-TOKN-4000"},
		{"POST", "/sessions", big, 413, "TM-SYS-4130"},
		{"POST", "/tokens/validate", `{}`, 400, "TM-ARG-1002"},
		{"POST", "/sessions/tmss-not-an-id/renew", `{"ttl_seconds":60}`, 404, "TM-SESS-4040"},
		{"POST", "/sessions/tmss-not-an-id/renew", `{}`, 400, "TM-ARG-1002"},
		{"POST", "/sessions/tmss-not-an-id/renew", `{"ttl_seconds":0}`, 400, "TM-SESS-4001"},
		{"POST", "/sessions/tmss-01m8djx9n403pp24fh60h89dz9/renew", `{"ttl_seconds":0}`, 400, "TM-SESS-4001"},
		{"POST", "/sessions/tmss-01m8djx9n403pp24fh60h89dz9/renew", `{"ttl_seconds":60}`, 404, "TM-SESS-4040"},
		{"GET", "/sessions?size=0", "", 400, "TM-ARG-1001"},
		{"GET", "/sessions?size=101", "", 400, "TM-ARG-1001"},
		{"GET", "/sessions?page=101&size=100", "", 400, "TM-ARG-1001"},
		{"GET", "/sessions?bogus=1", "", 400, "TM-ARG-1001"},
		{"POST", "/users/%E9/sessions/revoke", "", 400, "TM-SESS-4001"},
		{"POST", "/users/a%00b/sessions/revoke", "", 400, "TM-SESS-4001"},
		{"POST", "/users/" + strings.Repeat("u", 129) + "/sessions/revoke", "", 400, "TM-SESS-4001"},
	} {
		st, env, hdr := call(t, srv, tc.method, tc.path, tc.body)
		if st != tc.status || env.Code != tc.code {
			t.Errorf("%s %s %.60s: got %d %s (%s), want %d %s", tc.method, tc.path, tc.body, st, env.Code, env.Message, tc.status, tc.code)
		}
		if st == 405 && hdr.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tc.method, tc.path)
		}
		if env.Details == nil {
			t.Errorf("%s %s: error envelope without details", tc.method, tc.path)
		}
	}
}

// Every route without query parameters refuses one (02 §2), before it
// acts: the session still exists and nothing was revoked.
func TestUnknownQueryParametersAreRefusedOnEveryRoute(t *testing.T) {
	srv, _ := newTestServer(t)
	_, env, _ := call(t, srv, "POST", "/sessions", `{"user_id":"u-q"}`)
	var created struct {
		SessionID string `json:"session_id"`
		Token     string `json:"token"`
	}
	if err := json.Unmarshal(env.Data, &created); err != nil || created.SessionID == "" {
		t.Fatalf("create: %s", env.Data)
	}
	sid := "/sessions/" + created.SessionID
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/sessions?foo=1", `{"user_id":"u-q"}`},
		{"GET", sid + "?foo=1", ""},
		{"POST", sid + "/touch?foo=1", ""},
		{"POST", sid + "/renew?foo=1", `{"ttl_seconds":60}`},
		{"POST", sid + "/revoke?zz=1&foo=", ""},
		{"POST", "/users/u-q/sessions/revoke?foo", ""},
		{"POST", "/tokens/validate?foo=1", fmt.Sprintf(`{"token":%q}`, created.Token)},
		{"GET", "/cluster/routing?foo=1", ""},
	} {
		st, env, _ := call(t, srv, tc.method, tc.path, tc.body)
		if st != 400 || env.Code != "TM-ARG-1001" || env.Details["param"] != "foo" {
			t.Errorf("%s %s: got %d %s %v, want 400 TM-ARG-1001 param foo", tc.method, tc.path, st, env.Code, env.Details)
		}
	}
	st, env, _ := call(t, srv, "POST", "/tokens/validate?", fmt.Sprintf(`{"token":%q}`, created.Token))
	if st != 200 || !bytes.Contains(env.Data, []byte(`"valid":true`)) {
		t.Fatalf("a bare '?' has no parameters, and nothing above revoked the session: %d %s", st, env.Data)
	}
}

func TestValidate_ResultsAlways200WithCodes(t *testing.T) {
	srv, _ := newTestServer(t)
	for tok, code := range map[string]string{"short": "TM-TOKN-4000", "an-unknown-token-0001": "TM-TOKN-4010"} {
		st, env, _ := call(t, srv, "POST", "/tokens/validate", fmt.Sprintf(`{"token":%q}`, tok))
		if st != 200 || !bytes.Contains(env.Data, []byte(`"valid":false`)) || !bytes.Contains(env.Data, []byte(code)) {
			t.Fatalf("%s: %d %s", tok, st, env.Data)
		}
	}
}

func TestList_FiltersAndPaging(t *testing.T) {
	srv, _ := newTestServer(t)
	for i := range 5 {
		call(t, srv, "POST", "/sessions", fmt.Sprintf(`{"user_id":"list-user","device_id":"d%d"}`, i%2))
	}
	call(t, srv, "POST", "/sessions", `{"user_id":"other"}`)
	st, env, _ := call(t, srv, "GET", "/sessions?user_id=list-user&size=2&page=2&sort_order=asc", "")
	var page struct {
		Items []map[string]any `json:"items"`
		Page  int              `json:"page"`
		Size  int              `json:"size"`
		Total int              `json:"total"`
	}
	json.Unmarshal(env.Data, &page)
	if st != 200 || page.Total != 5 || len(page.Items) != 2 || page.Page != 2 || page.Size != 2 {
		t.Fatalf("%d %s", st, env.Data)
	}
	// A body above net/http's buffer still has a Content-Length (call checks).
	for range 10 {
		call(t, srv, "POST", "/sessions", `{"user_id":"list-big","data":{"k":"`+strings.Repeat("v", 300)+`"}}`)
	}
	if _, env, _ := call(t, srv, "GET", "/sessions?user_id=list-big&size=10", ""); len(env.Data) < 4000 {
		t.Fatalf("list body only %d bytes", len(env.Data))
	}
	// Time bounds are exclusive; created_before=0 is a bound nothing meets,
	// not "no bound"; the other two at 0 admit everything.
	for q, want := range map[string]int{"created_before=0": 0, "created_before=1": 0, "created_before=00": 0,
		"created_after=0": 16, "active_after=0": 16, "created_before=99999999999999": 16} {
		st, env, _ := call(t, srv, "GET", "/sessions?"+q, "")
		page.Total = -1
		json.Unmarshal(env.Data, &page)
		if st != 200 || page.Total != want {
			t.Errorf("%s: %d total %d, want %d", q, st, page.Total, want)
		}
	}
	// A typed parameter sent empty is a bad value (02 §2), not "no filter".
	for _, q := range []string{"created_after=", "created_before=", "active_after=", "ip_address=", "sort_by=", "sort_order=",
		"user_id=", "device_id=", "created_by="} {
		st, env, _ := call(t, srv, "GET", "/sessions?"+q, "")
		if st != 400 || env.Code != "TM-ARG-1001" || env.Details["param"] != strings.TrimSuffix(q, "=") {
			t.Errorf("%s: %d %s %v", q, st, env.Code, env.Details)
		}
	}
	// A parameter given twice is refused, whichever it is.
	for _, q := range []string{"user_id=list-user&user_id=", "size=5&size=5", "sort_by=created_at&sort_by=last_active"} {
		st, env, _ := call(t, srv, "GET", "/sessions?"+q, "")
		if st != 400 || env.Code != "TM-ARG-1001" || env.Details["param"] == nil {
			t.Errorf("%s: %d %s %v", q, st, env.Code, env.Details)
		}
	}
	st, env, _ = call(t, srv, "POST", "/users/list-user/sessions/revoke", "")
	if st != 200 || string(env.Data) != `{"user_id":"list-user","revoked_count":5}` {
		t.Fatalf("revoke all: %d %s", st, env.Data)
	}
}

func TestPanicIsRecoveredAsEnvelope500(t *testing.T) {
	h := New(Config{Engine: nil, Guard: &localGuard{}, Extra: nil})
	h.Handle(Route{Name: "boom", Method: "GET", Template: "/boom", Cap: CapPublic}, func(http.ResponseWriter, *request) { panic("boom") })
	srv := httptest.NewServer(h)
	defer srv.Close()
	st, env, _ := call(t, srv, "GET", "/boom", "")
	if st != 500 || env.Code != "TM-SYS-5000" {
		t.Fatalf("%d %+v", st, env)
	}
}

// TestBodyLimitWithoutWrapper: bodies are bounded by readBodyInto (no
// http.MaxBytesReader on buffered routes): a chunked body over the limit,
// a Content-Length over the limit with nothing sent after the headers,
// and a body exactly at the limit. An oversized body closes the
// connection after the 413 (its rest is never read).
func TestBodyLimitWithoutWrapper(t *testing.T) {
	srv, _ := newTestServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	send := func(name, raw string) (*http.Response, envelope) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer resp.Body.Close()
		var env envelope
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return resp, env
	}
	big := `{"user_id":"` + strings.Repeat("u", 70<<10) + `"}`
	chunked := fmt.Sprintf("POST /sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big)
	resp, env := send("chunked", chunked)
	if resp.StatusCode != 413 || env.Code != "TM-SYS-4130" || !resp.Close {
		t.Errorf("chunked: %d %s, close %v; want 413 TM-SYS-4130 and a closed connection", resp.StatusCode, env.Code, resp.Close)
	}
	if lim, _ := env.Details["limit"].(float64); lim != 64<<10 {
		t.Errorf("chunked: details.limit %v", env.Details["limit"])
	}
	// Refused from the header alone: the server must not wait for the body.
	resp, env = send("declared", "POST /tokens/validate HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
	if resp.StatusCode != 413 || env.Code != "TM-SYS-4130" || !resp.Close {
		t.Errorf("declared: %d %s, close %v", resp.StatusCode, env.Code, resp.Close)
	}
	// Exactly at the limit: read whole, judged on content (user_id too long).
	exact := `{"user_id":"` + strings.Repeat("u", 64<<10-len(`{"user_id":""}`)) + `"}`
	resp, env = send("exact", fmt.Sprintf("POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(exact), exact))
	if resp.StatusCode != 400 || env.Code != "TM-SESS-4001" || resp.Close {
		t.Errorf("exact: %d %s, close %v; want 400 TM-SESS-4001 on a kept connection", resp.StatusCode, env.Code, resp.Close)
	}
}
