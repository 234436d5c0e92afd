package session

import (
	"errors"
	"hash/maphash"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// QuotaPolicy says what a create does when the user already has
// MaxPerUser live sessions.
type QuotaPolicy uint8

const (
	// QuotaReject fails the create with a *QuotaError.
	QuotaReject QuotaPolicy = iota
	// QuotaEvictOldest revokes the user's live session with the smallest
	// last_active (ties: oldest created_at, then smallest ID) in the same
	// step and lets the create succeed.
	QuotaEvictOldest
)

// Journal receives every accepted change.
type Journal interface {
	// Record is called INSIDE the critical section (shard lock held) for
	// every accepted change, in apply order. It must not block on I/O and
	// must not call back into the Store. It returns the node-wide seq
	// assigned to the record. It may keep r and r.Session (both are
	// immutable once passed).
	Record(r *Record) uint64
}

// Config configures a Store. Zero values select the defaults shown.
type Config struct {
	// Partitions is P, the cluster partition count (default 256, 1..65536).
	Partitions int
	// Shards is the number of lock shards, a power of two in 1..256
	// (default 256; production uses ≥ 64). The shard of a session is the
	// low bits of its token hash's byte 2, which is copied into ID byte 8.
	Shards int
	// MaxPerUser is the per-user live-session quota (default 50).
	MaxPerUser int
	// OnExceed is the quota policy (default QuotaReject).
	OnExceed QuotaPolicy
	// ExpiredGrace is how long expired sessions keep answering "expired"
	// and tombstones "revoked", in ms (default 10_000 when 0; a negative
	// value means no grace at all).
	ExpiredGrace int64
	// TTLDefault, TTLMax and IdleDefault are in seconds (defaults 7200,
	// 2_592_000, 0). TTLDefault must be in 1..TTLMax, IdleDefault in
	// 0..TTLMax.
	TTLDefault, TTLMax, IdleDefault int64
	// SweepSample and SweepMaxRounds tune the sweeper (defaults 20, 4).
	SweepSample, SweepMaxRounds int
	// SweepPartition, when set, limits the sweeper to partitions for which
	// it returns true (the partitions this node is primary of). Expired
	// entries of other partitions wait for replicated SESSION_EXPIRE
	// records. nil sweeps every partition.
	SweepPartition func(p uint16) bool
	// Now returns the wall clock in Unix ms (default time.Now().UnixMilli).
	Now func() int64
	// Journal receives accepted changes; nil disables journaling.
	Journal Journal
	// OnSweepRound, when set, is called after every sweeper round (outside
	// the shard lock) with how long the round held the lock and how many
	// expired sessions and tombstones it removed (metrics). It must not
	// block.
	OnSweepRound func(held time.Duration, expired, tombstones int)
}

// DefaultConfig returns the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{
		Partitions:     256,
		Shards:         256,
		MaxPerUser:     50,
		ExpiredGrace:   10_000,
		TTLDefault:     7200,
		TTLMax:         2_592_000,
		IdleDefault:    0,
		SweepSample:    20,
		SweepMaxRounds: 4,
	}
}

const userStripes = 1024

// userBuckets is the size of Store.userEntries (4 MiB of counters).
const userBuckets = 1 << 20

// userBound is an upper bound of the live sessions of the user whose lUser
// hash is h (the count of list entries in h's bucket).
func (st *Store) userBound(h uint32) int { return int(st.userEntries[h&(userBuckets-1)].Load()) }

type stripe struct {
	sync.Mutex
	_ [56]byte // keep stripes on separate cache lines
}

// Store is the sharded in-memory session store. See the package comment
// for its invariants and docs/locking.md for the lock order.
type Store struct {
	cfg     Config                 // fixed settings; the hot ones live in limits
	limits  atomic.Pointer[Limits] // hot-reloadable (SetLimits)
	grace   int64                  // ms, ≥ 0
	seed    maphash.Seed
	shards  []*shard
	mask    uint32
	now     func() int64
	journal Journal
	stripes []stripe
	// userEntries counts user-list entries (sessions in memory, live or
	// not yet swept) per bucket of user hashes, across all shards: an upper
	// bound of any one user's live sessions. A create whose bound is under
	// the quota skips counting the user's sessions shard by shard.
	userEntries []atomic.Int32
	// pendingShards counts shards whose lists (and user counters) are not
	// built yet; userEntries is only a bound while it is zero.
	pendingShards atomic.Int32

	sweep sweepCounters
}

