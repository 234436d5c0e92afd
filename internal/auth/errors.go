package auth

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNoCredential means the request carried no API key (TM-AUTH-4010).
	ErrNoCredential = errors.New("auth: no credentials")
	// ErrBadCredential means the credential is malformed, names an unknown
	// key, has a wrong secret or names an expired key (TM-AUTH-4011).
	ErrBadCredential = errors.New("auth: invalid credentials")
	// ErrKeyDisabled means the key is valid but disabled (TM-AUTH-4012).
	ErrKeyDisabled = errors.New("auth: api key disabled")
	// ErrForbidden means the caller's role lacks the capability (TM-AUTH-4030).
	ErrForbidden = errors.New("auth: role not permitted")
	// ErrIPNotAllowed means the client IP is outside the global or the
	// per-key allowlist (TM-AUTH-4031).
	ErrIPNotAllowed = errors.New("auth: client ip not in allowlist")
	// ErrRateLimited is matched by every *RateLimitError (TM-SYS-4290).
	ErrRateLimited = errors.New("auth: api key rate limit exceeded")

	// ErrTimestamp means X-Timestamp is unparsable or outside the window (TM-AUTH-4014).
	ErrTimestamp = errors.New("auth: x-timestamp malformed or outside the window")
	// ErrNonceReused means X-Nonce was already seen within nonce_ttl (TM-AUTH-4015).
	ErrNonceReused = errors.New("auth: x-nonce already used")
	// ErrReplayHeaders means anti-replay headers are required or partly
	// present but missing, incomplete or malformed (TM-AUTH-4016).
	ErrReplayHeaders = errors.New("auth: anti-replay headers missing, incomplete or malformed")
	// ErrNonceCacheFull means the nonce cache holds nonce_cache_size unexpired
	// nonces (TM-SYS-4290 with Retry-After: 1).
	ErrNonceCacheFull = errors.New("auth: nonce cache full")

	// ErrNotFound means no key has the given ID (TM-ADMIN-4041).
	ErrNotFound = errors.New("auth: api key not found")
	// ErrKeyExists means a create command names an existing key ID.
	ErrKeyExists = errors.New("auth: api key already exists")
	// ErrInvalidCommand means a command violates a key-record rule.
	ErrInvalidCommand = errors.New("auth: invalid control command")

	// ErrCorrupt matches every control-store defect other than a key
	// mismatch: bad header, bad record, CRC or tag mismatch, index gap,
	// undecodable command. The server refuses to start (exit 65).
	ErrCorrupt = errors.New("auth: control store corrupt")
	// ErrKeyMismatch means a control-store file was written under another
	// master key (exit 65; see tokmesh-walctl rekey).
	ErrKeyMismatch = errors.New("auth: control store master key ID mismatch")
	// ErrStoreFailed means an earlier write or fsync failed; the store
	// accepts no more writes until it is reopened (fail-stop).
	ErrStoreFailed = errors.New("auth: control store failed")
	// ErrClosed is returned by a closed Store or Manager.
	ErrClosed = errors.New("auth: closed")

	// ErrBadHash means a PHC string is not a well-formed Argon2id v19 hash.
	ErrBadHash = errors.New("auth: malformed argon2id phc string")
)

// Failure reasons for the auth.failure audit record (04-security §9).
const (
	ReasonUnknownKey = "unknown_key"
	ReasonBadSecret  = "bad_secret"
	ReasonExpired    = "expired"
	ReasonDisabled   = "disabled"
	// ReasonMalformed: the credential could not be parsed, so it names no
	// key (the record's resource is empty).
	ReasonMalformed = "malformed"
)

// AuthFailure is returned by Authenticate and Recheck when a parsable
// credential fails: the caller audits auth.failure with Reason and KeyID and,
// when BruteForce is true, calls BruteForceGuard.AuthFailure for the client
// IP. errors.Is matches ErrBadCredential or ErrKeyDisabled (Err).
type AuthFailure struct {
	// Reason is one of ReasonUnknownKey, ReasonBadSecret, ReasonExpired, ReasonDisabled.
	Reason string
	// KeyID is the (lower-cased) key ID from the credential.
	KeyID string
	// Err is ErrBadCredential or ErrKeyDisabled.
	Err error
	// BruteForce is true for a failed key verification (04-security §3
	// step 9: unknown key or wrong secret), which counts towards
	// max_auth_failures. Disabled and expired keys proved their secret, and
	// Recheck failures are not guesses.
	BruteForce bool
}

func (e *AuthFailure) Error() string {
	return fmt.Sprintf("%v (key %s: %s)", e.Err, e.KeyID, e.Reason)
}

// Unwrap returns ErrBadCredential or ErrKeyDisabled.
func (e *AuthFailure) Unwrap() error { return e.Err }

// RateLimitError is a per-key rate limit rejection (429 TM-SYS-4290).
type RateLimitError struct {
	// KeyID is the limited key.
	KeyID string
	// RetryAfter is the wait until a token is available, rounded up to whole
	// seconds and at least 1 s (the Retry-After header value).
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v (key %s, retry after %s)", ErrRateLimited, e.KeyID, e.RetryAfter)
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// RetryAfterSeconds is the Retry-After header value.
func (e *RateLimitError) RetryAfterSeconds() int64 { return int64(e.RetryAfter / time.Second) }

// FieldError is a request field that breaks a key rule (400 TM-ARG-1001, or
// TM-ARG-1002 when Missing). Field is the JSON field name as sent.
type FieldError struct {
	Field   string
	Missing bool
	Reason  string
}

func (e *FieldError) Error() string {
	if e.Missing {
		return "auth: required field " + e.Field + " missing"
	}
	return "auth: invalid " + e.Field + ": " + e.Reason
}

// CorruptError describes the first defect that stops the control store from
// opening. errors.Is matches ErrCorrupt (unless Err wraps ErrKeyMismatch)
// and the sentinel in Err.
type CorruptError struct {
	File   string
	Offset int64
	Err    error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("auth: control store %s at offset %d: %v", e.File, e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *CorruptError) Unwrap() error { return e.Err }

// Is makes every defect except a key mismatch match ErrCorrupt.
func (e *CorruptError) Is(target error) bool {
	return target == ErrCorrupt && !errors.Is(e.Err, ErrKeyMismatch)
}
