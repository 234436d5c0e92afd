package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Config holds the settings of this package (security.auth.*,
// security.brute_force.*, security.anti_replay.*,
// security.network.trusted_proxies). The server maps internal/config values
// into it. Constructors fill zero values with defaults and do not enforce
// the 08-config ranges (Validate does), so tests may use tiny Argon2 costs.
type Config struct {
	// AllowList is security.auth.allow_list: when non-empty, only these
	// client IPs may authenticate (TM-AUTH-4031). Hot-reloadable.
	AllowList []netip.Prefix
	// DefaultRateLimit is the rate_limit (requests/s, 1..1,000,000) of keys
	// created without one. Default 1000.
	DefaultRateLimit int
	// RotationGrace is how long a rotated-out secret stays valid when the
	// rotate request names no grace (0s..24h). Default 1h. Hot-reloadable.
	RotationGrace time.Duration
	// CacheCapacity is the auth cache size in entries (1,000..100,000). Default 10,000.
	CacheCapacity int
	// CacheTTL is how long a verified credential is cached (10s..5m). Default 60s.
	CacheTTL time.Duration
	// Argon2 are the cost parameters of new secret hashes. Default m=16384, t=2, p=2.
	Argon2 Params
	// MaxConcurrentVerifications bounds parallel Argon2 runs; 0 = GOMAXPROCS.
	MaxConcurrentVerifications int
	// LastUsedFlush is how often last_used_at updates are written to the
	// control store (≈ its accuracy). Default 60s.
	LastUsedFlush time.Duration

	// BruteForce configures the per-IP guard (security.brute_force.*).
	BruteForce BruteForceConfig
	// AntiReplay configures X-Timestamp / X-Nonce (security.anti_replay.*).
	AntiReplay AntiReplayConfig
	// TrustedProxies is security.network.trusted_proxies (for ClientIP).
	TrustedProxies []netip.Prefix

	// Now is the clock; nil means time.Now. Tests inject a fake one.
	Now func() time.Time
	// Logger receives background failures (last-used flush); nil discards.
	Logger *slog.Logger
}

// BruteForceConfig is security.brute_force.* (all hot-reloadable).
type BruteForceConfig struct {
	// Enabled turns the guard on. Default true.
	Enabled bool
	// Window is the sliding window (10s..1h). Default 60s.
	Window time.Duration
	// MaxAuthFailures failed key verifications in Window block the IP (1..100,000). Default 20.
	MaxAuthFailures int
	// MaxTokenFailures failed token validations in Window block the IP (1..1,000,000). Default 100.
	MaxTokenFailures int
	// BlockDuration is how long a block lasts (1s..24h). Default 5m.
	BlockDuration time.Duration
	// Exempt CIDRs are never counted or blocked.
	Exempt []netip.Prefix
	// MaxTrackedIPs bounds tracked IPs (least recently used evicted). Default 100,000.
	MaxTrackedIPs int
}

// AntiReplayConfig is security.anti_replay.*.
type AntiReplayConfig struct {
	// Required makes X-Timestamp and X-Nonce mandatory on write routes of
	// the TCP listeners (the caller passes it to Check). Default false.
	Required bool
	// TimestampWindow is the allowed |now − X-Timestamp| (1s..5m). Default 30s.
	TimestampWindow time.Duration
	// NonceTTL is how long a nonce is remembered (1s..10m, ≥ 2 × TimestampWindow). Default 60s.
	NonceTTL time.Duration
	// NonceCacheSize bounds remembered nonces (1,000..1,000,000). Default 100,000.
	NonceCacheSize int
}

// DefaultConfig returns the 08-config defaults.
func DefaultConfig() Config {
	return Config{
		DefaultRateLimit: 1000,
		RotationGrace:    time.Hour,
		CacheCapacity:    10_000,
		CacheTTL:         60 * time.Second,
		Argon2:           DefaultParams,
		LastUsedFlush:    60 * time.Second,
		BruteForce: BruteForceConfig{Enabled: true, Window: 60 * time.Second, MaxAuthFailures: 20,
			MaxTokenFailures: 100, BlockDuration: 5 * time.Minute, MaxTrackedIPs: 100_000},
		AntiReplay: AntiReplayConfig{TimestampWindow: 30 * time.Second, NonceTTL: 60 * time.Second,
			NonceCacheSize: 100_000},
	}
}

// withDefaults fills zero durations and sizes. Booleans (BruteForce.Enabled,
// AntiReplay.Required) are kept as given: start from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.DefaultRateLimit == 0 {
		c.DefaultRateLimit = d.DefaultRateLimit
	}
	if c.CacheCapacity == 0 {
		c.CacheCapacity = d.CacheCapacity
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = d.CacheTTL
	}
	if c.Argon2 == (Params{}) {
		c.Argon2 = d.Argon2
	}
	if c.LastUsedFlush == 0 {
		c.LastUsedFlush = d.LastUsedFlush
	}
	c.BruteForce = c.BruteForce.withDefaults()
	c.AntiReplay = c.AntiReplay.withDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (b BruteForceConfig) withDefaults() BruteForceConfig {
	d := DefaultConfig().BruteForce
	if b.Window == 0 {
		b.Window = d.Window
	}
	if b.MaxAuthFailures == 0 {
		b.MaxAuthFailures = d.MaxAuthFailures
	}
	if b.MaxTokenFailures == 0 {
		b.MaxTokenFailures = d.MaxTokenFailures
	}
	if b.BlockDuration == 0 {
		b.BlockDuration = d.BlockDuration
	}
	if b.MaxTrackedIPs == 0 {
		b.MaxTrackedIPs = d.MaxTrackedIPs
	}
	return b
}