// NewStore validates cfg, fills in defaults and returns an empty store.
func NewStore(cfg Config) (*Store, error) {
	def := DefaultConfig()
	if cfg.Partitions == 0 {
		cfg.Partitions = def.Partitions
	}
	if cfg.Shards == 0 {
		cfg.Shards = def.Shards
	}
	if cfg.MaxPerUser == 0 {
		cfg.MaxPerUser = def.MaxPerUser
	}
	grace := cfg.ExpiredGrace
	switch {
	case grace == 0:
		grace = def.ExpiredGrace
	case grace < 0:
		grace = 0
	}
	if cfg.TTLDefault == 0 {
		cfg.TTLDefault = def.TTLDefault
	}
	if cfg.TTLMax == 0 {
		cfg.TTLMax = def.TTLMax
	}
	if cfg.SweepSample == 0 {
		cfg.SweepSample = def.SweepSample
	}
	if cfg.SweepMaxRounds == 0 {
		cfg.SweepMaxRounds = def.SweepMaxRounds
	}
	switch {
	case cfg.Partitions < 1 || cfg.Partitions > 1<<16:
		return nil, errors.New("session: Partitions must be in 1..65536")
	case cfg.Shards < 1 || cfg.Shards > 256 || bits.OnesCount(uint(cfg.Shards)) != 1:
		return nil, errors.New("session: Shards must be a power of two in 1..256")
	case cfg.MaxPerUser < 1:
		return nil, errors.New("session: MaxPerUser must be ≥ 1")
	case cfg.OnExceed > QuotaEvictOldest:
		return nil, errors.New("session: unknown quota policy")
	case cfg.TTLMax < 1 || cfg.TTLMax > maxIdleSeconds:
		return nil, errors.New("session: TTLMax out of range")
	case cfg.TTLDefault < 1 || cfg.TTLDefault > cfg.TTLMax:
		return nil, errors.New("session: TTLDefault must be in 1..TTLMax")
	case cfg.IdleDefault < 0 || cfg.IdleDefault > cfg.TTLMax:
		return nil, errors.New("session: IdleDefault must be in 0..TTLMax")
	case cfg.SweepSample < 1 || cfg.SweepMaxRounds < 1:
		return nil, errors.New("session: sweeper sample and rounds must be ≥ 1")
	}
	now := cfg.Now
	if now == nil {
		now = func() int64 { return time.Now().UnixMilli() }
	}
	st := &Store{
		cfg:         cfg,
		grace:       grace,
		seed:        maphash.MakeSeed(),
		mask:        uint32(cfg.Shards - 1),
		now:         now,
		journal:     cfg.Journal,
		stripes:     make([]stripe, userStripes),
		userEntries: make([]atomic.Int32, userBuckets),
	}
	st.limits.Store(&Limits{MaxPerUser: cfg.MaxPerUser, OnExceed: cfg.OnExceed,
		TTLDefault: cfg.TTLDefault, TTLMax: cfg.TTLMax, IdleDefault: cfg.IdleDefault})
	st.shards = make([]*shard, cfg.Shards)
	for i := range st.shards {
		st.shards[i] = newShard(st)
	}
	return st, nil
}

// Limits are the hot-reloadable settings of a Store (08-config §4: session
// quota and TTLs). Each operation reads one consistent Limits value.
type Limits struct {
	MaxPerUser                      int
	OnExceed                        QuotaPolicy
	TTLDefault, TTLMax, IdleDefault int64 // seconds
}

// Limits returns the limits in force.
func (st *Store) Limits() Limits { return *st.limits.Load() }

