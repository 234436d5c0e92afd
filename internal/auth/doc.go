// Package auth is TokMesh's API-key authentication and abuse protection
// (04-security §1–§7): key and secret formats, Argon2id secret hashes, the
// role/permission matrix, the control store that holds key records, the
// authentication pipeline with its cache and per-key rate limits, the per-IP
// brute-force guard, X-Timestamp/X-Nonce anti-replay and client-IP
// resolution behind trusted proxies.
//
// Invariants:
//
//   - Secrets are never stored, logged or kept after a call returns. Only
//     Argon2id PHC hashes are persisted; the auth cache is keyed by
//     SHA-256(key_id ":" secret) and its value holds a key ID and the PHC
//     string that matched, never a secret. Create, Rotate and Emergency are the
//     only functions that return a secret, once. Key's String, GoString,
//     LogValue and MarshalJSON never include hashes.
//   - Every change to the key table is a deterministic Command applied by
//     State.Apply; the standalone Store logs each command (sealed, CRC'd,
//     fsynced) before applying it, so replay yields the same State. Keys are
//     never deleted.
//   - A cache hit skips only Argon2: status, expiry, the matched secret's
//     validity (rotation grace), allowlists and the rate limit are checked
//     against the current key table on every call.
//   - At most MaxConcurrentVerifications (GOMAXPROCS) Argon2 runs at once;
//     unknown key IDs cost one dummy Argon2 run so they answer like a wrong
//     secret. Secret and hash comparisons are constant-time.
//   - The brute-force guard and the nonce cache are bounded: the guard evicts
//     the least recently used IP; the nonce cache never evicts an unexpired
//     nonce and refuses new ones when full.
//
// Error mapping (the catalogue lives elsewhere; this package returns
// sentinels, matched with errors.Is):
//
//	ErrNoCredential      401 TM-AUTH-4010
//	ErrBadCredential     401 TM-AUTH-4011 (malformed, unknown key, wrong secret, expired)
//	ErrKeyDisabled       401 TM-AUTH-4012
//	ErrTimestamp         401 TM-AUTH-4014 (+ X-Server-Time)
//	ErrNonceReused       401 TM-AUTH-4015
//	ErrReplayHeaders     401 TM-AUTH-4016
//	ErrForbidden         403 TM-AUTH-4030
//	ErrIPNotAllowed      403 TM-AUTH-4031
//	BruteForceGuard      429 TM-AUTH-4290 (Retry-After from Blocked)
//	*RateLimitError      429 TM-SYS-4290 (Retry-After = RetryAfter seconds)
//	ErrNonceCacheFull    429 TM-SYS-4290 (Retry-After: 1)
//	*FieldError          400 TM-ARG-1001 (Missing: TM-ARG-1002), details.field
//	ErrNotFound          404 TM-ADMIN-4041
//
// Locking: Store.mu serialises Apply (including its fsync) and calls
// subscribers with it held; subscribers (Authenticator.Update) take only
// their own leaf locks. Authenticator cache shard locks, BruteForceGuard
// shard locks and AntiReplay.mu are leaf locks.
package auth
