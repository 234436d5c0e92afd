package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/tlsutil"
)

// startHTTPS opens the HTTPS listener with hot-reloaded certificates
// (04-security §8): the directories of the configured files are polled,
// new material is validated before an atomic swap, failures keep the old
// certificate and count in tokmesh_tls_reload_failures_total{listener}.
func (s *Server) startHTTPS(ctx context.Context) error {
	t := s.cfg.Server.TLS
	r, err := tlsutil.NewReloader(tlsutil.Options{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile,
		ClientAuth: t.ClientAuth, MinVersion: t.MinVersion, Name: "server", Logger: s.log.With("component", "tls"),
		OnFailure: func(error) { s.metrics.TLSReloadFailure("server") }})
	if err != nil {
		return &engine.StartupError{Code: engine.ExitConfig, Err: fmt.Errorf("server TLS: %w", err)}
	}
	s.metrics.SetTLSCertExpiry("server", r.Expiry())
	rctx, cancel := context.WithCancel(context.Background())
	r.Start(rctx)
	s.mu.Lock()
	s.tlsReloader = r
	s.stopTLS = func() { cancel(); r.Close() }
	s.mu.Unlock()

	l, err := net.Listen("tcp", s.cfg.Server.HTTPS.Address)
	if err != nil {
		return &engine.StartupError{Code: engine.ExitRuntime, Err: fmt.Errorf("https listener %s: %w", s.cfg.Server.HTTPS.Address, err)}
	}
	cfg := r.TLSConfig().Clone()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	s.serve("https", tls.NewListener(l, cfg), s.handler(s.tcpGuard, false))
	return nil
}

// ReloadTLS re-reads the TLS files now (SIGHUP, config reload).
func (s *Server) ReloadTLS() error {
	s.mu.Lock()
	r := s.tlsReloader
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	err := r.Reload()
	if err == nil {
		s.metrics.SetTLSCertExpiry("server", r.Expiry())
	}
	return err
}
