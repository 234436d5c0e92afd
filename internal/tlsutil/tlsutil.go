// Package tlsutil serves TLS material that can be replaced while listeners
// run (04-security §8): HTTPS and RESP-TLS today, the cluster port later.
//
// Invariants: new material is fully validated (PEM parses, key matches the
// certificate, certificate not expired, CA bundle parses) before one atomic
// swap; a failed reload keeps the old material serving. Handshakes read the
// current material through callbacks, so new handshakes see a swap at once
// and open connections are untouched.
package tlsutil

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Error codes of the configuration catalogue (02-http-api, TM-CFG-*). They
// are repeated here, not imported, so that the config package can use this
// one to validate TLS files.
const (
	CodeUnreadable = "TM-CFG-1003" // file missing or unreadable
	CodeInvalid    = "TM-CFG-1007" // invalid PEM, or certificate and key do not match
	CodeExpired    = "TM-CFG-1008" // certificate expired
)

// Sentinels for errors.Is on a *LoadError.
var (
	ErrUnreadable = errors.New("TLS file unreadable")
	ErrInvalid    = errors.New("invalid TLS material")
	ErrExpired    = errors.New("certificate expired")
)

// LoadError is why TLS material could not be loaded. Code is the TM-CFG
// code to report; Field names the option ("cert_file", "key_file",
// "client_ca_file") so the caller can prefix its config key.
type LoadError struct {
	Code  string
	Field string
	File  string
	Err   error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("%s %s %s: %v", e.Code, e.Field, e.File, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// Is maps the code onto the sentinels.
func (e *LoadError) Is(target error) bool {
	switch target {
	case ErrUnreadable:
		return e.Code == CodeUnreadable
	case ErrInvalid:
		return e.Code == CodeInvalid
	case ErrExpired:
		return e.Code == CodeExpired
	}
	return false
}

// ExpiryWarning is how close to expiry a certificate must be for a WARN.
const ExpiryWarning = 30 * 24 * time.Hour

// Client certificate policies (server.tls.client_auth).
const (
	ClientAuthNone     = "none"
	ClientAuthOptional = "optional"
	ClientAuthRequire  = "require"
)

// Options configure a Reloader.
type Options struct {
	// CertFile is the PEM certificate chain, leaf first. Required.
	CertFile string
	// KeyFile is the PEM private key of the leaf. Required.
	KeyFile string
	// ClientCAFile is a PEM CA bundle. It verifies client certificates and,
	// for ClientConfig, the server a client dials. Optional unless
	// ClientAuth is "require".
	ClientCAFile string
	// ClientAuth is "none" (default), "optional" or "require".
	ClientAuth string
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string
	// Name labels logs (e.g. "server", "cluster"): the listener label of
	// tokmesh_tls_reload_failures_total.
	Name string
	// Logger receives reload results; nil discards.
	Logger *slog.Logger
	// OnFailure is called once per failed reload (not for the initial load);
	// it should increment tokmesh_tls_reload_failures_total{listener}.
	OnFailure func(err error)
	// PollInterval is how often Start checks the files; default 1 s.
	PollInterval time.Duration
	// Now is the clock for expiry checks; nil means time.Now.
	Now func() time.Time
}

// material is one validated, immutable generation of TLS inputs.
type material struct {
	cert   *tls.Certificate
	leaf   *x509.Certificate
	caPool *x509.CertPool    // nil when no CA file
	digest [sha256.Size]byte // of the file contents it came from
}

// Reloader holds the current TLS material and swaps it atomically.
type Reloader struct {
	o          Options
	log        *slog.Logger
	clientAuth tls.ClientAuthType
	minVersion uint16

	cur atomic.Pointer[material]

	reloadMu sync.Mutex // serializes Reload so swaps happen in order
	seenMu   sync.Mutex
	seen     [sha256.Size]byte // digest of the file contents last acted on

	startMu sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
}

// tls12Suites are the TLS 1.2 suites allowed: ECDHE with AES-GCM or
// ChaCha20-Poly1305. TLS 1.3 suites are not configurable and all qualify.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// NewReloader checks the options and loads the material once. Errors from
// the files are *LoadError (startup maps them to exit 78 with their code).
func NewReloader(o Options) (*Reloader, error) {
	r := &Reloader{o: o, log: o.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if o.Name == "" {
		r.o.Name = "server"
	}
	r.log = r.log.With("component", "tls", "listener", r.o.Name)
	if r.o.PollInterval <= 0 {
		r.o.PollInterval = time.Second
	}
	if r.o.Now == nil {
		r.o.Now = time.Now
	}
	if o.CertFile == "" || o.KeyFile == "" {
		return nil, errors.New("tlsutil: cert_file and key_file are both required")
	}
	switch o.MinVersion {
	case "", "1.2":
		r.minVersion = tls.VersionTLS12
	case "1.3":
		r.minVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("tlsutil: min_version %q: want 1.2 or 1.3", o.MinVersion)
	}
	switch o.ClientAuth {
	case "", ClientAuthNone:
		r.clientAuth = tls.NoClientCert
	case ClientAuthOptional:
		if o.ClientCAFile == "" {
			// Nothing could verify a presented certificate: do not ask for one.
			r.log.Warn("client_auth optional without client_ca_file: client certificates are not requested")
			r.clientAuth = tls.NoClientCert
		} else {
			// Verification against the current pool happens in verifyClient,
			// so that the pool can be swapped; see TLSConfig.
			r.clientAuth = tls.RequestClientCert
		}
	case ClientAuthRequire:
		if o.ClientCAFile == "" {
			return nil, errors.New("tlsutil: client_auth require needs client_ca_file")
		}
		r.clientAuth = tls.RequireAnyClientCert
	default:
		return nil, fmt.Errorf("tlsutil: client_auth %q: want none, optional or require", o.ClientAuth)
	}
	m, digest, err := r.load()
	r.setSeen(digest)
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	r.warnExpiry(m)
	return r, nil
}

// TLSConfig returns a server configuration whose certificate and client CA
// pool are read from the current material at every handshake. It is a new
// copy each call; callers may set NextProtos and the like.
//
// Client certificates are verified here (VerifyConnection, against the
// current pool, for full and resumed handshakes alike) rather than through
// tls.Config.ClientCAs, which cannot change after the listener starts. As a
// consequence the CertificateRequest carries no CA names, and
// ConnectionState.VerifiedChains is empty.
func (r *Reloader) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:       r.minVersion,
		CipherSuites:     tls12Suites,
		ClientAuth:       r.clientAuth,
		GetCertificate:   r.getCertificate,
		VerifyConnection: r.verifyClient,
	}
}

// ClientConfig returns a configuration for dialing a peer that presents a
// certificate from the same CA bundle (the cluster port): it offers the
// current certificate and verifies the server against the current CA pool
// and serverName. Verification is done in VerifyConnection so that reloads
// apply to new dials of a long-lived config.
func (r *Reloader) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:   r.minVersion,
		CipherSuites: tls12Suites,
		ServerName:   serverName,
		// Standard verification is replaced by verifyServer, which uses the
		// current pool; InsecureSkipVerify only disables the static one.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return r.cur.Load().cert, nil
		},
		VerifyConnection: r.verifyServer,
	}
}