// SetLimits replaces the quota and TTL limits at once; operations that
// start afterwards use them. Existing sessions keep their expiry and idle
// timeout. It returns an error, and changes nothing, when l is out of
// range (the same rules as NewStore; zero values are not defaults here).
func (st *Store) SetLimits(l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	st.limits.Store(&l)
	return nil
}

// Validate checks l against the rules of NewStore.
func (l Limits) Validate() error {
	switch {
	case l.MaxPerUser < 1:
		return errors.New("session: MaxPerUser must be ≥ 1")
	case l.OnExceed > QuotaEvictOldest:
		return errors.New("session: unknown quota policy")
	case l.TTLMax < 1 || l.TTLMax > maxIdleSeconds:
		return errors.New("session: TTLMax out of range")
	case l.TTLDefault < 1 || l.TTLDefault > l.TTLMax:
		return errors.New("session: TTLDefault must be in 1..TTLMax")
	case l.IdleDefault < 0 || l.IdleDefault > l.TTLMax:
		return errors.New("session: IdleDefault must be in 0..TTLMax")
	}
	return nil
}

// maxIdleSeconds bounds TTLs and idle timeouts so they fit the in-memory
// uint32 and never overflow millisecond arithmetic.
const maxIdleSeconds = 1<<32 - 1

// Config returns the effective configuration (defaults filled in), with
// the limits currently in force.
func (st *Store) Config() Config {
	c := st.cfg
	l := st.limits.Load()
	c.MaxPerUser, c.OnExceed = l.MaxPerUser, l.OnExceed
	c.TTLDefault, c.TTLMax, c.IdleDefault = l.TTLDefault, l.TTLMax, l.IdleDefault
	return c
}

// NumShards returns the number of shards (for RangeShard).
func (st *Store) NumShards() int { return len(st.shards) }

func (st *Store) shardOf(b byte) (int, *shard) {
	i := int(uint32(b) & st.mask)
	return i, st.shards[i]
}

// ---- time rules ----

const (
	stateLive = iota
	stateExpired
	stateGone // past expiry + grace: answers like an unknown session
)

func (r *rec) eff() int64 { return effectiveExpiry(r.expiresAt, r.lastActive, int64(r.idle)) }

// removeAt is the first instant at which r is gone.
func (st *Store) removeAt(r *rec) int64 { return satAdd(satAdd(r.eff(), st.grace), 1) }

func (st *Store) tombRemoveAt(t *tomb) int64 { return satAdd(satAdd(t.expiresAt, st.grace), 1) }

// nextEvent is when the sweeper must next look at r: the first expired
// instant, or its removal once it has been seen expired.
func (st *Store) nextEvent(r *rec) int64 {
	if r.flags&fMarked != 0 {
		return st.removeAt(r)
	}
	return satAdd(r.eff(), 1)
}

func (st *Store) state(r *rec, now int64) int {
	e := r.eff()
	if now <= e {
		return stateLive
	}
	if now >= satAdd(satAdd(e, st.grace), 1) {
		return stateGone
	}
	return stateExpired
}

func (st *Store) tombGone(t *tomb, now int64) bool { return now >= st.tombRemoveAt(t) }

// resolveID finds a non-revoked, non-gone session by ID (revoked → expired
// → live precedence).
func (st *Store) resolveID(sh *shard, id *ID, now int64) (uint32, error) {
	if sh.tByID.len() > 0 {
		if tr, ok := sh.tombByID(id); ok && !st.tombGone(sh.tomb(tr), now) {
			return 0, ErrRevoked
		}
	}
	ref, ok := sh.sessByID(id)
	if !ok {
		return 0, ErrNotFound
	}
	switch st.state(sh.rec(ref), now) {
	case stateGone:
		return 0, ErrNotFound
	case stateExpired:
		return ref, ErrExpired
	}
	return ref, nil
}

func (st *Store) resolveTok(sh *shard, th *TokenHash, now int64) (uint32, error) {
	if sh.tByTok.len() > 0 {
		if _, ok := sh.tombByTokState(th, now, false); ok {
			return 0, ErrRevoked
		}
	}
	ref, ok := sh.sessByTok(th)
	if !ok {
		return 0, ErrNotFound
	}
	switch st.state(sh.rec(ref), now) {
	case stateGone:
		return 0, ErrNotFound
	case stateExpired:
		return ref, ErrExpired
	}
	return ref, nil
}

