package httpapi

// Backup and restore routes (02-http-api §5, 05-storage §7). Every call is
// audited: the writes (backup create, restore start) append a synchronous
// attempt record first and are refused with 503 TM-SYS-5032 when it cannot
// be written; downloads are recorded as backup.download, the job's end as
// restore.finish, the other reads as admin.read.

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/engine"
)

// Backups holds what the backup and restore routes need. Set
// Config.Backups (together with Config.Admin) to serve them.
type Backups struct {
	// Engine returns the running engine (nil until recovery completed:
	// 503 TM-SYS-5030).
	Engine func() *engine.Engine
	// KeyTable returns the control store's encoded API key table (hashes
	// only) and its key count; it is stored in every backup. nil stores none.
	KeyTable func() (data []byte, count int, err error)
	// MergeKeys adds the keys of a restored backup that do not exist now
	// and never changes existing ones; it returns how many it added. nil
	// restores no keys.
	MergeKeys func(data []byte) (added int, err error)
	// MaxUploadSize is server.limits.max_upload_size (default 100 MiB).
	MaxUploadSize int64
}

const (
	bkDefaultMaxUpload = 100 << 20
	// bkMultipartSlack is what a multipart body may hold beyond the file:
	// boundaries and part headers.
	bkMultipartSlack = 64 << 10

	bkActionCreate       = "backup.create"
	bkActionDownload     = "backup.download"
	bkActionRestoreStart = "restore.start"
	bkActionRestoreEnd   = "restore.finish"
	bkActionRead         = "admin.read"
)

// registerBackupRoutes registers the backup and restore routes.
func (h *Handler) registerBackupRoutes() {
	b := h.cfg.Backups
	if b == nil {
		return
	}
	maxUpload := b.MaxUploadSize
	if maxUpload <= 0 {
		maxUpload = bkDefaultMaxUpload
	}
	h.Handle(Route{Name: "admin.backups.create", Method: "POST", Template: "/admin/v1/backups/snapshots", Cap: CapAdmin, Write: true}, h.backupCreate)
	h.Handle(Route{Name: "admin.backups.list", Method: "GET", Template: "/admin/v1/backups/snapshots", Cap: CapAdmin},
		h.bkRead([]string{"page", "size"}, h.backupList))
	h.Handle(Route{Name: "admin.backups.get", Method: "GET", Template: "/admin/v1/backups/snapshots/{backup_id}", Cap: CapAdmin},
		h.bkRead(nil, h.backupGet))
	h.Handle(Route{Name: "admin.backups.download", Method: "GET", Template: "/admin/v1/backups/snapshots/{backup_id}/file", Cap: CapAdmin}, h.backupDownload)
	// The route limit admits the upload; JSON bodies are held to
	// max_body_size by restoreStart itself.
	h.Handle(Route{Name: "admin.restores.start", Method: "POST", Template: "/admin/v1/backups/restores", Cap: CapAdmin, Write: true,
		MaxBody: maxUpload + bkMultipartSlack, Stream: true}, func(w http.ResponseWriter, rq *request) { h.restoreStart(w, rq, maxUpload) })
	h.Handle(Route{Name: "admin.restores.get", Method: "GET", Template: "/admin/v1/backups/restores/{job_id}", Cap: CapAdmin},
		h.bkRead(nil, h.restoreGet))
}

// ---- audit (local helpers) ----

func (h *Handler) bkAuditRecord(rq *request, action, resource string, details map[string]any) audit.Record {
	ua := rq.caller.UserAgent
	if len(ua) > 512 {
		ua = ua[:512]
		for len(ua) > 0 && ua[len(ua)-1]&0xC0 == 0x80 {
			ua = ua[:len(ua)-1]
		}
	}
	client := ""
	if rq.caller.ClientIP.IsValid() {
		client = rq.caller.ClientIP.Unmap().String()
	}
	return audit.Record{RequestID: rq.id, Actor: rq.caller.KeyID, Role: rq.caller.Role, Action: action, Resource: resource,
		TCPRemoteIP: bkPeerIP(rq.RemoteAddr), ClientIP: client, UserAgent: ua, Details: details}
}

func bkPeerIP(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return ""
}

