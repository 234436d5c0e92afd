package session

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"unique"
	"unsafe"
)

// noRef marks the end of an intrusive list.
const noRef = ^uint32(0)

// Records live in fixed-size chunks so that a shard grows without copying
// (no latency spike, no transient double memory) and refs stay stable.
const (
	chunkBits = 6
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1
)

// Intrusive lists every live session belongs to (when the key is set).
const (
	lUser    = iota // user_id
	lDevice         // device_id (not indexed when "")
	lCreator        // created_by (not indexed when "")
	lIP             // ip_address (not indexed when zero)
	lLastIP         // last_access_ip (not indexed when zero)
	lPart           // partition
	numLists
)

// rec flags.
const (
	fInUse   = 1 << iota
	fMarked  // the sweeper has seen the session expire (counted in Stats.Expired)
	fPending // a touch changed memory after the last journaled state
)

type link struct{ prev, next uint32 }

// istr is an interned string (user agents, created_by): one 8-byte handle
// per session instead of a 16-byte string header plus a copy. The zero
// value is "". Unused strings are collected by the unique package.
type istr struct{ h unique.Handle[string] }

func intern(s string) istr {
	if s == "" {
		return istr{}
	}
	return istr{unique.Make(s)}
}

func (s istr) String() string {
	if s.h == (unique.Handle[string]{}) {
		return ""
	}
	return s.h.Value()
}

// rec is the in-memory form of a session (216 bytes plus one allocation
// holding user ID, device ID and data). IPs are kept as 16 bytes plus a kind
// (0 none, 4, 6).
type rec struct {
	id     ID
	th     TokenHash
	ip     [16]byte
	lastIP [16]byte
	// blob is user_id ‖ device_id ‖ data JSON: one allocation instead of
	// three, and three string/slice headers fewer.
	blob       string
	ua         istr
	lastUA     istr
	createdBy  istr
	expiresAt  int64
	lastActive int64
	version    uint64
	// touchLogged is when the last SESSION_TOUCH record for this session
	// was journaled (0 = never).
	touchLogged int64
	idle        uint32 // seconds
	// epoch validates expiry-heap items: it grows whenever the session's
	// canonical item is replaced and when the slot is freed, so an item is
	// current only if it carries the slot's epoch.
	epoch      uint32
	part       uint16
	userLen    uint8
	devLen     uint8
	ipKind     uint8
	lastIPKind uint8
	flags      uint8
	links      [numLists]link
}

func (r *rec) user() string { return r.blob[:r.userLen] }

// createdAt is the ID's timestamp: the store creates every ID with its
// session's created_at (LoadSession rejects anything else), which saves 8
// bytes per session.
func (r *rec) createdAt() int64 { return r.id.Time() }
func (r *rec) device() string   { return r.blob[r.userLen : int(r.userLen)+int(r.devLen)] }

// data returns the data JSON. The bytes alias the immutable blob string:
// Session.Data is documented as read-only, and its capacity equals its
// length, so an append by a caller copies instead of writing into it.
func (r *rec) data() []byte {
	d := r.blob[int(r.userLen)+int(r.devLen):]
	return unsafe.Slice(unsafe.StringData(d), len(d))
}

// tomb is the in-memory form of a tombstone.
type tomb struct {
	id        ID
	th        TokenHash
	user      string
	expiresAt int64
	revokedAt int64
	version   uint64
	gen       uint32
	inUse     bool
	part      uint16
	link      link // partition list
}

// hitem is an expiry-heap item: at is a time at or before which the sweeper
// must look at the slot again. epoch must equal the session's epoch (or the
// tombstone's gen); other items are stale and dropped when popped.
type hitem struct {
	at         int64
	ref, epoch uint32
}

// shard is one lock domain of the store. Every field is guarded by mu except
// the counters, which are written under mu and read atomically.
type shard struct {
	mu sync.RWMutex
	st *Store

	chunks []*[chunkSize]rec
	free   []uint32
	byID   refTable // sessions by ID
	byTok  refTable // sessions by token hash
	idx    [numLists]refTable
	sheap  expHeap // session expiry order (lazy)
	// pending holds refs of sessions with a coalesced touch not yet
	// journaled; an entry counts only while the slot has fPending (a stale
	// or duplicate entry is dropped by FlushTouches).
	pending []uint32

	tchunks []*[chunkSize]tomb
	tfree   []uint32
	tByID   refTable
	tByTok  refTable
	tPart   refTable // partition → head of the tombstone partition list
	theap   expHeap

	// listsPending: the secondary lists have not been built yet (see
	// buildLists). Guarded by mu.
	listsPending bool

	nSess   atomic.Int64 // sessions in memory (live + expired)
	nMarked atomic.Int64 // sessions the sweeper has seen expire
	nTomb   atomic.Int64
}

