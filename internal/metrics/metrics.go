// Package metrics is the Prometheus instrumentation of a TokMesh node
// (09-observability §1): one private registry per node with every metric
// of the API, sessions, storage, security and process groups, the Go
// runtime and process collectors, and the handler that serves it.
//
// Invariants:
//   - Label values come from closed sets (route templates, enums, command
//     names); never session IDs, user IDs, tokens, hashes, key IDs or
//     client IPs. Values outside an enum are dropped (enums) or folded into
//     "other"/"unknown" (methods, routes beyond the cap, RESP commands), so
//     no caller can create unbounded series.
//   - The per-request methods (ObserveHTTP, ObserveRESP, Validation, …)
//     resolve their label children once and then neither lock nor allocate.
//   - Values another component already counts (live sessions, WAL bytes,
//     segments, last seq) are read from callbacks at scrape time, never
//     copied into a second counter, so they cannot drift or double-count.
//   - Every method is safe on a nil *Metrics (metrics disabled).
//
// Cluster metrics: a standalone node "owns all P partitions; no cluster
// port, gossip or leases" (06-cluster §1) and GET /admin/v1/status, which
// the metrics must agree with, describes it as its own leader with a
// valid lease (D22). So it exports the series that status carries —
// tokmesh_cluster_partitions{role} (P primary, 0 replica),
// tokmesh_cluster_is_leader 1, tokmesh_cluster_lease_valid 1 — and
// tokmesh_cluster_partitions_unavailable (P while not ready, else 0, as
// GET /admin/v1/cluster/status), all through SetClusterSource. Nothing
// about Raft voters, gossip, replication, forwarding, clock skew or
// rebalancing: that machinery does not run on a standalone node, and a
// number for it would describe work nobody does (D24). The cluster
// package registers those through Registerer.
package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// LatencyBuckets are the histogram buckets (seconds) of 09-observability §1.
var LatencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// SnapshotBuckets extend LatencyBuckets for snapshot writes, which take
// seconds for a million sessions; the spec buckets are a prefix, so
// latency quantiles stay comparable.
var SnapshotBuckets = append(append([]float64(nil), LatencyBuckets...), 5, 10, 30, 60, 120, 300)

// GroupCommitBuckets are the buckets of tokmesh_wal_group_commit_records
// (records per fsync).
var GroupCommitBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096}

// maxRoutes bounds the distinct route label values of the HTTP metrics;
// later routes are reported as "other". The route table has ~40 templates.
const maxRoutes = 128

// maxResults bounds the distinct result values per session operation;
// later values are reported as "other".
const maxResults = 16

// Label enums of 09-observability §1. A value outside its enum is dropped.
var (
	validationResults = []string{"valid", "malformed", "unknown", "expired", "revoked"}
	sessionOps        = []string{"create", "touch", "renew", "revoke", "revoke_all", "expire"}
	sweepKinds        = []string{"expired", "tombstone"}
	authReasons       = []string{"missing", "unknown_key", "bad_secret", "expired", "disabled", "ip_denied", "role"}
	replayReasons     = []string{"timestamp", "replay", "missing", "full"}
	tlsListeners      = []string{"server", "cluster"}
)

// respCommands are the RESP commands of 03-resp-api (lower case); any other
// command name is reported as "unknown".
var respCommands = []string{
	"auth", "hello", "ping", "quit", "select", "client", "command",
	"tm.create", "tm.validate", "tm.touch", "tm.renew", "tm.revoke", "tm.revoke_user", "tm.list",
	"get", "exists", "ttl", "pttl", "expire", "del", "scan", "info",
	"unknown",
}

// Options identify the build in tokmesh_build_info.
type Options struct {
	Version string
	// Commit is the linker-set commit; when empty, the VCS revision the go
	// tool stamped (as GET /admin/v1/status reports), else "unknown".
	Commit    string
	GoVersion string // runtime.Version() when empty
}

// Metrics owns the node's registry and metrics. Create it with New.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	// API
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpChildren cowMap[httpKey, httpChild]
	httpRoutes   map[string]struct{}     // guarded by httpChildren.mu
	respCount    [][2]prometheus.Counter // [command][ok=1|error=0]
	respDuration []prometheus.Observer
	respConns    prometheus.Gauge

	// Sessions
	validations      []prometheus.Counter
	sessionOps       *prometheus.CounterVec
	sessionChildren  cowMap[opKey, prometheus.Counter]
	sessionResults   [6]map[string]struct{} // per op, guarded by sessionChildren.mu
	quotaRejections  prometheus.Counter
	sweeperRemoved   []prometheus.Counter
	sweepRound       prometheus.Observer
	snapshotDuration prometheus.Observer
	snapshotLastOK   prometheus.Gauge
	snapshotFailures prometheus.Counter
	recoveryDuration prometheus.Gauge

	// Storage (push part; the rest is in pull)
	fsyncDuration prometheus.Observer
	groupCommit   prometheus.Observer

	// Security
	authFailures   []prometheus.Counter
	argon2         prometheus.Observer
	rateLimited    prometheus.Counter
	bruteBlocks    prometheus.Counter
	replayRejects  []prometheus.Counter
	tlsReloadFails []prometheus.Counter
	tlsExpiry      *prometheus.GaugeVec

	// Process
	ready       prometheus.Gauge
	maintenance prometheus.Gauge

	pull *pullCollector
}

type httpKey struct {
	route, method string
	status        int
}

type httpChild struct {
	count prometheus.Counter
	dur   prometheus.Observer
}

type opKey struct {
	op     int
	result string
}

// readBuildInfo is debug.ReadBuildInfo; tests replace it.
var readBuildInfo = debug.ReadBuildInfo

