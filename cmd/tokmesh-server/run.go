package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/gcfloor"
	"github.com/yndnr/tokmesh-go/internal/server"
)

// runNode runs a node until ctx is cancelled (SIGINT/SIGTERM) or storage
// fails, and returns the process exit code. A configuration reload only
// re-reads the TLS files; runNodeWithReload re-reads the configuration.
func runNode(ctx context.Context, cfg *config.Config, info config.LoadInfo, logger *slog.Logger) int {
	return runNodeWithReload(ctx, cfg, info, logger, nil)
}

// runNodeWithReload is runNode with the configuration source of hot
// reloads (SIGHUP and POST /admin/v1/config/reload, 08-config §4): reload
// re-runs config.Load with the startup options.
func runNodeWithReload(ctx context.Context, cfg *config.Config, info config.LoadInfo, logger *slog.Logger,
	reload func() (*config.Config, []*config.Error)) int {
	ensureTwoProcs(cfg.Storage.WAL.SyncMode)
	// A heap-goal floor so a node with few sessions does not collect ten
	// times a second under load (gcfloor; GOGC in the environment wins).
	defer gcfloor.Start(gcfloor.DefaultFloor)()
	// SIGHUP is caught before the node starts: a Go program that has not
	// asked for it exits on SIGHUP, so one sent while the node recovers
	// (seconds on a large data dir) would kill it. One sent then is
	// handled as soon as the node is up.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// The node logs (and audits) where its configuration came from; from
	// here on its logger stamps component and node_id on every record.
	srv := server.New(cfg, server.Options{Logger: logger, ConfigFile: info.File, LoadInfo: &info, Reload: reload, LogLevel: logLevel})
	logger = srv.Logger()
	if err := srv.Start(ctx); err != nil {
		logger.Error("node failed to start", server.FailureAttrs(err)...)
		return server.ExitCode(err)
	}
	code := 0
wait:
	for {
		select {
		case <-ctx.Done():
			logger.Info("shutting down", "grace_period", cfg.Server.Shutdown.GracePeriod.String())
			break wait
		case <-hup:
			reloadOnSignal(srv, logger)
		case err := <-srv.Fatal():
			logger.Error("storage failure, stopping", server.FailureAttrs(err)...)
			srv.Close()
			return 1
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.Shutdown.Timeout)
	defer cancel()
	// A second SIGINT/SIGTERM ends the drain at once (requests in flight
	// are cut; the WAL is still flushed and the node closed cleanly); a
	// third exits immediately.
	again := make(chan os.Signal, 2)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	go func() {
		if _, ok := <-again; !ok {
			return
		}
		logger.Warn("second signal: ending the drain now")
		cancel()
		if _, ok := <-again; ok {
			logger.Error("third signal: exiting without a clean stop")
			os.Exit(1)
		}
	}()
	start := time.Now()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Error("shutdown", server.FailureAttrs(err)...)
		code = 1
	}
	logger.Info("stopped", "shutdown_ms", time.Since(start).Milliseconds())
	return code
}

// reloadOnSignal is the SIGHUP reload (08-config §4): on an invalid
// configuration nothing changes and every error is logged at ERROR. The
// node logs the applied and restart-required keys itself ("configuration
// reloaded") and audits the reload (config.reload, actor system).
func reloadOnSignal(srv *server.Server, logger *slog.Logger) {
	if _, _, err := srv.ReloadFromSignal(); err != nil {
		logger.Error("SIGHUP: configuration reload failed; nothing was changed", server.FailureAttrs(err)...)
	}
}
