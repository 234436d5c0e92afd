package server

import (
	"errors"
	"fmt"
	"net"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/respapi"
)

// startRESP opens the plaintext Redis-protocol listener (loopback unless
// allow_insecure_public; config validation enforces that).
func (s *Server) startRESP(eng *engine.Engine, sec *security) error {
	cfg := s.config()
	l, err := net.Listen("tcp", cfg.Server.RESP.Address)
	if err != nil {
		return &engine.StartupError{Code: engine.ExitRuntime, Err: fmt.Errorf("resp listener %s: %w", cfg.Server.RESP.Address, err)}
	}
	rs := respapi.New(respapi.Config{Engine: eng, Authenticator: sec.authn, Brute: sec.brute, Audit: sec.audit,
		Logger: s.log.With("component", "resp"), MaxConns: cfg.Server.Limits.MaxRESPConnections, Gate: s.respGate,
		Mode: "standalone"})
	s.mu.Lock()
	s.resp = rs
	s.addrs["resp"] = l.Addr()
	s.mu.Unlock()
	go func() {
		if err := rs.Serve(l); err != nil && !errors.Is(err, respapi.ErrServerClosed) {
			s.log.Error("resp listener stopped", "error", err.Error())
		}
	}()
	return nil
}

// respGate applies the business-route gate of the HTTP API to RESP commands.
func (s *Server) respGate() *apierr.Error {
	if ok, _, code := s.readiness(); !ok {
		e := apierr.New(code)
		if code == apierr.AdminMaintenance {
			e.RetryAfter = 5
		}
		return e
	}
	return nil
}
