package wal

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// Problem is one finding of Verify, shaped like walctl's JSON output.
type Problem struct {
	File    string `json:"file"`
	Offset  int64  `json:"offset"`
	Seq     uint64 `json:"seq"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func problemOf(ce *CorruptionError) Problem {
	return Problem{File: ce.File, Offset: ce.Offset, Seq: ce.Seq, Kind: ce.Kind, Message: ce.Err.Error()}
}

// InspectSegments is ListSegments plus LastSeq, Records and CountByType,
// counted from the plaintext framing (CRC-checked, no key needed). Counting
// stops at the first frame that does not parse, whose offset is BadOffset.
func InspectSegments(dir string) ([]SegmentInfo, error) {
	fsys := OSFS{}
	segs, err := listSegments(fsys, dir)
	if err != nil {
		return nil, err
	}
	var buf []byte
	for i := range segs {
		si := &segs[i]
		if si.Err != nil {
			continue
		}
		var s *segment
		s, buf, err = loadSegment(fsys, si, nil, buf)
		if err != nil {
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				return nil, err
			}
			si.Err = err
			continue
		}
		si.Bytes = int64(len(s.data))
		si.CountByType = map[byte]int{}
		for off := HeaderSize; off < len(s.data); {
			f, kind := parseFrame(s.data[off:])
			if kind != "" {
				si.BadOffset = int64(off)
				break
			}
			si.Records++
			si.CountByType[f.Type]++
			si.LastSeq = f.Seq
			off += f.Size
		}
	}
	return segs, nil
}

// Verify checks every header, frame CRC and (with a key; nil checks framing
// and CRC only) AEAD tag, record type and seq continuity, and reports each
// problem with file, offset and seq. After a bad frame it resumes at the next
// valid frame. A torn tail (05-storage §6 step 5) is only a warning. err is
// for I/O failures.
func Verify(dir string, key *crypt.MasterKey) (problems []Problem, warnings []Problem, err error) {
	return verify(OSFS{}, dir, key)
}

func verify(fsys FS, dir string, key *crypt.MasterKey) (problems []Problem, warnings []Problem, err error) {
	segs, err := listSegments(fsys, dir)
	if err != nil {
		return nil, nil, err
	}
	var (
		buf, scratch []byte
		prevLast     uint64
		havePrev     bool
	)
	for i := range segs {
		si := &segs[i]
		last := i == len(segs)-1
		var s *segment
		s, buf, err = loadSegment(fsys, si, key, buf)
		if err != nil {
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				return problems, warnings, err
			}
			problems = append(problems, problemOf(ce))
			if ce.Kind != KindKeyMismatch || s == nil {
				havePrev = false
				continue
			}
			// Wrong key: still check the framing and CRCs.
		}
		h := &s.hdr
		if havePrev && h.FirstSeq != prevLast+1 {
			problems = append(problems, Problem{File: s.path, Seq: h.FirstSeq, Kind: KindSeqGap,
				Message: fmt.Sprintf("segment starts at seq %d, the previous one ends at %d", h.FirstSeq, prevLast)})
		}
		expected := h.FirstSeq
		for off := HeaderSize; off < len(s.data); {
			f, _, kind := s.frameAt(off, &scratch)
			if kind != "" {
				next := s.nextValid(off+1, &scratch)
				msg := frameMessage(s.data, off, kind)
				if next < 0 {
					p := Problem{File: s.path, Offset: int64(off), Seq: expected, Kind: kind, Message: msg}
					if last {
						p.Kind = KindTornTail
						p.Message = fmt.Sprintf("torn tail (%s): the next start truncates %d bytes from offset %d", msg, len(s.data)-off, off)
						warnings = append(warnings, p)
					} else {
						p.Message = fmt.Sprintf("%s; no valid frame follows in this segment (%d bytes)", msg, len(s.data)-off)
						problems = append(problems, p)
					}
					break
				}
				problems = append(problems, Problem{File: s.path, Offset: int64(off), Seq: expected, Kind: kind,
					Message: fmt.Sprintf("%s; next valid frame at offset %d", msg, next)})
				nf, _, _ := s.frameAt(next, &scratch)
				expected = nf.Seq
				off = next
				continue
			}
			if f.Seq != expected {
				problems = append(problems, Problem{File: s.path, Offset: int64(off), Seq: f.Seq, Kind: KindSeqGap,
					Message: fmt.Sprintf("found seq %d, expected %d", f.Seq, expected)})
			}
			if !ValidType(f.Type) {
				problems = append(problems, Problem{File: s.path, Offset: int64(off), Seq: f.Seq, Kind: KindUnknownType,
					Message: fmt.Sprintf("unknown record type %d", f.Type)})
			}
			expected = f.Seq + 1
			off += f.Size
		}
		prevLast, havePrev = expected-1, true
	}
	return problems, warnings, nil
}

// RepairResult reports what Repair did.
type RepairResult struct {
	Clean          bool     // nothing was wrong; nothing changed
	File           string   // the affected segment
	Offset         int64    // offset of the first bad frame (0: the header)
	Seq            uint64   // first seq dropped (the one expected at the bad frame)
	Kind           string   // what was wrong there
	RecordsKept    int      // records of the affected segment kept in the new segment
	RecordsDropped int      // recognizable records dropped (CRC-valid frames from the bad one on)
	Backups        []string // the affected and all later segments, renamed/copied to *.bak
	NewSegment     string   // the rewritten affected segment ("" if none was written)
}

// Repair implements walctl repair (05-storage §8): it finds the first bad
// frame (or header, seq gap, unknown type) and keeps every record before it.
// The affected segment and all later ones are moved to *.bak and a new
// segment with a fresh salt holds the good prefix of the affected one. It
// refuses (and changes nothing) on a key mismatch or an unknown format
// version: dropping data the key or build cannot read would destroy it.
func Repair(dir string, key *crypt.MasterKey) (RepairResult, error) { return repair(OSFS{}, dir, key) }

type keptRecord struct {
	seq     uint64
	typ     byte
	payload []byte
}

func repair(fsys FS, dir string, key *crypt.MasterKey) (RepairResult, error) {
	var res RepairResult
	if key == nil {
		return res, errors.New("wal: repair needs the master key")
	}
	segs, err := listSegments(fsys, dir)
	if err != nil {
		return res, err
	}
	var (
		scratch  []byte
		prevLast uint64
		havePrev bool
		kept     []keptRecord
		bad      *CorruptionError
		badIdx   = -1
		badSeg   *segment
	)
	for i := range segs {
		si := &segs[i]
		kept = kept[:0]
		s, _, err := loadSegment(fsys, si, key, nil)
		if err != nil {
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				return res, err
			}
			if ce.Kind == KindKeyMismatch || errors.Is(ce, ErrFormatVersion) {
				return res, err
			}
			bad, badIdx = ce, i
			break
		}
		h := &s.hdr
		if havePrev && h.FirstSeq != prevLast+1 {
			bad = corruptf(s.path, 0, prevLast+1, KindSeqGap, ErrSeqGap, "segment starts at seq %d, the previous one ends at %d", h.FirstSeq, prevLast)
			bad.Offset = HeaderSize
			badIdx, badSeg = i, s
			break
		}
		expected := h.FirstSeq
		for off := HeaderSize; off < len(s.data); {
			f, pt, kind := s.frameAt(off, &scratch)
			switch {
			case kind != "":
				bad = corruptf(s.path, int64(off), expected, kind, ErrCorrupt, "%s", frameMessage(s.data, off, kind))
			case f.Seq != expected:
				bad = corruptf(s.path, int64(off), expected, KindSeqGap, ErrSeqGap, "found seq %d, expected %d", f.Seq, expected)
			case !ValidType(f.Type):
				bad = corruptf(s.path, int64(off), expected, KindUnknownType, ErrCorrupt, "unknown record type %d", f.Type)
			}
			if bad != nil {
				break
			}
			kept = append(kept, keptRecord{f.Seq, f.Type, slices.Clone(pt)})
			expected++
			off += f.Size
		}
		if bad != nil {
			badIdx, badSeg = i, s
			break
		}
		prevLast, havePrev = expected-1, true
	}
	if bad == nil {
		res.Clean = true
		return res, nil
	}
	affected := &segs[badIdx]
	res.File, res.Offset, res.Seq, res.Kind = affected.Path, bad.Offset, bad.Seq, bad.Kind
	res.RecordsKept = len(kept)

	// Count what is dropped: recognizable frames from the bad one on.
	if badSeg != nil {
		res.RecordsDropped += countFrames(badSeg, int(bad.Offset), &scratch)
	} else if data, err := readAll(fsys, affected.Path, nil); err == nil {
		res.RecordsDropped += countFrames(&segment{data: data}, HeaderSize, &scratch)
	}
	for j := badIdx + 1; j < len(segs); j++ {
		s, _, err := loadSegment(fsys, &segs[j], key, nil)
		if s == nil {
			if data, rerr := readAll(fsys, segs[j].Path, nil); rerr == nil {
				s = &segment{data: data}
			}
		} else if err != nil {
			s.seal = nil // wrong key: count by CRC only
		}
		if s != nil {
			res.RecordsDropped += countFrames(s, HeaderSize, &scratch)
		}
	}

	// The new segment: the affected segment's ID, continuing the seqs.
	var newFirst uint64
	haveFirst := false
	switch {
	case havePrev:
		newFirst, haveFirst = prevLast+1, true
	case badSeg != nil:
		newFirst, haveFirst = badSeg.hdr.FirstSeq, true
	}
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return res, err
	}
	tmp := affected.Path + tempSuffix
	if haveFirst {
		ciph := crypt.AutoCipher()
		if badSeg != nil {
			ciph = badSeg.hdr.Cipher
		}
		data, err := buildSegment(key, ciph, affected.ID, newFirst, time.Now().UnixMilli(), kept)
		if err != nil {
			return res, err
		}
		_ = fsys.Remove(tmp)
		if err := writeFileSync(fsys, tmp, data); err != nil {
			return res, fmt.Errorf("wal: write %s: %w", tmp, err)
		}
	}
	// Later segments first (newest first), so that an interruption leaves a
	// WAL that is a prefix of the original; rerunning repair finishes the job.
	for j := len(segs) - 1; j > badIdx; j-- {
		bak := uniqueBak(names, segs[j].Path)
		names = append(names, baseName(bak))
		if err := fsys.Rename(segs[j].Path, bak); err != nil {
			return res, fmt.Errorf("wal: rename %s: %w", segs[j].Path, err)
		}
		res.Backups = append(res.Backups, bak)
	}
	bak := uniqueBak(names, affected.Path)
	if haveFirst {
		// Copy, then atomically replace: the affected segment never vanishes.
		orig, err := readAll(fsys, affected.Path, nil)
		if err != nil {
			return res, fmt.Errorf("wal: read %s: %w", affected.Path, err)
		}
		if err := writeFileSync(fsys, bak, orig); err != nil {
			return res, fmt.Errorf("wal: write %s: %w", bak, err)
		}
		if err := fsys.Rename(tmp, affected.Path); err != nil {
			return res, fmt.Errorf("wal: rename %s: %w", tmp, err)
		}
		res.NewSegment = affected.Path
	} else if err := fsys.Rename(affected.Path, bak); err != nil {
		return res, fmt.Errorf("wal: rename %s: %w", affected.Path, err)
	}
	res.Backups = append(res.Backups, bak)
	slices.Sort(res.Backups)
	if err := fsys.SyncDir(dir); err != nil {
		return res, fmt.Errorf("wal: fsync %s: %w", dir, err)
	}
	return res, nil
}

// countFrames counts the frames from off on that check out, resyncing past
// damage byte by byte.
func countFrames(s *segment, off int, scratch *[]byte) int {
	n := 0
	for off >= 0 && off < len(s.data) {
		if f, _, kind := s.frameAt(off, scratch); kind == "" {
			n++
			off += f.Size
			continue
		}
		off = s.nextValid(off+1, scratch)
	}
	return n
}

func baseName(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			return path[i+1:]
		}
	}
	return path
}

// uniqueBak returns path.bak, or path.bak.N if that name is taken.
func uniqueBak(names []string, path string) string {
	taken := func(p string) bool { return slices.Contains(names, baseName(p)) }
	bak := path + bakSuffix
	for n := 1; taken(bak); n++ {
		bak = fmt.Sprintf("%s%s.%d", path, bakSuffix, n)
	}
	return bak
}

// buildSegment encodes a whole segment with a fresh salt.
func buildSegment(key *crypt.MasterKey, ciph crypt.CipherID, id, firstSeq uint64, createdAt int64, recs []keptRecord) ([]byte, error) {
	salt, err := crypt.NewSalt()
	if err != nil {
		return nil, err
	}
	h := Header{Version: FormatVersion, Cipher: ciph, KeyID: key.ID(), SegmentID: id, FirstSeq: firstSeq, Salt: salt, CreatedAt: createdAt}
	aead, err := key.FileAEAD(ciph, salt[:], crypt.PurposeWAL)
	if err != nil {
		return nil, err
	}
	sl := sealer{aead: aead, segID: id}
	hb := h.Encode()
	size := HeaderSize
	for _, r := range recs {
		size += frameLen(len(r.payload))
	}
	out := make([]byte, 0, size)
	out = append(out, hb[:]...)
	for _, r := range recs {
		out = sl.appendFrame(out, r.seq, r.typ, r.payload)
	}
	return out, nil
}

// Rekey re-encrypts every segment not yet under newKey: each is rewritten to
// a temp file with a fresh salt, fsynced, renamed over the original and the
// directory fsynced. Segments already under newKey's ID are skipped, so an
// interrupted rekey is finished by running it again. A torn tail of the last
// segment is dropped (the next start would truncate it anyway); any other
// defect stops the rekey with a *CorruptionError (run repair first).
func Rekey(dir string, oldKey, newKey *crypt.MasterKey) (rewritten, skipped int, err error) {
	return rekey(OSFS{}, dir, oldKey, newKey)
}

func rekey(fsys FS, dir string, oldKey, newKey *crypt.MasterKey) (rewritten, skipped int, err error) {
	if oldKey == nil || newKey == nil {
		return 0, 0, errors.New("wal: rekey needs the old and the new key")
	}
	names, err := fsys.ReadDir(dir)
	if err != nil && !isNotExist(err) {
		return 0, 0, err
	}
	for _, n := range names {
		if isTempName(n) {
			if err := fsys.Remove(joinPath(dir, n)); err != nil {
				return 0, 0, err
			}
		}
	}
	segs, err := listSegments(fsys, dir)
	if err != nil {
		return 0, 0, err
	}
	var scratch []byte
	for i := range segs {
		si := &segs[i]
		if si.Err != nil {
			return rewritten, skipped, si.Err
		}
		if si.KeyID == newKey.ID() {
			skipped++
			continue
		}
		s, _, err := loadSegment(fsys, si, oldKey, nil)
		if err != nil {
			return rewritten, skipped, err
		}
		var recs []keptRecord
		expected := s.hdr.FirstSeq
		for off := HeaderSize; off < len(s.data); {
			f, pt, kind := s.frameAt(off, &scratch)
			if kind != "" {
				if i == len(segs)-1 && s.nextValid(off+1, &scratch) < 0 {
					break // torn tail
				}
				return rewritten, skipped, corruptf(s.path, int64(off), expected, kind, ErrCorrupt, "%s", frameMessage(s.data, off, kind))
			}
			if f.Seq != expected {
				return rewritten, skipped, corruptf(s.path, int64(off), f.Seq, KindSeqGap, ErrSeqGap, "found seq %d, expected %d", f.Seq, expected)
			}
			if !ValidType(f.Type) {
				return rewritten, skipped, corruptf(s.path, int64(off), f.Seq, KindUnknownType, ErrCorrupt, "unknown record type %d", f.Type)
			}
			recs = append(recs, keptRecord{f.Seq, f.Type, slices.Clone(pt)})
			expected++
			off += f.Size
		}
		data, err := buildSegment(newKey, s.hdr.Cipher, s.hdr.SegmentID, s.hdr.FirstSeq, s.hdr.CreatedAt, recs)
		if err != nil {
			return rewritten, skipped, err
		}
		tmp := s.path + tempSuffix
		if err := writeFileSync(fsys, tmp, data); err != nil {
			_ = fsys.Remove(tmp)
			return rewritten, skipped, fmt.Errorf("wal: write %s: %w", tmp, err)
		}
		if err := fsys.Rename(tmp, s.path); err != nil {
			return rewritten, skipped, fmt.Errorf("wal: rename %s: %w", tmp, err)
		}
		if err := fsys.SyncDir(dir); err != nil {
			return rewritten, skipped, fmt.Errorf("wal: fsync %s: %w", dir, err)
		}
		rewritten++
	}
	return rewritten, skipped, nil
}

// DeleteCovered deletes the oldest segments whose records all have seq <=
// coveredSeq (known from the next segment's first seq), never the newest
// one, which may be the active segment. It returns how many it deleted.
func DeleteCovered(dir string, coveredSeq uint64) (deleted int, err error) {
	return deleteCovered(OSFS{}, dir, coveredSeq)
}

func deleteCovered(fsys FS, dir string, coveredSeq uint64) (int, error) {
	segs, err := listSegments(fsys, dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := 0; i+1 < len(segs); i++ {
		next := &segs[i+1]
		if next.Err != nil || next.FirstSeq == 0 || next.FirstSeq-1 > coveredSeq {
			break
		}
		if err := fsys.Remove(segs[i].Path); err != nil && !isNotExist(err) {
			return n, fmt.Errorf("wal: delete %s: %w", segs[i].Path, err)
		}
		n++
	}
	if n > 0 {
		if err := fsys.SyncDir(dir); err != nil {
			return n, fmt.Errorf("wal: fsync %s: %w", dir, err)
		}
	}
	return n, nil
}
