package session

import (
	"bytes"
	"net/netip"
	"slices"
)

// Paging defaults of 02-http-api §2 (the HTTP layer validates the ranges).
const (
	DefaultPageSize = 20
)

// ListQuery selects live sessions. Zero-valued filters are unset.
type ListQuery struct {
	UserID, DeviceID, CreatedBy string
	// IPPrefix matches ip_address or last_access_ip; IsValid() == false
	// means no filter; a /32 or /128 is an exact IP and uses the index.
	IPPrefix netip.Prefix
	// CreatedAfter, CreatedBefore and ActiveAfter are exclusive bounds in
	// Unix ms; 0 = unset.
	CreatedAfter, CreatedBefore, ActiveAfter int64
	// SortBy is "created_at" (default when "") or "last_active"; ties are
	// broken by ID ascending in both directions.
	SortBy string
	Desc   bool
	// Page (≥ 1, default 1) and Size (≥ 1, default 20) select the window.
	Page, Size int
	// Limit > 0 returns the first Limit matches in order instead of the
	// Page/Size window (cluster merges pass Page*Size).
	Limit int
}

// ListResult is one page of a list.
type ListResult struct {
	Items []Session
	// Total counts every matching live session.
	Total int
	// IndexUsed is false when the query had no user, device, created_by
	// or exact-IP filter and every shard was scanned.
	IndexUsed bool
}

// List returns live sessions matching q, sorted, one page at a time. It
// visits one shard at a time under its read lock and keeps only the first
// Page×Size matches in memory.
func (st *Store) List(q ListQuery) (ListResult, error) {
	page, size := q.Page, q.Size
	if page == 0 {
		page = 1
	}
	if size == 0 {
		size = DefaultPageSize
	}
	switch {
	case page < 0:
		return ListResult{}, fieldErr("page", "must be ≥ 1")
	case size < 0:
		return ListResult{}, fieldErr("size", "must be ≥ 1")
	case q.Limit < 0:
		return ListResult{}, fieldErr("limit", "must be ≥ 0")
	case q.SortBy != "" && q.SortBy != "created_at" && q.SortBy != "last_active":
		return ListResult{}, fieldErr("sort_by", "must be created_at or last_active")
	}
	want := page * size
	if q.Limit > 0 {
		want = q.Limit
	}
	if want/size != page && q.Limit == 0 { // overflow
		return ListResult{}, fieldErr("page", "page × size too large")
	}
	prefix := canonicalPrefix(q.IPPrefix)
	l, key := -1, ikey{}
	switch {
	case q.UserID != "":
		l, key = lUser, ikey{s: q.UserID}
	case q.DeviceID != "":
		l, key = lDevice, ikey{s: q.DeviceID}
	case q.CreatedBy != "":
		l, key = lCreator, ikey{s: q.CreatedBy}
	case prefix.IsValid() && prefix.IsSingleIP():
		l = lIP
		key.kind, key.ip = packAddr(prefix.Addr())
	}
	top := topK{want: want, byActive: q.SortBy == "last_active", desc: q.Desc}
	total := 0
	now := st.now()
	visit := func(r *rec) {
		if st.state(r, now) != stateLive || !matches(&q, prefix, r) {
			return
		}
		total++
		top.offer(r)
	}
	for _, sh := range st.shards {
		if l < 0 {
			sh.mu.RLock()
		} else {
			sh.rlockLists()
		}
		switch {
		case l < 0:
			for _, c := range sh.chunks {
				for j := range c {
					if r := &c[j]; r.flags&fInUse != 0 {
						visit(r)
					}
				}
			}
		case l == lIP:
			for ref := sh.listHead(lIP, &key); ref != noRef; {
				r := sh.rec(ref)
				visit(r)
				ref = r.links[lIP].next
			}
			for ref := sh.listHead(lLastIP, &key); ref != noRef; {
				r := sh.rec(ref)
				if r.ipKind != key.kind || r.ip != key.ip { // else seen above
					visit(r)
				}
				ref = r.links[lLastIP].next
			}
		default:
			for ref := sh.listHead(l, &key); ref != noRef; {
				r := sh.rec(ref)
				visit(r)
				ref = r.links[l].next
			}
		}
		sh.mu.RUnlock()
	}
	items := top.sorted()
	if q.Limit == 0 {
		from := min((page-1)*size, len(items))
		items = items[from:]
	}
	return ListResult{Items: items, Total: total, IndexUsed: l >= 0}, nil
}

