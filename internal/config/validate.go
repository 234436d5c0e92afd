package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// MaxSocketPathLen is the longest Unix socket path accepted (sun_path on
// the most restrictive supported OS, macOS).
const MaxSocketPathLen = 104

// nodeIDPattern is the syntax of cluster.node_id (06-cluster).
var nodeIDPattern = regexp.MustCompile(`^tmnd-[a-z0-9-]{1,58}$`)

// formatText describes each format tag value in docs and errors.
var formatText = map[string]string{
	"addr":      "host:port",
	"advertise": "host:port reachable by other nodes, or empty",
	"addrs":     "list of host:port",
	"cidrs":     "list of IPs or CIDRs",
	"nodeid":    "tmnd-[a-z0-9-]{1,58}, or empty",
	"url":       "URL or host:port, or empty",
	"path":      "file system path",
	"pem":       "PEM file path, or empty",
	"pipe":      `\\.\pipe\<name>`,
}

// ValidateOptions adjusts Validate for callers that do not use the process
// environment or clock (tests, Load with an explicit environment).
type ValidateOptions struct {
	// Environ is the environment in os.Environ form; nil means os.Environ().
	// It decides whether TOKMESH_ENCRYPTION_KEY (not key_file) is the key source.
	Environ []string
	// Now is the time certificates are checked against; zero means time.Now().
	Now time.Time
}

// Validate checks every key's range and syntax and the cross-key rules of
// 08-config §3, reading the TLS and key files it references. It reports all
// problems; nil means valid.
func (c *Config) Validate() []*Error { return c.ValidateWith(ValidateOptions{}) }

