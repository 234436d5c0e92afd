package session

import (
	"fmt"
	"sync/atomic"
)

// CheckInvariants rebuilds every index of every shard by a full scan and
// compares it with the maintained one; it also checks the routing bits, the
// expiry heaps, pending touches and the counters. It is meant for tests: it
// holds each shard's read lock for a full scan.
func (st *Store) CheckInvariants() error {
	entries := map[uint32]int32{}
	pending, pendingBefore := 0, st.ListsPending()
	for i, sh := range st.shards {
		sh.mu.RLock()
		if sh.listsPending {
			pending++
		}
		err := st.checkShard(i, sh)
		for _, c := range sh.chunks {
			if sh.listsPending {
				break // not counted until its lists are built
			}
			for j := range c {
				if r := &c[j]; r.flags&fInUse != 0 {
					entries[st.hashKey(lUser, &ikey{s: r.user()})&(userBuckets-1)]++
				}
			}
		}
		sh.mu.RUnlock()
		if err != nil {
			return fmt.Errorf("shard %d: %w", i, err)
		}
	}
	// A concurrent BuildLists (the engine's, after recovery) may build
	// shards during the scan: the scan count then lies between the counter
	// before and after, and the user counters cannot be compared.
	pendingAfter := st.ListsPending()
	if pending > pendingBefore || pending < pendingAfter {
		return fmt.Errorf("%d shards pending, the counter says %d before the scan and %d after", pending, pendingBefore, pendingAfter)
	}
	if pendingAfter != pendingBefore {
		return nil
	}
	// The per-user bound counts exactly the user-list entries. Every
	// bucket holding entries is checked each time; all 1M buckets (that no
	// other bucket is off) on every 32nd call, to keep property tests fast.
	for b, want := range entries {
		if got := st.userEntries[b].Load(); got != want {
			return fmt.Errorf("user bucket %d counts %d entries, the shards hold %d", b, got, want)
		}
	}
	if invariantCalls.Add(1)%32 == 1 {
		for b := range st.userEntries {
			if got, want := st.userEntries[b].Load(), entries[uint32(b)]; got != want {
				return fmt.Errorf("user bucket %d counts %d entries, the shards hold %d", b, got, want)
			}
		}
	}
	return nil
}

var invariantCalls atomic.Uint64

