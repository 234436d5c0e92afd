package server

import (
	"net"
	"net/netip"

	"github.com/yndnr/tokmesh-go/internal/httpapi"
)

// endpoints describes this node for GET /cluster/routing (02 §4.9): the
// node ID and the bound address of each client listener, "" for one that
// is off. A wildcard bind host (0.0.0.0, ::) is replaced by the host of
// cluster.advertise_address when one is set; otherwise it is left as
// bound, since no better address is known.
func (s *Server) endpoints() httpapi.NodeEndpoints {
	var ep httpapi.NodeEndpoints
	if e := s.eng.Load(); e != nil {
		ep.NodeID = e.Node().NodeID
	}
	advHost, _, err := net.SplitHostPort(s.config().Cluster.AdvertiseAddress)
	if err != nil {
		advHost = ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	addr := func(name string) string { return clientAddr(s.addrs[name], advHost) }
	ep.HTTP, ep.HTTPS, ep.RESP, ep.RESPTLS = addr("http"), addr("https"), addr("resp"), addr("resp_tls")
	return ep
}

// clientAddr is a bound listener address as clients should dial it: a
// wildcard host becomes advHost when there is one. nil (off) gives "".
func clientAddr(a net.Addr, advHost string) string {
	if a == nil {
		return ""
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() && advHost != "" {
		host = advHost
	}
	return net.JoinHostPort(host, port)
}
