package engine

import "github.com/yndnr/tokmesh-go/internal/session"

// Scan iterates the IDs of live sessions with a cursor (RESP SCAN): cursor
// 0 starts, a returned 0 ends. Each call visits at most count sessions (it
// may return fewer, even none, before the end). Weakly consistent: a
// session live for the whole iteration is visited exactly once; sessions
// created or removed meanwhile may or may not be. fn runs under a shard
// read lock and must not call the engine.
//
// A standalone node is primary of every partition, so every live session
// is visited. (A cluster node will have to skip partitions it is not
// primary of here.)
func (e *Engine) Scan(cursor uint64, count int, fn func(id session.ID)) (uint64, error) {
	if err := e.check(); err != nil {
		return 0, err
	}
	return e.store.Scan(cursor, count, func(id session.ID, _ int64) { fn(id) }), nil
}

// AvgTTLMillis estimates the mean time to expiry of live sessions in ms
// from a sample of about 1024 of them (INFO keyspace avg_ttl).
func (e *Engine) AvgTTLMillis() int64 {
	if e.check() != nil {
		return 0
	}
	return e.store.AvgTTL(1024)
}