func (st *Store) record(r *Record) uint64 {
	if st.journal == nil {
		return 0
	}
	return st.journal.Record(r)
}

// ---- create ----

// CreateRequest is a validated-by-the-store create.
type CreateRequest struct {
	Token              string // "" = generate one
	UserID, DeviceID   string
	TTLSeconds         int64
	TTLSet             bool // false → Config.TTLDefault
	IdleTimeoutSeconds int64
	IdleSet            bool // false → Config.IdleDefault
	Data               map[string]string
	IP                 netip.Addr // stored unmapped (IPv4-in-IPv6 → IPv4), without zone
	UserAgent          string     // truncated to 512 bytes at a UTF-8 boundary
	CreatedBy          string     // API key ID or LOCAL_ADMIN, ≤ 128 bytes
}

// CreateResult is the outcome of a successful create.
type CreateResult struct {
	Session   Session
	Token     string // the generated token; "" when the client supplied one
	EvictedID ID     // the session revoked by QuotaEvictOldest, or zero
	Seq       uint64 // seq of the SESSION_PUT record (0 without a journal)
}

type victim struct {
	lastActive, createdAt int64
	id                    ID
	shard                 int
}

// Create validates req, enforces the token rules and the quota, and inserts
// a new live session. It journals, in order: SESSION_EXPIRE for an expired
// session or lapsed tombstone that held the same token, SESSION_REVOKE for
// an evicted session, then SESSION_PUT.
func (st *Store) Create(req CreateRequest) (CreateResult, error) {
	now := st.now()
	if err := CheckUserID(req.UserID); err != nil {
		return CreateResult{}, err
	}
	if err := CheckDeviceID(req.DeviceID); err != nil {
		return CreateResult{}, err
	}
	lim := st.limits.Load()
	ttl := lim.TTLDefault
	if req.TTLSet {
		if req.TTLSeconds < 1 || req.TTLSeconds > lim.TTLMax {
			return CreateResult{}, fieldErr("ttl_seconds", "must be 1..max TTL seconds")
		}
		ttl = req.TTLSeconds
	}
	idle := lim.IdleDefault
	if req.IdleSet {
		if req.IdleTimeoutSeconds < 0 || req.IdleTimeoutSeconds > lim.TTLMax {
			return CreateResult{}, fieldErr("idle_timeout_seconds", "must be 0..max TTL seconds")
		}
		idle = req.IdleTimeoutSeconds
	}
	if len(req.CreatedBy) > MaxCreatedByLen {
		return CreateResult{}, fieldErr("created_by", "must be at most 128 bytes")
	}
	data := emptyData
	if len(req.Data) > 0 {
		var err error
		if data, err = EncodeData(req.Data); err != nil {
			return CreateResult{}, err
		}
	}
	token, generated := req.Token, ""
	if token == "" {
		var err error
		if token, err = GenerateToken(); err != nil {
			return CreateResult{}, err
		}
		generated = token
	} else if !ValidToken(token) {
		return CreateResult{}, ErrTokenMalformed
	}
	th := HashToken(token)
	part := th.Partition(st.cfg.Partitions)
	si, sh := st.shardOf(th[2])
	id, err := NewID(part, th[2], now)
	if err != nil {
		return CreateResult{}, err
	}
	ip := CanonicalAddr(req.IP)
	uaStr := TruncateUserAgent(req.UserAgent)
	ua := intern(uaStr)
	createdBy := intern(req.CreatedBy)

	// Quota: count and insert atomically per user.
	stp := &st.stripes[maphash.String(st.seed, req.UserID)%userStripes]
	stp.Lock()
	defer stp.Unlock()
	evict := lim.OnExceed == QuotaEvictOldest
	var count int
	var cands []victim
	if st.pendingShards.Load() > 0 || st.userBound(st.hashKey(lUser, &ikey{s: req.UserID})) >= lim.MaxPerUser {
		count, cands = st.countLive(req.UserID, now, evict, lim.MaxPerUser)
	}
	var victims []victim
	if count >= lim.MaxPerUser {
		if !evict {
			return CreateResult{}, &QuotaError{Limit: lim.MaxPerUser}
		}
		slices.SortFunc(cands, func(a, b victim) int {
			switch {
			case a.lastActive != b.lastActive:
				return cmpInt(a.lastActive, b.lastActive)
			case a.createdAt != b.createdAt:
				return cmpInt(a.createdAt, b.createdAt)
			}
			return slices.Compare(a.id[:], b.id[:])
		})
		victims = cands[:min(len(cands), count-lim.MaxPerUser+1)]
	}

	// Lock the target shard and every victim's shard in ascending order.
	var lockBuf [4]int
	locked := append(lockBuf[:0], si)
	for _, v := range victims {
		locked = append(locked, v.shard)
	}
	slices.Sort(locked)
	locked = slices.Compact(locked)
	for _, i := range locked {
		st.shards[i].mu.Lock()
	}
	defer func() {
		for j := len(locked) - 1; j >= 0; j-- {
			st.shards[locked[j]].mu.Unlock()
		}
	}()

	// Token conflicts. An expired session or lapsed tombstone holding the
	// token does not conflict; it is removed below.
	staleSess := noRef
	if _, ok := sh.tombByTokState(&th, now, false); ok {
		return CreateResult{}, ErrTokenConflict
	}
	if ref, ok := sh.sessByTok(&th); ok {
		if st.state(sh.rec(ref), now) == stateLive {
			return CreateResult{}, ErrTokenConflict
		}
		staleSess = ref
	}
	for attempt := 0; ; attempt++ {
		_, inSess := sh.sessByID(&id)
		_, inTomb := sh.tombByID(&id)
		if !inSess && !inTomb {
			break
		}
		if attempt == 3 {
			return CreateResult{}, ErrIDCollision
		}
		if id, err = NewID(part, th[2], now); err != nil {
			return CreateResult{}, err
		}
	}

	if !sh.canAllocRec() {
		return CreateResult{}, ErrStoreFull
	}
	for _, v := range victims {
		if !st.shards[v.shard].canAllocTomb() {
			return CreateResult{}, ErrStoreFull
		}
	}

	// Every check passed: apply and journal.
	for {
		tr, ok := sh.tombByTokState(&th, now, true)
		if !ok {
			break
		}
		st.expireTombLocked(sh, tr)
	}
	if staleSess != noRef {
		st.expireLocked(sh, staleSess)
	}
	var res CreateResult
	for _, v := range victims {
		vsh := st.shards[v.shard]
		ref, ok := vsh.sessByID(&v.id)
		if !ok || st.state(vsh.rec(ref), now) != stateLive {
			continue // already gone: the count dropped by itself
		}
		st.revokeLocked(vsh, ref, now)
		if res.EvictedID.IsZero() {
			res.EvictedID = v.id
		}
	}
	s := &Session{
		ID:           id,
		TokenHash:    th,
		UserID:       req.UserID,
		DeviceID:     req.DeviceID,
		IPAddress:    ip,
		UserAgent:    uaStr,
		LastAccessIP: ip,
		LastAccessUA: uaStr,
		CreatedBy:    req.CreatedBy,
		CreatedAt:    now,
		ExpiresAt:    now + ttl*1000,
		LastActive:   now,
		Data:         data,
		IdleTimeout:  idle,
		Version:      1,
	}
	sh.insert(s, ua, ua, createdBy, 0)
	res.Session = *s
	res.Token = generated
	res.Seq = st.record(&Record{Type: RecordPut, Partition: part, Session: s})
	return res, nil
}