func (r *Reloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load().cert, nil
}

func (r *Reloader) verifyClient(cs tls.ConnectionState) error {
	if r.clientAuth == tls.NoClientCert || len(cs.PeerCertificates) == 0 {
		// "require" already made the handshake fail without a certificate.
		return nil
	}
	pool := r.cur.Load().caPool
	if pool == nil {
		return errors.New("tlsutil: no client CA pool")
	}
	opts := x509.VerifyOptions{
		Roots:         pool,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   r.o.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

func (r *Reloader) verifyServer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tlsutil: server sent no certificate")
	}
	pool := r.cur.Load().caPool
	if pool == nil {
		return errors.New("tlsutil: no CA pool to verify the server")
	}
	opts := x509.VerifyOptions{
		Roots:         pool,
		Intermediates: x509.NewCertPool(),
		DNSName:       cs.ServerName,
		CurrentTime:   r.o.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// Expiry returns the NotAfter of the certificate being served (for the
// tokmesh_tls_cert_expiry_timestamp_seconds gauge).
func (r *Reloader) Expiry() time.Time {
	return r.cur.Load().leaf.NotAfter
}

// Reload reads and validates the files and, only if everything is valid,
// swaps the material in. On failure the old material keeps serving, an
// ERROR is logged, OnFailure is called and the *LoadError is returned.
// SIGHUP, the config-reload API and the file watcher all call it.
func (r *Reloader) Reload() error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	m, digest, err := r.load()
	r.setSeen(digest)
	if err != nil {
		r.log.Error("TLS reload failed; keeping the current certificate", "error", err.Error(), "code", codeOf(err))
		if r.o.OnFailure != nil {
			r.o.OnFailure(err)
		}
		return err
	}
	old := r.cur.Swap(m)
	if old.digest != m.digest {
		r.log.Info("TLS material reloaded", "subject", m.leaf.Subject.String(), "not_after", m.leaf.NotAfter.UTC().Format(time.RFC3339), "serial", m.leaf.SerialNumber.String())
	}
	r.warnExpiry(m)
	return nil
}

func codeOf(err error) string {
	var le *LoadError
	if errors.As(err, &le) {
		return le.Code
	}
	return ""
}

func (r *Reloader) warnExpiry(m *material) {
	if left := m.leaf.NotAfter.Sub(r.o.Now()); left < ExpiryWarning {
		r.log.Warn("TLS certificate expires soon", "not_after", m.leaf.NotAfter.UTC().Format(time.RFC3339), "days_left", int(left.Hours()/24), "file", r.o.CertFile)
	}
}

func (r *Reloader) setSeen(d [sha256.Size]byte) {
	r.seenMu.Lock()
	r.seen = d
	r.seenMu.Unlock()
}

func (r *Reloader) getSeen() [sha256.Size]byte {
	r.seenMu.Lock()
	defer r.seenMu.Unlock()
	return r.seen
}

// readAll reads the configured files. The digest covers all of them, so a
// change to any one is seen.
func (r *Reloader) readAll() (certPEM, keyPEM, caPEM []byte, digest [sha256.Size]byte, err error) {
	read := func(field, path string) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, &LoadError{Code: CodeUnreadable, Field: field, File: path, Err: err}
		}
		return b, nil
	}
	if certPEM, err = read("cert_file", r.o.CertFile); err != nil {
		return
	}
	if keyPEM, err = read("key_file", r.o.KeyFile); err != nil {
		return
	}
	if r.o.ClientCAFile != "" {
		if caPEM, err = read("client_ca_file", r.o.ClientCAFile); err != nil {
			return
		}
	}
	h := sha256.New()
	for _, b := range [][]byte{certPEM, keyPEM, caPEM} {
		var n [8]byte
		for i := range 8 {
			n[i] = byte(len(b) >> (8 * i))
		}
		h.Write(n[:])
		h.Write(b)
	}
	h.Sum(digest[:0])
	return
}