// vcsRevision is the commit the go tool stamped into the binary, "" when
// none: the commit GET /admin/v1/status reports for a binary built without
// a linker-set commit, so that tokmesh_build_info agrees with it
// (09-observability §1).
func vcsRevision() string {
	if bi, ok := readBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

// New builds the metrics of one node on a private registry.
func New(o Options) *Metrics {
	if o.GoVersion == "" {
		o.GoVersion = runtime.Version()
	}
	if o.Commit == "" {
		o.Commit = vcsRevision()
	}
	for _, p := range []*string{&o.Version, &o.Commit} {
		if *p == "" {
			*p = "unknown"
		}
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg, httpRoutes: map[string]struct{}{}}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		reg.MustRegister(g)
		return g
	}
	hist := func(name, help string, buckets []float64) prometheus.Histogram {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
		reg.MustRegister(h)
		return h
	}
	// enumCounters pre-creates one child per enum value, so every series
	// exists (at 0) from the first scrape and rate() works without gaps.
	enumCounters := func(name, help, label string, vals []string) []prometheus.Counter {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
		reg.MustRegister(v)
		out := make([]prometheus.Counter, len(vals))
		for i, val := range vals {
			out[i] = v.WithLabelValues(val)
		}
		return out
	}

	// API
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokmesh_http_requests_total", Help: "HTTP requests by route template, method and status.",
	}, []string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tokmesh_http_request_duration_seconds", Help: "HTTP request duration by route template and method.",
		Buckets: LatencyBuckets,
	}, []string{"route", "method"})
	reg.MustRegister(m.httpRequests, m.httpDuration)

	respCount := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokmesh_resp_commands_total", Help: "RESP commands by command and result.",
	}, []string{"command", "result"})
	respDur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tokmesh_resp_command_duration_seconds", Help: "RESP command duration by command.",
		Buckets: LatencyBuckets,
	}, []string{"command"})
	reg.MustRegister(respCount, respDur)
	m.respCount = make([][2]prometheus.Counter, len(respCommands))
	m.respDuration = make([]prometheus.Observer, len(respCommands))
	for i, c := range respCommands {
		m.respCount[i] = [2]prometheus.Counter{respCount.WithLabelValues(c, "error"), respCount.WithLabelValues(c, "ok")}
		m.respDuration[i] = respDur.WithLabelValues(c)
	}
	m.respConns = gauge("tokmesh_resp_connections", "Open RESP connections.")

	// Sessions
	m.validations = enumCounters("tokmesh_token_validations_total", "Token validations by result.", "result", validationResults)
	m.sessionOps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokmesh_session_operations_total", Help: "Session operations by operation and result.",
	}, []string{"op", "result"})
	reg.MustRegister(m.sessionOps)
	for i := range m.sessionResults {
		m.sessionResults[i] = map[string]struct{}{}
	}
	// Every op's "ok" series exists (at 0) from the first scrape.
	for _, op := range sessionOps {
		m.SessionOps(op, "ok", 0)
	}
	m.quotaRejections = counter("tokmesh_session_quota_rejections_total", "Session creations rejected by the per-user quota.")
	m.sweeperRemoved = enumCounters("tokmesh_sweeper_removed_total", "Entries removed by the sweeper by kind.", "kind", sweepKinds)
	m.sweepRound = hist("tokmesh_sweeper_round_duration_seconds", "Duration of one sweeper round.", LatencyBuckets)

	// Storage
	m.fsyncDuration = hist("tokmesh_wal_fsync_duration_seconds", "WAL fsync duration.", LatencyBuckets)
	m.groupCommit = hist("tokmesh_wal_group_commit_records", "WAL records covered by one fsync.", GroupCommitBuckets)
	m.snapshotDuration = hist("tokmesh_snapshot_duration_seconds", "Duration of successful snapshot writes.", SnapshotBuckets)
	m.snapshotLastOK = gauge("tokmesh_snapshot_last_success_timestamp_seconds", "Unix time of the last successful snapshot.")
	m.snapshotFailures = counter("tokmesh_snapshot_failures_total", "Failed snapshot writes.")
	m.recoveryDuration = gauge("tokmesh_recovery_duration_seconds", "Duration of the last startup recovery (snapshot load and WAL replay).")

	// Security
	// tokmesh_auth_cache_{hits,misses}_total are in pull (AuthCache or
	// SetAuthCacheSource).
	m.authFailures = enumCounters("tokmesh_auth_failures_total", "Authentication and authorization failures by reason.", "reason", authReasons)
	m.argon2 = hist("tokmesh_auth_argon2_duration_seconds", "Duration of Argon2id secret verifications.", LatencyBuckets)
	m.rateLimited = counter("tokmesh_ratelimit_rejections_total", "Requests rejected by a rate limit.")
	m.bruteBlocks = counter("tokmesh_bruteforce_blocks_total", "Client IPs blocked by the brute-force guard.")
	m.replayRejects = enumCounters("tokmesh_antireplay_rejections_total", "Requests rejected by anti-replay by reason.", "reason", replayReasons)
	m.tlsReloadFails = enumCounters("tokmesh_tls_reload_failures_total", "Failed TLS certificate reloads by listener.", "listener", tlsListeners)
	// No child until SetTLSCertExpiry: a 0 would fire the expiry alert on
	// nodes without TLS.
	m.tlsExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tokmesh_tls_cert_expiry_timestamp_seconds", Help: "Unix time the served certificate expires, by listener.",
	}, []string{"listener"})
	reg.MustRegister(m.tlsExpiry)
	// tokmesh_audit_{records,dropped}_total are in pull (AuditRecord,
	// AuditDropped or SetAuditSource).

	// Process
	m.ready = gauge("tokmesh_ready", "1 when the node is ready (GET /ready answers 200).")
	m.maintenance = gauge("tokmesh_maintenance", "1 while the node is in maintenance mode.")
	bi := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tokmesh_build_info", Help: "Build information; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": o.Version, "commit": o.Commit, "go_version": o.GoVersion},
	})
	bi.Set(1)
	reg.MustRegister(bi)

	// Values owned elsewhere, read at scrape time.
	m.pull = newPullCollector()
	reg.MustRegister(m.pull)

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return m
}

// Handler serves the registry in the Prometheus text format. It ignores
// query strings.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Registerer lets other components (the cluster package) add collectors to
// the node's registry.
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

