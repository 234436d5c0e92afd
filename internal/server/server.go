// Package server assembles a TokMesh node from its typed configuration:
// New(cfg) → Start(ctx) → Close(). Today a node is the session engine
// (recovery, WAL, snapshots, sweeper); the HTTP, RESP and admin-socket
// listeners attach here as they land.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/session"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

// Server is one node.
type Server struct {
	cfg    *config.Config
	log    *slog.Logger
	getenv func(string) string

	mu      sync.Mutex
	eng     *engine.Engine
	fatalCh chan error
}

// Options are the non-config inputs of a node.
type Options struct {
	Logger *slog.Logger
	Getenv func(string) string // nil = os.Getenv
}

// New validates nothing beyond what config.Validate did; it only records
// the inputs. Start does the work.
func New(cfg *config.Config, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: o.Logger, getenv: o.Getenv, fatalCh: make(chan error, 1)}
}

// EngineConfig maps the typed configuration onto the engine's.
func EngineConfig(c *config.Config) (engine.Config, error) {
	ec := engine.DefaultConfig(c.Storage.DataDir)
	mode, err := wal.ParseSyncMode(c.Storage.WAL.SyncMode)
	if err != nil {
		return ec, err
	}
	ec.NodeID = c.Cluster.NodeID
	ec.Partitions = c.Cluster.Partitions
	ec.SyncMode = mode
	ec.SyncInterval = c.Storage.WAL.SyncInterval
	ec.SyncRevocations = c.Storage.WAL.SyncRevocations
	ec.SegmentSize = c.Storage.WAL.SegmentSize.Bytes()
	ec.SnapshotInterval = c.Storage.Snapshot.Interval
	ec.SnapshotWALThreshold = c.Storage.Snapshot.WALThreshold.Bytes()
	ec.SnapshotRetain = c.Storage.Snapshot.Retain
	ec.SweepInterval = c.Session.Sweeper.Interval
	ec.KeyFile = c.Security.Encryption.KeyFile
	ec.Cipher = c.Security.Encryption.Cipher
	ec.Session.MaxPerUser = c.Session.Quota.MaxPerUser
	ec.Session.OnExceed = session.QuotaReject
	if c.Session.Quota.OnExceed == "evict_oldest" {
		ec.Session.OnExceed = session.QuotaEvictOldest
	}
	ec.Session.ExpiredGrace = c.Session.TTL.ExpiredGrace.Milliseconds()
	ec.Session.TTLDefault = int64(c.Session.TTL.Default.Seconds())
	ec.Session.TTLMax = int64(c.Session.TTL.Max.Seconds())
	ec.Session.IdleDefault = int64(c.Session.TTL.IdleDefault.Seconds())
	ec.Session.SweepSample = c.Session.Sweeper.SampleSize
	ec.Session.SweepMaxRounds = c.Session.Sweeper.MaxRounds
	return ec, nil
}

// Start recovers the engine. It returns a *engine.StartupError when the node
// must not start (the caller exits with its code).
func (s *Server) Start(ctx context.Context) error {
	ec, err := EngineConfig(s.cfg)
	if err != nil {
		return &engine.StartupError{Code: engine.ExitConfig, Err: err}
	}
	ec.Logger = s.log
	ec.Getenv = s.getenv
	ec.OnFatal = func(err error) {
		select {
		case s.fatalCh <- err:
		default:
		}
	}
	eng, err := engine.Open(ec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.eng = eng
	s.mu.Unlock()
	ri := eng.Recovery()
	s.log.Info("node ready", "node_id", eng.Node().NodeID, "data_dir", s.cfg.Storage.DataDir,
		"partitions", eng.Partitions(), "recovery_ms", ri.Duration.Milliseconds(), "live_sessions", eng.Store().Stats().Live)
	return nil
}

// Engine returns the running engine (nil before Start).
func (s *Server) Engine() *engine.Engine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eng
}

// Fatal delivers the fail-stop error of a storage failure.
func (s *Server) Fatal() <-chan error { return s.fatalCh }

// Close flushes and stops the node.
func (s *Server) Close() error {
	s.mu.Lock()
	eng := s.eng
	s.eng = nil
	s.mu.Unlock()
	if eng == nil {
		return nil
	}
	if err := eng.Close(); err != nil {
		return fmt.Errorf("close engine: %w", err)
	}
	return nil
}

// ExitCode maps a Start error to the process exit code (08-config §2).
func ExitCode(err error) int {
	var se *engine.StartupError
	if errors.As(err, &se) {
		return se.Code
	}
	return engine.ExitRuntime
}
