// Package snapshot reads and writes TokMesh snapshot and backup files
// (05-storage §5 and §7): an encrypted, chunked, streaming container of
// opaque typed entries. The engine decides what the entries mean (sessions,
// tombstones, partition state, API keys for backups) and encodes them with
// internal/session's codec; this package only sees a type byte and a payload.
//
// A file is a plaintext header, a sequence of sealed chunks and a trailer.
// The exact byte layout is in FORMAT.md next to this file. Kind 1 files are
// snapshots (snapshots/snapshot-<20-digit covered seq>.snap, HKDF purpose
// "snapshot"); kind 2 files are backups (HKDF purpose "backup") whose header
// Meta carries the backup object JSON.
//
// Invariants:
//
//   - A file only ever appears under its final name after it was written to
//     <name>.tmp (mode 0600), fsynced, closed, re-read and fully verified;
//     then it is renamed and the directory fsynced. Commit removes the file on
//     any failure, so a final name never holds a file this process failed to
//     verify.
//   - Every chunk is sealed with the per-file key HKDF(master, salt,
//     "tokmesh/<purpose>/v1"), nonce = chunk index, AAD = salt ‖ chunk index;
//     chunk indices start at 0 and increase by one, so nonces never repeat
//     within a file and chunks cannot be reordered, dropped or moved between
//     files without detection.
//   - Entries never span chunks; a chunk holds at most MaxChunkPlaintext
//     bytes of plaintext and at least one entry.
//   - The trailer records the chunk count, the per-type entry counts and the
//     SHA-256 of every byte before that hash field, plus an AEAD tag over that
//     hash (nonce = chunk count), so the header, the chunk sequence and the
//     counts are authenticated by the key, not only checksummed.
//   - A Reader returns io.EOF only after the trailer has been fully verified
//     (checksum, hash, tag, chunk count, entry counts, no trailing bytes).
//     Entries returned before that are individually authenticated, but the
//     set is complete only once io.EOF is seen: callers must not treat a
//     partially read file as a valid state.
//   - Readers never trust a length field: every length is bounded by a
//     format constant before anything is allocated, and buffers grow only as
//     bytes actually arrive, so arbitrary input cannot cause a panic or an
//     unbounded allocation.
//
// Entry points: Create/Add/Commit write; Open/NewReader + Next stream
// verified entries; Verify checks a whole file; ReadHeader and Inspect read
// the plaintext header (and, for Inspect, the CRC-protected trailer counts)
// without the key; List, Prune, FileName and RemoveStaleTemp manage the
// snapshots/ directory.
//
// Errors about the file's content are *CorruptionError values that wrap one
// of ErrCorrupt, ErrTruncated (which itself wraps ErrCorrupt),
// ErrKeyMismatch or ErrFormatVersion. Operating-system errors (permission
// denied, I/O error) are returned wrapped but are not CorruptionErrors, so
// tools can tell "bad file" (exit 1) from "cannot read" (exit 74).
//
// SHA-256 dominates the cost on CPUs without SHA extensions, so Writer and
// Reader hash a large chunk in one background goroutine while the next chunk
// is built or the current one is decrypted and consumed. That goroutine is
// joined before the hash is touched again and by Commit, Abort and Close, so
// none outlives its Writer or Reader; the writer therefore holds up to two
// chunk buffers (~2 MiB), the reader a sealed and a plaintext buffer.
//
// Writers and Readers are not safe for concurrent use.
package snapshot
