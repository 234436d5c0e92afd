package server

import (
	"errors"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"slices"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/buildinfo"
	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/crypt"
	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/logging"
)

// mode is the node's mode as logged, audited and reported (RESP INFO,
// HELLO): this build runs standalone nodes only.
const mode = "standalone"

// tracingCompiled reports whether this binary contains the OpenTelemetry
// tracer. It is compiled only with the build tag otel (09-observability
// §4), which no build has yet.
const tracingCompiled = false

// Audit actions of the node's lifecycle (04-security §9).
const (
	actionConfigLoad   = "config.load"
	actionConfigReload = "config.reload" // SIGHUP; the API's is written by httpapi
	actionServerStart  = "server.start"
	actionServerStop   = "server.stop"
)

// loadInfo is where the configuration came from: Options.LoadInfo, or for
// an embedded node without one, the file it was told about, no env vars or
// flags, and the warnings the configuration itself implies.
func (s *Server) loadInfo(cfg *config.Config) config.LoadInfo {
	if s.load != nil {
		return *s.load
	}
	return config.LoadInfo{File: s.ConfigFile, Warnings: cfg.Warnings()}
}

// presetNodeID gives the log records before recovery the node ID they
// will have after it: node.json's (read-only, before the data dir lock;
// the engine keeps that one), else the configured one. A data dir without
// either gets its ID generated here, and the engine writes that ID to
// node.json (generated is true), so even a first start logs its node_id
// from the first line (09-observability §2).
func (s *Server) presetNodeID(cfg *config.Config) (id string, generated bool) {
	if n, err := datadir.ReadNode(cfg.Storage.DataDir); err == nil && n.NodeID != "" {
		id = n.NodeID
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", false // the engine reports what is wrong with node.json
	} else if id = cfg.Cluster.NodeID; id == "" {
		nid, err := engine.NewNodeID()
		if err != nil {
			return "", false // the engine retries and reports
		}
		id, generated = nid, true
	}
	s.nodeID.Set(id)
	return id, generated
}

// logStartup writes the records of 09-observability §2 that precede
// recovery: version and mode, where the configuration came from (08-config
// §2), its warnings (insecure or development settings; the engine adds the
// master-key and sync-mode ones), the effective configuration when
// telemetry.logging.dump_config is set, and tracing that this build cannot
// do.
func (s *Server) logStartup(cfg *config.Config, info config.LoadInfo) {
	s.log.Info("starting tokmesh-server", "version", buildinfo.Version, "commit", commit(), "go_version", runtime.Version(),
		"mode", mode, "data_dir", cfg.Storage.DataDir)
	clog := s.log.With(logging.ComponentKey, "config")
	clog.Info("config.load", "file", info.File, "env", nonNil(info.EnvVars), "flags", nonNil(info.Flags))
	for _, w := range info.Warnings {
		clog.Warn(w)
	}
	if cfg.Telemetry.Logging.DumpConfig {
		// The configuration holds no secrets (key material lives in a file
		// or the environment, never in it); the redactor still sees every
		// key and value, whatever handler the node was given.
		clog.Info("effective configuration", logging.RedactAttr(treeAttr("config", cfg.Tree())))
	}
	if cfg.Telemetry.Tracing.Enabled && !tracingCompiled {
		// No endpoint in the record: a URL may carry credentials.
		s.log.With(logging.ComponentKey, "tracing").Warn("telemetry.tracing.enabled is true but this build has no tracing " +
			"(it is compiled only with the build tag otel); continuing without traces")
	}
}

