package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// WALStats are the WAL counters read at scrape time. Counters are totals
// since the process started.
type WALStats struct {
	BytesWritten uint64 // header and frame bytes written (tokmesh_wal_bytes_written_total)
	// RecordsByType counts records written by record type name of
	// 05-storage §4.1 (SESSION_PUT, SESSION_TOUCH, …; wal.TypeName).
	RecordsByType map[string]uint64
	Segments      uint64 // WAL segments on disk now (tokmesh_wal_segments)
	LastSeq       uint64 // last assigned sequence number
	FsyncFailures uint64 // failed fsyncs (the writer is fail-stop, so 0 or 1)
}

// walRecordTypes are the record type names of 05-storage §4.1; each is
// exported (at 0 when absent) so the series exist from the first scrape.
var walRecordTypes = []string{"SESSION_PUT", "SESSION_TOUCH", "SESSION_REVOKE", "SESSION_EXPIRE", "PARTITION_DROP", "RESET"}

// pullCollector exports values owned by other components, read from their
// callbacks at scrape time. Without a callback the values are 0.
type pullCollector struct {
	sessions source[func() (live, tombstones int)]
	wal      source[func() WALStats]
	blocked  source[func() int]
	authSrc  source[func() (hits, misses uint64)]
	auditSrc source[func() (written, dropped uint64)]
	cluster  source[func() (ClusterView, bool)]

	// Pushed through AuthCache; exported as these plus authSrc.
	authHits, authMisses atomic.Uint64
	// Pushed through AuditRecord and AuditDropped; exported as these plus
	// auditSrc.
	auditWritten, auditDropped atomic.Uint64

	sessionsActive, tombstones                       *prometheus.Desc
	walBytes, walRecords, walFsyncFails, walSegments *prometheus.Desc
	walLastSeq, blockedIPs                           *prometheus.Desc
	authCacheHits, authCacheMisses                   *prometheus.Desc
	auditRecords, auditDroppedDesc                   *prometheus.Desc
	clusterPartitions, partitionsUnavailable         *prometheus.Desc
	clusterIsLeader, clusterLeaseValid               *prometheus.Desc
}

// ClusterView is what a node without the cluster package reports in the
// cluster series: the values GET /admin/v1/status and the cluster views
// give for it (the metrics must agree with the status, 09-observability
// §1; D22 and D24 in docs/decisions.md).
type ClusterView struct {
	// Partitions this node is primary and replica for (standalone: P, 0).
	Primary, Replica int
	// Unavailable partitions: those without a serving primary (standalone:
	// every partition while the node is not ready, else none).
	Unavailable int
	// Leader and LeaseValid are the status's raft_role == "leader" and
	// lease_valid (standalone: its own leader, lease always valid).
	Leader, LeaseValid bool
}

// partitionRoles are the role label values of tokmesh_cluster_partitions.
var partitionRoles = []string{"primary", "replica"}

func newPullCollector() *pullCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &pullCollector{
		sessionsActive:   d("tokmesh_sessions_active", "Live sessions in partitions this node is primary for."),
		tombstones:       d("tokmesh_session_tombstones", "Tombstones of revoked sessions in memory."),
		walBytes:         d("tokmesh_wal_bytes_written_total", "Bytes written to the WAL."),
		walRecords:       d("tokmesh_wal_records_total", "Records written to the WAL by record type.", "type"),
		walFsyncFails:    d("tokmesh_wal_fsync_failures_total", "Failed WAL fsyncs."),
		walSegments:      d("tokmesh_wal_segments", "WAL segments on disk."),
		walLastSeq:       d("tokmesh_wal_last_seq", "Last WAL sequence number."),
		blockedIPs:       d("tokmesh_bruteforce_blocked_ips", "Client IPs currently blocked by the brute-force guard."),
		authCacheHits:    d("tokmesh_auth_cache_hits_total", "API key verifications answered by the auth cache."),
		authCacheMisses:  d("tokmesh_auth_cache_misses_total", "API key verifications that missed the auth cache."),
		auditRecords:     d("tokmesh_audit_records_total", "Audit records written."),
		auditDroppedDesc: d("tokmesh_audit_dropped_total", "Audit records dropped."),
		clusterPartitions: d("tokmesh_cluster_partitions", "Partitions this node holds, by role (standalone: every partition is primary).",
			"role"),
		partitionsUnavailable: d("tokmesh_cluster_partitions_unavailable", "Partitions without a serving primary."),
		clusterIsLeader:       d("tokmesh_cluster_is_leader", "1 when this node is the leader (standalone: always)."),
		clusterLeaseValid:     d("tokmesh_cluster_lease_valid", "1 while this node holds a valid lease (standalone: always)."),
	}
}

