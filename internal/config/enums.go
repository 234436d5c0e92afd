package config

import "log/slog"

// Values of the enumerated string keys. Validate guarantees a loaded
// Config holds one of them.
const (
	// storage.wal.sync_mode
	SyncModeAlways   = "always"
	SyncModeInterval = "interval"
	SyncModeNone     = "none"

	// session.quota.on_exceed
	OnExceedReject      = "reject"
	OnExceedEvictOldest = "evict_oldest"

	// server.tls.client_auth
	ClientAuthNone     = "none"
	ClientAuthOptional = "optional"
	ClientAuthRequire  = "require"

	// server.tls.min_version
	TLSVersion12 = "1.2"
	TLSVersion13 = "1.3"

	// security.encryption.cipher (names as crypt.ParseCipher accepts them)
	CipherAuto             = "auto"
	CipherAES256GCM        = "aes-256-gcm"
	CipherChaCha20Poly1305 = "chacha20-poly1305"
)

// SlogLevel maps telemetry.logging.level to a slog level (info if unknown).
func (l Logging) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