func newShard(st *Store) *shard { return &shard{st: st} }

// clear drops every session and tombstone (caller holds mu, which must
// therefore not be overwritten).
func (sh *shard) clear() {
	if sh.listsPending {
		sh.st.pendingShards.Add(-1) // its sessions were never counted
	} else {
		for _, c := range sh.chunks {
			for j := range c {
				if r := &c[j]; r.flags&fInUse != 0 {
					sh.st.userEntries[sh.st.hashKey(lUser, &ikey{s: r.user()})&(userBuckets-1)].Add(-1)
				}
			}
		}
	}
	sh.chunks, sh.free = nil, nil
	sh.byID.reset()
	sh.byTok.reset()
	for l := range sh.idx {
		sh.idx[l].reset()
	}
	sh.sheap, sh.pending = nil, nil
	sh.tchunks, sh.tfree = nil, nil
	sh.tByID.reset()
	sh.tByTok.reset()
	sh.tPart.reset()
	sh.theap = nil
	sh.listsPending = false
	sh.nSess.Store(0)
	sh.nMarked.Store(0)
	sh.nTomb.Store(0)
}

func (sh *shard) rec(ref uint32) *rec { return &sh.chunks[ref>>chunkBits][ref&chunkMask] }

func (sh *shard) tomb(ref uint32) *tomb { return &sh.tchunks[ref>>chunkBits][ref&chunkMask] }

func (sh *shard) canAllocRec() bool {
	return len(sh.free) > 0 || (len(sh.chunks)+1)*chunkSize-1 <= maxRef
}

func (sh *shard) canAllocTomb() bool {
	return len(sh.tfree) > 0 || (len(sh.tchunks)+1)*chunkSize-1 <= maxRef
}

func (sh *shard) allocRec() uint32 {
	if n := len(sh.free); n > 0 {
		ref := sh.free[n-1]
		sh.free = sh.free[:n-1]
		return ref
	}
	base := uint32(len(sh.chunks)) << chunkBits
	sh.chunks = append(sh.chunks, new([chunkSize]rec))
	for i := chunkSize - 1; i > 0; i-- {
		sh.free = append(sh.free, base+uint32(i))
	}
	return base
}

func (sh *shard) allocTomb() uint32 {
	if n := len(sh.tfree); n > 0 {
		ref := sh.tfree[n-1]
		sh.tfree = sh.tfree[:n-1]
		return ref
	}
	base := uint32(len(sh.tchunks)) << chunkBits
	sh.tchunks = append(sh.tchunks, new([chunkSize]tomb))
	for i := chunkSize - 1; i > 0; i-- {
		sh.tfree = append(sh.tfree, base+uint32(i))
	}
	return base
}

// ---- hashing and keys ----

func (st *Store) hashID(id *ID) uint32 { return uint32(maphash.Bytes(st.seed, id[:])) }

func (st *Store) hashTok(th *TokenHash) uint32 { return uint32(maphash.Bytes(st.seed, th[:])) }

// ikey is the key of one index list.
type ikey struct {
	s    string // user, device, created_by
	ip   [16]byte
	kind uint8 // IP kind
	part uint16
}

func (st *Store) hashKey(l int, k *ikey) uint32 {
	switch l {
	case lIP, lLastIP:
		return uint32(maphash.Bytes(st.seed, k.ip[:])) ^ uint32(k.kind)
	case lPart:
		return partHash(k.part)
	default:
		return uint32(maphash.String(st.seed, k.s))
	}
}

func (sh *shard) idHashOf(ref uint32) uint32   { return sh.st.hashID(&sh.rec(ref).id) }
func (sh *shard) tokHashOf(ref uint32) uint32  { return sh.st.hashTok(&sh.rec(ref).th) }
func (sh *shard) tidHashOf(ref uint32) uint32  { return sh.st.hashID(&sh.tomb(ref).id) }
func (sh *shard) ttokHashOf(ref uint32) uint32 { return sh.st.hashTok(&sh.tomb(ref).th) }
func (sh *shard) tpartHashOf(ref uint32) uint32 {
	return partHash(sh.tomb(ref).part)
}