// bkAttempt writes the synchronous attempt record of an admin write; a
// failure refuses the write (503 TM-SYS-5032).
func (h *Handler) bkAttempt(rq *request, rec audit.Record) *apierr.Error {
	if h.cfg.Audit == nil {
		return nil
	}
	if err := h.cfg.Audit.Attempt(rec); err != nil {
		return &apierr.Error{Code: apierr.SysAuditDown, Err: err}
	}
	return nil
}

// bkOutcome queues the success or failure record.
func (h *Handler) bkOutcome(rec audit.Record, code apierr.Code) {
	if h.cfg.Audit == nil {
		return
	}
	rec.Result, rec.Code = audit.ResultSuccess, ""
	if code != "" {
		rec.Result, rec.Code = audit.ResultFailure, string(code)
	}
	h.cfg.Audit.Record(rec)
}

// bkRead wraps a read: unknown query parameters are TM-ARG-1001 and the
// call is audited as admin.read (parameter names only, never values).
func (h *Handler) bkRead(params []string, fn func(rq *request, e *engine.Engine) (any, *apierr.Error)) handlerFunc {
	return func(w http.ResponseWriter, rq *request) {
		names, aerr := bkQueryNames(rq, params...)
		var data any
		if aerr == nil {
			var e *engine.Engine
			if e, aerr = h.bkEngine(); aerr == nil {
				data, aerr = fn(rq, e)
			}
		}
		code := apierr.Code("")
		if aerr != nil {
			code = aerr.Code
		}
		h.bkOutcome(h.bkAuditRecord(rq, bkActionRead, rq.route.Template, map[string]any{"params": names}), code)
		if aerr != nil {
			h.fail(w, rq, aerr)
			return
		}
		writeJSON(w, http.StatusOK, rq.id, data)
	}
}

// bkQueryNames checks the query parameter names against allowed.
func bkQueryNames(rq *request, allowed ...string) ([]string, *apierr.Error) {
	q := rq.URL.Query()
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		found := false
		for _, a := range allowed {
			found = found || a == k
		}
		if !found {
			return names, badParam(k, "unknown parameter")
		}
	}
	return names, nil
}

func (h *Handler) bkEngine() (*engine.Engine, *apierr.Error) {
	var e *engine.Engine
	if h.cfg.Backups.Engine != nil {
		e = h.cfg.Backups.Engine()
	}
	if e == nil {
		return nil, apierr.Newf(apierr.SysNotReady, "node not ready: storage is recovering").WithDetail("checks", map[string]string{"storage": "recovering"})
	}
	return e, nil
}

// bkPathID returns a lower-cased, unescaped path ID.
func bkPathID(rq *request, name string) string {
	raw := mux.Vars(rq.Request)[name]
	s, err := url.PathUnescape(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(s)
}

// bkNoDeadlines exempts a long transfer (download, upload, backup
// creation) from the server's read and write timeouts.
func bkNoDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
}

// bkError maps engine errors of the backup API.
func bkError(err error) *apierr.Error {
	switch {
	case errors.Is(err, engine.ErrBusy):
		return &apierr.Error{Code: apierr.AdminConflict, Message: "another backup or restore is in progress", Err: err}
	case errors.Is(err, engine.ErrBackupNotFound):
		return &apierr.Error{Code: apierr.AdminNotFound, Message: "backup not found", Err: err}
	case errors.Is(err, engine.ErrJobNotFound):
		return &apierr.Error{Code: apierr.AdminNotFound, Message: "restore job not found", Err: err}
	case errors.Is(err, engine.ErrInvalidBackup):
		return &apierr.Error{Code: apierr.AdminBadBackup, Err: err}
	case errors.Is(err, engine.ErrClosed):
		return &apierr.Error{Code: apierr.SysNotReady, Err: err}
	case errors.Is(err, engine.ErrStorage):
		return &apierr.Error{Code: apierr.SysStorage, Err: err}
	}
	return &apierr.Error{Code: apierr.AdminBackupFailed, Err: err}
}

// ---- POST /admin/v1/backups/snapshots ----

