package session

import (
	"sync/atomic"
	"time"
)

// sweepRetryMs is how long the sweeper waits before looking again at a due
// entry of a partition it must not sweep (Config.SweepPartition).
const sweepRetryMs = 1000

type sweepCounters struct {
	rounds         atomic.Int64
	examined       atomic.Int64
	maxRoundExamed atomic.Int64 // most entries examined in any one round
	maxRoundNanos  atomic.Int64 // longest time the shard lock was held for a round
}

func atomicMax(a *atomic.Int64, v int64) {
	for {
		m := a.Load()
		if v <= m || a.CompareAndSwap(m, v) {
			return
		}
	}
}

// Sweep runs one sweeper tick (05-storage §2) over every shard: a round
// examines up to SweepSample heap entries with the earliest event times
// (only entries whose time has come), marks sessions that have expired and
// removes those past expiry + grace and due tombstones, journaling a
// SESSION_EXPIRE for each removal. Another round runs only if more than 25 %
// of the examined entries were due, at most SweepMaxRounds per shard; the
// shard lock is held for one round at a time. It returns the number of
// sessions and tombstones removed.
func (st *Store) Sweep() (removed int) {
	for _, sh := range st.shards {
		if !st.sweepPending(sh) {
			continue
		}
		for round := 0; round < st.cfg.SweepMaxRounds; round++ {
			sh.mu.Lock()
			began := time.Now()
			examined, due, remSess, remTomb := st.sweepRound(sh, st.now())
			held := time.Since(began)
			sh.mu.Unlock()
			removed += remSess + remTomb
			if st.cfg.OnSweepRound != nil {
				st.cfg.OnSweepRound(held, remSess, remTomb)
			}
			st.sweep.rounds.Add(1)
			st.sweep.examined.Add(int64(examined))
			atomicMax(&st.sweep.maxRoundExamed, int64(examined))
			atomicMax(&st.sweep.maxRoundNanos, int64(held))
			if examined == 0 || due*4 <= examined {
				break
			}
		}
	}
	return removed
}

// sweepPending peeks under the read lock so that an idle tick never blocks
// readers.
func (st *Store) sweepPending(sh *shard) bool {
	now := st.now()
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return (len(sh.sheap) > 0 && sh.sheap[0].at <= now) || (len(sh.theap) > 0 && sh.theap[0].at <= now)
}

func (st *Store) sweepable(p uint16) bool {
	return st.cfg.SweepPartition == nil || st.cfg.SweepPartition(p)
}

// sweepRound is one round on one shard (caller holds sh.mu). Stale heap
// items count as due: dropping them is the work the round exists for. It
// returns the expired sessions and the tombstones it removed separately.
func (st *Store) sweepRound(sh *shard, now int64) (examined, due, removedSess, removedTomb int) {
	for examined < st.cfg.SweepSample {
		sOK := len(sh.sheap) > 0 && sh.sheap[0].at <= now
		tOK := len(sh.theap) > 0 && sh.theap[0].at <= now
		if !sOK && !tOK {
			break
		}
		examined++
		if tOK && (!sOK || sh.theap[0].at < sh.sheap[0].at) {
			it := sh.theap.pop()
			tb := sh.tomb(it.ref)
			if !tb.inUse || tb.gen != it.epoch {
				due++
				continue
			}
			if ra := st.tombRemoveAt(tb); ra > now {
				sh.theap.push(hitem{at: ra, ref: it.ref, epoch: it.epoch})
				continue
			}
			if !st.sweepable(tb.part) {
				sh.theap.push(hitem{at: now + sweepRetryMs, ref: it.ref, epoch: it.epoch})
				continue
			}
			st.expireTombLocked(sh, it.ref)
			due++
			removedTomb++
			continue
		}
		it := sh.sheap.pop()
		r := sh.rec(it.ref)
		if r.flags&fInUse == 0 || r.epoch != it.epoch {
			due++ // superseded or freed
			continue
		}
		worked := false
		if r.flags&fMarked == 0 {
			if now <= r.eff() {
				// Touched or renewed since the item was pushed.
				sh.schedule(it.ref, satAdd(r.eff(), 1))
				continue
			}
			r.flags |= fMarked
			sh.nMarked.Add(1)
			worked = true
		}
		if ra := st.removeAt(r); now < ra || !st.sweepable(r.part) {
			if now < ra {
				sh.schedule(it.ref, ra)
			} else {
				sh.schedule(it.ref, now+sweepRetryMs)
			}
		} else {
			st.expireLocked(sh, it.ref)
			removedSess++
			worked = true
		}
		if worked {
			due++
		}
	}
	return examined, due, removedSess, removedTomb
}

// FlushTouches journals the coalesced touches whose session last journaled
// a touch at least 1 s ago (call it every sweeper tick). Pending touches of
// sessions revoked or removed meanwhile are dropped. It returns the number
// of SESSION_TOUCH records written.
func (st *Store) FlushTouches() (written int) {
	for _, sh := range st.shards {
		sh.mu.RLock()
		n := len(sh.pending)
		sh.mu.RUnlock()
		if n == 0 {
			continue
		}
		sh.mu.Lock()
		now := st.now()
		keep := sh.pending[:0]
		for _, ref := range sh.pending {
			r := sh.rec(ref)
			if r.flags&fPending == 0 {
				continue // revoked, removed, already flushed or a duplicate
			}
			if now-r.touchLogged >= 1000 || now < r.touchLogged {
				st.logTouch(r, now)
				written++
				continue
			}
			keep = append(keep, ref)
		}
		if cap(keep) > 1024 && len(keep) < cap(keep)/4 {
			keep = append([]uint32(nil), keep...)
		}
		sh.pending = keep
		sh.mu.Unlock()
	}
	return written
}