func (c *pullCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sessionsActive, c.tombstones, c.walBytes, c.walRecords,
		c.walFsyncFails, c.walSegments, c.walLastSeq, c.blockedIPs, c.authCacheHits, c.authCacheMisses,
		c.auditRecords, c.auditDroppedDesc, c.clusterPartitions, c.partitionsUnavailable, c.clusterIsLeader, c.clusterLeaseValid} {
		ch <- d
	}
}

func (c *pullCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, lv...)
	}

	var live, tomb int
	if f := c.sessions.get(); f != nil && *f != nil {
		live, tomb = (*f)()
	}
	gauge(c.sessionsActive, float64(live))
	gauge(c.tombstones, float64(tomb))

	var ws WALStats
	if f := c.wal.get(); f != nil && *f != nil {
		ws = (*f)()
	}
	counter(c.walBytes, float64(ws.BytesWritten))
	for _, t := range walRecordTypes {
		counter(c.walRecords, float64(ws.RecordsByType[t]), t)
	}
	for t, n := range ws.RecordsByType {
		if indexOf(walRecordTypes, t) < 0 {
			counter(c.walRecords, float64(n), t)
		}
	}
	counter(c.walFsyncFails, float64(ws.FsyncFailures))
	gauge(c.walSegments, float64(ws.Segments))
	gauge(c.walLastSeq, float64(ws.LastSeq))

	var blocked int
	if f := c.blocked.get(); f != nil && *f != nil {
		blocked = (*f)()
	}
	gauge(c.blockedIPs, float64(blocked))

	hits, misses := c.authHits.Load(), c.authMisses.Load()
	if f := c.authSrc.get(); f != nil && *f != nil {
		h, m := (*f)()
		hits, misses = hits+h, misses+m
	}
	counter(c.authCacheHits, float64(hits))
	counter(c.authCacheMisses, float64(misses))

	written, dropped := c.auditWritten.Load(), c.auditDropped.Load()
	if f := c.auditSrc.get(); f != nil && *f != nil {
		w, d := (*f)()
		written, dropped = written+w, dropped+d
	}
	counter(c.auditRecords, float64(written))
	counter(c.auditDroppedDesc, float64(dropped))

	// No cluster series until the view is known (and none at all without
	// a source).
	if f := c.cluster.get(); f != nil && *f != nil {
		if v, ok := (*f)(); ok {
			gauge(c.clusterPartitions, float64(v.Primary), partitionRoles[0])
			gauge(c.clusterPartitions, float64(v.Replica), partitionRoles[1])
			gauge(c.partitionsUnavailable, float64(v.Unavailable))
			gauge(c.clusterIsLeader, b2f(v.Leader))
			gauge(c.clusterLeaseValid, b2f(v.LeaseValid))
		}
	}
}

// SetSessionSource sets the callback for tokmesh_sessions_active and
// tokmesh_session_tombstones; it runs on every scrape and must be cheap
// (session.Store.Stats is: atomic reads, no scan).
func (m *Metrics) SetSessionSource(f func() (live, tombstones int)) {
	if m != nil {
		m.pull.sessions.set(f)
	}
}

// SetWALSource sets the callback for the WAL counters and gauges; it runs
// on every scrape.
func (m *Metrics) SetWALSource(f func() WALStats) {
	if m != nil {
		m.pull.wal.set(f)
	}
}

// SetBruteForceSource sets the callback for tokmesh_bruteforce_blocked_ips
// (IPs blocked right now); it runs on every scrape.
func (m *Metrics) SetBruteForceSource(f func() int) {
	if m != nil {
		m.pull.blocked.set(f)
	}
}

// SetAuditSource sets the callback for tokmesh_audit_records_total and
// tokmesh_audit_dropped_total (audit.Log.Written and Dropped count them);
// it runs on every scrape. Use it instead of AuditRecord and AuditDropped.
func (m *Metrics) SetAuditSource(f func() (written, dropped uint64)) {
	if m != nil {
		m.pull.auditSrc.set(f)
	}
}

// SetClusterSource sets the callback for the cluster series a node
// without the cluster package exports (tokmesh_cluster_partitions{role},
// tokmesh_cluster_partitions_unavailable, tokmesh_cluster_is_leader,
// tokmesh_cluster_lease_valid); ok = false while the view is not known
// (no series then). It runs on every scrape. The cluster package, which
// knows better, replaces these series.
func (m *Metrics) SetClusterSource(f func() (v ClusterView, ok bool)) {
	if m != nil {
		m.pull.cluster.set(f)
	}
}

// SetAuthCacheSource sets the callback for tokmesh_auth_cache_hits_total and
// tokmesh_auth_cache_misses_total (auth.Authenticator.Stats counts them);
// it runs on every scrape. Use it instead of AuthCache.
func (m *Metrics) SetAuthCacheSource(f func() (hits, misses uint64)) {
	if m != nil {
		m.pull.authSrc.set(f)
	}
}
