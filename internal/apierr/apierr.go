// Package apierr is TokMesh's one error catalogue: every user-visible
// failure has a TM-<MODULE>-<NNNN> code with its HTTP status and default
// message (02-http-api §7). HTTP renders it as the error envelope, RESP as
// "-<CODE> <message>", the CLI and the OpenAPI document read the same table.
package apierr

import (
	"errors"
	"fmt"
	"sort"
)

// Code is a catalogue code such as "TM-SESS-4040".
type Code string

// Entry is one row of the catalogue.
type Entry struct {
	Code    Code
	Status  int    // HTTP status; 0 for codes that never form an HTTP error (validate results)
	Message string // default message, safe to show to any caller
}

// The catalogue codes.
const (
	OK             Code = "OK"
	SysMalformed   Code = "TM-SYS-4000"
	SysNoRoute     Code = "TM-SYS-4040"
	SysMethod      Code = "TM-SYS-4050"
	SysBodyTooBig  Code = "TM-SYS-4130"
	SysRateLimited Code = "TM-SYS-4290"
	SysInternal    Code = "TM-SYS-5000"
	SysStorage     Code = "TM-SYS-5001"
	SysNotReady    Code = "TM-SYS-5030"
	SysAuditDown   Code = "TM-SYS-5032"

	ArgInvalid     Code = "TM-ARG-1001"
	ArgMissing     Code = "TM-ARG-1002"
	ArgConflicting Code = "TM-ARG-1003"

	AuthNoCredential  Code = "TM-AUTH-4010"
	AuthBadCredential Code = "TM-AUTH-4011"
	AuthKeyDisabled   Code = "TM-AUTH-4012"
	AuthTimestamp     Code = "TM-AUTH-4014"
	AuthNonceReused   Code = "TM-AUTH-4015"
	AuthReplayHeaders Code = "TM-AUTH-4016"
	AuthForbidden     Code = "TM-AUTH-4030"
	AuthIPNotAllowed  Code = "TM-AUTH-4031"
	AuthIPBlocked     Code = "TM-AUTH-4290"

	SessInvalidField  Code = "TM-SESS-4001"
	SessQuotaExceeded Code = "TM-SESS-4002"
	SessNotFound      Code = "TM-SESS-4040"
	SessExpired       Code = "TM-SESS-4041"
	SessRevoked       Code = "TM-SESS-4042"

	TokenMalformed Code = "TM-TOKN-4000"
	TokenUnknown   Code = "TM-TOKN-4010"
	TokenExpired   Code = "TM-TOKN-4011"
	TokenRevoked   Code = "TM-TOKN-4012"
	TokenConflict  Code = "TM-TOKN-4090"

	AdminNotFound     Code = "TM-ADMIN-4041"
	AdminConflict     Code = "TM-ADMIN-4091"
	AdminUploadTooBig Code = "TM-ADMIN-4130"
	AdminBadBackup    Code = "TM-ADMIN-4221"
	AdminThrottled    Code = "TM-ADMIN-4291"
	AdminBackupFailed Code = "TM-ADMIN-5001"
	AdminMaintenance  Code = "TM-ADMIN-5031"

	ClstNeedsCluster Code = "TM-CLST-4001"
	ClstNodeIDInUse  Code = "TM-CLST-4090"
	ClstIDMismatch   Code = "TM-CLST-4091"
	ClstUnavailable  Code = "TM-CLST-5030"
	ClstTimeout      Code = "TM-CLST-5040"

	CfgInvalid         Code = "TM-CFG-1001"
	CfgOutOfRange      Code = "TM-CFG-1002"
	CfgFileUnreadable  Code = "TM-CFG-1003"
	CfgFilePermissions Code = "TM-CFG-1004"
	CfgConflict        Code = "TM-CFG-1005"
	CfgMissingDep      Code = "TM-CFG-1006"
	CfgBadPEM          Code = "TM-CFG-1007"
	CfgCertExpired     Code = "TM-CFG-1008"
)