// Gatherer returns the node's registry for reading values (status, tests).
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// ObserveHTTP counts one HTTP request and its duration. route must be a
// route template ("/sessions/{session_id}") or "unmatched"; methods outside
// the standard set are reported as "other". Allocation-free after the
// first request of each route/method/status.
func (m *Metrics) ObserveHTTP(route, method string, status int, d time.Duration) {
	m.ObserveHTTPSeconds(route, method, status, d.Seconds())
}

// ObserveHTTPSeconds is ObserveHTTP with the duration in seconds; its
// signature matches httpapi.Config.OnRequest.
func (m *Metrics) ObserveHTTPSeconds(route, method string, status int, seconds float64) {
	if m == nil {
		return
	}
	k := httpKey{route: route, method: normMethod(method), status: status}
	c, ok := m.httpChildren.load(k)
	if !ok {
		c = m.httpChild(k)
	}
	c.count.Inc()
	c.dur.Observe(seconds)
}

// httpChild resolves the children of k (slow path, first use).
func (m *Metrics) httpChild(k httpKey) httpChild {
	m.httpChildren.mu.Lock()
	defer m.httpChildren.mu.Unlock()
	if c, ok := m.httpChildren.load(k); ok {
		return c
	}
	cacheable := true
	if _, known := m.httpRoutes[k.route]; !known {
		if len(m.httpRoutes) >= maxRoutes {
			// Not cached under the caller's route: that would grow the map
			// without bound. Resolve (and cache) the "other" child instead.
			cacheable = false
		} else {
			m.httpRoutes[k.route] = struct{}{}
		}
	}
	key := k
	if !cacheable {
		key.route = "other"
		if c, ok := m.httpChildren.load(key); ok {
			return c
		}
	}
	c := httpChild{
		count: m.httpRequests.WithLabelValues(key.route, key.method, strconv.Itoa(key.status)),
		dur:   m.httpDuration.WithLabelValues(key.route, key.method),
	}
	m.httpChildren.storeLocked(key, c)
	return c
}

// ObserveRESP counts one RESP command. command is the command name as sent
// (any case); names that are not TokMesh commands count as "unknown".
func (m *Metrics) ObserveRESP(command string, ok bool, d time.Duration) {
	if m == nil {
		return
	}
	i := respIndex(command)
	r := 0
	if ok {
		r = 1
	}
	m.respCount[i][r].Inc()
	m.respDuration[i].Observe(d.Seconds())
}

// RESPSeries is one RESP command's pre-resolved series, for callers that
// know the command ahead (the RESP command table): Observe does no lookup.
type RESPSeries struct {
	count [2]prometheus.Counter // [error, ok]
	dur   prometheus.Observer
}

// RESPCommand returns command's series ("unknown" for names that are not
// TokMesh commands); nil when m is nil. Observe on a nil *RESPSeries does
// nothing.
func (m *Metrics) RESPCommand(command string) *RESPSeries {
	if m == nil {
		return nil
	}
	i := respIndex(command)
	return &RESPSeries{count: m.respCount[i], dur: m.respDuration[i]}
}

// Observe counts one command with its result (ok = not an error reply) and
// duration in seconds. It neither locks nor allocates.
func (r *RESPSeries) Observe(ok bool, seconds float64) {
	if r == nil {
		return
	}
	i := 0
	if ok {
		i = 1
	}
	r.count[i].Inc()
	r.dur.Observe(seconds)
}

// respIndex finds command case-insensitively without allocating.
func respIndex(command string) int {
	last := len(respCommands) - 1 // "unknown"
	for i, c := range respCommands[:last] {
		if len(c) == len(command) && equalFoldASCII(c, command) {
			return i
		}
	}
	return last
}