func (h *Handler) backupCreate(w http.ResponseWriter, rq *request) {
	var desc string
	aerr := func() *apierr.Error {
		if aerr := adminBody(rq, field{name: "description", dst: &desc}); aerr != nil {
			return aerr
		}
		if len(desc) > engine.MaxBackupDescription {
			return apierr.Newf(apierr.ArgInvalid, "description is longer than %d bytes", engine.MaxBackupDescription).WithDetail("field", "description")
		}
		return nil
	}()
	rec := h.bkAuditRecord(rq, bkActionCreate, "", nil)
	if aerr != nil { // refused before it ran: only a failure record
		h.bkOutcome(rec, aerr.Code)
		h.fail(w, rq, aerr)
		return
	}
	e, aerr := h.bkEngine()
	if aerr == nil {
		aerr = h.bkAttempt(rq, rec)
	}
	if aerr != nil {
		h.fail(w, rq, aerr)
		return
	}
	bkNoDeadlines(w)
	info, aerr := func() (engine.BackupInfo, *apierr.Error) {
		var keys []byte
		n := 0
		if kt := h.cfg.Backups.KeyTable; kt != nil {
			var err error
			if keys, n, err = kt(); err != nil {
				return engine.BackupInfo{}, bkError(fmt.Errorf("reading the API key table: %w", err))
			}
		}
		info, err := e.Backup(engine.BackupOptions{Description: desc, CreatedBy: rq.caller.KeyID, APIKeys: keys, APIKeyCount: n})
		if err != nil {
			return info, bkError(err)
		}
		return info, nil
	}()
	if aerr != nil {
		h.bkOutcome(rec, aerr.Code)
		h.fail(w, rq, aerr)
		return
	}
	rec.Resource = info.BackupID
	rec.Details = map[string]any{"sessions": info.Sessions, "tombstones": info.Tombstones, "api_keys": info.APIKeys, "size_bytes": info.SizeBytes}
	h.bkOutcome(rec, "")
	writeJSON(w, http.StatusCreated, rq.id, info)
}

// ---- GET /admin/v1/backups/snapshots, …/{backup_id} ----

type backupList struct {
	Items []engine.BackupInfo `json:"items"`
	Page  int                 `json:"page"`
	Size  int                 `json:"size"`
	Total int                 `json:"total"`
}

func (h *Handler) backupList(rq *request, e *engine.Engine) (any, *apierr.Error) {
	page, size, aerr := parsePaging(rq.URL.Query())
	if aerr != nil {
		return nil, aerr
	}
	items, total, err := e.ListBackups(page, size)
	if err != nil {
		return nil, bkError(err)
	}
	if items == nil {
		items = []engine.BackupInfo{}
	}
	return backupList{Items: items, Page: page, Size: size, Total: total}, nil
}

func (h *Handler) backupGet(rq *request, e *engine.Engine) (any, *apierr.Error) {
	info, err := e.GetBackup(bkPathID(rq, "backup_id"))
	if err != nil {
		return nil, bkError(err)
	}
	return info, nil
}

// ---- GET …/{backup_id}/file ----