var catalogue = []Entry{
	{OK, 200, "success"},
	{SysMalformed, 400, "malformed request"},
	{SysNoRoute, 404, "no such route"},
	{SysMethod, 405, "method not allowed"},
	{SysBodyTooBig, 413, "request body too large"},
	{SysRateLimited, 429, "rate limit exceeded"},
	{SysInternal, 500, "internal error"},
	{SysStorage, 500, "storage failure"},
	{SysNotReady, 503, "node not ready"},
	{SysAuditDown, 503, "audit log unavailable"},
	{ArgInvalid, 400, "invalid argument"},
	{ArgMissing, 400, "required argument missing"},
	{ArgConflicting, 400, "conflicting arguments"},
	{AuthNoCredential, 401, "no credentials"},
	{AuthBadCredential, 401, "invalid credentials"},
	{AuthKeyDisabled, 401, "API key disabled"},
	{AuthTimestamp, 401, "X-Timestamp malformed or outside the allowed window"},
	{AuthNonceReused, 401, "X-Nonce already used"},
	{AuthReplayHeaders, 401, "anti-replay headers required but missing or malformed"},
	{AuthForbidden, 403, "role not permitted"},
	{AuthIPNotAllowed, 403, "client IP not allowed"},
	{AuthIPBlocked, 429, "client IP temporarily blocked"},
	{SessInvalidField, 400, "session field rule violated"},
	{SessQuotaExceeded, 429, "per-user session quota exceeded"},
	{SessNotFound, 404, "session not found"},
	{SessExpired, 404, "session expired"},
	{SessRevoked, 404, "session revoked"},
	{TokenMalformed, 400, "malformed token"},
	{TokenUnknown, 0, "token unknown"},
	{TokenExpired, 0, "token's session expired"},
	{TokenRevoked, 0, "token's session revoked"},
	{TokenConflict, 409, "token already in use"},
	{AdminNotFound, 404, "resource not found"},
	{AdminConflict, 409, "conflicts with an operation in progress"},
	{AdminUploadTooBig, 413, "upload too large"},
	{AdminBadBackup, 422, "backup file rejected"},
	{AdminThrottled, 429, "admin operation throttled"},
	{AdminBackupFailed, 500, "backup or restore failed"},
	{AdminMaintenance, 503, "maintenance: restore in progress"},
	{ClstNeedsCluster, 400, "operation requires cluster mode"},
	{ClstNodeIDInUse, 409, "node ID already used by another member"},
	{ClstIDMismatch, 409, "cluster ID mismatch"},
	{ClstUnavailable, 503, "partition unavailable"},
	{ClstTimeout, 504, "cluster operation timed out"},
	{CfgInvalid, 400, "unknown configuration key or wrong type"},
	{CfgOutOfRange, 400, "configuration value out of range"},
	{CfgFileUnreadable, 400, "configuration file missing or unreadable"},
	{CfgFilePermissions, 400, "unsafe file permissions"},
	{CfgConflict, 400, "conflicting or unsafe configuration"},
	{CfgMissingDep, 400, "missing configuration dependency"},
	{CfgBadPEM, 400, "invalid PEM or certificate/key mismatch"},
	{CfgCertExpired, 400, "certificate expired"},
}

var byCode = func() map[Code]Entry {
	m := make(map[Code]Entry, len(catalogue))
	for _, e := range catalogue {
		m[e.Code] = e
	}
	return m
}()

// Lookup returns the catalogue entry of a code.
func Lookup(c Code) (Entry, bool) {
	e, ok := byCode[c]
	return e, ok
}

// Status returns the HTTP status of a code (500 for unknown codes and for
// validate-only results, which never form an HTTP error).
func (c Code) Status() int {
	if e, ok := byCode[c]; ok && e.Status != 0 {
		return e.Status
	}
	return 500
}

// Message returns the default message of a code.
func (c Code) Message() string {
	if e, ok := byCode[c]; ok {
		return e.Message
	}
	return "internal error"
}

// All returns the catalogue sorted by code.
func All() []Entry {
	out := append([]Entry(nil), catalogue...)
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// Error is a catalogue error at a protocol boundary.
type Error struct {
	Code       Code
	Message    string            // "" = the catalogue message
	Details    map[string]any    // envelope details — never secrets
	RetryAfter int               // seconds; > 0 adds Retry-After
	Headers    map[string]string // extra response headers (e.g. X-Server-Time)
	Err        error             // the internal cause (never rendered)
}

// New returns an *Error with the catalogue message.
func New(c Code) *Error { return &Error{Code: c} }

// Newf returns an *Error with a formatted message.
func Newf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// WithDetail adds one detail and returns e.
func (e *Error) WithDetail(k string, v any) *Error {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	e.Details[k] = v
	return e
}

func (e *Error) Error() string { return string(e.Code) + " " + e.Msg() }

// Msg returns the message shown to the caller.
func (e *Error) Msg() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Code.Message()
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// As extracts an *Error from err, or wraps err as TM-SYS-5000.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: SysInternal, Err: err}
}
