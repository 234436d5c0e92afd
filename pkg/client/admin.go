package client

// Typed methods for the admin API (02-http-api §5): node status, gc, audit,
// WAL, cluster, configuration, backups and restores, plus the public
// readiness probe. Backup downloads and restore uploads stream their bodies
// and are not bounded by Config.Timeout (only the wait for the response
// headers is); cancel their context to stop them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// NodeSummary is GET /admin/v1/status (02-http-api §5.1).
type NodeSummary struct {
	NodeID        string `json:"node_id"`
	Version       string `json:"version"`
	Commit        string `json:"commit"`
	GoVersion     string `json:"go_version"`
	Mode          string `json:"mode"`
	StartedAt     int64  `json:"started_at"`
	UptimeSeconds int64  `json:"uptime_seconds"`
	Ready         bool   `json:"ready"`
	Maintenance   bool   `json:"maintenance"`
	Sessions      struct {
		Live       int `json:"live"`
		Tombstones int `json:"tombstones"`
	} `json:"sessions"`
	Memory struct {
		RSSBytes  uint64 `json:"rss_bytes"`
		HeapBytes uint64 `json:"heap_bytes"`
	} `json:"memory"`
	Goroutines int     `json:"goroutines"`
	QPS        float64 `json:"qps"`
	P99Ms      float64 `json:"p99_ms"`
	WAL        struct {
		SyncMode string `json:"sync_mode"`
		LastSeq  uint64 `json:"last_seq"`
	} `json:"wal"`
	Cipher        string `json:"cipher"`
	KeyID         string `json:"key_id"`
	AuditLastHash string `json:"audit_last_hash"`
	Cluster       struct {
		ClusterID         string `json:"cluster_id"`
		LeaderID          string `json:"leader_id"`
		RaftRole          string `json:"raft_role"`
		LeaseValid        bool   `json:"lease_valid"`
		PartitionsPrimary int    `json:"partitions_primary"`
		PartitionsReplica int    `json:"partitions_replica"`
	} `json:"cluster"`
}

// Summary calls GET /admin/v1/status and decodes the whole node summary
// (Status decodes a subset). Retried on 503/504.
func (c *Client) Summary(ctx context.Context) (*NodeSummary, error) {
	var out NodeSummary
	if err := c.do(ctx, call{method: http.MethodGet, path: "/admin/v1/status", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Readiness is the answer of GET /ready, ready or not.
type Readiness struct {
	// Status is "ready" or "not_ready".
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
	// Code is the error code when not ready (TM-SYS-5030, TM-ADMIN-5031, …).
	Code string `json:"code,omitempty"`
	// Message is the server's message when not ready.
	Message string `json:"message,omitempty"`
	// RequestID identifies the probe in the server's logs.
	RequestID string `json:"request_id,omitempty"`
}

// IsReady reports whether the node serves business routes.
func (r *Readiness) IsReady() bool { return r.Status == "ready" }

// Ready calls GET /ready (no key needed). A node that is not ready is not
// an error: the 503 answer comes back as a Readiness with Status
// "not_ready". It is not retried, so the answer describes this moment.
func (c *Client) Ready(ctx context.Context) (*Readiness, error) {
	var out Readiness
	err := c.do(ctx, call{method: http.MethodGet, path: "/ready"}, &out)
	var ae *Error
	if errors.As(err, &ae) && ae.HTTPStatus == http.StatusServiceUnavailable {
		r := &Readiness{Status: "not_ready", Checks: map[string]string{}, Code: ae.Code, Message: ae.Message, RequestID: ae.RequestID}
		if s, ok := ae.Details["status"].(string); ok && s != "" {
			r.Status = s
		}
		if m, ok := ae.Details["checks"].(map[string]any); ok {
			for k, v := range m {
				r.Checks[k] = fmt.Sprint(v)
			}
		}
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	if out.Checks == nil {
		out.Checks = map[string]string{}
	}
	return &out, nil
}

// GCResult is the data of POST /admin/v1/gc.
type GCResult struct {
	Type         string `json:"type"`
	CleanedCount int    `json:"cleaned_count"`
	FreedBytes   uint64 `json:"freed_bytes"`
	DurationMs   int64  `json:"duration_ms"`
}

// GC runs a garbage collection of typ "expired", "memory" or "all" (""
// means the server default, all). Not retried.
func (c *Client) GC(ctx context.Context, typ string) (*GCResult, error) {
	body := map[string]any{}
	if typ != "" {
		body["type"] = typ
	}
	var out GCResult
	if err := c.do(ctx, call{method: http.MethodPost, path: "/admin/v1/gc", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// WALStatus is GET /admin/v1/wal/status.
type WALStatus struct {
	Dir             string `json:"dir"`
	SyncMode        string `json:"sync_mode"`
	SyncRevocations bool   `json:"sync_revocations"`
	Segments        int    `json:"segments"`
	TotalBytes      int64  `json:"total_bytes"`
	FirstSeq        uint64 `json:"first_seq"`
	LastSeq         uint64 `json:"last_seq"`
	LastFsyncAt     int64  `json:"last_fsync_at"`
	FsyncFailures   uint64 `json:"fsync_failures"`
	Cipher          string `json:"cipher"`
	KeyID           string `json:"key_id"`
	LastSnapshot    struct {
		File       string `json:"file"`
		CoveredSeq uint64 `json:"covered_seq"`
		CreatedAt  int64  `json:"created_at"`
	} `json:"last_snapshot"`
}

// WALStatus reads the WAL status of the node answering. Retried on 503/504.
func (c *Client) WALStatus(ctx context.Context) (*WALStatus, error) {
	var out WALStatus
	if err := c.do(ctx, call{method: http.MethodGet, path: "/admin/v1/wal/status", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AuditRecord is one audit record as stored (04-security §9). Time is the
// stored RFC 3339 text; numbers inside Details keep their exact text.
type AuditRecord struct {
	Seq         uint64         `json:"seq"`
	Time        string         `json:"time"`
	NodeID      string         `json:"node_id"`
	RequestID   string         `json:"request_id"`
	Actor       string         `json:"actor"`
	Role        string         `json:"role"`
	Action      string         `json:"action"`
	Resource    string         `json:"resource"`
	Result      string         `json:"result"`
	Code        string         `json:"code"`
	TCPRemoteIP string         `json:"tcp_remote_ip"`
	ClientIP    string         `json:"client_ip"`
	UserAgent   string         `json:"user_agent"`
	Details     map[string]any `json:"details"`
	PrevHash    string         `json:"prev_hash"`
}

// AuditQuery filters GET /admin/v1/audit/logs; zero values are omitted.
// Start and End are Unix ms.
type AuditQuery struct {
	Start, End            int64
	Actor, Action, Result string
	Page, Size            int
}

// AuditList is a page of audit records, newest first.
type AuditList struct {
	Items []AuditRecord `json:"items"`
	Page  int           `json:"page"`
	Size  int           `json:"size"`
	Total int           `json:"total"`
}

// AuditLogs queries the audit log of the node answering. Retried on 503/504.
func (c *Client) AuditLogs(ctx context.Context, o AuditQuery) (*AuditList, error) {
	q := url.Values{}
	if o.Start > 0 {
		q.Set("start_time", strconv.FormatInt(o.Start, 10))
	}
	if o.End > 0 {
		q.Set("end_time", strconv.FormatInt(o.End, 10))
	}
	for k, v := range map[string]string{"actor": o.Actor, "action": o.Action, "result": o.Result} {
		if v != "" {
			q.Set(k, v)
		}
	}
	pageQuery(q, o.Page, o.Size)
	var raw struct {
		Items []json.RawMessage `json:"items"`
		Page  int               `json:"page"`
		Size  int               `json:"size"`
		Total int               `json:"total"`
	}
	if err := c.do(ctx, call{method: http.MethodGet, path: "/admin/v1/audit/logs", query: q, idempotent: true}, &raw); err != nil {
		return nil, err
	}
	out := &AuditList{Items: make([]AuditRecord, 0, len(raw.Items)), Page: raw.Page, Size: raw.Size, Total: raw.Total}
	for _, it := range raw.Items {
		dec := json.NewDecoder(strings.NewReader(string(it)))
		dec.UseNumber()
		var r AuditRecord
		if err := dec.Decode(&r); err != nil {
			return nil, &TransportError{Kind: KindBadData, Target: c.target, Err: fmt.Errorf("decode audit record: %w", err)}
		}
		out.Items = append(out.Items, r)
	}
	return out, nil
}

func pageQuery(q url.Values, page, size int) {
	if page > 0 {
		q.Set("page", strconv.Itoa(page))
	}
	if size > 0 {
		q.Set("size", strconv.Itoa(size))
	}
}

// ---- cluster ----

// ClusterStatus is GET /admin/v1/cluster/status.
type ClusterStatus struct {
	Mode      string   `json:"mode"`
	ClusterID string   `json:"cluster_id"`
	LeaderID  string   `json:"leader_id"`
	Term      uint64   `json:"term"`
	Voters    []string `json:"voters"`
	Health    string   `json:"health"`
	Warnings  []string `json:"warnings"`
	Nodes     struct {
		Alive   int `json:"alive"`
		Suspect int `json:"suspect"`
		Dead    int `json:"dead"`
	} `json:"nodes"`
	Partitions struct {
		Total           int `json:"total"`
		Unavailable     int `json:"unavailable"`
		UnderReplicated int `json:"under_replicated"`
		Moving          int `json:"moving"`
	} `json:"partitions"`
	Rebalance struct {
		Running  bool `json:"running"`
		Progress int  `json:"progress"`
	} `json:"rebalance"`
}

// ClusterNode is one member in GET /admin/v1/cluster/nodes.
type ClusterNode struct {
	NodeID            string  `json:"node_id"`
	AdvertiseAddress  string  `json:"advertise_address"`
	State             string  `json:"state"`
	RaftRole          string  `json:"raft_role"`
	Version           string  `json:"version"`
	JoinedAt          int64   `json:"joined_at"`
	LastSeen          int64   `json:"last_seen"`
	LeaseValid        bool    `json:"lease_valid"`
	PartitionsPrimary int     `json:"partitions_primary"`
	PartitionsReplica int     `json:"partitions_replica"`
	Sessions          int     `json:"sessions"`
	QPS               float64 `json:"qps"`
	P99Ms             float64 `json:"p99_ms"`
	ReplicationLagMs  int64   `json:"replication_lag_ms"`
	ClockSkewMs       int64   `json:"clock_skew_ms"`
}

// ClusterNodes is GET /admin/v1/cluster/nodes.
type ClusterNodes struct {
	ClusterID string        `json:"cluster_id"`
	LeaderID  string        `json:"leader_id"`
	Nodes     []ClusterNode `json:"nodes"`
}

// PartitionReplica is one replica of a partition.
type PartitionReplica struct {
	NodeID string `json:"node_id"`
	InSync bool   `json:"in_sync"`
}

// Partition is one entry of the partition table.
type Partition struct {
	Partition int                `json:"partition"`
	Primary   string             `json:"primary"`
	Replicas  []PartitionReplica `json:"replicas"`
	Epoch     uint64             `json:"epoch"`
	State     string             `json:"state"`
}

// PartitionTable is GET /admin/v1/cluster/partitions.
type PartitionTable struct {
	TableVersion uint64      `json:"table_version"`
	Partitions   []Partition `json:"partitions"`
}

// NodeRemoval is the data of POST /admin/v1/cluster/nodes/{id}/remove.
type NodeRemoval struct {
	NodeID string `json:"node_id"`
	Status string `json:"status"`
}

// RebalancePlan is the data of POST /admin/v1/cluster/rebalance.
type RebalancePlan struct {
	PlannedMoves int `json:"planned_moves"`
}

// ClusterStatus reads the cluster summary. Retried on 503/504.
func (c *Client) ClusterStatus(ctx context.Context) (*ClusterStatus, error) {
	var out ClusterStatus
	if err := c.do(ctx, call{method: http.MethodGet, path: "/admin/v1/cluster/status", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ClusterNodes lists the members. Retried on 503/504.
func (c *Client) ClusterNodes(ctx context.Context) (*ClusterNodes, error) {
	var out ClusterNodes
	if err := c.do(ctx, call{method: http.MethodGet, path: "/admin/v1/cluster/nodes", idempotent: true}, &out); err != nil {
		return nil, err
	}
	if out.Nodes == nil {
		out.Nodes = []ClusterNode{}
	}
	return &out, nil
}

// ClusterPartitions reads the partition table. Retried on 503/504.
func (c *Client) ClusterPartitions(ctx context.Context) (*PartitionTable, error) {
	var out PartitionTable
	if err := c.do(ctx, call{method: http.MethodGet, path: "/admin/v1/cluster/partitions", idempotent: true}, &out); err != nil {
		return nil, err
	}
	if out.Partitions == nil {
		out.Partitions = []Partition{}
	}
	return &out, nil
}

// RemoveNode removes a member; force skips draining its partitions first.
// Not retried.
func (c *Client) RemoveNode(ctx context.Context, nodeID string, force bool) (*NodeRemoval, error) {
	var out NodeRemoval
	p := "/admin/v1/cluster/nodes/" + url.PathEscape(nodeID) + "/remove"
	if err := c.do(ctx, call{method: http.MethodPost, path: p, body: map[string]any{"force": force}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Rebalance starts a rebalance. Not retried.
func (c *Client) Rebalance(ctx context.Context) (*RebalancePlan, error) {
	var out RebalancePlan
	if err := c.do(ctx, call{method: http.MethodPost, path: "/admin/v1/cluster/rebalance", body: map[string]any{}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ---- configuration ----

// ConfigProblem is one problem found by validate or reload.
type ConfigProblem struct {
	Code    string `json:"code"`
	Key     string `json:"key"`
	Message string `json:"message"`
}

// ConfigValidation is the data of POST /admin/v1/config/validate.
type ConfigValidation struct {
	Valid  bool            `json:"valid"`
	Errors []ConfigProblem `json:"errors"`
}

// ConfigReload is the data of POST /admin/v1/config/reload.
type ConfigReload struct {
	Applied         []string `json:"applied"`
	RestartRequired []string `json:"restart_required"`
}

// ServerConfig reads the effective configuration tree of the node
// answering (secrets redacted by the server). Retried on 503/504.
func (c *Client) ServerConfig(ctx context.Context) (map[string]any, error) {
	var out struct {
		Config map[string]any `json:"config"`
	}
	if err := c.do(ctx, call{method: http.MethodGet, path: "/admin/v1/config", idempotent: true}, &out); err != nil {
		return nil, err
	}
	if out.Config == nil {
		out.Config = map[string]any{}
	}
	return out.Config, nil
}

// ValidateConfig asks the server to validate a configuration document
// (defaults + that YAML alone). Not retried.
func (c *Client) ValidateConfig(ctx context.Context, yamlDoc string) (*ConfigValidation, error) {
	var out ConfigValidation
	if err := c.do(ctx, call{method: http.MethodPost, path: "/admin/v1/config/validate", body: map[string]string{"config_yaml": yamlDoc}}, &out); err != nil {
		return nil, err
	}
	if out.Errors == nil {
		out.Errors = []ConfigProblem{}
	}
	return &out, nil
}

// ReloadConfig makes the node re-read its configuration. On invalid
// configuration the *Error's Details["errors"] lists the problems. Not
// retried.
func (c *Client) ReloadConfig(ctx context.Context) (*ConfigReload, error) {
	var out ConfigReload
	if err := c.do(ctx, call{method: http.MethodPost, path: "/admin/v1/config/reload", body: map[string]any{}}, &out); err != nil {
		return nil, err
	}
	if out.Applied == nil {
		out.Applied = []string{}
	}
	if out.RestartRequired == nil {
		out.RestartRequired = []string{}
	}
	return &out, nil
}

// ---- keys ----

// CreateEmergencyKey creates a 24-hour admin key. The route exists only on
// the local admin socket (elsewhere the server answers 404 TM-SYS-4040).
// Not retried.
func (c *Client) CreateEmergencyKey(ctx context.Context, description string) (*NewKey, error) {
	body := map[string]any{}
	if description != "" {
		body["description"] = description
	}
	var out NewKey
	if err := c.do(ctx, call{method: http.MethodPost, path: "/admin/v1/keys/emergency", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ---- backups and restores ----

// Backup is the backup object (02-http-api §5.1).
type Backup struct {
	BackupID    string `json:"backup_id"`
	Description string `json:"description"`
	CreatedAt   int64  `json:"created_at"`
	CreatedBy   string `json:"created_by"`
	NodeID      string `json:"node_id"`
	Mode        string `json:"mode"`
	ClusterID   string `json:"cluster_id"`
	SizeBytes   int64  `json:"size_bytes"`
	SHA256      string `json:"sha256"`
	Sessions    int64  `json:"sessions"`
	Tombstones  int64  `json:"tombstones"`
	APIKeys     int    `json:"api_keys"`
	Cipher      string `json:"cipher"`
	KeyID       string `json:"key_id"`
}

// BackupList is a page of backups, newest first.
type BackupList struct {
	Items []Backup `json:"items"`
	Page  int      `json:"page"`
	Size  int      `json:"size"`
	Total int      `json:"total"`
}

// RestoreJob is the restore job object (02-http-api §5.1).
type RestoreJob struct {
	JobID              string `json:"job_id"`
	Status             string `json:"status"` // pending | running | succeeded | failed
	Progress           int    `json:"progress"`
	Message            string `json:"message"`
	BackupID           string `json:"backup_id"`
	PreRestoreBackupID string `json:"pre_restore_backup_id"`
	StartedAt          int64  `json:"started_at"`
	FinishedAt         int64  `json:"finished_at"`
	RestoredSessions   int    `json:"restored_sessions"`
	AddedAPIKeys       int    `json:"added_api_keys"`
}

// Done reports whether the job has ended (succeeded or failed).
func (j *RestoreJob) Done() bool { return j.Status == "succeeded" || j.Status == "failed" }

func backupPath(id string) string { return "/admin/v1/backups/snapshots/" + url.PathEscape(id) }

// CreateBackup takes a backup of the node answering. Not retried.
func (c *Client) CreateBackup(ctx context.Context, description string) (*Backup, error) {
	body := map[string]any{}
	if description != "" {
		body["description"] = description
	}
	var out Backup
	if err := c.do(ctx, call{method: http.MethodPost, path: "/admin/v1/backups/snapshots", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListBackups lists backups, newest first (page/size 0: server defaults).
// Retried on 503/504.
func (c *Client) ListBackups(ctx context.Context, page, size int) (*BackupList, error) {
	q := url.Values{}
	pageQuery(q, page, size)
	var out BackupList
	if err := c.do(ctx, call{method: http.MethodGet, path: "/admin/v1/backups/snapshots", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	if out.Items == nil {
		out.Items = []Backup{}
	}
	return &out, nil
}

// GetBackup reads one backup object. Retried on 503/504.
func (c *Client) GetBackup(ctx context.Context, id string) (*Backup, error) {
	var out Backup
	if err := c.do(ctx, call{method: http.MethodGet, path: backupPath(id), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StartRestore starts restoring a backup held by the node. Not retried.
func (c *Client) StartRestore(ctx context.Context, backupID string) (*RestoreJob, error) {
	var out RestoreJob
	if err := c.do(ctx, call{method: http.MethodPost, path: "/admin/v1/backups/restores", body: map[string]string{"backup_id": backupID}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RestoreJob reads a restore job; id "" or "latest" reads the newest one.
// Retried on 503/504.
func (c *Client) RestoreJob(ctx context.Context, id string) (*RestoreJob, error) {
	if id == "" {
		id = "latest"
	}
	var out RestoreJob
	if err := c.do(ctx, call{method: http.MethodGet, path: "/admin/v1/backups/restores/" + url.PathEscape(id), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BackupFile is an open download of a backup file.
type BackupFile struct {
	// Body streams the file from Offset on; the caller must close it.
	Body io.ReadCloser
	// Offset is where Body starts: the requested offset when the server
	// honoured the range (206), else 0 (the whole file).
	Offset int64
	// Size is the whole file's size in bytes (-1 if the server did not say).
	Size int64
	// ETag is the server's entity tag (the quoted SHA-256), for If-Range.
	ETag string
}

// OpenBackupFile starts downloading a backup file from byte offset (0: the
// whole file). With offset > 0 and ifRange set (an ETag from an earlier
// download), a server whose file changed sends the whole file instead;
// check BackupFile.Offset. Not retried; not bounded by Config.Timeout once
// the response headers arrived.
func (c *Client) OpenBackupFile(ctx context.Context, id string, offset int64, ifRange string) (*BackupFile, error) {
	req, err := c.newRequest(ctx, http.MethodGet, backupPath(id)+"/file", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/octet-stream, application/json")
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
		if ifRange != "" {
			req.Header.Set("If-Range", ifRange)
		}
	}
	resp, err := c.transferClient().Do(req)
	if err != nil {
		return nil, c.transportErr(err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return &BackupFile{Body: resp.Body, Offset: 0, Size: resp.ContentLength, ETag: resp.Header.Get("ETag")}, nil
	case http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			resp.Body.Close()
			return nil, &TransportError{Kind: KindBadData, Target: c.target,
				Err: fmt.Errorf("unexpected Content-Range %q for offset %d", resp.Header.Get("Content-Range"), offset)}
		}
		return &BackupFile{Body: resp.Body, Offset: start, Size: size, ETag: resp.Header.Get("ETag")}, nil
	}
	defer resp.Body.Close()
	return nil, c.decodeReply(resp, nil)
}

// parseContentRange parses "bytes START-END/SIZE" (SIZE may be "*": -1).
func parseContentRange(v string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, total, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	size = -1
	if total != "*" {
		if size, err = strconv.ParseInt(total, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, size, true
}

// RestoreUpload uploads a backup file (multipart field "file") and starts
// restoring it. The body is streamed from r; wrap r to observe progress.
// Not retried; not bounded by Config.Timeout until the upload is sent.
func (c *Client) RestoreUpload(ctx context.Context, filename string, r io.Reader) (*RestoreJob, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan struct{})
	go func() {
		defer close(done)
		part, err := mw.CreateFormFile("file", filename)
		if err == nil {
			_, err = io.Copy(part, r)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := c.newRequest(ctx, http.MethodPost, "/admin/v1/backups/restores", pr)
	if err != nil {
		pr.CloseWithError(err)
		<-done
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.transferClient().Do(req)
	// Stop the writer goroutine whatever happened to the request, and wait
	// for it so that r is no longer read when this returns.
	pr.CloseWithError(errors.New("client: upload finished"))
	<-done
	if err != nil {
		return nil, c.transportErr(err)
	}
	defer resp.Body.Close()
	var out RestoreJob
	if err := c.decodeReply(resp, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// errHTTPOnly: streamed transfers need an HTTP client (not Protocol resp).
var errHTTPOnly = errors.New("client: backup transfers need the HTTP protocol")

// newRequest builds a request with the client's headers (user agent, key,
// anti-replay headers on writes).
func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	if c.hc == nil {
		return nil, errHTTPOnly
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Accept", "application/json")
	if method != http.MethodGet {
		req.Header.Set("X-Timestamp", strconv.FormatInt(time.Now().UnixMilli(), 10))
		req.Header.Set("X-Nonce", nonce())
	}
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	return req, nil
}

// transferClient is an HTTP client for streamed bodies: no overall
// timeout, but the response headers must arrive within Config.Timeout.
func (c *Client) transferClient() *http.Client {
	if tr, ok := c.hc.Transport.(*http.Transport); ok {
		t := tr.Clone()
		t.ResponseHeaderTimeout = c.cfg.Timeout
		return &http.Client{Transport: t}
	}
	return &http.Client{Transport: c.hc.Transport}
}
