package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/engine"
)

// bkFixture is a node with the backup routes, a readiness hook that reads
// the engine's maintenance flag, and a fake control store.
type bkFixture struct {
	srv      *httptest.Server
	e        *engine.Engine
	dir      string
	audit    *audit.Log
	keys     []byte      // what KeyTable returns
	merged   chan []byte // what MergeKeys received
	mergeGo  chan struct{}
	blockKey atomic.Bool // MergeKeys waits for mergeGo
}

type bkOptions struct {
	maxUpload    int64
	withAudit    bool
	readTimeout  time.Duration
	writeTimeout time.Duration
	keyDelay     time.Duration
}

func newBackupServer(t *testing.T, o bkOptions) *bkFixture {
	t.Helper()
	dir := t.TempDir()
	cfg := engine.DefaultConfig(dir)
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
	fx := &bkFixture{e: e, dir: dir, keys: []byte("key-table-v1"), merged: make(chan []byte, 10), mergeGo: make(chan struct{})}
	if o.withAudit {
		fx.audit, err = audit.Open(filepath.Join(dir, "audit"), e.Node().NodeID, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
	}
	hc := Config{
		Engine: e,
		Guard:  &localGuard{},
		Ready: func() (bool, map[string]string, apierr.Code) {
			if e.Maintenance() {
				return false, map[string]string{"storage": "ok", "cluster": "standalone", "maintenance": "restoring"}, apierr.AdminMaintenance
			}
			return true, nil, ""
		},
		Backups: &Backups{
			Engine: func() *engine.Engine { return e },
			KeyTable: func() ([]byte, int, error) {
				time.Sleep(o.keyDelay)
				return fx.keys, 1, nil
			},
			MergeKeys: func(data []byte) (int, error) {
				if fx.blockKey.Load() {
					<-fx.mergeGo
				}
				fx.merged <- append([]byte(nil), data...)
				return 1, nil
			},
			MaxUploadSize: o.maxUpload,
		},
		// The admin routes are another change; register only ours.
		Extra: func(_ *mux.Router, h *Handler) { h.registerBackupRoutes() },
	}
	if fx.audit != nil {
		hc.Audit = fx.audit
	}
	fx.srv = httptest.NewUnstartedServer(New(hc))
	fx.srv.Config.ReadTimeout, fx.srv.Config.WriteTimeout = o.readTimeout, o.writeTimeout
	fx.srv.Start()
	t.Cleanup(func() {
		fx.srv.Close()
		e.Close()
		if fx.audit != nil {
			fx.audit.Close()
		}
	})
	return fx
}

func (fx *bkFixture) createBackup(t *testing.T, desc string) engine.BackupInfo {
	t.Helper()
	st, env, _ := call(t, fx.srv, "POST", "/admin/v1/backups/snapshots", fmt.Sprintf(`{"description":%q}`, desc))
	if st != 201 {
		t.Fatalf("create backup: %d %+v", st, env)
	}
	var b engine.BackupInfo
	if err := json.Unmarshal(env.Data, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func (fx *bkFixture) createSession(t *testing.T, user string) (id, token string) {
	t.Helper()
	st, env, _ := call(t, fx.srv, "POST", "/sessions", fmt.Sprintf(`{"user_id":%q}`, user))
	if st != 201 {
		t.Fatalf("create session: %d %+v", st, env)
	}
	var c struct {
		SessionID string `json:"session_id"`
		Token     string `json:"token"`
	}
	json.Unmarshal(env.Data, &c)
	return c.SessionID, c.Token
}

func (fx *bkFixture) validate(t *testing.T, token string) string {
	t.Helper()
	st, env, _ := call(t, fx.srv, "POST", "/tokens/validate", fmt.Sprintf(`{"token":%q}`, token))
	if st != 200 {
		t.Fatalf("validate: %d %+v", st, env)
	}
	var v struct {
		Valid bool `json:"valid"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(env.Data, &v)
	if v.Valid {
		return "valid"
	}
	return v.Error.Code
}

func (fx *bkFixture) waitJob(t *testing.T, id string) engine.RestoreJob {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, env, _ := call(t, fx.srv, "GET", "/admin/v1/backups/restores/"+id, "")
		if st != 200 {
			t.Fatalf("job %s: %d %+v", id, st, env)
		}
		var j engine.RestoreJob
		json.Unmarshal(env.Data, &j)
		if j.Done() {
			return j
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("job %s did not finish", id)
	return engine.RestoreJob{}
}

func startJob(t *testing.T, st int, env envelope) engine.RestoreJob {
	t.Helper()
	if st != 202 {
		t.Fatalf("start restore: %d %+v", st, env)
	}
	var j engine.RestoreJob
	if err := json.Unmarshal(env.Data, &j); err != nil || !strings.HasPrefix(j.JobID, "tmrj-") || j.Status != "pending" {
		t.Fatalf("job %s", env.Data)
	}
	return j
}

func wantCode(t *testing.T, what string, st int, env envelope, status int, code string) {
	t.Helper()
	if st != status || env.Code != code {
		t.Fatalf("%s: got %d %s (%s), want %d %s", what, st, env.Code, env.Message, status, code)
	}
}

// multipartBody builds a multipart/form-data body with the given fields.
func multipartBody(t *testing.T, fields map[string][]byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for name, content := range fields {
		w, err := mw.CreateFormFile(name, "backup.tmbak")
		if err != nil {
			t.Fatal(err)
		}
		w.Write(content)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func upload(t *testing.T, srv *httptest.Server, body io.Reader, ctype string) (int, envelope) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/admin/v1/backups/restores", body)
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("upload: not an envelope: %q", raw)
	}
	return resp.StatusCode, env
}

func download(t *testing.T, srv *httptest.Server, id, rng string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/admin/v1/backups/snapshots/"+id+"/file", nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

func uploadsLeft(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "backups", ".upload-*"))
	return m
}

// ---- tests ----

func TestBackups_CreateListGetAndErrors(t *testing.T) {
	fx := newBackupServer(t, bkOptions{})
	fx.createSession(t, "u-1")
	b1 := fx.createBackup(t, "first")
	time.Sleep(2 * time.Millisecond)
	b2 := fx.createBackup(t, "")
	if !strings.HasPrefix(b1.BackupID, "tmbk-") || b1.Description != "first" || b1.CreatedBy != "LOCAL_ADMIN" || b1.Sessions != 1 ||
		b1.APIKeys != 1 || b1.SHA256 == "" || b1.SizeBytes == 0 || b1.Mode != "standalone" {
		t.Fatalf("backup object %+v", b1)
	}

	st, env, _ := call(t, fx.srv, "GET", "/admin/v1/backups/snapshots?page=1&size=1", "")
	var page struct {
		Items []engine.BackupInfo `json:"items"`
		Page  int                 `json:"page"`
		Size  int                 `json:"size"`
		Total int                 `json:"total"`
	}
	json.Unmarshal(env.Data, &page)
	if st != 200 || page.Total != 2 || len(page.Items) != 1 || page.Items[0] != b2 || page.Page != 1 || page.Size != 1 {
		t.Fatalf("list: %d %s", st, env.Data)
	}
	st, env, _ = call(t, fx.srv, "GET", "/admin/v1/backups/snapshots", "")
	json.Unmarshal(env.Data, &page)
	if st != 200 || len(page.Items) != 2 || page.Items[0] != b2 || page.Items[1] != b1 || page.Size != 20 {
		t.Fatalf("list newest first: %d %s", st, env.Data)
	}
	st, env, _ = call(t, fx.srv, "GET", "/admin/v1/backups/snapshots/"+strings.ToUpper(b1.BackupID), "")
	var got engine.BackupInfo
	json.Unmarshal(env.Data, &got)
	if st != 200 || got != b1 {
		t.Fatalf("get (case-insensitive): %d %s", st, env.Data)
	}

	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/admin/v1/backups/snapshots", `{"description":"` + strings.Repeat("d", 257) + `"}`, 400, "TM-ARG-1001"},
		{"POST", "/admin/v1/backups/snapshots", `{"Description":"x"}`, 400, "TM-SYS-4000"},
		{"POST", "/admin/v1/backups/snapshots", `{"description":5}`, 400, "TM-SYS-4000"},
		{"GET", "/admin/v1/backups/snapshots?bogus=1", "", 400, "TM-ARG-1001"},
		{"POST", "/admin/v1/backups/snapshots?bogus=1", "", 400, "TM-ARG-1001"},
		{"POST", "/admin/v1/backups/restores?bogus=1", `{"backup_id":"` + b1.BackupID + `"}`, 400, "TM-ARG-1001"},
		{"GET", "/admin/v1/backups/snapshots?size=101", "", 400, "TM-ARG-1001"},
		{"GET", "/admin/v1/backups/snapshots/tmbk-01jh8w3m5v00gq1t7c2r9x4bzd", "", 404, "TM-ADMIN-4041"},
		{"GET", "/admin/v1/backups/snapshots/not-an-id", "", 404, "TM-ADMIN-4041"},
		{"GET", "/admin/v1/backups/snapshots/..%2Fsnapshots", "", 404, "TM-ADMIN-4041"},
		{"GET", "/admin/v1/backups/snapshots/tmbk-01jh8w3m5v00gq1t7c2r9x4bzd/file", "", 404, "TM-ADMIN-4041"},
		{"GET", "/admin/v1/backups/snapshots/" + b1.BackupID + "/file?x=1", "", 400, "TM-ARG-1001"},
		{"GET", "/admin/v1/backups/restores/latest", "", 404, "TM-ADMIN-4041"},
		{"GET", "/admin/v1/backups/restores/tmrj-01jh8w3m5v00gq1t7c2r9x4bzd", "", 404, "TM-ADMIN-4041"},
		{"DELETE", "/admin/v1/backups/snapshots/" + b1.BackupID, "", 405, "TM-SYS-4050"},
		{"POST", "/admin/v1/backups/restores", `{}`, 400, "TM-ARG-1002"},
		{"POST", "/admin/v1/backups/restores", `{"backup_id":"tmbk-01jh8w3m5v00gq1t7c2r9x4bzd"}`, 404, "TM-ADMIN-4041"},
		{"POST", "/admin/v1/backups/restores", `{"backup_id":"x","extra":1}`, 400, "TM-SYS-4000"},
		{"POST", "/admin/v1/backups/restores", `{"backup_id":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "TM-SYS-4130"},
	} {
		st, env, _ := call(t, fx.srv, tc.method, tc.path, tc.body)
		if st != tc.status || env.Code != tc.code {
			t.Errorf("%s %s %.50s: got %d %s (%s), want %d %s", tc.method, tc.path, tc.body, st, env.Code, env.Message, tc.status, tc.code)
		}
		if tc.code == "TM-ARG-1001" && strings.HasPrefix(tc.body, `{"description"`) && env.Details["field"] != "description" {
			t.Errorf("description too long: details %v", env.Details)
		}
	}
	// Creating with an empty body is fine (description "").
	if st, env, _ := call(t, fx.srv, "POST", "/admin/v1/backups/snapshots", ""); st != 201 {
		t.Fatalf("empty body: %d %+v", st, env)
	}
}

func TestBackups_DownloadWholeFileAndSingleRange206(t *testing.T) {
	fx := newBackupServer(t, bkOptions{})
	fx.createSession(t, "u-1")
	b := fx.createBackup(t, "")
	resp, raw := download(t, fx.srv, strings.ToUpper(b.BackupID), "")
	sum := sha256.Sum256(raw)
	if resp.StatusCode != 200 || int64(len(raw)) != b.SizeBytes || hex.EncodeToString(sum[:]) != b.SHA256 {
		t.Fatalf("download: %d, %d bytes", resp.StatusCode, len(raw))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Fatalf("content type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="`+b.BackupID+`.tmbak"` {
		t.Fatalf("content disposition %q", cd)
	}
	if resp.Header.Get("Accept-Ranges") != "bytes" || resp.Header.Get("X-Request-ID") == "" {
		t.Fatalf("headers %v", resp.Header)
	}
	resp, part := download(t, fx.srv, b.BackupID, "bytes=10-99")
	if resp.StatusCode != 206 || !bytes.Equal(part, raw[10:100]) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 10-99/%d", len(raw)) {
		t.Fatalf("range: %d %q %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(part))
	}
	resp, part = download(t, fx.srv, b.BackupID, fmt.Sprintf("bytes=%d-", len(raw)-5))
	if resp.StatusCode != 206 || !bytes.Equal(part, raw[len(raw)-5:]) {
		t.Fatalf("suffix range: %d", resp.StatusCode)
	}
	for _, rng := range []string{fmt.Sprintf("bytes=%d-", len(raw)+10), fmt.Sprintf("bytes=%d-%d", len(raw), len(raw)+5), "bytes=-0"} {
		resp, body := download(t, fx.srv, b.BackupID, rng)
		if resp.StatusCode != 416 || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(raw)) ||
			resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Request-ID") == "" || len(body) != 0 {
			t.Fatalf("unsatisfiable range %q: %d %v %q", rng, resp.StatusCode, resp.Header, body)
		}
	}
	// Not one well-formed byte range: ignored, the whole file is served.
	for _, rng := range []string{"bytes=abc", "bytes=0-1,5-9", "items=0-5", "bytes=9-3", "bytes=--5"} {
		resp, body := download(t, fx.srv, b.BackupID, rng)
		if resp.StatusCode != 200 || !bytes.Equal(body, raw) || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("ignored range %q: %d, %d bytes", rng, resp.StatusCode, len(body))
		}
	}
	resp, part = download(t, fx.srv, b.BackupID, "bytes=-7")
	if resp.StatusCode != 206 || !bytes.Equal(part, raw[len(raw)-7:]) {
		t.Fatalf("suffix length range: %d", resp.StatusCode)
	}
}

func TestSingleRange(t *testing.T) {
	for h, want := range map[string]rangeKind{
		"bytes=0-0": rangeOK, "bytes=0-": rangeOK, "bytes=99-": rangeOK, "bytes=-1": rangeOK, "bytes=-500": rangeOK, "bytes=5-1000": rangeOK,
		"bytes=100-": rangeUnsatisfiable, "bytes=100-200": rangeUnsatisfiable, "bytes=-0": rangeUnsatisfiable,
		"bytes=": rangeIgnore, "bytes=-": rangeIgnore, "bytes=a-": rangeIgnore, "bytes=1-a": rangeIgnore, "bytes=+1-2": rangeIgnore,
		"bytes=0-1,2-3": rangeIgnore, "bytes 0-1": rangeIgnore, "bytes=5-4": rangeIgnore, "bytes=99999999999999999999-": rangeIgnore,
	} {
		if got := singleRange(h, 100); got != want {
			t.Errorf("singleRange(%q, 100) = %d, want %d", h, got, want)
		}
	}
}

func TestRestores_FromBackupIDReplacesSessionsAndKeepsRevocations(t *testing.T) {
	fx := newBackupServer(t, bkOptions{})
	_, keepTok := fx.createSession(t, "u-1")
	revID, revTok := fx.createSession(t, "u-1")
	b := fx.createBackup(t, "before")
	if st, env, _ := call(t, fx.srv, "POST", "/sessions/"+revID+"/revoke", ""); st != 200 {
		t.Fatalf("revoke: %d %+v", st, env)
	}
	_, laterTok := fx.createSession(t, "u-2")

	st, env, _ := call(t, fx.srv, "POST", "/admin/v1/backups/restores", fmt.Sprintf(`{"backup_id":%q}`, strings.ToUpper(b.BackupID)))
	job := startJob(t, st, env)
	if job.BackupID != b.BackupID {
		t.Fatalf("job %+v", job)
	}
	done := fx.waitJob(t, job.JobID)
	if done.Status != "succeeded" || done.Progress != 100 || done.RestoredSessions != 1 || done.AddedAPIKeys != 1 || done.PreRestoreBackupID == "" {
		t.Fatalf("job %+v", done)
	}
	if got := <-fx.merged; !bytes.Equal(got, fx.keys) {
		t.Fatalf("merged %q", got)
	}
	latest := fx.waitJob(t, "latest")
	if latest != done {
		t.Fatalf("latest %+v", latest)
	}
	for tok, want := range map[string]string{keepTok: "valid", revTok: "TM-TOKN-4012", laterTok: "TM-TOKN-4010"} {
		if got := fx.validate(t, tok); got != want {
			t.Errorf("token: got %s, want %s", got, want)
		}
	}
	st, env, _ = call(t, fx.srv, "GET", "/admin/v1/backups/snapshots/"+done.PreRestoreBackupID, "")
	if st != 200 || !bytes.Contains(env.Data, []byte(`"description":"pre-restore"`)) {
		t.Fatalf("pre-restore backup: %d %s", st, env.Data)
	}
}

func TestRestores_MaintenanceGatesBusinessAndRefusesOtherBackups(t *testing.T) {
	fx := newBackupServer(t, bkOptions{})
	_, tok := fx.createSession(t, "u-1")
	b := fx.createBackup(t, "")
	fx.blockKey.Store(true)
	st, env, _ := call(t, fx.srv, "POST", "/admin/v1/backups/restores", fmt.Sprintf(`{"backup_id":%q}`, b.BackupID))
	job := startJob(t, st, env)
	deadline := time.Now().Add(10 * time.Second)
	for !fx.e.Maintenance() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}

	st, env, hdr := call(t, fx.srv, "POST", "/tokens/validate", fmt.Sprintf(`{"token":%q}`, tok))
	wantCode(t, "validate during restore", st, env, 503, "TM-ADMIN-5031")
	if hdr.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	st, env, _ = call(t, fx.srv, "POST", "/sessions", `{"user_id":"u"}`)
	wantCode(t, "create during restore", st, env, 503, "TM-ADMIN-5031")
	st, env, _ = call(t, fx.srv, "GET", "/ready", "")
	if st != 503 || env.Code != "TM-SYS-5030" || !bytes.Contains(mustJSON(env.Details), []byte(`"maintenance":"restoring"`)) {
		t.Fatalf("ready during restore: %d %+v", st, env)
	}
	st, env, _ = call(t, fx.srv, "POST", "/admin/v1/backups/snapshots", "")
	wantCode(t, "backup during restore", st, env, 409, "TM-ADMIN-4091")
	st, env, _ = call(t, fx.srv, "POST", "/admin/v1/backups/restores", fmt.Sprintf(`{"backup_id":%q}`, b.BackupID))
	wantCode(t, "second restore", st, env, 409, "TM-ADMIN-4091")
	body, ctype := multipartBody(t, map[string][]byte{"file": []byte("never read")})
	st, env = upload(t, fx.srv, body, ctype)
	wantCode(t, "upload during restore", st, env, 409, "TM-ADMIN-4091")
	st, env, _ = call(t, fx.srv, "GET", "/admin/v1/backups/restores/"+job.JobID, "")
	if st != 200 || !bytes.Contains(env.Data, []byte(`"status":"running"`)) {
		t.Fatalf("admin routes keep working: %d %s", st, env.Data)
	}

	close(fx.mergeGo)
	if j := fx.waitJob(t, job.JobID); j.Status != "succeeded" {
		t.Fatalf("%+v", j)
	}
	if got := fx.validate(t, tok); got != "valid" {
		t.Fatalf("after restore: %s", got)
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func TestRestores_UploadMultipartOversizeAndCorrupt(t *testing.T) {
	fx := newBackupServer(t, bkOptions{maxUpload: 1 << 20})
	_, tok := fx.createSession(t, "u-1")
	b := fx.createBackup(t, "")
	_, raw := download(t, fx.srv, b.BackupID, "")
	_, laterTok := fx.createSession(t, "u-2")

	corrupt := bytes.Clone(raw)
	corrupt[len(corrupt)/2] ^= 0x20
	for name, tc := range map[string]struct {
		fields map[string][]byte
		status int
		code   string
	}{
		"corrupted":    {map[string][]byte{"file": corrupt}, 422, "TM-ADMIN-4221"},
		"truncated":    {map[string][]byte{"file": raw[:len(raw)-1]}, 422, "TM-ADMIN-4221"},
		"not a backup": {map[string][]byte{"file": []byte("hello")}, 422, "TM-ADMIN-4221"},
		"too large":    {map[string][]byte{"file": make([]byte, 1<<20+1)}, 413, "TM-ADMIN-4130"},
		"no file":      {map[string][]byte{}, 400, "TM-ARG-1002"},
		"other field":  {map[string][]byte{"file": raw, "other": []byte("x")}, 400, "TM-SYS-4000"},
	} {
		body, ctype := multipartBody(t, tc.fields)
		st, env := upload(t, fx.srv, body, ctype)
		if st != tc.status || env.Code != tc.code {
			t.Errorf("%s: got %d %s (%s), want %d %s", name, st, env.Code, env.Message, tc.status, tc.code)
		}
		if strings.Contains(env.Message, fx.dir) {
			t.Errorf("%s: message reveals the data dir: %s", name, env.Message)
		}
	}
	// A whole body far above the limit is cut by the route limit: 413 too.
	big := io.MultiReader(strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n"),
		io.LimitReader(zeroReader{}, 3<<20), strings.NewReader("\r\n--x--\r\n"))
	st, env := upload(t, fx.srv, big, "multipart/form-data; boundary=x")
	wantCode(t, "huge body", st, env, 413, "TM-ADMIN-4130")
	if st, env := upload(t, fx.srv, strings.NewReader("garbage"), "multipart/form-data; boundary=x"); st != 422 && st != 400 {
		t.Fatalf("broken multipart: %d %+v", st, env)
	}
	if _, err := fx.e.GetRestoreJob("latest"); err == nil {
		t.Fatal("a rejected upload started a job")
	}

	body, ctype := multipartBody(t, map[string][]byte{"file": raw})
	st, env = upload(t, fx.srv, body, ctype)
	job := startJob(t, st, env)
	if job.BackupID != b.BackupID {
		t.Fatalf("job names backup %q, want %q", job.BackupID, b.BackupID)
	}
	if j := fx.waitJob(t, job.JobID); j.Status != "succeeded" || j.RestoredSessions != 1 {
		t.Fatalf("%+v", j)
	}
	if got := fx.validate(t, tok); got != "valid" {
		t.Fatalf("restored token: %s", got)
	}
	if got := fx.validate(t, laterTok); got != "TM-TOKN-4010" {
		t.Fatalf("token created after the backup: %s", got)
	}
	if left := uploadsLeft(t, fx.dir); len(left) != 0 {
		t.Fatalf("uploads left behind: %v", left)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// slowReader yields its content in two halves with a pause between them.
type slowReader struct {
	data  []byte
	pause time.Duration
	half  bool
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if !r.half && len(r.data) > 0 {
		r.half = true
		n := copy(p, r.data[:len(r.data)/2])
		r.data = r.data[n:]
		return n, nil
	}
	time.Sleep(r.pause)
	r.pause = 0
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestBackups_LongTransfersAreExemptFromServerTimeouts(t *testing.T) {
	fx := newBackupServer(t, bkOptions{readTimeout: 300 * time.Millisecond, writeTimeout: 300 * time.Millisecond, keyDelay: 600 * time.Millisecond})
	b := fx.createBackup(t, "slow") // KeyTable takes longer than the write timeout
	_, raw := download(t, fx.srv, b.BackupID, "")
	body, ctype := multipartBody(t, map[string][]byte{"file": raw})
	all, _ := io.ReadAll(body)
	st, env := upload(t, fx.srv, &slowReader{data: all, pause: 700 * time.Millisecond}, ctype)
	job := startJob(t, st, env)
	if j := fx.waitJob(t, job.JobID); j.Status != "succeeded" {
		t.Fatalf("%+v", j)
	}
}

func TestBackups_AuditedAndRefusedWhenTheAuditLogIsDown(t *testing.T) {
	fx := newBackupServer(t, bkOptions{withAudit: true})
	b := fx.createBackup(t, "audited")
	download(t, fx.srv, b.BackupID, "")
	call(t, fx.srv, "GET", "/admin/v1/backups/snapshots?page=1", "")
	st, env, _ := call(t, fx.srv, "POST", "/admin/v1/backups/restores", fmt.Sprintf(`{"backup_id":%q}`, b.BackupID))
	job := startJob(t, st, env)
	fx.waitJob(t, job.JobID)

	want := map[string][]string{ // action → results, oldest first
		"backup.create":   {"attempt", "success"},
		"backup.download": {"success"},
		"admin.read":      {"success"},
		"restore.start":   {"attempt", "success"},
		"restore.finish":  {"success"},
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		missing := ""
		for action, results := range want {
			recs, _, err := fx.audit.Query(audit.Filter{Action: action, Size: 100})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i := len(recs) - 1; i >= 0; i-- {
				got = append(got, recs[i].Result)
			}
			if action == "admin.read" && len(got) > 0 {
				got = got[:1]
			}
			if action == "backup.create" && len(got) > 2 { // the pre-restore backup is not an API call
				got = got[:2]
			}
			if strings.Join(got, ",") != strings.Join(results, ",") {
				missing = fmt.Sprintf("%s: %v, want %v", action, got, results)
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
	recs, _, _ := fx.audit.Query(audit.Filter{Action: "restore.finish"})
	if recs[0].Resource != job.JobID || recs[0].Actor != "LOCAL_ADMIN" {
		t.Fatalf("restore.finish %+v", recs[0])
	}
	recs, _, _ = fx.audit.Query(audit.Filter{Action: "backup.create", Result: "success"})
	if recs[0].Resource != b.BackupID {
		t.Fatalf("backup.create outcome %+v", recs[0])
	}

	fx.audit.Close()
	before, _, _ := fx.e.ListBackups(1, 100)
	st, env, _ = call(t, fx.srv, "POST", "/admin/v1/backups/snapshots", "")
	wantCode(t, "backup with the audit log down", st, env, 503, "TM-SYS-5032")
	st, env, _ = call(t, fx.srv, "POST", "/admin/v1/backups/restores", fmt.Sprintf(`{"backup_id":%q}`, b.BackupID))
	wantCode(t, "restore with the audit log down", st, env, 503, "TM-SYS-5032")
	body, ctype := multipartBody(t, map[string][]byte{"file": []byte("x")})
	st, env = upload(t, fx.srv, body, ctype)
	wantCode(t, "upload with the audit log down", st, env, 503, "TM-SYS-5032")
	after, _, _ := fx.e.ListBackups(1, 100)
	if len(after) != len(before) {
		t.Fatal("a backup was taken although its attempt record failed")
	}
	if left := uploadsLeft(t, fx.dir); len(left) != 0 {
		t.Fatalf("uploads left behind: %v", left)
	}
	if _, err := os.Stat(fx.dir); err != nil {
		t.Fatal(err)
	}
}
