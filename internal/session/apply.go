package session

import "strconv"

// Apply applies a replayed (WAL recovery) or replicated record. It never
// calls the Journal. Version rules of 01-data-model §6: a session record is
// applied only if its version is higher than the stored one; a tombstone
// beats a session with a lower or equal version; a SESSION_PUT is ignored
// while a tombstone exists for the same ID or token hash. Sessions already
// past expires_at + grace and tombstones already due are skipped (and remove
// the older state they supersede); a session whose idle window has lapsed is
// still loaded, because a later SESSION_TOUCH may extend it.
func (st *Store) Apply(r *Record) error {
	switch r.Type {
	case RecordPut:
		if r.Session == nil {
			return corrupt("SESSION_PUT without session")
		}
		return st.LoadSession(r.Session)
	case RecordTouch:
		return st.applyTouch(&r.Touch)
	case RecordRevoke:
		return st.LoadTombstone(r.Tombstone)
	case RecordExpire:
		st.applyExpire(r.ID, r.Version)
		return nil
	case RecordPartitionDrop:
		st.DropPartition(r.Partition)
		return nil
	case RecordReset:
		st.Reset()
		return nil
	}
	return corrupt("unknown record type " + strconv.Itoa(int(r.Type)))
}

func (st *Store) checkIDs(id ID, th *TokenHash) error {
	switch {
	case id.IsZero():
		return corrupt("zero session ID")
	case id[8] != th[2]:
		return corrupt("session ID shard bits do not match the token hash")
	case id.Partition() != th.Partition(st.cfg.Partitions):
		return corrupt("session ID partition does not match the token hash")
	}
	return nil
}

// LoadSession inserts or updates a session from a snapshot or a
// SESSION_PUT record under the rules of Apply.
func (st *Store) LoadSession(s *Session) error {
	return st.loadSession(s, "", intern(s.UserAgent), intern(s.LastAccessUA), intern(s.CreatedBy), st.now())
}

// loadSession is LoadSession with the interned strings, the blob (built
// from s when "") and the current time supplied by the caller. It does not
// retain s or its strings.
func (st *Store) loadSession(s *Session, blob string, ua, lastUA, createdBy istr, now int64) error {
	if err := st.checkIDs(s.ID, &s.TokenHash); err != nil {
		return err
	}
	if s.CreatedAt != s.ID.Time() {
		return corrupt("session created_at differs from its ID timestamp")
	}
	if s.Version == 0 || s.IdleTimeout < 0 || s.IdleTimeout > maxIdleSeconds ||
		len(s.UserID) == 0 || len(s.UserID) > MaxUserIDLen || len(s.DeviceID) > MaxDeviceIDLen {
		return corrupt("session with invalid version, idle timeout, user or device")
	}
	_, sh := st.shardOf(s.TokenHash[2])
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.tombByID(&s.ID); ok {
		return nil
	}
	if _, ok := sh.tombByTok(&s.TokenHash); ok {
		return nil
	}
	in := *s
	if ref, ok := sh.sessByID(&s.ID); ok {
		old := sh.rec(ref)
		if old.th != s.TokenHash {
			return corrupt("session ID reused with another token hash")
		}
		if s.Version <= old.version {
			return nil
		}
		in.LastActive = max(in.LastActive, old.lastActive)
		sh.remove(ref)
	}
	if ref, ok := sh.sessByTok(&s.TokenHash); ok {
		// Another session held this token; the log says it is over.
		sh.remove(ref)
	}
	// Skip only what no later record can bring back: past expires_at +
	// grace. An idle window that looks lapsed may be extended by a later
	// SESSION_TOUCH in the same replay (the session was live when touched);
	// until then lookups treat it as gone and the sweeper removes it.
	if now > satAdd(in.ExpiresAt, st.grace) {
		return nil
	}
	if !sh.canAllocRec() {
		return ErrStoreFull
	}
	if blob == "" {
		blob = blobOf(&in)
	}
	sh.insertBlob(&in, blob, ua, lastUA, createdBy, 0)
	return nil
}

// LoadTombstone inserts or updates a tombstone from a snapshot or a
// SESSION_REVOKE record under the rules of Apply.
func (st *Store) LoadTombstone(t Tombstone) error {
	if err := st.checkIDs(t.ID, &t.TokenHash); err != nil {
		return err
	}
	if t.Version == 0 || len(t.UserID) == 0 {
		return corrupt("tombstone with invalid version or user")
	}
	_, sh := st.shardOf(t.TokenHash[2])
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := st.now()
	if ref, ok := sh.sessByID(&t.ID); ok {
		if sh.rec(ref).version > t.Version {
			return nil // a newer session state wins
		}
		sh.remove(ref)
	}
	if ref, ok := sh.tombByID(&t.ID); ok {
		if t.Version <= sh.tomb(ref).version {
			return nil
		}
		sh.removeTomb(ref)
	}
	if now > satAdd(t.ExpiresAt, st.grace) {
		return nil // already due
	}
	if !sh.canAllocTomb() {
		return ErrStoreFull
	}
	sh.insertTomb(&t)
	return nil
}