// logReady is the startup summary of 09-observability §2, once the node
// serves: version, mode, node ID (every record has it), listeners, cipher
// and key ID, sync mode and the recovery statistics.
func (s *Server) logReady(cfg *config.Config, eng *engine.Engine) {
	ri := eng.Recovery()
	s.log.Info("node ready", "version", buildinfo.Version, "mode", mode, "data_dir", cfg.Storage.DataDir,
		"listeners", s.listenerSummary(), "cipher", eng.Cipher().String(), "key_id", eng.KeyID().String(),
		"partitions", eng.Partitions(), "sync_mode", cfg.Storage.WAL.SyncMode,
		"snapshot", ri.Snapshot, "wal_records_replayed", ri.WALRecords, "recovery_ms", ri.Duration.Milliseconds(),
		"live_sessions", eng.Store().Stats().Live)
}

// auditLifecycle appends a config.load or server.start record
// synchronously, so config.load is the first record of the node's run and
// server.start is written before the node reports ready. These are not
// admin writes: the spec does not make them fail closed, so a write
// failure is logged (once, here) and the node goes on.
func (s *Server) auditLifecycle(al *audit.Log, action, resource string, details map[string]any) {
	if al == nil {
		return
	}
	if err := al.Write(audit.Record{Actor: audit.ActorSystem, Action: action, Resource: resource, Details: details}); err != nil {
		s.log.With(logging.ComponentKey, "audit").Error("audit record could not be written", "action", action,
			"code", string(apierr.SysAuditDown), "error", err.Error())
	}
}

// auditConfigLoad is the config.load record of 08-config §2: the file, and
// the names — never the values — of the env vars and flags used.
func (s *Server) auditConfigLoad(al *audit.Log, info config.LoadInfo) {
	s.auditLifecycle(al, actionConfigLoad, info.File, map[string]any{"env": nonNil(info.EnvVars), "flags": nonNil(info.Flags)})
}

// auditStop queues server.stop behind the records of the requests that
// finished during shutdown; closing the log writes the queue out.
func auditStop(al *audit.Log, nodeID string) {
	al.Record(audit.Record{Actor: audit.ActorSystem, Action: actionServerStop, Resource: nodeID, Details: lifecycleDetails()})
}

func lifecycleDetails() map[string]any {
	return map[string]any{"version": buildinfo.Version, "mode": mode}
}

func commit() string { return buildinfo.ResolvedCommit() }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// treeAttr renders config.Tree as nested groups in key order.
func treeAttr(key string, tree map[string]any) slog.Attr {
	keys := make([]string, 0, len(tree))
	for k := range tree {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]any, 0, len(keys))
	for _, k := range keys {
		if sub, ok := tree[k].(map[string]any); ok {
			attrs = append(attrs, treeAttr(k, sub))
			continue
		}
		attrs = append(attrs, slog.Any(k, tree[k]))
	}
	return slog.Group(key, attrs...)
}

// tmCode finds a catalogue code quoted in an error's text ("TM-CFG-1004: …").
var tmCode = regexp.MustCompile(`\bTM-[A-Z]+-[0-9]{4}\b`)

// ErrorCode returns the catalogue code (TM-…) of a startup or runtime
// failure, for the code field of its log record (09-observability §2), or
// "" when the catalogue has none for it (a port in use, a locked data dir).
func ErrorCode(err error) apierr.Code {
	if err == nil {
		return ""
	}
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		return apierr.Code(ce.Code)
	}
	if errors.Is(err, engine.ErrStorage) {
		return apierr.SysStorage
	}
	if c := tmCode.FindString(err.Error()); c != "" {
		return apierr.Code(c)
	}
	if errors.Is(err, crypt.ErrNoKey) {
		return apierr.CfgMissingDep
	}
	var se *engine.StartupError
	if errors.As(err, &se) {
		switch se.Code {
		case engine.ExitDataErr, engine.ExitIOFailed:
			return apierr.SysStorage
		case engine.ExitConfig:
			return apierr.CfgInvalid
		}
	}
	return ""
}

// FailureAttrs are the attributes of an error record: code (when the
// catalogue has one) and error.
func FailureAttrs(err error) []any {
	if err == nil {
		return nil
	}
	if c := ErrorCode(err); c != "" {
		return []any{"code", string(c), "error", err.Error()}
	}
	return []any{"error", err.Error()}
}
