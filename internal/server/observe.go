package server

import (
	"errors"
	"time"

	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/metrics"
	"github.com/yndnr/tokmesh-go/internal/session"
	"github.com/yndnr/tokmesh-go/internal/snapshot"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

// This file connects the node's components to its metrics
// (09-observability §1). Session events are counted where every protocol
// meets — the engine's hooks — so an operation counts once whether HTTP,
// RESP, the admin socket or the sweeper caused it. Values a component
// already counts (WAL records, audit records, blocked IPs) are read at
// scrape time.

// observeEngine installs the engine's metric hooks. Without metrics it
// installs none, so the hot paths pay nothing.
func (s *Server) observeEngine(ec *engine.Config) {
	m := s.metrics
	if m == nil {
		return
	}
	ec.OnValidate = func(err error) { m.CountValidation(validationResult(err)) }
	ec.OnSessionOp = func(op string, err error) {
		m.SessionOp(op, opResult(err))
		if op == engine.OpCreate && errors.Is(err, session.ErrQuotaExceeded) {
			m.QuotaRejection()
		}
	}
	ec.OnSweepRound = func(held time.Duration, expired, tombstones int) {
		m.ObserveSweepRound(held)
		m.SweeperRemoved("expired", expired)
		m.SweeperRemoved("tombstone", tombstones)
		// The expire operation of 01-data-model §3 is the sweeper's removal
		// of an expired session or a due tombstone.
		m.SessionOps("expire", "ok", expired+tombstones)
	}
	ec.OnSnapshot = func(d time.Duration, err error) { m.ObserveSnapshot(d, err == nil) }
}

// validationResult maps a validation outcome (engine.Config.OnValidate) to
// its pre-resolved series. The store returns the sentinels themselves, so
// the comparisons are pointer checks.
func validationResult(err error) metrics.ValidationResult {
	switch err {
	case nil:
		return metrics.ValidationValid
	case session.ErrTokenMalformed:
		return metrics.ValidationMalformed
	case session.ErrNotFound:
		return metrics.ValidationUnknown
	case session.ErrExpired:
		return metrics.ValidationExpired
	case session.ErrRevoked:
		return metrics.ValidationRevoked
	}
	switch {
	case errors.Is(err, session.ErrTokenMalformed):
		return metrics.ValidationMalformed
	case errors.Is(err, session.ErrExpired):
		return metrics.ValidationExpired
	case errors.Is(err, session.ErrRevoked):
		return metrics.ValidationRevoked
	}
	return metrics.ValidationUnknown
}

// opResult is the result label of tokmesh_session_operations_total: "ok"
// or the class of the failure, one per error code family the caller sees.
func opResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, session.ErrNotFound):
		return "not_found"
	case errors.Is(err, session.ErrExpired):
		return "expired"
	case errors.Is(err, session.ErrRevoked):
		return "revoked"
	case errors.Is(err, session.ErrInvalidField), errors.Is(err, session.ErrTokenMalformed):
		return "invalid"
	case errors.Is(err, session.ErrTokenConflict):
		return "conflict"
	case errors.Is(err, session.ErrQuotaExceeded):
		return "quota"
	}
	return "error"
}

// observeSecurity reads the security components' own counters at scrape
// time and times their Argon2 runs.
func (s *Server) observeSecurity(sec *security) {
	m := s.metrics
	if m == nil {
		return
	}
	m.SetBruteForceSource(sec.brute.BlockedIPs)
	al := sec.audit
	m.SetAuditSource(func() (uint64, uint64) { return al.Written(), al.Dropped() })
	sec.authn.SetArgon2Observer(m.Argon2)
}

// observeRecovery exports what recovery found: its duration, the creation
// time of the snapshot it loaded (the last successful snapshot until the
// node writes one), and from then on the cluster series of a standalone
// node (06-cluster §1: one node owns every partition).
func (s *Server) observeRecovery(eng *engine.Engine) {
	m := s.metrics
	if m == nil {
		return
	}
	ri := eng.Recovery()
	m.SetRecoveryDuration(ri.Duration)
	if ri.Snapshot != "" {
		if h, err := snapshot.ReadHeader(ri.Snapshot); err == nil && h.CreatedAt > 0 {
			m.SetSnapshotLastSuccess(time.UnixMilli(h.CreatedAt))
		}
	}
	m.SetClusterSource(func() (metrics.ClusterView, bool) {
		e := s.Engine()
		if e == nil {
			return metrics.ClusterView{}, false
		}
		// What GET /admin/v1/status and /admin/v1/cluster/status say of a
		// standalone node (D22): its own leader, lease valid, primary for
		// every partition; while it refuses business requests (recovery,
		// restore, storage failure — not draining) it serves none of them.
		v := metrics.ClusterView{Primary: e.Partitions(), Leader: true, LeaseValid: true}
		if !s.serving() {
			v.Unavailable = v.Primary
		}
		return v, true
	})
}

// walStats is the scrape-time view of the WAL writer (SetWALSource).
func walStats(e *engine.Engine) metrics.WALStats {
	if e == nil {
		return metrics.WALStats{}
	}
	ws := e.WALStats()
	var failures uint64
	if e.Fatal() != nil {
		failures = 1
	}
	byType := make(map[string]uint64, len(ws.RecordsByType))
	for t, n := range ws.RecordsByType {
		if wal.ValidType(byte(t)) {
			byType[wal.TypeName(byte(t))] = n
		}
	}
	return metrics.WALStats{BytesWritten: uint64(ws.BytesWritten), Segments: uint64(ws.Segments), LastSeq: ws.LastSeq,
		FsyncFailures: failures, RecordsByType: byType}
}