func (st *Store) checkShard(si int, sh *shard) error {
	// ---- sessions: slab and free list ----
	var live []uint32
	marked := 0
	freeSet := map[uint32]bool{}
	for _, ref := range sh.free {
		if freeSet[ref] {
			return fmt.Errorf("ref %d twice in free list", ref)
		}
		freeSet[ref] = true
	}
	for c := range sh.chunks {
		for j := 0; j < chunkSize; j++ {
			ref := uint32(c<<chunkBits | j)
			r := sh.rec(ref)
			if r.flags&fInUse == 0 {
				if !freeSet[ref] {
					return fmt.Errorf("ref %d neither used nor free", ref)
				}
				continue
			}
			if freeSet[ref] {
				return fmt.Errorf("ref %d used and free", ref)
			}
			live = append(live, ref)
			if r.flags&fMarked != 0 {
				marked++
			}
		}
	}
	if int64(len(live)) != sh.nSess.Load() || int64(marked) != sh.nMarked.Load() {
		return fmt.Errorf("counters sess=%d marked=%d, scan %d/%d", sh.nSess.Load(), sh.nMarked.Load(), len(live), marked)
	}

	// ---- primary tables ----
	if sh.byID.len() != len(live) || sh.byTok.len() != len(live) {
		return fmt.Errorf("byID %d byTok %d entries for %d sessions", sh.byID.len(), sh.byTok.len(), len(live))
	}
	toks := map[TokenHash]bool{}
	for _, ref := range live {
		r := sh.rec(ref)
		if int(uint32(r.th[2])&st.mask) != si || r.id[8] != r.th[2] {
			return fmt.Errorf("session %s in wrong shard", r.id)
		}
		if r.part != r.id.Partition() || r.part != r.th.Partition(st.cfg.Partitions) {
			return fmt.Errorf("session %s partition mismatch", r.id)
		}
		if r.version == 0 || !validData(r.data()) || int(r.userLen)+int(r.devLen) > len(r.blob) {
			return fmt.Errorf("session %s has version 0 or bad data", r.id)
		}
		if got, ok := sh.sessByID(&r.id); !ok || got != ref {
			return fmt.Errorf("session %s not found by ID", r.id)
		}
		if got, ok := sh.sessByTok(&r.th); !ok || got != ref {
			return fmt.Errorf("session %s not found by token hash", r.id)
		}
		if toks[r.th] {
			return fmt.Errorf("two sessions share a token hash")
		}
		toks[r.th] = true
		if _, ok := sh.tombByID(&r.id); ok {
			return fmt.Errorf("session %s is also a tombstone", r.id)
		}
	}
	var terr error
	sh.byID.each(func(tag, ref uint32) {
		if r := sh.rec(ref); terr == nil && (r.flags&fInUse == 0 || st.hashID(&r.id)&^refMask != tag) {
			terr = fmt.Errorf("byID entry %d stale", ref)
		}
	})
	sh.byTok.each(func(tag, ref uint32) {
		if r := sh.rec(ref); terr == nil && (r.flags&fInUse == 0 || st.hashTok(&r.th)&^refMask != tag) {
			terr = fmt.Errorf("byTok entry %d stale", ref)
		}
	})
	if terr != nil {
		return terr
	}

	// ---- secondary lists ----
	if err := st.checkLists(sh, live); err != nil {
		return err
	}

	// ---- expiry heap ----
	if err := checkHeap(sh.sheap); err != nil {
		return fmt.Errorf("session heap: %w", err)
	}
	type refEpoch struct{ ref, epoch uint32 }
	items := map[refEpoch]int64{}
	for _, it := range sh.sheap {
		if _, dup := items[refEpoch{it.ref, it.epoch}]; dup && sh.rec(it.ref).epoch == it.epoch {
			return fmt.Errorf("two current heap items for ref %d", it.ref)
		}
		items[refEpoch{it.ref, it.epoch}] = it.at
	}
	for _, ref := range live {
		r := sh.rec(ref)
		at, ok := items[refEpoch{ref, r.epoch}]
		if !ok {
			return fmt.Errorf("session %s has no current heap item", r.id)
		}
		if st.cfg.SweepPartition == nil && at > st.nextEvent(r) {
			return fmt.Errorf("session %s scheduled at %d after its next event %d", r.id, at, st.nextEvent(r))
		}
	}

	// ---- pending touches ----
	pend := map[uint32]bool{}
	for _, ref := range sh.pending {
		pend[ref] = true
	}
	for _, ref := range live {
		if r := sh.rec(ref); r.flags&fPending != 0 && !pend[ref] {
			return fmt.Errorf("session %s pending but not queued", r.id)
		}
	}

	// ---- tombstones ----
	var tombs []uint32
	tfree := map[uint32]bool{}
	for _, ref := range sh.tfree {
		if tfree[ref] {
			return fmt.Errorf("tomb ref %d twice in free list", ref)
		}
		tfree[ref] = true
	}
	for c := range sh.tchunks {
		for j := 0; j < chunkSize; j++ {
			ref := uint32(c<<chunkBits | j)
			if sh.tomb(ref).inUse == tfree[ref] {
				return fmt.Errorf("tomb ref %d used=%v free=%v", ref, sh.tomb(ref).inUse, tfree[ref])
			}
			if sh.tomb(ref).inUse {
				tombs = append(tombs, ref)
			}
		}
	}
	if int64(len(tombs)) != sh.nTomb.Load() || sh.tByID.len() != len(tombs) || sh.tByTok.len() != len(tombs) {
		return fmt.Errorf("tombstone counts: counter %d byID %d byTok %d scan %d", sh.nTomb.Load(), sh.tByID.len(), sh.tByTok.len(), len(tombs))
	}
	titems := map[[2]uint32]bool{}
	if err := checkHeap(sh.theap); err != nil {
		return fmt.Errorf("tombstone heap: %w", err)
	}
	for _, it := range sh.theap {
		titems[[2]uint32{it.ref, it.epoch}] = true
	}
	parts := map[uint16]int{}
	for _, ref := range tombs {
		tb := sh.tomb(ref)
		if int(uint32(tb.th[2])&st.mask) != si || tb.id[8] != tb.th[2] || tb.part != tb.id.Partition() {
			return fmt.Errorf("tombstone %s misplaced", tb.id)
		}
		if got, ok := sh.tombByID(&tb.id); !ok || got != ref {
			return fmt.Errorf("tombstone %s not found by ID", tb.id)
		}
		found := false
		sh.tByTok.find(st.hashTok(&tb.th), func(x uint32) bool { found = found || x == ref; return false })
		if !found {
			return fmt.Errorf("tombstone %s not found by token hash", tb.id)
		}
		if !titems[[2]uint32{ref, tb.gen}] {
			return fmt.Errorf("tombstone %s has no heap item", tb.id)
		}
		parts[tb.part]++
	}
	if sh.tPart.len() != len(parts) {
		return fmt.Errorf("tombstone partition heads %d, want %d", sh.tPart.len(), len(parts))
	}
	for p, want := range parts {
		n, prev := 0, noRef
		for ref := sh.tombPartHead(p); ref != noRef; ref = sh.tomb(ref).link.next {
			tb := sh.tomb(ref)
			if !tb.inUse || tb.part != p || tb.link.prev != prev || n > len(tombs) {
				return fmt.Errorf("tombstone partition list %d broken", p)
			}
			prev = ref
			n++
		}
		if n != want {
			return fmt.Errorf("tombstone partition list %d: %d members, want %d", p, n, want)
		}
	}
	return nil
}