func partHash(p uint16) uint32 {
	h := uint32(p) * 0x9E3779B1
	return h ^ h>>16 // spread high bits into the tag and low bits
}

// listHashOf returns the hashOf function of list l's head table.
func (sh *shard) listHashOf(l int) func(ref uint32) uint32 {
	return func(ref uint32) uint32 {
		k, _ := keyOf(l, sh.rec(ref))
		return sh.st.hashKey(l, &k)
	}
}

// keyOf returns r's key in list l, and false when r is not indexed there.
func keyOf(l int, r *rec) (ikey, bool) {
	switch l {
	case lUser:
		return ikey{s: r.user()}, true
	case lDevice:
		return ikey{s: r.device()}, r.devLen != 0
	case lCreator:
		s := r.createdBy.String()
		return ikey{s: s}, s != ""
	case lIP:
		return ikey{ip: r.ip, kind: r.ipKind}, r.ipKind != 0
	case lLastIP:
		// Indexed only when it differs from ip_address (the common case
		// needs no second entry; IP queries walk both lists).
		return ikey{ip: r.lastIP, kind: r.lastIPKind}, r.lastIPKind != 0 && (r.lastIPKind != r.ipKind || r.lastIP != r.ip)
	default:
		return ikey{part: r.part}, true
	}
}

func matchKey(l int, r *rec, k *ikey) bool {
	switch l {
	case lUser:
		return r.user() == k.s
	case lDevice:
		return r.device() == k.s
	case lCreator:
		return r.createdBy.String() == k.s
	case lIP:
		return r.ipKind == k.kind && r.ip == k.ip
	case lLastIP:
		return r.lastIPKind == k.kind && r.lastIP == k.ip
	default:
		return r.part == k.part
	}
}

// packAddr returns the kind (0, 4, 6) and 16-byte form of a. Zones are
// dropped and IPv4-mapped IPv6 addresses are stored as IPv4.
func packAddr(a netip.Addr) (uint8, [16]byte) {
	if !a.IsValid() {
		return 0, [16]byte{}
	}
	a = a.Unmap()
	if a.Is4() {
		return 4, a.As16()
	}
	return 6, a.As16()
}

func unpackAddr(kind uint8, b [16]byte) netip.Addr {
	switch kind {
	case 4:
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	case 6:
		return netip.AddrFrom16(b)
	}
	return netip.Addr{}
}

// CanonicalAddr returns a as the store keeps it: IPv4-mapped IPv6 unmapped,
// zone removed.
func CanonicalAddr(a netip.Addr) netip.Addr {
	k, b := packAddr(a)
	return unpackAddr(k, b)
}

// ---- lookups ----

func (sh *shard) sessByID(id *ID) (uint32, bool) {
	_, ref, ok := sh.byID.find(sh.st.hashID(id), func(ref uint32) bool { return sh.rec(ref).id == *id })
	return ref, ok
}

func (sh *shard) sessByTok(th *TokenHash) (uint32, bool) {
	_, ref, ok := sh.byTok.find(sh.st.hashTok(th), func(ref uint32) bool { return sh.rec(ref).th == *th })
	return ref, ok
}

func (sh *shard) tombByID(id *ID) (uint32, bool) {
	_, ref, ok := sh.tByID.find(sh.st.hashID(id), func(ref uint32) bool { return sh.tomb(ref).id == *id })
	return ref, ok
}

func (sh *shard) tombByTok(th *TokenHash) (uint32, bool) {
	_, ref, ok := sh.tByTok.find(sh.st.hashTok(th), func(ref uint32) bool { return sh.tomb(ref).th == *th })
	return ref, ok
}

// tombByTokState finds a tombstone for th that is gone (lapsed) or not.
// Several tombstones can share a token hash only transiently during replay,
// so lookups must not stop at the first one.
func (sh *shard) tombByTokState(th *TokenHash, now int64, gone bool) (uint32, bool) {
	_, ref, ok := sh.tByTok.find(sh.st.hashTok(th), func(ref uint32) bool {
		tb := sh.tomb(ref)
		return tb.th == *th && sh.st.tombGone(tb, now) == gone
	})
	return ref, ok
}

// listHead returns the first session in list l with key k.
func (sh *shard) listHead(l int, k *ikey) uint32 {
	return sh.listHeadH(l, k, sh.st.hashKey(l, k))
}