func (h *Handler) backupDownload(w http.ResponseWriter, rq *request) {
	id := bkPathID(rq, "backup_id")
	rec := h.bkAuditRecord(rq, bkActionDownload, id, nil)
	f, info, aerr := func() (*os.File, engine.BackupInfo, *apierr.Error) {
		if _, aerr := bkQueryNames(rq); aerr != nil {
			return nil, engine.BackupInfo{}, aerr
		}
		e, aerr := h.bkEngine()
		if aerr != nil {
			return nil, engine.BackupInfo{}, aerr
		}
		info, err := e.GetBackup(id)
		if err != nil {
			return nil, info, bkError(err)
		}
		path, err := e.BackupPath(id)
		if err != nil {
			return nil, info, bkError(err)
		}
		f, err := os.Open(path)
		if err != nil { // deleted by retention meanwhile
			return nil, info, bkError(engine.ErrBackupNotFound)
		}
		return f, info, nil
	}()
	if aerr != nil {
		h.bkOutcome(rec, aerr.Code)
		h.fail(w, rq, aerr)
		return
	}
	defer f.Close()
	rec.Details = map[string]any{"range": rq.Header.Get("Range") != ""}
	h.bkOutcome(rec, "")
	bkNoDeadlines(w)
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Disposition", `attachment; filename="`+info.BackupID+engine.BackupFileExt+`"`)
	hd.Set("ETag", `"`+info.SHA256+`"`) // lets clients resume with If-Range
	// Single ranges only (02 §5): ServeContent answers a satisfiable one
	// with 206; an unsatisfiable one is answered here, because
	// ServeContent's error path drops Cache-Control and writes text/plain;
	// anything else is ignored and the whole file is served (RFC 9110
	// §14.2 lets a server ignore Range).
	if rh := rq.Header.Get("Range"); rh != "" {
		st, err := f.Stat()
		if err != nil {
			h.fail(w, rq, &apierr.Error{Code: apierr.SysInternal, Err: err})
			return
		}
		switch singleRange(rh, st.Size()) {
		case rangeIgnore:
			rq.Header.Del("Range")
		case rangeUnsatisfiable:
			hd.Del("Content-Type")
			hd.Set("Content-Range", "bytes */"+strconv.FormatInt(st.Size(), 10))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
	}
	http.ServeContent(w, rq.Request, "", time.UnixMilli(info.CreatedAt), f)
}

type rangeKind int

const (
	rangeIgnore        rangeKind = iota // not one well-formed byte range
	rangeOK                             // one satisfiable range
	rangeUnsatisfiable                  // one range that starts past the end
)

// singleRange classifies a Range header for a file of size bytes:
// "bytes=a-b", "bytes=a-" and "bytes=-n" are the single-range forms.
func singleRange(h string, size int64) rangeKind {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return rangeIgnore
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return rangeIgnore
	}
	num := func(s string) (int64, bool) {
		if s == "" || len(s) > 18 || strings.TrimLeft(s, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	if first == "" { // suffix: the last n bytes
		n, ok := num(last)
		switch {
		case !ok:
			return rangeIgnore
		case n == 0 || size == 0:
			return rangeUnsatisfiable
		}
		return rangeOK
	}
	a, ok := num(first)
	if !ok {
		return rangeIgnore
	}
	if last != "" {
		if b, ok := num(last); !ok || b < a {
			return rangeIgnore
		}
	}
	if a >= size {
		return rangeUnsatisfiable
	}
	return rangeOK
}

// ---- POST /admin/v1/backups/restores ----

func (h *Handler) restoreStart(w http.ResponseWriter, rq *request, maxUpload int64) {
	rec := h.bkAuditRecord(rq, bkActionRestoreStart, "", nil)
	reject := func(aerr *apierr.Error) {
		h.bkOutcome(rec, aerr.Code)
		h.fail(w, rq, aerr)
	}
	e, aerr := h.bkEngine()
	if aerr != nil {
		h.fail(w, rq, aerr)
		return
	}
	if aerr := noQuery(rq.URL.Query()); aerr != nil {
		reject(aerr)
		return
	}
	var src engine.RestoreSource
	mt, _, _ := mime.ParseMediaType(rq.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		// Refuse early rather than after receiving the whole upload;
		// StartRestore decides atomically.
		if e.Busy() {
			reject(bkError(engine.ErrBusy))
			return
		}
		bkNoDeadlines(w)
		path, aerr := h.receiveUpload(rq, e, maxUpload)
		if aerr != nil {
			reject(aerr)
			return
		}
		src.Upload = path
		rec.Details = map[string]any{"source": "upload"}
	} else {
		body, err := io.ReadAll(io.LimitReader(rq.Body, h.cfg.MaxBodySize+1))
		if err != nil {
			reject(apierr.Newf(apierr.SysMalformed, "could not read the request body"))
			return
		}
		if int64(len(body)) > h.cfg.MaxBodySize {
			reject(apierr.New(apierr.SysBodyTooBig).WithDetail("limit", h.cfg.MaxBodySize))
			return
		}
		var id string
		if aerr := decodeStrict(body, field{name: "backup_id", dst: &id, required: true}); aerr != nil {
			reject(aerr)
			return
		}
		src.BackupID = strings.ToLower(id)
		rec.Resource = src.BackupID
		rec.Details = map[string]any{"source": "backup", "backup_id": src.BackupID}
	}
	if aerr := h.bkAttempt(rq, rec); aerr != nil {
		if src.Upload != "" {
			os.Remove(src.Upload)
		}
		h.fail(w, rq, aerr)
		return
	}
	finish := h.bkAuditRecord(rq, bkActionRestoreEnd, "", nil)
	job, err := e.StartRestore(src, rq.caller.KeyID, engine.RestoreCallbacks{
		KeyTable:  h.cfg.Backups.KeyTable,
		MergeKeys: h.cfg.Backups.MergeKeys,
		Finished: func(j engine.RestoreJob) {
			r := finish
			r.Resource = j.JobID
			r.Details = map[string]any{"result": j.Status, "backup_id": j.BackupID, "pre_restore_backup_id": j.PreRestoreBackupID,
				"restored_sessions": j.RestoredSessions, "added_api_keys": j.AddedAPIKeys}
			code := apierr.Code("")
			if j.Status != engine.JobSucceeded {
				code = apierr.AdminBackupFailed
			}
			h.bkOutcome(r, code)
		},
	})
	if err != nil {
		aerr := bkError(err)
		if aerr.Code == apierr.AdminBadBackup {
			// The reason helps the operator; the upload's temp path does not.
			msg := err.Error()
			if src.Upload != "" {
				msg = strings.ReplaceAll(msg, src.Upload, "upload")
			}
			aerr.Message = msg
		}
		h.bkOutcome(rec, aerr.Code)
		h.fail(w, rq, aerr)
		return
	}
	rec.Resource = job.JobID
	if rec.Details == nil {
		rec.Details = map[string]any{}
	}
	rec.Details["backup_id"] = job.BackupID
	h.bkOutcome(rec, "")
	writeJSON(w, http.StatusAccepted, rq.id, job)
}

// receiveUpload streams the multipart field "file" into an upload file of
// the engine and returns its path. Other fields are rejected.
func (h *Handler) receiveUpload(rq *request, e *engine.Engine, maxUpload int64) (string, *apierr.Error) {
	mr, err := rq.MultipartReader()
	if err != nil {
		return "", apierr.Newf(apierr.SysMalformed, "malformed multipart body")
	}
	path := ""
	fail := func(aerr *apierr.Error) (string, *apierr.Error) {
		if path != "" {
			os.Remove(path)
		}
		return "", aerr
	}
	tooBig := func() *apierr.Error {
		return apierr.Newf(apierr.AdminUploadTooBig, "upload larger than %d bytes", maxUpload).WithDetail("limit", maxUpload)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return fail(tooBig())
			}
			return fail(apierr.Newf(apierr.AdminBadBackup, "the upload is incomplete or its multipart framing is broken"))
		}
		name := part.FormName()
		if name != "file" {
			part.Close()
			return fail(apierr.Newf(apierr.SysMalformed, "unknown field %q", name).WithDetail("field", name))
		}
		if path != "" {
			part.Close()
			return fail(apierr.Newf(apierr.SysMalformed, "duplicate field %q", name).WithDetail("field", name))
		}
		f, err := e.CreateUploadFile()
		if err != nil {
			part.Close()
			return fail(&apierr.Error{Code: apierr.AdminBackupFailed, Err: err})
		}
		path = f.Name()
		n, err := io.Copy(f, io.LimitReader(part, maxUpload+1))
		cerr := f.Close()
		part.Close()
		var mbe *http.MaxBytesError
		switch {
		case n > maxUpload || errors.As(err, &mbe):
			return fail(tooBig())
		case err != nil:
			return fail(apierr.Newf(apierr.AdminBadBackup, "the upload is incomplete"))
		case cerr != nil:
			return fail(&apierr.Error{Code: apierr.AdminBackupFailed, Err: cerr})
		}
	}
	if path == "" {
		return "", apierr.Newf(apierr.ArgMissing, "field \"file\" is required").WithDetail("field", "file")
	}
	return path, nil
}

// ---- GET /admin/v1/backups/restores/{job_id} ----

func (h *Handler) restoreGet(rq *request, e *engine.Engine) (any, *apierr.Error) {
	j, err := e.GetRestoreJob(bkPathID(rq, "job_id"))
	if err != nil {
		return nil, bkError(err)
	}
	return j, nil
}
