package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/respapi"
)

// startRESP opens the Redis-protocol listeners: plaintext (loopback unless
// allow_insecure_public; config validation enforces that) and RESP-TLS
// once server.tls has a certificate. Both are served by one respapi.Server,
// so the connection limit, INFO and metrics cover them together. RESP-TLS
// shares the HTTPS certificate reloader (hot reload, client mTLS per
// server.tls.client_auth).
func (s *Server) startRESP(eng *engine.Engine, sec *security) error {
	cfg := s.config()
	type listener struct {
		name string
		l    net.Listener
	}
	var ls []listener
	fail := func(err error) error {
		for _, x := range ls {
			x.l.Close()
		}
		return err
	}
	if cfg.Server.RESP.Enabled {
		l, err := net.Listen("tcp", cfg.Server.RESP.Address)
		if err != nil {
			return &engine.StartupError{Code: engine.ExitRuntime, Err: fmt.Errorf("resp listener %s: %w", cfg.Server.RESP.Address, err)}
		}
		ls = append(ls, listener{"resp", l})
	}
	if cfg.Server.RESPTLSActive() {
		if err := s.startTLS(); err != nil {
			return fail(err)
		}
		l, err := net.Listen("tcp", cfg.Server.RESPTLS.Address)
		if err != nil {
			return fail(&engine.StartupError{Code: engine.ExitRuntime, Err: fmt.Errorf("resp_tls listener %s: %w", cfg.Server.RESPTLS.Address, err)})
		}
		outer := &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.respTLSConf.Load(), nil }}
		ls = append(ls, listener{"resp_tls", tls.NewListener(l, outer)})
	}
	rs := respapi.New(respapi.Config{Engine: eng, Authenticator: sec.authn, Brute: sec.brute, Audit: sec.audit,
		Logger: s.log.With("component", "resp"), MaxConns: cfg.Server.Limits.MaxRESPConnections, Gate: s.respGate,
		Mode: "standalone", Metrics: s.metrics, OnBusiness: s.traffic.observeAt,
		OnAuthFailure: func(ip netip.Addr, keyID, reason string) {
			if g := s.lazy.g.Load(); g != nil { // the HTTP guard's WARN throttle
				g.warnAuthFailure("", ip, keyID, reason)
			}
		}})
	s.mu.Lock()
	s.resp = rs
	for _, x := range ls {
		s.addrs[x.name] = x.l.Addr()
	}
	s.mu.Unlock()
	for _, x := range ls {
		go func() {
			if err := rs.Serve(x.l); err != nil && !errors.Is(err, respapi.ErrServerClosed) {
				s.log.Error("resp listener stopped", "listener", x.name, "error", err.Error())
			}
		}()
	}
	return nil
}

// respGate applies the business-route gate of the HTTP API to RESP commands.
func (s *Server) respGate() *apierr.Error {
	if ok, _, code := s.readiness(); !ok && code != "" { // draining still serves
		e := apierr.New(code)
		if code == apierr.AdminMaintenance {
			e.RetryAfter = 5
		}
		return e
	}
	return nil
}
