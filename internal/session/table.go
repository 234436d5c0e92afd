package session

// refTable is a compact open-addressing hash index of slab references
// (linear probing, backward-shift deletion, no tombstones). Keys are not
// stored: a 4-byte slot holds ref+1 in its low 24 bits and the top 8 bits of
// the key's hash as a tag, and the caller's eq function compares the real key
// through the slab. That costs 4 bytes per slot (5–11 bytes per entry
// depending on load) instead of a Go map entry, and the table holds no
// pointers, so the GC never scans it.
//
// The hash must come from a seeded hash (maphash), so clients cannot choose
// tokens that collide. Operations that move entries (growth, shrinking,
// deletion) need the hash of stored entries and take it from hashOf.
type refTable struct {
	slots []uint32 // tag<<24 | (ref+1); 0 = empty
	n     int
}

const (
	minTableSize = 8
	refBits      = 24
	refMask      = 1<<refBits - 1
	// maxRef is the largest ref a refTable can hold: at most 16,777,214
	// sessions (and as many tombstones) per shard.
	maxRef = refMask - 1
)

func slotOf(h, ref uint32) uint32 { return h&^refMask | (ref + 1) }

func (t *refTable) len() int { return t.n }

// find returns the slot position and ref of the entry with hash h for which
// eq(ref) is true.
func (t *refTable) find(h uint32, eq func(ref uint32) bool) (pos int, ref uint32, ok bool) {
	if t.n == 0 {
		return -1, 0, false
	}
	mask := len(t.slots) - 1
	tag := h &^ refMask
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return -1, 0, false
		}
		if s&^refMask == tag && eq(s&refMask-1) {
			return i, s&refMask - 1, true
		}
	}
}

// insert adds ref under hash h. The caller guarantees the key is absent and
// ref ≤ maxRef.
func (t *refTable) insert(h, ref uint32, hashOf func(ref uint32) uint32) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(max(minTableSize, 2*len(t.slots)), hashOf)
	}
	mask := len(t.slots) - 1
	i := int(h) & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = slotOf(h, ref)
	t.n++
}

// set replaces the ref stored at pos by another ref with the same key (e.g.
// a new list head).
func (t *refTable) set(pos int, ref uint32) {
	t.slots[pos] = t.slots[pos]&^refMask | (ref + 1)
}

// deleteAt removes the entry at pos, shifting later entries of the probe
// run back so that lookups never need tombstones.
func (t *refTable) deleteAt(pos int, hashOf func(ref uint32) uint32) {
	mask := len(t.slots) - 1
	i := pos
	for {
		t.slots[i] = 0
		j := i
		for {
			j = (j + 1) & mask
			s := t.slots[j]
			if s == 0 {
				t.n--
				if t.n*8 < len(t.slots) && len(t.slots) > minTableSize {
					t.resize(len(t.slots)/2, hashOf)
				}
				return
			}
			home := int(hashOf(s&refMask-1)) & mask
			// The entry at j may move to i only if its home is not
			// cyclically inside (i, j].
			if i <= j {
				if i < home && home <= j {
					continue
				}
			} else if i < home || home <= j {
				continue
			}
			t.slots[i] = s
			i = j
			break
		}
	}
}

func (t *refTable) resize(size int, hashOf func(ref uint32) uint32) {
	old := t.slots
	t.slots = make([]uint32, size)
	mask := size - 1
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := int(hashOf(s&refMask-1)) & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// reset empties the table and releases its memory.
func (t *refTable) reset() { *t = refTable{} }

// each calls fn for every entry with the entry's tag (top 8 hash bits).
func (t *refTable) each(fn func(tag, ref uint32)) {
	for _, s := range t.slots {
		if s != 0 {
			fn(s&^refMask, s&refMask-1)
		}
	}
}
