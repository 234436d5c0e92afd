package session

// Cursor iteration over live sessions (RESP SCAN, INFO avg_ttl).
//
// A cursor names a position in the store's fixed layout: the shard in the
// high 32 bits and the slab slot (ref) in the low 32. Shards never change
// in number and a session keeps its slot for as long as it lives (slabs
// only grow; a slot is reused only after its session was removed), so a
// scan that walks slots in order returns every session that is live for the
// whole scan exactly once, whatever is created or revoked meanwhile.
// Sessions created or removed during the scan may or may not be returned.
// Cursor 0 starts a scan and a returned 0 ends it.

// scanMinSlots is the least number of slots one Scan call examines before
// it returns (fewer when the store ends first); it bounds the work of a
// call on a sparse store while keeping empty pages rare.
const scanMinSlots = 4096

// Scan calls fn with the ID and effective expiry (Unix ms) of live
// sessions from cursor on, in slot order, holding one shard's read lock at
// a time, and returns the cursor to continue from (0 when the scan is
// complete). It stops after count sessions or after examining about
// max(16×count, 4096) slots, so a call may return fewer than count
// sessions, even none, with a non-zero cursor. fn must not call the Store.
// A cursor past the end ends the scan.
func (st *Store) Scan(cursor uint64, count int, fn func(id ID, expiresAt int64)) uint64 {
	count = max(count, 1)
	budget := max(16*count, scanMinSlots)
	si, ref := cursor>>32, uint32(cursor)
	now := st.now()
	for ; si < uint64(len(st.shards)); si, ref = si+1, 0 {
		var stopped bool
		if ref, stopped = st.scanShard(st.shards[si], ref, now, &count, &budget, fn); stopped {
			return si<<32 | uint64(ref)
		}
	}
	return 0
}

// scanShard visits shard sh's slots from ref on under its read lock,
// calling fn for live sessions and decrementing *count per session and
// *budget per slot. It returns where it stopped and whether it stopped
// before the shard's end because *count or *budget reached 0.
func (st *Store) scanShard(sh *shard, ref uint32, now int64, count, budget *int, fn func(ID, int64)) (uint32, bool) {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	end := uint32(len(sh.chunks)) << chunkBits
	for ; ref < end; ref++ {
		if *count <= 0 || *budget <= 0 {
			return ref, true
		}
		*budget--
		r := sh.rec(ref)
		if r.flags&fInUse != 0 && st.state(r, now) == stateLive {
			fn(r.id, r.eff())
			*count--
		}
	}
	return ref, false
}

// AvgTTL estimates the mean time to effective expiry, in ms, of live
// sessions from a sample of about sample sessions spread over every shard
// (0 when none is live). Like Redis's avg_ttl it is an estimate.
func (st *Store) AvgTTL(sample int) int64 {
	per := max(sample/len(st.shards), 1)
	now := st.now()
	var sum, n int64
	for i := range st.shards {
		if st.shards[i].nSess.Load() == 0 { // nothing to sample: skip the lock
			continue
		}
		count, budget := per, max(16*per, scanMinSlots)
		st.scanShard(st.shards[i], 0, now, &count, &budget, func(_ ID, exp int64) {
			sum += exp - now // live at now: exp ≥ now
			n++
		})
	}
	if n == 0 {
		return 0
	}
	return sum / n
}