// listHeadH is listHead with the key's hash precomputed (the seed is the
// same for every shard). The lists must have been built (buildLists under
// the write lock, or rlockLists).
func (sh *shard) listHeadH(l int, k *ikey, h uint32) uint32 {
	if sh.listsPending {
		// A caller that forgot buildLists/rlockLists would silently see
		// empty lists; that is a bug in this package, never input.
		panic("session: list read before the shard's lists were built")
	}
	_, ref, ok := sh.idx[l].find(h, func(ref uint32) bool { return matchKey(l, sh.rec(ref), k) })
	if !ok {
		return noRef
	}
	return ref
}

// ---- intrusive lists ----

// The secondary lists (user, device, creator, IPs, partition) of a shard
// filled by a bulk load are built on first use instead of per insert:
// linking costs a random memory access per list per session, which was a
// third of recovery time, and a node can serve validations (which use only
// byID/byTok) before any list is needed. Store.DeferLists marks the empty
// shards; while listsPending is set, link and unlink do nothing — not even
// the per-user counters, so quota checks count exactly (countLive, which
// builds the lists) while any shard is pending; every reader of a list
// builds the shard's lists first, under
// the write lock (buildLists) — the lists of a shard are thus either
// complete or absent, never partial. Store.BuildLists builds the remaining
// shards in the background once the node is up.

// buildLists builds the shard's pending lists (caller holds mu for
// writing). It is a no-op once they exist.
func (sh *shard) buildLists() {
	if !sh.listsPending {
		return
	}
	sh.listsPending = false
	for ci, c := range sh.chunks {
		for j := range c {
			r := &c[j]
			if r.flags&fInUse == 0 {
				continue
			}
			ref := uint32(ci)<<chunkBits | uint32(j)
			for l := range numLists {
				if k, ok := keyOf(l, r); ok {
					h := sh.st.hashKey(l, &k)
					if l == lUser {
						sh.st.userEntries[h&(userBuckets-1)].Add(1)
					}
					sh.attach(l, ref, &k, h)
				}
			}
		}
	}
	sh.st.pendingShards.Add(-1)
}

// rlockLists read-locks the shard with its lists built, taking the write
// lock once to build them if needed.
func (sh *shard) rlockLists() {
	sh.mu.RLock()
	for sh.listsPending {
		sh.mu.RUnlock()
		sh.mu.Lock()
		sh.buildLists()
		sh.mu.Unlock()
		sh.mu.RLock()
	}
}

func (sh *shard) link(l int, ref uint32) {
	r := sh.rec(ref)
	r.links[l] = link{noRef, noRef}
	if sh.listsPending {
		return
	}
	k, ok := keyOf(l, r)
	if !ok {
		return
	}
	h := sh.st.hashKey(l, &k)
	if l == lUser {
		sh.st.userEntries[h&(userBuckets-1)].Add(1)
	}
	sh.attach(l, ref, &k, h)
}

// attach adds ref to list l under key k (hash h); counters are the
// caller's business.
func (sh *shard) attach(l int, ref uint32, k *ikey, h uint32) {
	r := sh.rec(ref)
	_, head, found := sh.idx[l].find(h, func(x uint32) bool { return matchKey(l, sh.rec(x), k) })
	if !found {
		sh.idx[l].insert(h, ref, sh.listHashOf(l))
		return
	}
	// Insert after the head so the table entry stays put.
	hr := sh.rec(head)
	next := hr.links[l].next
	r.links[l] = link{prev: head, next: next}
	hr.links[l].next = ref
	if next != noRef {
		sh.rec(next).links[l].prev = ref
	}
}

func (sh *shard) unlink(l int, ref uint32) {
	if sh.listsPending {
		return // never linked nor counted
	}
	r := sh.rec(ref)
	k, ok := keyOf(l, r)
	if !ok {
		return
	}
	var h uint32
	hashed := l == lUser
	if hashed {
		h = sh.st.hashKey(l, &k)
		sh.st.userEntries[h&(userBuckets-1)].Add(-1)
	}
	lk := r.links[l]
	r.links[l] = link{noRef, noRef}
	if lk.prev != noRef {
		sh.rec(lk.prev).links[l].next = lk.next
		if lk.next != noRef {
			sh.rec(lk.next).links[l].prev = lk.prev
		}
		return
	}
	if !hashed {
		h = sh.st.hashKey(l, &k) // only the list head's table entry needs it
	}
	pos, _, found := sh.idx[l].find(h, func(x uint32) bool { return x == ref })
	if !found {
		return // unreachable while invariants hold
	}
	if lk.next == noRef {
		sh.idx[l].deleteAt(pos, sh.listHashOf(l))
		return
	}
	sh.idx[l].set(pos, lk.next)
	sh.rec(lk.next).links[l].prev = noRef
}