// canonicalPrefix matches the store's address form: IPv4-mapped prefixes
// become IPv4 prefixes, zones are dropped.
func canonicalPrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return p
	}
	a := p.Addr().WithZone("")
	if a.Is4In6() {
		if p.Bits() < 96 {
			return netip.PrefixFrom(a, p.Bits()).Masked()
		}
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return netip.PrefixFrom(a, p.Bits()).Masked()
}

func matches(q *ListQuery, prefix netip.Prefix, r *rec) bool {
	switch {
	case q.UserID != "" && r.user() != q.UserID,
		q.DeviceID != "" && r.device() != q.DeviceID,
		q.CreatedBy != "" && r.createdBy.String() != q.CreatedBy,
		q.CreatedAfter != 0 && r.createdAt() <= q.CreatedAfter,
		q.CreatedBefore != 0 && r.createdAt() >= q.CreatedBefore,
		q.ActiveAfter != 0 && r.lastActive <= q.ActiveAfter:
		return false
	}
	if prefix.IsValid() {
		return (r.ipKind != 0 && prefix.Contains(unpackAddr(r.ipKind, r.ip))) ||
			(r.lastIPKind != 0 && prefix.Contains(unpackAddr(r.lastIPKind, r.lastIP)))
	}
	return true
}

// topK keeps the first want sessions in output order: a heap whose root is
// the last of the kept ones.
type topK struct {
	want     int
	byActive bool
	desc     bool
	items    []Session
}

func (t *topK) key(s *Session) int64 {
	if t.byActive {
		return s.LastActive
	}
	return s.CreatedAt
}

// before reports whether a comes before b in output order.
func (t *topK) before(ak int64, aid *ID, bk int64, bid *ID) bool {
	if ak != bk {
		return (ak < bk) != t.desc
	}
	return bytes.Compare(aid[:], bid[:]) < 0
}

func (t *topK) offer(r *rec) {
	k := r.createdAt()
	if t.byActive {
		k = r.lastActive
	}
	if len(t.items) < t.want {
		var s Session
		r.load(&s)
		t.items = append(t.items, s)
		t.up(len(t.items) - 1)
		return
	}
	if t.want == 0 {
		return
	}
	root := &t.items[0]
	if !t.before(k, &r.id, t.key(root), &root.ID) {
		return
	}
	r.load(root)
	t.down(0)
}

// The heap is ordered so that the root comes last in output order.
func (t *topK) later(i, j int) bool {
	a, b := &t.items[i], &t.items[j]
	return t.before(t.key(b), &b.ID, t.key(a), &a.ID)
}

func (t *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.later(i, p) {
			break
		}
		t.items[i], t.items[p] = t.items[p], t.items[i]
		i = p
	}
}

func (t *topK) down(i int) {
	n := len(t.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && t.later(r, l) {
			m = r
		}
		if !t.later(m, i) {
			return
		}
		t.items[i], t.items[m] = t.items[m], t.items[i]
		i = m
	}
}

func (t *topK) sorted() []Session {
	out := t.items
	slices.SortFunc(out, func(a, b Session) int {
		if t.before(t.key(&a), &a.ID, t.key(&b), &b.ID) {
			return -1
		}
		if t.before(t.key(&b), &b.ID, t.key(&a), &a.ID) {
			return 1
		}
		return 0
	})
	return out
}
