package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// VerifyResult is the outcome of recomputing the hash chain.
type VerifyResult struct {
	// OK is true when every record chains to its predecessor with no seq gap.
	OK bool
	// Records is the number of records verified (up to the first problem).
	Records int
	// Anchor is the prev_hash of the oldest remaining record: 64 zeros for a
	// complete log, the hash of a deleted record after retention.
	Anchor string
	// LastHash is the hash of the last verified record's line; compare it
	// with an externally kept audit_last_hash to detect a changed or
	// removed tail, which the chain alone cannot show.
	LastHash string
	// LastSeq is the seq of the last verified record.
	LastSeq uint64
	// FirstBrokenSeq is the seq of the first record that does not chain:
	// after an edited line it is the record following that line; for a gap
	// or an unparsable line it is the seq that was expected there.
	FirstBrokenSeq uint64
	// File and Line locate that record (Line counts from 1).
	File string
	Line int
	// Err says what is wrong (nil when OK).
	Err error
	// Warnings do not make OK false: an incomplete last line of the newest
	// file is a write cut short by a crash, which the next Open truncates.
	Warnings []string
}

// Verify recomputes the chain over every audit file in dir, oldest first,
// and stops at the first problem. The oldest remaining record's prev_hash
// is accepted as the anchor (older files may have been deleted by
// retention), except that a record with seq 1 must have 64 zeros. The
// error is for I/O failures (a missing dir wraps fs.ErrNotExist); chain
// problems are reported in the result.
func Verify(dir string) (VerifyResult, error) {
	res := VerifyResult{}
	files, err := listFiles(dir)
	if err != nil {
		return res, fmt.Errorf("audit: %w", err)
	}
	var (
		prevSeq  uint64
		prevHash string
		started  bool
	)
	broken := func(seq uint64, file string, line int, err error) (VerifyResult, error) {
		res.OK, res.FirstBrokenSeq, res.File, res.Line, res.Err = false, seq, file, line, err
		return res, nil
	}
	for fi, af := range files {
		f, err := os.Open(af.path)
		if err != nil {
			return res, fmt.Errorf("audit: %w", err)
		}
		br := bufio.NewReaderSize(f, 64<<10)
		lineNo := 0
		for {
			line, err := br.ReadBytes('\n')
			if err != nil && err != io.EOF {
				f.Close()
				return res, fmt.Errorf("audit: read %s: %w", af.path, err)
			}
			if len(line) == 0 {
				break
			}
			lineNo++
			complete := line[len(line)-1] == '\n'
			line = bytes.TrimSuffix(line, []byte{'\n'})
			if !complete {
				if fi == len(files)-1 {
					res.Warnings = append(res.Warnings, fmt.Sprintf("%s line %d: incomplete last line (%d bytes) from an interrupted write; the server truncates it at the next start", af.path, lineNo, len(line)))
					break
				}
				f.Close()
				return broken(prevSeq+1, af.path, lineNo, errors.New("incomplete line at the end of a file that is not the newest"))
			}
			rec, perr := parseLine(line)
			if perr != nil {
				f.Close()
				return broken(prevSeq+1, af.path, lineNo, perr)
			}
			if !started {
				started = true
				res.Anchor = rec.PrevHash
				if rec.Seq == 1 && rec.PrevHash != ZeroHash {
					f.Close()
					return broken(1, af.path, lineNo, errors.New("the first record (seq 1) must have prev_hash of 64 zeros"))
				}
			} else {
				if rec.Seq != prevSeq+1 {
					f.Close()
					return broken(prevSeq+1, af.path, lineNo, fmt.Errorf("seq %d follows seq %d (gap or reordering)", rec.Seq, prevSeq))
				}
				if rec.PrevHash != prevHash {
					f.Close()
					return broken(rec.Seq, af.path, lineNo, fmt.Errorf("prev_hash %s does not match the previous record's hash %s (the previous line was changed, or this one)", rec.PrevHash, prevHash))
				}
			}
			prevSeq, prevHash = rec.Seq, lineHash(line)
			res.Records++
			res.LastSeq, res.LastHash = prevSeq, prevHash
		}
		f.Close()
	}
	res.OK = true
	return res, nil
}
