package session

import (
	"cmp"
	"strings"
)

// Loader loads the session payloads of a snapshot (already authenticated
// by its AEAD tags) into a Store with a single allocation per session, the
// record's blob: the payload is decoded in place, the repeated strings
// (user agents, creator key) are interned through a small cache, and the
// clock is read once. Recovery time is dominated by this path. A Loader is
// not safe for concurrent use; give each goroutine its own.
type Loader struct {
	st    *Store
	now   int64
	s     Session
	buf   []byte
	cache map[string]istr
}

// loaderCacheMax bounds a Loader's intern cache; strings past it still
// intern, just without the shortcut.
const loaderCacheMax = 4096

// NewLoader returns a Loader for st. Its clock is read now: a session that
// expires while the load runs is inserted and later swept, as if it had
// expired just after the load.
func (st *Store) NewLoader() *Loader {
	return &Loader{st: st, now: st.now(), cache: make(map[string]istr)}
}

func (l *Loader) intern(s string) istr {
	if s == "" {
		return istr{}
	}
	if h, ok := l.cache[s]; ok {
		return h
	}
	h := intern(s) // unique.Make copies s
	if len(l.cache) < loaderCacheMax {
		l.cache[strings.Clone(s)] = h
	}
	return h
}

// LoadSessionBinary decodes a session payload written by
// AppendSessionBinary and loads it under the rules of LoadSession. The
// payload must come from an authenticated source (field rules are not
// re-validated; bounds are); it is not retained and may be reused once the
// call returns.
func (l *Loader) LoadSessionBinary(p []byte) error {
	d := decoder{b: p, trusted: true, view: true}
	if v := d.byte(); d.err == nil && v != PayloadVersion {
		return corrupt("unknown session version")
	}
	applyErr, decodeErr := l.load(&d)
	return cmp.Or(decodeErr, applyErr)
}

// ApplyRecordBinary decodes a WAL record payload and applies it like
// Apply; SESSION_PUT takes the allocation-free path of LoadSessionBinary.
// The payload must come from an authenticated source and is not retained.
// decodeErr reports a payload that does not decode (the log is damaged);
// applyErr what Apply would have returned.
func (l *Loader) ApplyRecordBinary(t RecordType, payload []byte) (applyErr, decodeErr error) {
	if t != RecordPut {
		r, err := DecodeRecord(t, payload)
		if err != nil {
			return nil, err
		}
		return l.st.Apply(&r), nil
	}
	d := decoder{b: payload, trusted: true, view: true}
	if err := d.recordHead(); err != nil {
		return nil, err
	}
	d.head()
	return l.load(&d)
}

// load decodes a session body from d and loads it.
func (l *Loader) load(d *decoder) (applyErr, decodeErr error) {
	s := &l.s
	*s = Session{}
	defer func() { *s = Session{} }() // drop the views of the payload
	d.sessionBody(s)
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	data := s.Data
	if len(data) == 0 {
		data = emptyData
	}
	l.buf = append(append(append(l.buf[:0], s.UserID...), s.DeviceID...), data...)
	blob := string(l.buf)
	u, dv := len(s.UserID), len(s.DeviceID)
	s.UserID, s.DeviceID, s.Data = blob[:u], blob[u:u+dv], nil
	return l.st.loadSession(s, blob, l.intern(s.UserAgent), l.intern(s.LastAccessUA), l.intern(s.CreatedBy), l.now), nil
}