func checkHeap(h expHeap) error {
	for i := 1; i < len(h); i++ {
		if h[(i-1)/2].at > h[i].at {
			return fmt.Errorf("heap order broken at %d", i)
		}
	}
	return nil
}

// checkLists compares the shard's secondary lists with what the live
// sessions would build.
func (st *Store) checkLists(sh *shard, live []uint32) error {
	if sh.listsPending {
		// Not built yet: nothing may be linked (buildLists starts from
		// empty lists).
		for l := range numLists {
			if sh.idx[l].len() != 0 {
				return fmt.Errorf("list %d: %d heads while the lists are pending", l, sh.idx[l].len())
			}
		}
		for _, ref := range live {
			for l, lk := range sh.rec(ref).links {
				if lk != (link{noRef, noRef}) {
					return fmt.Errorf("list %d: session %s linked while the lists are pending", l, sh.rec(ref).id)
				}
			}
		}
		return nil
	}
	for l := 0; l < numLists; l++ {
		want := map[ikey]map[uint32]bool{}
		for _, ref := range live {
			r := sh.rec(ref)
			k, ok := keyOf(l, r)
			if !ok {
				if r.links[l] != (link{noRef, noRef}) {
					return fmt.Errorf("list %d: unindexed session %s has links", l, r.id)
				}
				continue
			}
			if want[k] == nil {
				want[k] = map[uint32]bool{}
			}
			want[k][ref] = true
		}
		if sh.idx[l].len() != len(want) {
			return fmt.Errorf("list %d: %d heads for %d keys", l, sh.idx[l].len(), len(want))
		}
		seenKey := map[ikey]bool{}
		var lerr error
		sh.idx[l].each(func(tag, head uint32) {
			if lerr != nil {
				return
			}
			hr := sh.rec(head)
			if hr.flags&fInUse == 0 {
				lerr = fmt.Errorf("list %d: head %d not in use", l, head)
				return
			}
			k, _ := keyOf(l, hr)
			if st.hashKey(l, &k)&^refMask != tag {
				lerr = fmt.Errorf("list %d: head hash mismatch", l)
				return
			}
			if seenKey[k] {
				lerr = fmt.Errorf("list %d: key has two heads", l)
				return
			}
			seenKey[k] = true
			if hr.links[l].prev != noRef {
				lerr = fmt.Errorf("list %d: head has a prev", l)
				return
			}
			n, prev := 0, noRef
			for ref := head; ref != noRef; ref = sh.rec(ref).links[l].next {
				r := sh.rec(ref)
				if r.links[l].prev != prev || !want[k][ref] || n > len(live) {
					lerr = fmt.Errorf("list %d: broken at ref %d", l, ref)
					return
				}
				prev = ref
				n++
			}
			if n != len(want[k]) {
				lerr = fmt.Errorf("list %d: %d members, want %d", l, n, len(want[k]))
			}
		})
		if lerr != nil {
			return lerr
		}
	}
	return nil
}