func (st *Store) applyTouch(t *Touch) error {
	if t.ID.IsZero() || t.Version == 0 {
		return corrupt("touch without ID or version")
	}
	_, sh := st.shardOf(t.ID[8])
	ua := TruncateUserAgent(t.LastAccessUA)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.tombByID(&t.ID); ok {
		return nil
	}
	ref, ok := sh.sessByID(&t.ID)
	if !ok {
		return nil
	}
	r := sh.rec(ref)
	if t.Version <= r.version {
		return nil
	}
	r.lastActive = max(r.lastActive, t.LastActive)
	sh.setLastIP(ref, t.LastAccessIP)
	if r.lastUA.String() != ua {
		r.lastUA = intern(ua)
	}
	r.version = t.Version
	sh.unmarkIfLive(ref, st.now())
	return nil
}

// unmarkIfLive clears the expired mark when a replicated change made the
// session live again (the primary's clock decides), and reschedules it.
func (sh *shard) unmarkIfLive(ref uint32, now int64) {
	r := sh.rec(ref)
	if r.flags&fMarked != 0 && sh.st.state(r, now) == stateLive {
		oldNext := sh.st.nextEvent(r)
		r.flags &^= fMarked
		sh.nMarked.Add(-1)
		sh.reschedule(ref, oldNext)
	}
}

func (st *Store) applyExpire(id ID, version uint64) {
	_, sh := st.shardOf(id[8])
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ref, ok := sh.sessByID(&id); ok && sh.rec(ref).version <= version {
		sh.remove(ref)
	}
	if ref, ok := sh.tombByID(&id); ok && sh.tomb(ref).version <= version {
		sh.removeTomb(ref)
	}
}

// DropPartition removes every session and tombstone of partition p, shard
// by shard, without journaling (the engine journals PARTITION_DROP). It
// returns how many entries it removed.
func (st *Store) DropPartition(p uint16) (removed int) {
	k := ikey{part: p}
	for _, sh := range st.shards {
		sh.mu.Lock()
		sh.buildLists()
		for ref := sh.listHead(lPart, &k); ref != noRef; {
			next := sh.rec(ref).links[lPart].next
			sh.remove(ref)
			removed++
			ref = next
		}
		for ref := sh.tombPartHead(p); ref != noRef; {
			next := sh.tomb(ref).link.next
			sh.removeTomb(ref)
			removed++
			ref = next
		}
		sh.mu.Unlock()
	}
	return removed
}

// Reset empties the store (restore, RESET records). Pending touches are
// dropped.
func (st *Store) Reset() {
	for _, sh := range st.shards {
		sh.mu.Lock()
		sh.clear()
		sh.mu.Unlock()
	}
}

// RangeShard calls sess for every session and tomb for every tombstone in
// shard i (0 ≤ i < NumShards), holding only that shard's read lock. The
// pointers are valid only during the call; the callbacks must not call the
// Store. Expired sessions still in memory are included. Either callback may
// be nil.
func (st *Store) RangeShard(i int, sess func(*Session), tomb func(*Tombstone)) {
	if i < 0 || i >= len(st.shards) {
		return
	}
	sh := st.shards[i]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if sess != nil && sh.nSess.Load() > 0 {
		var s Session
		for _, c := range sh.chunks {
			for j := range c {
				if r := &c[j]; r.flags&fInUse != 0 {
					r.load(&s)
					sess(&s)
				}
			}
		}
	}
	if tomb != nil && sh.nTomb.Load() > 0 {
		var t Tombstone
		for _, c := range sh.tchunks {
			for j := range c {
				if tb := &c[j]; tb.inUse {
					tb.load(&t)
					tomb(&t)
				}
			}
		}
	}
}

// RangePartition calls sess and tomb for every session and tombstone of
// partition p, visiting each shard under its read lock only (through the
// per-shard partition lists, so the cost is proportional to the partition's
// size plus the shard count). Pointers are valid only during the call; the
// callbacks must not call the Store. Either callback may be nil.
func (st *Store) RangePartition(p uint16, sess func(*Session), tomb func(*Tombstone)) {
	k := ikey{part: p}
	var s Session
	var t Tombstone
	for _, sh := range st.shards {
		sh.rlockLists()
		if sess != nil {
			for ref := sh.listHead(lPart, &k); ref != noRef; {
				r := sh.rec(ref)
				r.load(&s)
				sess(&s)
				ref = r.links[lPart].next
			}
		}
		if tomb != nil {
			for ref := sh.tombPartHead(p); ref != noRef; {
				tb := sh.tomb(ref)
				tb.load(&t)
				tomb(&t)
				ref = tb.link.next
			}
		}
		sh.mu.RUnlock()
	}
}
