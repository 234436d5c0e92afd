package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/buildinfo"
	"github.com/yndnr/tokmesh-go/internal/crypt"
	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/snapshot"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

// statusObject is the node summary of 02-http-api §5.1 (field order as
// specified).
type statusObject struct {
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
	Cipher        string        `json:"cipher"`
	KeyID         string        `json:"key_id"`
	AuditLastHash string        `json:"audit_last_hash"`
	Cluster       clusterOfNode `json:"cluster"`
}

// clusterOfNode is the status object's cluster part. Standalone: no
// cluster ID, the node is its own leader (D22), the lease is always valid
// and this node is primary for every partition.
type clusterOfNode struct {
	ClusterID         string `json:"cluster_id"`
	LeaderID          string `json:"leader_id"`
	RaftRole          string `json:"raft_role"`
	LeaseValid        bool   `json:"lease_valid"`
	PartitionsPrimary int    `json:"partitions_primary"`
	PartitionsReplica int    `json:"partitions_replica"`
}

// GET /admin/v1/status — cached for at most one second.
func (h *Handler) adminStatus(rq *request) (int, []byte, *apierr.Error) {
	a := h.admin()
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	now := time.Now()
	if a.statusCache != nil && now.Sub(a.statusAt) < statusCacheTTL && now.After(a.statusAt) {
		return http.StatusOK, a.statusCache, nil
	}
	b, err := json.Marshal(h.buildStatus(now))
	if err != nil {
		return 0, nil, &apierr.Error{Code: apierr.SysInternal, Err: err}
	}
	a.statusCache, a.statusAt = b, now
	return http.StatusOK, b, nil
}

func (h *Handler) buildStatus(now time.Time) *statusObject {
	a := h.admin()
	cfg := a.config()
	s := &statusObject{NodeID: a.nodeID(), Version: buildinfo.Version, Commit: buildCommit(), GoVersion: runtime.Version(),
		Mode: "standalone", Goroutines: runtime.NumGoroutine(), Cipher: cipherName(cfg.Security.Encryption.Cipher)}
	if !a.StartedAt.IsZero() {
		s.StartedAt = a.StartedAt.UnixMilli()
		s.UptimeSeconds = int64(now.Sub(a.StartedAt) / time.Second)
	}
	ok, checks, _ := h.cfg.Ready()
	s.Ready = ok
	s.Maintenance = checks["maintenance"] != "" && checks["maintenance"] != "off"
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.Memory.HeapBytes = ms.HeapAlloc
	s.Memory.RSSBytes = rssBytes(ms.Sys)
	if a.Traffic != nil {
		s.QPS, s.P99Ms = a.Traffic()
		s.QPS, s.P99Ms = finite(s.QPS), finite(s.P99Ms)
	}
	s.WAL.SyncMode = cfg.Storage.WAL.SyncMode
	if e := a.engine(); e != nil {
		st := e.Store().Stats()
		s.Sessions.Live, s.Sessions.Tombstones = st.Live, st.Tombstones
		s.WAL.LastSeq = e.WALStats().LastSeq
		s.KeyID = e.KeyID().String()
	}
	if h.cfg.Audit != nil {
		s.AuditLastHash = h.cfg.Audit.LastHash()
	}
	s.Cluster = clusterOfNode{LeaderID: s.NodeID, RaftRole: "leader", LeaseValid: true, PartitionsPrimary: a.partitions()}
	return s
}

// finite keeps NaN and ±Inf (which JSON cannot carry) out of the status.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

func buildCommit() string { return buildinfo.ResolvedCommit() }

// cipherName resolves security.encryption.cipher (auto → the CPU's pick).
func cipherName(configured string) string {
	c, err := crypt.ParseCipher(configured)
	if err != nil {
		return configured
	}
	return c.String()
}

// rssBytes reads the resident set size (Linux /proc/self/statm); elsewhere
// it falls back to the Go runtime's total obtained memory.
func rssBytes(fallback uint64) uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return fallback
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return fallback
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return fallback
	}
	return pages * uint64(os.Getpagesize())
}

// --- POST /admin/v1/gc ---

type gcResult struct {
	Type         string `json:"type"`
	CleanedCount int    `json:"cleaned_count"`
	FreedBytes   uint64 `json:"freed_bytes"`
	DurationMs   int64  `json:"duration_ms"`
}

