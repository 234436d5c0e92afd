package session

import (
	"errors"
	"strconv"
)

var (
	// ErrNotFound means no session or tombstone answers for the ID or token
	// (never existed, malformed ID, or removed after its grace period).
	ErrNotFound = errors.New("session: not found")

	// ErrExpired means the session exists but its effective expiry has
	// passed; it keeps answering this until expiry + expired_grace.
	ErrExpired = errors.New("session: expired")

	// ErrRevoked means a tombstone exists for the ID or token; it answers
	// this until the original expires_at + expired_grace.
	ErrRevoked = errors.New("session: revoked")

	// ErrTokenMalformed means a token fails the format rule (16..1024 bytes
	// of printable ASCII 0x21..0x7E).
	ErrTokenMalformed = errors.New("session: malformed token")

	// ErrTokenConflict means a create supplied a token whose hash belongs to
	// a live session or a tombstone.
	ErrTokenConflict = errors.New("session: token already in use")

	// ErrQuotaExceeded means the user already has max_per_user live sessions
	// and the policy is reject. The concrete error is a *QuotaError.
	ErrQuotaExceeded = errors.New("session: per-user session quota exceeded")

	// ErrInvalidField means a request field breaks a rule of 01-data-model
	// §2. The concrete error is a *FieldError naming the field.
	ErrInvalidField = errors.New("session: invalid field")

	// ErrCorrupt means a binary record, session or tombstone could not be
	// decoded, or a decoded value is inconsistent (e.g. an ID whose shard
	// or partition bits do not match its token hash).
	ErrCorrupt = errors.New("session: corrupt data")

	// ErrStoreFull means a shard holds the maximum of 16,777,214 sessions
	// (or tombstones); nothing was changed.
	ErrStoreFull = errors.New("session: shard is full")

	// ErrIDCollision means a freshly generated session ID collided with an
	// existing one on every attempt. It is astronomically unlikely.
	ErrIDCollision = errors.New("session: session ID collision")
)

// FieldError reports a request field that breaks a rule. Field is the
// request field name as sent: user_id, device_id, ttl_seconds,
// idle_timeout_seconds, token, data, data.<key>, or created_by.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return "session: invalid field " + strconv.Quote(e.Field) + ": " + e.Reason
}

// Is makes errors.Is(err, ErrInvalidField) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidField }

// QuotaError reports a create rejected by the per-user quota.
type QuotaError struct {
	Limit int
}

func (e *QuotaError) Error() string {
	return "session: per-user session quota exceeded (limit " + strconv.Itoa(e.Limit) + ")"
}

// Is makes errors.Is(err, ErrQuotaExceeded) true.
func (e *QuotaError) Is(target error) bool { return target == ErrQuotaExceeded }

func fieldErr(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

func corrupt(what string) error { return &corruptError{what: what} }

type corruptError struct{ what string }

func (e *corruptError) Error() string        { return "session: corrupt data: " + e.what }
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }
