// Package session is TokMesh's domain core: session IDs and tokens, the
// session model and its rules (01-data-model), the binary record codec used
// by the WAL, snapshots and replication, and the sharded in-memory Store
// (05-storage §2–§3). It depends on nothing else in the project.
//
// Invariants of the Store:
//
//   - Routing: a session lives in shard tokenHash[2] & (Shards-1), and its ID
//     carries tokenHash[2] in byte 8 and its partition in bytes 6–7, so the
//     shard is computable from the ID and from the token. A session's entry,
//     its ID and token-hash entries and all its index entries (user, device,
//     created_by, ip_address, last_access_ip, partition) change together
//     under that one shard lock; there is no global lock on any path.
//   - Journal order equals apply order: every accepted change calls
//     Journal.Record exactly once per session changed, inside the critical
//     section that changed memory. Rejected requests change nothing and
//     journal nothing; reads (Get, Validate without touch, List) never
//     journal. Touch records are coalesced to at most one per session per
//     second (FlushTouches writes the pending ones).
//   - States are a pure function of time: a session is live while
//     now ≤ effective expiry (expires_at, or last_active + idle when idle > 0,
//     whichever is first), expired until effective expiry + grace, and
//     unknown afterwards, whether or not the sweeper has removed it yet.
//     Tombstones answer "revoked" until the original expires_at + grace.
//     Precedence: revoked → expired → live.
//   - No resurrection: touch and renew fail on expired and revoked
//     sessions; a tombstone beats any session record of lower or equal
//     version; a SESSION_PUT is ignored while a tombstone exists for the same
//     ID or token hash.
//   - version is 1 at creation and grows by exactly one per accepted change;
//     last_active never decreases; created_at equals the ID's timestamp
//     (LoadSession rejects anything else).
//   - Quota: count and insert happen under a striped per-user lock, so a
//     user never exceeds MaxPerUser live sessions on one store.
//   - Every session has an item in its shard's expiry heap that is due no
//     later than its next event (expiry, then removal); the heap is lazy:
//     touches and extending renews leave the old item, which is re-pushed
//     when popped early; shortening renews push a new one.
//
// CheckInvariants verifies all of this by full scan (tests only).
// docs/locking.md gives the lock order.
package session