func (h *Handler) adminGC(w http.ResponseWriter, rq *request) {
	typ := "all"
	aerr := adminBody(rq, field{name: "type", dst: &typ})
	if aerr == nil && typ != "expired" && typ != "memory" && typ != "all" {
		aerr = badField("type", "must be expired, memory or all")
	}
	if aerr != nil {
		h.adminReject(w, rq, actionGC, "", aerr)
		return
	}
	a := h.admin()
	// One gc at a time; the lock also makes the throttle check-and-set atomic.
	a.gcMu.Lock()
	defer a.gcMu.Unlock()
	if last, ok := a.lastGC[typ]; ok {
		if wait := gcThrottle - time.Since(last); wait > 0 {
			e := apierr.Newf(apierr.AdminThrottled, "a %s gc ran less than 60 s ago", typ).WithDetail("type", typ)
			e.RetryAfter = int((wait + time.Second - 1) / time.Second)
			h.adminReject(w, rq, actionGC, typ, e)
			return
		}
	}
	e := a.engine()
	if e == nil && typ != "memory" {
		h.adminReject(w, rq, actionGC, typ, errNoEngine())
		return
	}
	h.adminWrite(w, rq, actionGC, typ, nil, func(out *auditOut) (int, []byte, *apierr.Error) {
		if a.lastGC == nil {
			a.lastGC = map[string]time.Time{}
		}
		start := time.Now()
		a.lastGC[typ] = start
		res := gcResult{Type: typ}
		if typ != "memory" {
			res.CleanedCount = e.Sweep()
		}
		if typ != "expired" {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			debug.FreeOSMemory()
			runtime.ReadMemStats(&after)
			if before.HeapAlloc > after.HeapAlloc {
				res.FreedBytes = before.HeapAlloc - after.HeapAlloc
			}
		}
		res.DurationMs = time.Since(start).Milliseconds()
		out.set("cleaned_count", res.CleanedCount)
		out.set("freed_bytes", res.FreedBytes)
		b, err := json.Marshal(res)
		if err != nil {
			return 0, nil, &apierr.Error{Code: apierr.SysInternal, Err: err}
		}
		return http.StatusOK, b, nil
	})
}

// --- GET /admin/v1/wal/status ---

type walStatus struct {
	Dir             string       `json:"dir"`
	SyncMode        string       `json:"sync_mode"`
	SyncRevocations bool         `json:"sync_revocations"`
	Segments        int          `json:"segments"`
	TotalBytes      int64        `json:"total_bytes"`
	FirstSeq        uint64       `json:"first_seq"`
	LastSeq         uint64       `json:"last_seq"`
	LastFsyncAt     int64        `json:"last_fsync_at"`
	FsyncFailures   uint64       `json:"fsync_failures"`
	Cipher          string       `json:"cipher"`
	KeyID           string       `json:"key_id"`
	LastSnapshot    lastSnapshot `json:"last_snapshot"`
}

type lastSnapshot struct {
	File       string `json:"file"`
	CoveredSeq uint64 `json:"covered_seq"`
	CreatedAt  int64  `json:"created_at"`
}

// adminWALStatus reports the WAL of this node. Segment counts and sizes are
// read from the segment headers on disk; the sequence numbers from the
// running writer.
func (h *Handler) adminWALStatus(rq *request) (int, []byte, *apierr.Error) {
	a := h.admin()
	e := a.engine()
	if e == nil {
		return 0, nil, errNoEngine()
	}
	cfg := a.config()
	dataDir := cfg.Storage.DataDir
	st := walStatus{Dir: filepath.Join(dataDir, datadir.WALDir), SyncMode: cfg.Storage.WAL.SyncMode,
		SyncRevocations: cfg.Storage.WAL.SyncRevocations, Cipher: cipherName(cfg.Security.Encryption.Cipher),
		KeyID: e.KeyID().String()}
	ws := e.WALStats()
	st.LastSeq = ws.LastSeq
	if !ws.LastFsyncAt.IsZero() {
		st.LastFsyncAt = ws.LastFsyncAt.UnixMilli()
	}
	if err := e.Fatal(); err != nil && strings.Contains(err.Error(), "fsync") {
		st.FsyncFailures = 1 // the engine stops at the first storage failure, so there is never a second
	}
	segs, err := wal.ListSegments(st.Dir)
	if err != nil {
		return 0, nil, &apierr.Error{Code: apierr.SysInternal, Err: err}
	}
	for i, s := range segs {
		st.Segments++
		st.TotalBytes += s.Bytes
		if s.Err != nil {
			continue
		}
		if i == 0 || st.FirstSeq == 0 {
			st.FirstSeq = s.FirstSeq
		}
		st.Cipher = s.Cipher.String() // the newest segment's cipher is what is written now
	}
	if snaps, err := snapshot.List(filepath.Join(dataDir, datadir.SnapshotDir)); err == nil {
		for _, p := range snaps { // newest first; skip unreadable headers
			if hd, err := snapshot.ReadHeader(p); err == nil {
				st.LastSnapshot = lastSnapshot{File: filepath.Base(p), CoveredSeq: hd.CoveredSeq, CreatedAt: hd.CreatedAt}
				break
			}
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return 0, nil, &apierr.Error{Code: apierr.SysInternal, Err: err}
	}
	return http.StatusOK, b, nil
}