// equalFoldASCII compares lower-case ASCII lower with s ignoring case.
func equalFoldASCII(lower, s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// RESPConnOpened counts an accepted RESP connection (tokmesh_resp_connections).
func (m *Metrics) RESPConnOpened() {
	if m != nil {
		m.respConns.Inc()
	}
}

// RESPConnClosed counts a closed RESP connection.
func (m *Metrics) RESPConnClosed() {
	if m != nil {
		m.respConns.Dec()
	}
}

// Validation counts a token validation; result is valid, malformed,
// unknown, expired or revoked (other values are dropped).
func (m *Metrics) Validation(result string) {
	if m == nil {
		return
	}
	if i := indexOf(validationResults, result); i >= 0 {
		m.validations[i].Inc()
	}
}

// ValidationResult is a result label value of
// tokmesh_token_validations_total, for CountValidation.
type ValidationResult uint8

// The validation results, in the order of validationResults.
const (
	ValidationValid ValidationResult = iota
	ValidationMalformed
	ValidationUnknown
	ValidationExpired
	ValidationRevoked
)

// CountValidation counts a token validation by its pre-resolved result:
// one atomic increment, no label lookup, no allocation (the validate hot
// path). Values outside the constants are dropped.
func (m *Metrics) CountValidation(r ValidationResult) {
	if m != nil && int(r) < len(m.validations) {
		m.validations[r].Inc()
	}
}

// SessionOp counts a session operation. op is create, touch, renew,
// revoke, revoke_all or expire (other values are dropped); result is "ok"
// or a short failure class such as not_found, expired, revoked, invalid,
// conflict, quota, error — at most 16 distinct results per op, later ones
// count as "other".
func (m *Metrics) SessionOp(op, result string) { m.SessionOps(op, result, 1) }

// SessionOps counts n session operations with the same op and result
// (the sweeper's expiries, a round at a time); as SessionOp otherwise.
func (m *Metrics) SessionOps(op, result string, n int) {
	if m == nil || n < 0 {
		return
	}
	i := indexOf(sessionOps, op)
	if i < 0 {
		return
	}
	k := opKey{op: i, result: result}
	c, ok := m.sessionChildren.load(k)
	if !ok {
		c = m.sessionChild(k)
	}
	switch {
	case n == 1:
		c.Inc()
	case n > 1:
		c.Add(float64(n))
	}
}

func (m *Metrics) sessionChild(k opKey) prometheus.Counter {
	m.sessionChildren.mu.Lock()
	defer m.sessionChildren.mu.Unlock()
	if c, ok := m.sessionChildren.load(k); ok {
		return c
	}
	seen := m.sessionResults[k.op]
	if _, known := seen[k.result]; !known {
		if len(seen) >= maxResults {
			k.result = "other"
			if c, ok := m.sessionChildren.load(k); ok {
				return c
			}
		}
		seen[k.result] = struct{}{}
	}
	c := m.sessionOps.WithLabelValues(sessionOps[k.op], k.result)
	m.sessionChildren.storeLocked(k, c)
	return c
}

// QuotaRejection counts a create rejected by the per-user quota.
func (m *Metrics) QuotaRejection() {
	if m != nil {
		m.quotaRejections.Inc()
	}
}

// SweeperRemoved counts n entries removed by the sweeper; kind is expired
// or tombstone.
func (m *Metrics) SweeperRemoved(kind string, n int) {
	if m == nil || n <= 0 {
		return
	}
	if i := indexOf(sweepKinds, kind); i >= 0 {
		m.sweeperRemoved[i].Add(float64(n))
	}
}

// ObserveSweepRound records the duration of one sweeper round.
func (m *Metrics) ObserveSweepRound(d time.Duration) {
	if m != nil {
		m.sweepRound.Observe(d.Seconds())
	}
}

// ObserveFsync records one WAL fsync and the number of records it made
// durable (group commit size). Failures are counted through WALStats.
func (m *Metrics) ObserveFsync(d time.Duration, records int) {
	if m == nil {
		return
	}
	m.fsyncDuration.Observe(d.Seconds())
	m.groupCommit.Observe(float64(records))
}

// ObserveSnapshot records a snapshot write: on success its duration and
// the success time, on failure the failure counter.
func (m *Metrics) ObserveSnapshot(d time.Duration, ok bool) {
	if m == nil {
		return
	}
	if !ok {
		m.snapshotFailures.Inc()
		return
	}
	m.snapshotDuration.Observe(d.Seconds())
	m.snapshotLastOK.Set(float64(time.Now().UnixNano()) / 1e9)
}

// SetSnapshotLastSuccess sets tokmesh_snapshot_last_success_timestamp_seconds,
// e.g. from the snapshot loaded at startup.
func (m *Metrics) SetSnapshotLastSuccess(t time.Time) {
	if m != nil {
		m.snapshotLastOK.Set(float64(t.UnixNano()) / 1e9)
	}
}

// SetRecoveryDuration records how long startup recovery took.
func (m *Metrics) SetRecoveryDuration(d time.Duration) {
	if m != nil {
		m.recoveryDuration.Set(d.Seconds())
	}
}

// AuthCache counts an auth-cache lookup. auth.Authenticator already counts
// them (Stats); wire either this or SetAuthCacheSource, not both.
func (m *Metrics) AuthCache(hit bool) {
	if m == nil {
		return
	}
	if hit {
		m.pull.authHits.Add(1)
	} else {
		m.pull.authMisses.Add(1)
	}
}

// AuthFailure counts an authentication or authorization failure; reason is
// missing, unknown_key, bad_secret, expired, disabled, ip_denied or role
// (other values are dropped).
func (m *Metrics) AuthFailure(reason string) {
	if m == nil {
		return
	}
	if i := indexOf(authReasons, reason); i >= 0 {
		m.authFailures[i].Inc()
	}
}

// Argon2 records the duration of one Argon2id verification.
func (m *Metrics) Argon2(d time.Duration) {
	if m != nil {
		m.argon2.Observe(d.Seconds())
	}
}

// RateLimitRejection counts a request rejected by a rate limit.
func (m *Metrics) RateLimitRejection() {
	if m != nil {
		m.rateLimited.Inc()
	}
}

// BruteForceBlock counts a client IP being blocked.
func (m *Metrics) BruteForceBlock() {
	if m != nil {
		m.bruteBlocks.Inc()
	}
}

// AntiReplayRejection counts an anti-replay rejection; reason is
// timestamp, replay, missing or full (other values are dropped).
func (m *Metrics) AntiReplayRejection(reason string) {
	if m == nil {
		return
	}
	if i := indexOf(replayReasons, reason); i >= 0 {
		m.replayRejects[i].Inc()
	}
}

// TLSReloadFailure counts a failed certificate reload; listener is server
// or cluster (other values are dropped).
func (m *Metrics) TLSReloadFailure(listener string) {
	if m == nil {
		return
	}
	if i := indexOf(tlsListeners, listener); i >= 0 {
		m.tlsReloadFails[i].Inc()
	}
}

// SetTLSCertExpiry records the NotAfter of the certificate a listener
// (server or cluster) serves; a zero t removes the series.
func (m *Metrics) SetTLSCertExpiry(listener string, t time.Time) {
	if m == nil || indexOf(tlsListeners, listener) < 0 {
		return
	}
	if t.IsZero() {
		m.tlsExpiry.DeleteLabelValues(listener)
		return
	}
	m.tlsExpiry.WithLabelValues(listener).Set(float64(t.Unix()))
}

// AuditRecord counts one written audit record. audit.Log already counts
// them (Written); wire either this or SetAuditSource, not both.
func (m *Metrics) AuditRecord() {
	if m != nil {
		m.pull.auditWritten.Add(1)
	}
}

// AuditDropped counts n dropped audit records (audit.Options.OnDrop); as
// for AuditRecord, wire either this or SetAuditSource.
func (m *Metrics) AuditDropped(n int) {
	if m != nil && n > 0 {
		m.pull.auditDropped.Add(uint64(n))
	}
}

// SetReady sets tokmesh_ready.
func (m *Metrics) SetReady(ok bool) {
	if m != nil {
		m.ready.Set(b2f(ok))
	}
}

// SetMaintenance sets tokmesh_maintenance.
func (m *Metrics) SetMaintenance(on bool) {
	if m != nil {
		m.maintenance.Set(b2f(on))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// source holds a callback set after New (the engine opens after metrics).
type source[F any] struct{ p atomic.Pointer[F] }

func (s *source[F]) set(f F) { s.p.Store(&f) }
func (s *source[F]) get() *F { return s.p.Load() }