// ---- session lifecycle (caller holds mu) ----

// insert stores s as a new session. The caller has checked that neither its
// ID nor its token hash is present, that a slot is available (canAllocRec)
// and that user and device IDs are at most 255 bytes. ua, lastUA and
// createdBy are the interned forms of the corresponding fields of s.
func (sh *shard) insert(s *Session, ua, lastUA, createdBy istr, touchLogged int64) uint32 {
	return sh.insertBlob(s, blobOf(s), ua, lastUA, createdBy, touchLogged)
}

// blobOf returns the record blob of s: user ID, device ID and data JSON.
func blobOf(s *Session) string {
	data := s.Data
	if len(data) == 0 {
		data = emptyData
	}
	return s.UserID + s.DeviceID + string(data)
}

// insertBlob is insert with the blob (blobOf(s)) already built.
func (sh *shard) insertBlob(s *Session, blob string, ua, lastUA, createdBy istr, touchLogged int64) uint32 {
	ref := sh.allocRec()
	r := sh.rec(ref)
	epoch := r.epoch
	*r = rec{
		id:          s.ID,
		th:          s.TokenHash,
		blob:        blob,
		ua:          ua,
		lastUA:      lastUA,
		createdBy:   createdBy,
		expiresAt:   s.ExpiresAt,
		lastActive:  s.LastActive,
		version:     s.Version,
		touchLogged: touchLogged,
		idle:        uint32(s.IdleTimeout),
		epoch:       epoch,
		part:        s.ID.Partition(),
		userLen:     uint8(len(s.UserID)),
		devLen:      uint8(len(s.DeviceID)),
		flags:       fInUse,
	}
	r.ipKind, r.ip = packAddr(s.IPAddress)
	r.lastIPKind, r.lastIP = packAddr(s.LastAccessIP)
	sh.byID.insert(sh.st.hashID(&r.id), ref, sh.idHashOf)
	sh.byTok.insert(sh.st.hashTok(&r.th), ref, sh.tokHashOf)
	for l := 0; l < numLists; l++ {
		sh.link(l, ref)
	}
	sh.schedule(ref, sh.st.nextEvent(r))
	sh.nSess.Add(1)
	return ref
}

// remove deletes a session from memory and every index.
func (sh *shard) remove(ref uint32) {
	r := sh.rec(ref)
	for l := 0; l < numLists; l++ {
		sh.unlink(l, ref)
	}
	if pos, _, ok := sh.byID.find(sh.st.hashID(&r.id), func(x uint32) bool { return x == ref }); ok {
		sh.byID.deleteAt(pos, sh.idHashOf)
	}
	if pos, _, ok := sh.byTok.find(sh.st.hashTok(&r.th), func(x uint32) bool { return x == ref }); ok {
		sh.byTok.deleteAt(pos, sh.tokHashOf)
	}
	if r.flags&fMarked != 0 {
		sh.nMarked.Add(-1)
	}
	sh.nSess.Add(-1)
	*r = rec{epoch: r.epoch + 1} // drop pointers for the GC; heap items and pending entries go stale
	sh.free = append(sh.free, ref)
}

// setLastIP moves r between last_access_ip lists.
func (sh *shard) setLastIP(ref uint32, a netip.Addr) {
	r := sh.rec(ref)
	kind, b := packAddr(a)
	if kind == r.lastIPKind && b == r.lastIP {
		return
	}
	sh.unlink(lLastIP, ref)
	r.lastIPKind, r.lastIP = kind, b
	sh.link(lLastIP, ref)
}

// schedule makes a new canonical heap item for ref at at; any older item
// goes stale.
func (sh *shard) schedule(ref uint32, at int64) {
	r := sh.rec(ref)
	r.epoch++
	sh.sheap.push(hitem{at: at, ref: ref, epoch: r.epoch})
}

// reschedule pushes a new heap item when r's next event moved earlier than
// oldNext, its next event before the change (renew shortening, replicated
// changes). The canonical item is due no later than oldNext, so later events
// need nothing: the old item pops early and is re-pushed lazily.
func (sh *shard) reschedule(ref uint32, oldNext int64) {
	if ev := sh.st.nextEvent(sh.rec(ref)); ev < oldNext {
		sh.schedule(ref, ev)
	}
}