func cmpInt(a, b int64) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// countLive counts the user's live sessions across all shards, one shard
// read lock at a time (the caller holds the user's stripe, so the count can
// only fall until it inserts). With collect it returns every live session
// as an eviction candidate; otherwise it stops counting at limit.
func (st *Store) countLive(user string, now int64, collect bool, limit int) (int, []victim) {
	k := ikey{s: user}
	h := st.hashKey(lUser, &k)
	count := 0
	var cands []victim
	for i, sh := range st.shards {
		sh.rlockLists()
		if sh.idx[lUser].len() > 0 {
			for ref := sh.listHeadH(lUser, &k, h); ref != noRef; {
				r := sh.rec(ref)
				if st.state(r, now) == stateLive {
					count++
					if collect {
						cands = append(cands, victim{lastActive: r.lastActive, createdAt: r.createdAt(), id: r.id, shard: i})
					}
				}
				ref = r.links[lUser].next
			}
		}
		sh.mu.RUnlock()
		if !collect && count >= limit {
			break
		}
	}
	return count, cands
}

// CountLive returns the number of live sessions of user on this store (for
// the cluster's scatter count).
func (st *Store) CountLive(user string) int {
	n, _ := st.countLive(user, st.now(), false, int(^uint(0)>>1))
	return n
}

