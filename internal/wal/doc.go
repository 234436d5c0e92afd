// Package wal is TokMesh's encrypted write-ahead log (05-storage §4, §6, §8).
//
// A WAL is a directory of segments wal-<20-digit id>.log. Each segment starts
// with an 80-byte plaintext header (magic, format version, cipher, master key
// ID, segment ID, first seq, random salt, created_at, CRC32C) followed by
// record frames
//
//	len u32 | crc32c u32 | type u8 | seq u64 | sealed payload
//
// where the payload is sealed with the segment key HKDF(master, salt,
// "tokmesh/wal/v1"), nonce 4 zero bytes ‖ seq and AAD segment ID ‖ seq ‖ type.
// Framing is plaintext, so tools can list and count records without a key;
// the payload itself is opaque here (its codec lives in internal/session).
//
// Invariants:
//
//   - WAL order equals append order: Append assigns gap-free, strictly
//     increasing seqs under one mutex and the single writer goroutine writes
//     them in that order. Segment N+1 starts with the seq after segment N's
//     last record.
//   - Nothing is acknowledged before it is written: Wait returns only after
//     write(2) returned for the record (mode interval), or after an fsync that
//     covers it (mode always, and durable waits in every mode).
//   - fsync errors are fatal: the first write or fsync error fails the writer
//     for good (fail-stop). fsync is never retried, because after a failed
//     fsync the page cache no longer tells what is on disk. Every pending and
//     later Wait returns the error and Options.OnFatal is called once.
//   - A segment file either does not exist or has a complete, fsynced header:
//     headers are written to a temp file, fsynced and renamed into place, and
//     the directory is fsynced. A segment is fsynced before the next one is
//     created, so after a power cut only the last segment can have a torn tail.
//   - Recovery never guesses: only a bad frame in the last segment that is
//     followed by no valid frame at all is a torn tail (truncated with
//     ReplayOptions.TruncateTornTail); every other defect is a
//     *CorruptionError and the caller refuses to start.
//
// Locking: Writer.mu is a leaf lock. Append and Wait take it briefly and never
// call out while holding it, so Append may be called under a session shard
// lock. OnFatal is called from the writer goroutine with no lock held.
package wal