// load copies r into out. Strings and data are shared, not copied.
func (r *rec) load(out *Session) {
	*out = Session{
		ID:           r.id,
		TokenHash:    r.th,
		UserID:       r.user(),
		DeviceID:     r.device(),
		IPAddress:    unpackAddr(r.ipKind, r.ip),
		UserAgent:    r.ua.String(),
		LastAccessIP: unpackAddr(r.lastIPKind, r.lastIP),
		LastAccessUA: r.lastUA.String(),
		CreatedBy:    r.createdBy.String(),
		CreatedAt:    r.createdAt(),
		ExpiresAt:    r.expiresAt,
		LastActive:   r.lastActive,
		Data:         r.data(),
		IdleTimeout:  int64(r.idle),
		Version:      r.version,
	}
}

// ---- tombstones (caller holds mu) ----

func (sh *shard) insertTomb(t *Tombstone) uint32 {
	ref := sh.allocTomb()
	tb := sh.tomb(ref)
	gen := tb.gen
	*tb = tomb{
		id:        t.ID,
		th:        t.TokenHash,
		user:      t.UserID,
		expiresAt: t.ExpiresAt,
		revokedAt: t.RevokedAt,
		version:   t.Version,
		gen:       gen,
		inUse:     true,
		part:      t.ID.Partition(),
		link:      link{noRef, noRef},
	}
	sh.tByID.insert(sh.st.hashID(&tb.id), ref, sh.tidHashOf)
	sh.tByTok.insert(sh.st.hashTok(&tb.th), ref, sh.ttokHashOf)
	h := partHash(tb.part)
	if _, head, ok := sh.tPart.find(h, func(x uint32) bool { return sh.tomb(x).part == tb.part }); ok {
		ht := sh.tomb(head)
		next := ht.link.next
		tb.link = link{prev: head, next: next}
		ht.link.next = ref
		if next != noRef {
			sh.tomb(next).link.prev = ref
		}
	} else {
		sh.tPart.insert(h, ref, sh.tpartHashOf)
	}
	sh.theap.push(hitem{at: sh.st.tombRemoveAt(tb), ref: ref, epoch: gen})
	sh.nTomb.Add(1)
	return ref
}

func (sh *shard) removeTomb(ref uint32) {
	tb := sh.tomb(ref)
	if pos, _, ok := sh.tByID.find(sh.st.hashID(&tb.id), func(x uint32) bool { return x == ref }); ok {
		sh.tByID.deleteAt(pos, sh.tidHashOf)
	}
	if pos, _, ok := sh.tByTok.find(sh.st.hashTok(&tb.th), func(x uint32) bool { return x == ref }); ok {
		sh.tByTok.deleteAt(pos, sh.ttokHashOf)
	}
	lk := tb.link
	if lk.prev != noRef {
		sh.tomb(lk.prev).link.next = lk.next
		if lk.next != noRef {
			sh.tomb(lk.next).link.prev = lk.prev
		}
	} else if pos, _, ok := sh.tPart.find(partHash(tb.part), func(x uint32) bool { return x == ref }); ok {
		if lk.next == noRef {
			sh.tPart.deleteAt(pos, sh.tpartHashOf)
		} else {
			sh.tPart.set(pos, lk.next)
			sh.tomb(lk.next).link.prev = noRef
		}
	}
	sh.nTomb.Add(-1)
	gen := tb.gen + 1
	*tb = tomb{gen: gen}
	sh.tfree = append(sh.tfree, ref)
}

func (tb *tomb) load(out *Tombstone) {
	*out = Tombstone{
		ID:        tb.id,
		TokenHash: tb.th,
		UserID:    tb.user,
		ExpiresAt: tb.expiresAt,
		RevokedAt: tb.revokedAt,
		Version:   tb.version,
	}
}

// tombPartHead returns the first tombstone of partition p.
func (sh *shard) tombPartHead(p uint16) uint32 {
	_, ref, ok := sh.tPart.find(partHash(p), func(x uint32) bool { return sh.tomb(x).part == p })
	if !ok {
		return noRef
	}
	return ref
}

// ---- expiry heap ----

// expHeap is a binary min-heap of hitems ordered by at.
type expHeap []hitem

func (h *expHeap) push(it hitem) {
	*h = append(*h, it)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].at <= s[i].at {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *expHeap) pop() hitem {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s[r].at < s[l].at {
			m = r
		}
		if s[i].at <= s[m].at {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	// Give memory back after a mass expiry.
	if cap(s) > 1024 && n < cap(s)/4 {
		s = append(make(expHeap, 0, cap(s)/2), s...)
	}
	*h = s
	return top
}