// ---- locked mutations (caller holds the shard lock) ----

// revokeLocked turns a live session into a tombstone. The caller has
// checked sh.canAllocTomb().
func (st *Store) revokeLocked(sh *shard, ref uint32, now int64) uint64 {
	r := sh.rec(ref)
	t := Tombstone{ID: r.id, TokenHash: r.th, UserID: r.user(), ExpiresAt: r.expiresAt, RevokedAt: now, Version: r.version + 1}
	sh.remove(ref)
	sh.insertTomb(&t)
	return st.record(&Record{Type: RecordRevoke, Partition: t.ID.Partition(), Tombstone: t})
}

func (st *Store) expireLocked(sh *shard, ref uint32) uint64 {
	r := sh.rec(ref)
	id, v := r.id, r.version
	sh.remove(ref)
	return st.record(&Record{Type: RecordExpire, Partition: id.Partition(), ID: id, Version: v})
}

func (st *Store) expireTombLocked(sh *shard, ref uint32) uint64 {
	tb := sh.tomb(ref)
	id, v := tb.id, tb.version
	sh.removeTomb(ref)
	return st.record(&Record{Type: RecordExpire, Partition: id.Partition(), ID: id, Version: v})
}

// touchLocked applies a touch to the live session ref. It journals a
// SESSION_TOUCH now if none was journaled for this session in the last
// second, else marks the touch pending for FlushTouches.
func (st *Store) touchLocked(sh *shard, ref uint32, now int64, ip netip.Addr, ua string) uint64 {
	r := sh.rec(ref)
	changed := false
	if now > r.lastActive {
		r.lastActive = now
		changed = true
	}
	if kind, b := packAddr(ip); kind != r.lastIPKind || b != r.lastIP {
		sh.setLastIP(ref, ip)
		changed = true
	}
	if r.lastUA.String() != ua {
		r.lastUA = intern(ua)
		changed = true
	}
	if !changed {
		return 0
	}
	r.version++
	if now-r.touchLogged >= 1000 || now < r.touchLogged {
		return st.logTouch(r, now)
	}
	if r.flags&fPending == 0 {
		r.flags |= fPending
		sh.pending = append(sh.pending, ref)
	}
	return 0
}

func (st *Store) logTouch(r *rec, now int64) uint64 {
	r.touchLogged = now
	r.flags &^= fPending
	return st.record(&Record{Type: RecordTouch, Partition: r.part, Touch: Touch{
		ID:           r.id,
		LastActive:   r.lastActive,
		LastAccessIP: unpackAddr(r.lastIPKind, r.lastIP),
		LastAccessUA: r.lastUA.String(),
		Version:      r.version,
	}})
}

// ---- single-session operations ----

// Get returns the session with the given ID. It has no side effects.
// Errors: ErrNotFound, ErrExpired, ErrRevoked.
func (st *Store) Get(id ID) (Session, error) {
	_, sh := st.shardOf(id[8])
	now := st.now()
	var out Session
	sh.mu.RLock()
	ref, err := st.resolveID(sh, &id, now)
	if err == nil {
		sh.rec(ref).load(&out)
	}
	sh.mu.RUnlock()
	return out, err
}