// fingerprint is the digest of the files' current contents; unreadable
// files give a digest of the error text, so a file that disappears or
// comes back counts as a change.
func (r *Reloader) fingerprint() [sha256.Size]byte {
	_, _, _, d, err := r.readAll()
	if err != nil {
		return sha256.Sum256([]byte(err.Error()))
	}
	return d
}

// load reads and fully validates the files. The digest is that of the
// bytes it read (or of the read error), also when validation fails, so the
// watcher acts on exactly what was checked.
func (r *Reloader) load() (*material, [sha256.Size]byte, error) {
	certPEM, keyPEM, caPEM, digest, err := r.readAll()
	if err != nil {
		return nil, sha256.Sum256([]byte(err.Error())), err
	}
	m, err := r.validate(certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, digest, err
	}
	m.digest = digest
	return m, digest, nil
}

func (r *Reloader) validate(certPEM, keyPEM, caPEM []byte) (*material, error) {
	if _, err := parseCerts(certPEM, "certificate chain"); err != nil {
		return nil, &LoadError{Code: CodeInvalid, Field: "cert_file", File: r.o.CertFile, Err: err}
	}
	// The chain parses, so what X509KeyPair rejects is the key: unparsable,
	// missing, or not the leaf's.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &LoadError{Code: CodeInvalid, Field: "key_file", File: r.o.KeyFile, Err: err}
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, &LoadError{Code: CodeInvalid, Field: "cert_file", File: r.o.CertFile, Err: err}
		}
		cert.Leaf = leaf
	}
	if now := r.o.Now(); now.After(leaf.NotAfter) {
		return nil, &LoadError{Code: CodeExpired, Field: "cert_file", File: r.o.CertFile,
			Err: fmt.Errorf("certificate %q expired at %s", leaf.Subject.String(), leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	m := &material{cert: &cert, leaf: leaf}
	if caPEM != nil {
		cas, err := parseCerts(caPEM, "CA bundle")
		if err != nil {
			return nil, &LoadError{Code: CodeInvalid, Field: "client_ca_file", File: r.o.ClientCAFile, Err: err}
		}
		m.caPool = x509.NewCertPool()
		for _, c := range cas {
			m.caPool.AddCert(c)
		}
	}
	return m, nil
}

// parseCerts is stricter than CertPool.AppendCertsFromPEM, which skips
// what it cannot parse: every block must be a parsable certificate, nothing
// but whitespace may surround them, and there must be at least one.
func parseCerts(b []byte, what string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		block, rest := pem.Decode(b)
		if block == nil {
			break
		}
		b = rest
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q in %s", block.Type, what)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", what, len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(bytes.TrimSpace(b)) != 0 {
		return nil, fmt.Errorf("%s: data that is not PEM", what)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate found", what)
	}
	return out, nil
}

// Start polls the configured files every PollInterval (following symlinks,
// comparing content digests, so in-place writes, atomic renames and
// Kubernetes ..data symlink swaps are all seen) and reloads after the
// contents have been stable for 100 ms. Once a day it repeats the expiry
// WARN check. It returns at once; the watcher
// stops when ctx ends or Close is called. A second Start is a no-op.
func (r *Reloader) Start(ctx context.Context) {
	r.startMu.Lock()
	defer r.startMu.Unlock()
	if r.done != nil {
		return
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go r.watch(ctx, r.done)
}

// Close stops the watcher started by Start and waits for it.
func (r *Reloader) Close() error {
	r.startMu.Lock()
	cancel, done := r.cancel, r.done
	r.startMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// debounce is how long the files must stay unchanged before a reload.
const debounce = 100 * time.Millisecond

func (r *Reloader) watch(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(r.o.PollInterval)
	defer t.Stop()
	sleep := func(d time.Duration) bool {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		}
	}
	lastExpiryCheck := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A certificate that is never replaced still has to warn once it
		// enters the last 30 days.
		if time.Since(lastExpiryCheck) >= 24*time.Hour {
			lastExpiryCheck = time.Now()
			r.warnExpiry(r.cur.Load())
		}
		d := r.fingerprint()
		if d == r.getSeen() {
			continue
		}
		// Wait until the files stop changing (a cert and its key are often
		// written one after the other), at most 20 rounds.
		for range 20 {
			if !sleep(debounce) {
				return
			}
			d2 := r.fingerprint()
			if d2 == d {
				break
			}
			d = d2
		}
		_ = r.Reload() // logged and counted inside
	}
}
