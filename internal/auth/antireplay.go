package auth

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// AntiReplay enforces X-Timestamp / X-Nonce (04-security §5) for write
// routes, after authorization, on the entry node. Nonces are remembered
// for NonceTTL in a node-local cache of NonceCacheSize entries; an unexpired
// nonce is never evicted, so a full cache refuses new nonces
// (ErrNonceCacheFull). Safe for concurrent use.
type AntiReplay struct {
	now func() time.Time
	cfg atomic.Pointer[AntiReplayConfig]

	mu     sync.Mutex
	nonces map[string]int64 // nonce → expiry (ns)
	fifo   []nonceRec       // insertion order; fifo[head:] are live candidates
	head   int
}

type nonceRec struct {
	nonce   string
	expires int64
}

// Nonce length limits.
const (
	MinNonceLen = 16
	MaxNonceLen = 128
)

// NewAntiReplay builds the checker from cfg.AntiReplay and cfg.Now.
func NewAntiReplay(cfg Config) *AntiReplay {
	cfg = cfg.withDefaults()
	r := &AntiReplay{now: cfg.Now, nonces: make(map[string]int64)}
	ar := cfg.AntiReplay
	r.cfg.Store(&ar)
	return r
}

// SetConfig applies hot-reloaded settings (required, window, TTL; the
// cache size too). Nonces already stored keep their expiry.
func (r *AntiReplay) SetConfig(ar AntiReplayConfig) {
	ar = ar.withDefaults()
	r.cfg.Store(&ar)
}

// Required reports security.anti_replay.required (what the caller passes as
// Check's required argument on TCP listeners).
func (r *AntiReplay) Required() bool { return r.cfg.Load().Required }

func validNonce(s string) bool {
	if len(s) < MinNonceLen || len(s) > MaxNonceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '~', c == '-':
		default:
			return false
		}
	}
	return true
}

// Check validates the X-Timestamp and X-Nonce header values ("" = absent).
// When neither is present it passes unless required. Otherwise both must be
// present and the nonce well-formed (else ErrReplayHeaders), the timestamp
// a decimal Unix ms within TimestampWindow of now (else ErrTimestamp: send
// X-Server-Time), and the nonce new (else ErrNonceReused), in that order.
// A nonce is stored only when everything else passed. ErrNonceCacheFull
// when the cache holds NonceCacheSize unexpired nonces.
func (r *AntiReplay) Check(tsHeader, nonceHeader string, required bool) error {
	if tsHeader == "" && nonceHeader == "" {
		if required {
			return ErrReplayHeaders
		}
		return nil
	}
	if tsHeader == "" || nonceHeader == "" || !validNonce(nonceHeader) {
		return ErrReplayHeaders
	}
	cfg := r.cfg.Load()
	now := r.now()
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil || tsHeader[0] < '0' || tsHeader[0] > '9' { // decimal digits only (02 §2): no sign
		return ErrTimestamp
	}
	if d := now.UnixMilli() - ts; d > cfg.TimestampWindow.Milliseconds() || d < -cfg.TimestampWindow.Milliseconds() {
		return ErrTimestamp
	}
	return r.add(nonceHeader, now.UnixNano(), cfg)
}

// CheckHeader is Check on a request's X-Timestamp and X-Nonce headers. A
// header sent with an empty value is present (04 §5: "if X-Timestamp or
// X-Nonce is present, both are required and enforced"), so it fails as
// malformed instead of passing as absent.
func (r *AntiReplay) CheckHeader(h http.Header, required bool) error {
	ts, tsSent := h["X-Timestamp"]
	nonce, nonceSent := h["X-Nonce"]
	t, n := firstValue(ts), firstValue(nonce)
	if (tsSent || nonceSent) && t == "" && n == "" {
		return ErrReplayHeaders
	}
	return r.Check(t, n, required)
}

// ReplayHeadersSent reports whether a request carries either anti-replay
// header, even empty.
func ReplayHeadersSent(h http.Header) bool {
	_, ts := h["X-Timestamp"]
	_, nonce := h["X-Nonce"]
	return ts || nonce
}

func firstValue(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// add is the atomic add-if-absent.
func (r *AntiReplay) add(nonce string, now int64, cfg *AntiReplayConfig) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if exp, ok := r.nonces[nonce]; ok && now < exp {
		return ErrNonceReused
	}
	r.expireLocked(now)
	if len(r.nonces) >= cfg.NonceCacheSize {
		return ErrNonceCacheFull
	}
	exp := now + int64(cfg.NonceTTL)
	r.nonces[nonce] = exp
	r.fifo = append(r.fifo, nonceRec{nonce: nonce, expires: exp})
	return nil
}

// expireLocked drops expired nonces from the front of the insertion queue.
// With a constant TTL insertion order is expiry order; after a TTL change an
// entry may wait behind an older one for at most the old TTL.
func (r *AntiReplay) expireLocked(now int64) {
	for r.head < len(r.fifo) && r.fifo[r.head].expires <= now {
		rec := r.fifo[r.head]
		if exp, ok := r.nonces[rec.nonce]; ok && exp == rec.expires {
			delete(r.nonces, rec.nonce)
		}
		r.fifo[r.head] = nonceRec{}
		r.head++
	}
	if r.head > 1024 && r.head*2 > len(r.fifo) {
		n := copy(r.fifo, r.fifo[r.head:])
		clear(r.fifo[n:])
		r.fifo = r.fifo[:n]
		r.head = 0
	}
}

// Len returns the number of remembered nonces (metrics, tests).
func (r *AntiReplay) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.nonces)
}