// Touch sets last_active = max(last_active, now) and the last access IP and
// user agent (truncated) of a live session; the version grows by one if
// anything changed. It returns the session after the touch and the seq of
// the SESSION_TOUCH record when one was written now (0 when none was
// written or the record is coalesced for FlushTouches).
func (st *Store) Touch(id ID, ip netip.Addr, ua string) (Session, uint64, error) {
	_, sh := st.shardOf(id[8])
	ua = TruncateUserAgent(ua)
	var out Session
	sh.mu.Lock()
	now := st.now()
	ref, err := st.resolveID(sh, &id, now)
	if err != nil {
		sh.mu.Unlock()
		return Session{}, 0, err
	}
	seq := st.touchLocked(sh, ref, now, ip, ua)
	sh.rec(ref).load(&out)
	sh.mu.Unlock()
	return out, seq, nil
}

// Validate looks a token up. Errors: ErrTokenMalformed, ErrNotFound,
// ErrExpired, ErrRevoked. With touch it touches a live session (as Touch)
// and returns it after the touch; without touch it takes only a read lock,
// writes nothing and does not allocate.
func (st *Store) Validate(token string, touch bool, ip netip.Addr, ua string) (Session, uint64, error) {
	if !ValidToken(token) {
		return Session{}, 0, ErrTokenMalformed
	}
	th := HashToken(token)
	_, sh := st.shardOf(th[2])
	var out Session
	if !touch {
		now := st.now()
		sh.mu.RLock()
		ref, err := st.resolveTok(sh, &th, now)
		if err == nil {
			sh.rec(ref).load(&out)
		}
		sh.mu.RUnlock()
		return out, 0, err
	}
	ua = TruncateUserAgent(ua)
	sh.mu.Lock()
	now := st.now()
	ref, err := st.resolveTok(sh, &th, now)
	if err != nil {
		sh.mu.Unlock()
		return Session{}, 0, err
	}
	seq := st.touchLocked(sh, ref, now, ip, ua)
	sh.rec(ref).load(&out)
	sh.mu.Unlock()
	return out, seq, nil
}

// Renew sets expires_at = now + ttlSeconds (which may shorten it) and
// last_active = max(last_active, now) on a live session, version +1, and
// journals a SESSION_PUT. ttlSeconds outside 1..TTLMax is a *FieldError
// for "ttl_seconds". Expired and revoked sessions are never renewed.
func (st *Store) Renew(id ID, ttlSeconds int64) (Session, uint64, error) {
	if ttlSeconds < 1 || ttlSeconds > st.limits.Load().TTLMax {
		return Session{}, 0, fieldErr("ttl_seconds", "must be 1..max TTL seconds")
	}
	_, sh := st.shardOf(id[8])
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := st.now()
	ref, err := st.resolveID(sh, &id, now)
	if err != nil {
		return Session{}, 0, err
	}
	r := sh.rec(ref)
	oldNext := st.nextEvent(r)
	r.expiresAt = now + ttlSeconds*1000
	if now > r.lastActive {
		r.lastActive = now
	}
	r.version++
	r.flags &^= fPending // the SESSION_PUT carries the touch fields
	sh.reschedule(ref, oldNext)
	s := new(Session)
	r.load(s)
	seq := st.record(&Record{Type: RecordPut, Partition: r.part, Session: s})
	return *s, seq, nil
}

// Revoke turns a live session into a tombstone (version +1) and journals a
// SESSION_REVOKE; a pending touch is dropped. Unknown, expired and already
// revoked sessions are left alone and reported as revoked == false.
func (st *Store) Revoke(id ID) (revoked bool, seq uint64, err error) {
	_, sh := st.shardOf(id[8])
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := st.now()
	ref, err := st.resolveID(sh, &id, now)
	if err != nil {
		return false, 0, nil
	}
	if !sh.canAllocTomb() {
		return false, 0, ErrStoreFull
	}
	return true, st.revokeLocked(sh, ref, now), nil
}