func (a AntiReplayConfig) withDefaults() AntiReplayConfig {
	d := DefaultConfig().AntiReplay
	if a.TimestampWindow == 0 {
		a.TimestampWindow = d.TimestampWindow
	}
	if a.NonceTTL == 0 {
		a.NonceTTL = d.NonceTTL
	}
	if a.NonceCacheSize == 0 {
		a.NonceCacheSize = d.NonceCacheSize
	}
	return a
}

// Validate checks the 08-config ranges and cross-field rules.
func (c Config) Validate() error {
	var errs []error
	rng := func(name string, v, lo, hi int64) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("%s = %d outside %d..%d", name, v, lo, hi))
		}
	}
	drng := func(name string, v, lo, hi time.Duration) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("%s = %s outside %s..%s", name, v, lo, hi))
		}
	}
	rng("security.auth.default_rate_limit", int64(c.DefaultRateLimit), 1, MaxRateLimit)
	drng("security.auth.rotation_grace", c.RotationGrace, 0, 24*time.Hour)
	rng("security.auth.cache_capacity", int64(c.CacheCapacity), 1000, 100_000)
	drng("security.auth.cache_ttl", c.CacheTTL, 10*time.Second, 5*time.Minute)
	rng("security.auth.argon2.memory", int64(c.Argon2.Memory), 8192, maxMemory)
	rng("security.auth.argon2.iterations", int64(c.Argon2.Iterations), 1, maxIter)
	rng("security.auth.argon2.parallelism", int64(c.Argon2.Parallelism), 1, maxParallel)
	b := c.BruteForce
	drng("security.brute_force.window", b.Window, 10*time.Second, time.Hour)
	rng("security.brute_force.max_auth_failures", int64(b.MaxAuthFailures), 1, 100_000)
	rng("security.brute_force.max_token_failures", int64(b.MaxTokenFailures), 1, 1_000_000)
	drng("security.brute_force.block_duration", b.BlockDuration, time.Second, 24*time.Hour)
	rng("brute_force max tracked IPs", int64(b.MaxTrackedIPs), 1, 10_000_000)
	a := c.AntiReplay
	drng("security.anti_replay.timestamp_window", a.TimestampWindow, time.Second, 5*time.Minute)
	drng("security.anti_replay.nonce_ttl", a.NonceTTL, time.Second, 10*time.Minute)
	rng("security.anti_replay.nonce_cache_size", int64(a.NonceCacheSize), 1000, 1_000_000)
	if a.NonceTTL < 2*a.TimestampWindow {
		errs = append(errs, fmt.Errorf("security.anti_replay.nonce_ttl (%s) must be ≥ 2 × timestamp_window (%s)", a.NonceTTL, a.TimestampWindow))
	}
	return errors.Join(errs...)
}