// ValidateWith is Validate with an explicit environment and clock.
func (c *Config) ValidateWith(o ValidateOptions) []*Error {
	if o.Environ == nil {
		o.Environ = os.Environ()
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	v := &validator{c: c, now: o.Now, env: environMap(o.Environ), bad: map[string]bool{}}
	for _, l := range schema().leaves {
		v.checkLeaf(l)
	}
	v.crossKey()
	return v.errs
}

type validator struct {
	c    *Config
	now  time.Time
	env  map[string]string
	errs []*Error
	bad  map[string]bool // keys with a per-key error: cross-key rules skip them
}

func (v *validator) add(code, key, value, msg, expected string) {
	v.errs = append(v.errs, &Error{Code: code, Key: key, Value: value, Message: msg, Expected: expected})
	v.bad[key] = true
}

func (v *validator) checkLeaf(l *leaf) {
	fv := l.get(v.c)
	text := l.text(fv)
	if l.required && text == "" {
		v.add(CodeOutOfRange, l.key, text, "must not be empty", formatText[l.format])
		return
	}
	if len(l.enum) > 0 {
		for _, e := range l.enum {
			if e == text {
				return
			}
		}
		v.add(CodeOutOfRange, l.key, text, "not an allowed value", "one of "+strings.Join(l.enum, " | "))
		return
	}
	if l.hasLo || l.hasHi {
		out := false
		if l.kind == kindFloat {
			f := fv.Float()
			out = (l.hasLo && f < l.lo) || (l.hasHi && f > l.hi)
		} else if n, ok := l.integer(fv); ok {
			out = (l.hasLo && n < l.loI) || (l.hasHi && n > l.hiI)
		}
		if out {
			v.add(CodeOutOfRange, l.key, text, "out of range", l.rangeText())
		}
		return
	}
	if l.format != "" {
		if msg := checkFormat(l.format, fv); msg != "" {
			v.add(CodeOutOfRange, l.key, text, msg, formatText[l.format])
		}
	}
}

// checkFormat returns a message when the value does not match the format.
func checkFormat(format string, fv reflect.Value) string {
	switch format {
	case "addr":
		if _, _, msg := splitAddr(fv.String()); msg != "" {
			return msg
		}
	case "advertise":
		s := fv.String()
		if s == "" {
			return ""
		}
		host, port, msg := splitAddr(s)
		switch {
		case msg != "":
			return msg
		case host == "" || isWildcard(host):
			return "needs a concrete host, not a wildcard"
		case port == 0:
			return "needs a non-zero port"
		}
	case "addrs":
		for _, s := range fv.Interface().([]string) {
			host, port, msg := splitAddr(s)
			if msg == "" && (host == "" || isWildcard(host) || port == 0) {
				msg = "needs a concrete host and a non-zero port"
			}
			if msg != "" {
				return fmt.Sprintf("element %q: %s", s, msg)
			}
		}
	case "cidrs":
		for _, s := range fv.Interface().([]string) {
			if _, err := netip.ParsePrefix(s); err == nil {
				continue
			}
			if _, err := netip.ParseAddr(s); err == nil {
				continue
			}
			return fmt.Sprintf("element %q is not an IP or CIDR", s)
		}
	case "nodeid":
		if s := fv.String(); s != "" && !nodeIDPattern.MatchString(s) {
			return "invalid node ID"
		}
	case "url":
		s := fv.String()
		if s == "" {
			return ""
		}
		if strings.Contains(s, "://") {
			u, err := url.Parse(s)
			if err != nil || u.Host == "" {
				return "invalid URL"
			}
			return ""
		}
		if _, port, msg := splitAddr(s); msg != "" || port == 0 {
			return "invalid URL or host:port"
		}
	case "path", "pem":
		if strings.ContainsRune(fv.String(), 0) {
			return "contains a NUL byte"
		}
	case "pipe":
		s := fv.String()
		if !strings.HasPrefix(s, `\\.\pipe\`) || len(s) == len(`\\.\pipe\`) {
			return "not a local named pipe name"
		}
	}
	return ""
}

// splitAddr parses host:port; the host may be empty, the port must be 0..65535.
func splitAddr(s string) (host string, port int, msg string) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, "not a host:port address"
	}
	n, err := parseUnsigned(p)
	if err != nil || n > 65535 {
		return "", 0, "invalid port"
	}
	if strings.ContainsAny(h, " \t/") {
		return "", 0, "invalid host"
	}
	return h, int(n), ""
}

// isWildcard reports an any-address host ("", 0.0.0.0, ::).
func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}

// isLoopback reports whether host is loopback-only (04-security §8):
// 127.0.0.0/8, ::1 or localhost.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// hostsOverlap reports whether listeners on the same port of hosts a and b
// would collide. "" and "::" listen on every address (dual stack), 0.0.0.0
// on every IPv4 address; localhost is 127.0.0.1 and ::1.
func hostsOverlap(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if a == b || a == "" || b == "" {
		return true
	}
	pa, errA := netip.ParseAddr(a)
	pb, errB := netip.ParseAddr(b)
	if (errA == nil && pa.Is6() && pa.IsUnspecified()) || (errB == nil && pb.Is6() && pb.IsUnspecified()) {
		return true
	}
	is6 := func(p netip.Addr, err error) bool { return err == nil && p.Is6() && !p.Is4In6() }
	if errA == nil && pa.Is4() && pa.IsUnspecified() {
		return !is6(pb, errB)
	}
	if errB == nil && pb.Is4() && pb.IsUnspecified() {
		return !is6(pa, errA)
	}
	for _, x := range literalAddrs(a) {
		for _, y := range literalAddrs(b) {
			if x == y {
				return true
			}
		}
	}
	return false
}

func literalAddrs(h string) []netip.Addr {
	if h == "localhost" {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return []netip.Addr{a.Unmap()}
	}
	return nil
}

// TLSConfigured reports whether server TLS material is set (both files).
func (t ServerTLS) TLSConfigured() bool { return t.CertFile != "" && t.KeyFile != "" }

// HTTPSActive reports whether the HTTPS listener will start.
func (s Server) HTTPSActive() bool { return s.HTTPS.Enabled && s.TLS.TLSConfigured() }

// RESPTLSActive reports whether the RESP-TLS listener will start.
func (s Server) RESPTLSActive() bool { return s.RESPTLS.Enabled && s.TLS.TLSConfigured() }

// SocketPath is the effective local admin socket path.
func (c *Config) SocketPath() string {
	if c.Server.Local.SocketPath != "" {
		return c.Server.Local.SocketPath
	}
	return filepath.Join(c.Storage.DataDir, "admin.sock")
}

func (v *validator) crossKey() {
	c := v.c
	const (
		conflict = CodeConflict
		missing  = CodeMissingDependency
	)
	d := FormatDuration
	// Session TTLs are whole seconds (01-data-model §2): 1500ms would be
	// cut to 1 s without a word, so it is refused instead.
	for _, t := range []struct {
		key string
		v   time.Duration
	}{{"session.ttl.default", c.Session.TTL.Default}, {"session.ttl.max", c.Session.TTL.Max}, {"session.ttl.idle_default", c.Session.TTL.IdleDefault}} {
		if !v.bad[t.key] && t.v%time.Second != 0 {
			v.add(CodeOutOfRange, t.key, d(t.v), "not a whole number of seconds (session TTLs are whole seconds)", "whole seconds, e.g. "+d(t.v.Truncate(time.Second)))
		}
	}
	// Session TTLs.
	if !v.bad["session.ttl.default"] && !v.bad["session.ttl.max"] && c.Session.TTL.Default > c.Session.TTL.Max {
		v.add(conflict, "session.ttl.default", d(c.Session.TTL.Default), "exceeds session.ttl.max", "at most session.ttl.max ("+d(c.Session.TTL.Max)+")")
	}
	if !v.bad["session.ttl.idle_default"] && !v.bad["session.ttl.max"] && c.Session.TTL.IdleDefault > c.Session.TTL.Max {
		v.add(conflict, "session.ttl.idle_default", d(c.Session.TTL.IdleDefault), "exceeds session.ttl.max", "at most session.ttl.max ("+d(c.Session.TTL.Max)+")")
	}
	// Shutdown.
	if !v.bad["server.shutdown.grace_period"] && !v.bad["server.shutdown.timeout"] && c.Server.Shutdown.GracePeriod > c.Server.Shutdown.Timeout {
		v.add(conflict, "server.shutdown.grace_period", d(c.Server.Shutdown.GracePeriod), "exceeds server.shutdown.timeout", "at most server.shutdown.timeout ("+d(c.Server.Shutdown.Timeout)+")")
	}
	// Anti-replay.
	ar := c.Security.AntiReplay
	if !v.bad["security.anti_replay.nonce_ttl"] && !v.bad["security.anti_replay.timestamp_window"] && ar.NonceTTL < 2*ar.TimestampWindow {
		v.add(conflict, "security.anti_replay.nonce_ttl", d(ar.NonceTTL), "shorter than 2 x security.anti_replay.timestamp_window", "at least "+d(2*ar.TimestampWindow))
	}
	// Plaintext listeners.
	for _, pl := range c.plaintextListeners() {
		if !pl.enabled || v.bad[pl.key] || c.Server.AllowInsecurePublic {
			continue
		}
		if host, _, _ := splitAddr(pl.addr); !isLoopback(host) {
			v.add(conflict, pl.key, pl.addr, "plaintext listener on a non-loopback address",
				"a loopback address (127.0.0.0/8, ::1, localhost), or server.allow_insecure_public: true (remote clients belong on the TLS listeners, server.https / server.resp_tls)")
		}
	}
	v.portClashes()
	v.serverTLS()
	v.clusterRules()
	v.keyFile()
	// Local admin socket.
	if c.Server.Local.Enabled && runtime.GOOS != "windows" && !v.bad["server.local.socket_path"] {
		if p := c.SocketPath(); len(p) > MaxSocketPathLen {
			v.add(CodeOutOfRange, "server.local.socket_path", p, "socket path too long",
				fmt.Sprintf("at most %d bytes (set a shorter server.local.socket_path)", MaxSocketPathLen))
		}
	}
	// Tracing.
	if c.Telemetry.Tracing.Enabled && c.Telemetry.Tracing.Endpoint == "" {
		v.add(missing, "telemetry.tracing.endpoint", "", "required when telemetry.tracing.enabled is true", formatText["url"])
	}
}

// portClashes checks that no two listeners that will start share a port on
// overlapping hosts. Port 0 (pick a free port) never clashes.
func (v *validator) portClashes() {
	c := v.c
	type lst struct {
		key, addr, host string
		port            int
	}
	var ls []lst
	add := func(active bool, key, addr string) {
		if !active || v.bad[key] {
			return
		}
		host, port, msg := splitAddr(addr)
		if msg != "" || port == 0 {
			return
		}
		ls = append(ls, lst{key, addr, host, port})
	}
	add(c.Server.HTTP.Enabled, "server.http.address", c.Server.HTTP.Address)
	add(c.Server.HTTPSActive(), "server.https.address", c.Server.HTTPS.Address)
	add(c.Server.RESP.Enabled, "server.resp.address", c.Server.RESP.Address)
	add(c.Server.RESPTLSActive(), "server.resp_tls.address", c.Server.RESPTLS.Address)
	add(c.Cluster.Enabled, "cluster.listen_address", c.Cluster.ListenAddress)
	for j := range ls {
		for i := 0; i < j; i++ {
			if ls[i].port == ls[j].port && hostsOverlap(ls[i].host, ls[j].host) {
				v.add(CodeConflict, ls[j].key, ls[j].addr, "port clash with "+ls[i].key+" ("+ls[i].addr+")", "a different port or non-overlapping host")
				break
			}
		}
	}
}

// pairRule reports cert/key set without the other (TM-CFG-1006).
func (v *validator) pairRule(certKey, cert, keyKey, key string) bool {
	switch {
	case cert != "" && key == "":
		v.add(CodeMissingDependency, keyKey, "", "required when "+certKey+" is set", "a PEM private key path")
		return false
	case cert == "" && key != "":
		v.add(CodeMissingDependency, certKey, "", "required when "+keyKey+" is set", "a PEM certificate path")
		return false
	}
	return cert != "" && key != ""
}

func (v *validator) serverTLS() {
	t := v.c.Server.TLS
	if !v.pairRule("server.tls.cert_file", t.CertFile, "server.tls.key_file", t.KeyFile) {
		return // TLS-only settings are checked only with TLS material
	}
	v.checkKeyPair("server.tls.cert_file", t.CertFile, "server.tls.key_file", t.KeyFile)
	if t.ClientAuth == ClientAuthRequire && t.ClientCAFile == "" {
		v.add(CodeMissingDependency, "server.tls.client_auth", t.ClientAuth, "require needs server.tls.client_ca_file", "server.tls.client_ca_file set, or client_auth none | optional")
	}
	if t.ClientCAFile != "" {
		v.checkCA("server.tls.client_ca_file", t.ClientCAFile)
	}
}

func (v *validator) clusterRules() {
	cl := v.c.Cluster
	if !cl.Enabled {
		if len(cl.Seeds) > 0 {
			v.add(CodeConflict, "cluster.seeds", strings.Join(cl.Seeds, ","), "seeds set while cluster.enabled is false", "empty seeds, or cluster.enabled: true")
		}
		v.pairRule("cluster.tls.cert_file", cl.TLS.CertFile, "cluster.tls.key_file", cl.TLS.KeyFile)
		return
	}
	if cl.AdvertiseAddress == "" {
		v.add(CodeMissingDependency, "cluster.advertise_address", "", "required when cluster.enabled is true", formatText["advertise"])
	}
	for _, f := range []struct{ key, val, want string }{
		{"cluster.tls.cert_file", cl.TLS.CertFile, "a PEM certificate path"},
		{"cluster.tls.key_file", cl.TLS.KeyFile, "a PEM private key path"},
		{"cluster.tls.ca_file", cl.TLS.CAFile, "a PEM CA bundle path"},
	} {
		if f.val == "" {
			v.add(CodeMissingDependency, f.key, "", "required when cluster.enabled is true", f.want)
		}
	}
	if cl.TLS.CertFile != "" && cl.TLS.KeyFile != "" {
		v.checkKeyPair("cluster.tls.cert_file", cl.TLS.CertFile, "cluster.tls.key_file", cl.TLS.KeyFile)
	}
	if cl.TLS.CAFile != "" {
		v.checkCA("cluster.tls.ca_file", cl.TLS.CAFile)
	}
}

// readFile reads a referenced file, reporting TM-CFG-1003 on failure.
func (v *validator) readFile(key, path string) ([]byte, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		v.add(CodeFileUnreadable, key, path, "cannot read file: "+osErrText(err), "a readable file")
		return nil, false
	}
	return b, true
}

func osErrText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func (v *validator) checkKeyPair(certKey, certPath, keyKey, keyPath string) {
	certPEM, ok1 := v.readFile(certKey, certPath)
	keyPEM, ok2 := v.readFile(keyKey, keyPath)
	if !ok1 || !ok2 {
		return
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		v.add(CodeInvalidPEM, certKey, certPath, "invalid certificate/key pair: "+err.Error(), "PEM certificate chain and matching PEM private key ("+keyKey+")")
		return
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			v.add(CodeInvalidPEM, certKey, certPath, "invalid certificate: "+err.Error(), "a PEM X.509 certificate")
			return
		}
	}
	if v.now.After(leaf.NotAfter) {
		v.add(CodeCertExpired, certKey, certPath, "certificate expired on "+leaf.NotAfter.UTC().Format(time.RFC3339), "a certificate valid now")
	}
}

func (v *validator) checkCA(key, path string) {
	b, ok := v.readFile(key, path)
	if !ok {
		return
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		v.add(CodeInvalidPEM, key, path, "no PEM certificate found", "a PEM CA bundle")
	}
}

// keyFile checks the master key source (04-security §11): the env key when
// set, else security.encryption.key_file when set.
func (v *validator) keyFile() {
	if ek := v.env[crypt.EnvKey]; ek != "" {
		s := strings.TrimSpace(ek)
		if _, err := hex.DecodeString(s); err != nil || len(s) != 2*crypt.KeySize {
			// Never echo the value: it is key material.
			v.add(CodeOutOfRange, crypt.EnvKey, "", "malformed master key", "64 hex characters")
		}
		return
	}
	path := v.c.Security.Encryption.KeyFile
	if path == "" || v.bad["security.encryption.key_file"] {
		return
	}
	const key = "security.encryption.key_file"
	_, err := crypt.ReadKeyFile(path)
	switch {
	case err == nil:
	case errors.Is(err, crypt.ErrKeyFilePermissions):
		mode := ""
		if st, serr := os.Stat(path); serr == nil {
			mode = fmt.Sprintf(" (mode %04o)", st.Mode().Perm())
		}
		v.add(CodeUnsafePermissions, key, path, "key file readable by others or writable by group/others"+mode, "mode 0600, 0400 or 0640")
	case errors.Is(err, crypt.ErrBadKeyFormat):
		v.add(CodeOutOfRange, key, path, "key file does not hold a master key", "64 hex characters and an optional newline")
	default:
		v.add(CodeFileUnreadable, key, path, "cannot read key file: "+osErrText(err), "a readable file")
	}
}

// listener is a listen-address key, whether that listener starts, and
// its address.
type listener struct {
	key     string
	enabled bool
	addr    string
}

// plaintextListeners are the HTTP and RESP listeners (no TLS).
func (c *Config) plaintextListeners() []listener {
	return []listener{
		{"server.http.address", c.Server.HTTP.Enabled, c.Server.HTTP.Address},
		{"server.resp.address", c.Server.RESP.Enabled, c.Server.RESP.Address},
	}
}

// Warnings returns the startup warnings the configuration itself implies
// (04-security §7, §8). They contain key names and addresses, never secrets.
func (c *Config) Warnings() []string {
	var w []string
	if c.Server.AllowInsecurePublic {
		for _, pl := range c.plaintextListeners() {
			if host, _, msg := splitAddr(pl.addr); pl.enabled && msg == "" && !isLoopback(host) {
				w = append(w, pl.key+" "+pl.addr+" is a plaintext listener on a non-loopback address (server.allow_insecure_public): tokens and API secrets cross the network unencrypted")
			}
		}
	}
	// HTTPS off while the node is reachable from the network (09-observability
	// §2): every listener that will start counts, the cluster port included.
	if !c.Server.HTTPSActive() {
		for _, l := range append(c.plaintextListeners(),
			listener{"server.resp_tls.address", c.Server.RESPTLSActive(), c.Server.RESPTLS.Address},
			listener{"cluster.listen_address", c.Cluster.Enabled, c.Cluster.ListenAddress}) {
			if host, _, msg := splitAddr(l.addr); l.enabled && msg == "" && !isLoopback(host) {
				w = append(w, "HTTPS is off (server.https.enabled false or no server.tls.cert_file/key_file) while "+
					l.key+" "+l.addr+" listens on a non-loopback address (09-observability §2)")
				break
			}
		}
	}
	if !c.Server.Local.Enabled {
		w = append(w, "server.local.enabled is false: the local admin endpoint (recovery path without API keys) is off")
	}
	return w
}

func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok {
			m[k] = val
		}
	}
	return m
}