// RevokeUser revokes every live session of userID except the one with ID
// except (zero = none), shard by shard. It returns how many sessions this
// call revoked and the highest seq written.
func (st *Store) RevokeUser(userID string, except ID) (count int, seq uint64, err error) {
	k := ikey{s: userID}
	for _, sh := range st.shards {
		sh.mu.Lock()
		sh.buildLists()
		now := st.now()
		for ref := sh.listHead(lUser, &k); ref != noRef; {
			r := sh.rec(ref)
			next := r.links[lUser].next
			if r.id != except && st.state(r, now) == stateLive {
				if !sh.canAllocTomb() {
					sh.mu.Unlock()
					return count, seq, ErrStoreFull
				}
				seq = max(seq, st.revokeLocked(sh, ref, now))
				count++
			}
			ref = next
		}
		sh.mu.Unlock()
	}
	return count, seq, nil
}

// Stats counts sessions and tombstones in memory.
type Stats struct {
	// Live is the number of sessions in memory the sweeper has not yet seen
	// expire (it lags real expiry by at most one sweeper tick).
	Live int
	// Expired is the number of expired sessions still in memory.
	Expired int
	// Tombstones is the number of tombstones in memory.
	Tombstones int
}

// Stats returns the counters (atomic reads, no locks, no scan).
func (st *Store) Stats() Stats {
	var s Stats
	for _, sh := range st.shards {
		n, m := sh.nSess.Load(), sh.nMarked.Load()
		s.Live += int(n - m)
		s.Expired += int(m)
		s.Tombstones += int(sh.nTomb.Load())
	}
	return s
}

// DeferLists makes every shard that is empty now build its secondary lists
// (user, device, creator, IPs, partition) on first use instead of per
// insert, for a bulk load (recovery, restore). Lookups by ID and token are
// unaffected; the first reader of a list in a shard builds that shard's
// lists. Call BuildLists once the load is done.
func (st *Store) DeferLists() {
	for _, sh := range st.shards {
		sh.mu.Lock()
		if sh.nSess.Load() == 0 && !sh.listsPending {
			sh.listsPending = true
			st.pendingShards.Add(1)
		}
		sh.mu.Unlock()
	}
}

// BuildLists builds every pending list, one shard at a time under its write
// lock (a few milliseconds per shard for a million sessions), and returns
// early when stop is closed. It is safe to run alongside any operation.
func (st *Store) BuildLists(stop <-chan struct{}) {
	for _, sh := range st.shards {
		select {
		case <-stop:
			return
		default:
		}
		sh.mu.Lock()
		sh.buildLists()
		sh.mu.Unlock()
	}
}

// ListsPending reports how many shards have not built their lists yet.
func (st *Store) ListsPending() int { return int(st.pendingShards.Load()) }

// Reserve sizes the primary indexes for about n sessions in total, so bulk
// loads (recovery, replica sync) do not rehash them over and over.
func (s *Store) Reserve(n int) {
	per := n/len(s.shards) + 1
	size := minTableSize
	for size*3 < per*4 {
		size *= 2
	}
	for _, sh := range s.shards {
		sh.mu.Lock()
		if len(sh.byID.slots) < size {
			sh.byID.resize(size, sh.idHashOf)
			sh.byTok.resize(size, sh.tokHashOf)
		}
		sh.mu.Unlock()
	}
}

// ShardOf returns the shard index of a session ID (the store's routing, for
// callers that parallelize work per shard, such as WAL replay).
func (s *Store) ShardOf(id ID) int { return int(id[8]) & (len(s.shards) - 1) }

// RecordID returns the session a record is about (zero for partition-wide
// records: PARTITION_DROP and RESET).
func (r *Record) RecordID() ID {
	switch r.Type {
	case RecordPut:
		if r.Session != nil {
			return r.Session.ID
		}
	case RecordTouch:
		return r.Touch.ID
	case RecordRevoke:
		return r.Tombstone.ID
	case RecordExpire:
		return r.ID
	}
	return ID{}
}
