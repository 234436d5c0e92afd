package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/tlsutil"
)

// newTLSReloader loads and validates the server TLS material of t and
// starts watching its directories.
func (s *Server) newTLSReloader(t config.ServerTLS) (*tlsutil.Reloader, func(), error) {
	r, err := tlsutil.NewReloader(tlsutil.Options{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile,
		ClientAuth: t.ClientAuth, MinVersion: t.MinVersion, Name: "server", Logger: s.log,
		OnFailure: func(error) { s.metrics.TLSReloadFailure("server") }})
	if err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	r.Start(rctx)
	return r, func() { cancel(); r.Close() }, nil
}

// setTLSReloader makes r serve new HTTPS and RESP-TLS handshakes and stops
// the previous reloader's watcher.
func (s *Server) setTLSReloader(r *tlsutil.Reloader, stop func()) {
	s.respTLSConf.Store(r.TLSConfig()) // no ALPN: RESP clients offer none
	cfg := r.TLSConfig()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	s.tlsConf.Store(cfg)
	s.metrics.SetTLSCertExpiry("server", r.Expiry())
	s.mu.Lock()
	oldStop := s.stopTLS
	s.tlsReloader, s.stopTLS = r, stop
	s.mu.Unlock()
	if oldStop != nil {
		oldStop()
	}
}

// startHTTPS opens the HTTPS listener with hot-reloaded certificates
// (04-security §8): the directories of the configured files are polled,
// new material is validated before an atomic swap, failures keep the old
// certificate and count in tokmesh_tls_reload_failures_total{listener}.
// Handshakes take their tls.Config from s.tlsConf, so a configuration
// reload that names other files can swap in a new reloader.
func (s *Server) startHTTPS(ctx context.Context) error {
	if err := s.startTLS(); err != nil {
		return err
	}

	addr := s.config().Server.HTTPS.Address
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return &engine.StartupError{Code: engine.ExitRuntime, Err: fmt.Errorf("https listener %s: %w", addr, err)}
	}
	outer := &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.tlsConf.Load(), nil }}
	s.serve("https", tls.NewListener(lazyDeadlineListener{l}, outer), s.swappable(s.tcpGuard, false))
	return nil
}

// startTLS loads the server TLS material and starts its watcher, once for
// both TLS listeners (HTTPS, RESP-TLS): they share one reloader.
func (s *Server) startTLS() error {
	s.mu.Lock()
	running := s.tlsReloader != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	r, stop, err := s.newTLSReloader(s.config().Server.TLS)
	if err != nil {
		return &engine.StartupError{Code: engine.ExitConfig, Err: fmt.Errorf("server TLS: %w", err)}
	}
	s.setTLSReloader(r, stop)
	return nil
}

// ReloadTLS re-reads the TLS files now (part of every configuration reload).
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
