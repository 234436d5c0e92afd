package audit

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

const (
	filePrefix = "audit-"
	fileSuffix = ".jsonl"
	dayLayout  = "20060102"
)

// fileName is the file of a UTC day.
func fileName(day string) string { return filePrefix + day + fileSuffix }

// dayOf is the YYYYMMDD of t in UTC.
func dayOf(t time.Time) string { return t.UTC().Format(dayLayout) }

// auditFile is one daily file.
type auditFile struct {
	day  string // YYYYMMDD
	path string
}

// listFiles returns the daily files in dir, oldest first. Other names are
// ignored.
func listFiles(dir string) ([]auditFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []auditFile
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, filePrefix) || !strings.HasSuffix(name, fileSuffix) {
			continue
		}
		day := strings.TrimSuffix(strings.TrimPrefix(name, filePrefix), fileSuffix)
		if _, err := time.Parse(dayLayout, day); err != nil || len(day) != len(dayLayout) {
			continue
		}
		out = append(out, auditFile{day: day, path: filepath.Join(dir, name)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].day < out[j].day })
	return out, nil
}

// reverseLines yields the lines of a file from last to first without
// reading the whole file into memory.
type reverseLines struct {
	f    io.ReaderAt
	pos  int64  // file offset of buf[0]
	buf  []byte // unreturned bytes [pos, end)
	done bool
	// Partial is true when the file does not end with a newline: the first
	// line returned is then an incomplete write.
	Partial bool
}

const chunkSize = 64 << 10

// newReverseLines reads the file of the given size backwards.
func newReverseLines(f io.ReaderAt, size int64) (*reverseLines, error) {
	r := &reverseLines{f: f, pos: size}
	if size == 0 {
		r.done = true
		return r, nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return nil, err
	}
	if last[0] == '\n' {
		r.pos = size - 1 // the final newline terminates the last line
	} else {
		r.Partial = true
	}
	return r, nil
}

// Next returns the previous line (without newline) and its file offset, or
// io.EOF. The slice is valid until the next call.
func (r *reverseLines) Next() ([]byte, int64, error) {
	for {
		if r.done {
			return nil, 0, io.EOF
		}
		if i := bytes.LastIndexByte(r.buf, '\n'); i >= 0 {
			line := r.buf[i+1:]
			off := r.pos + int64(i) + 1
			r.buf = r.buf[:i]
			return line, off, nil
		}
		if r.pos == 0 {
			r.done = true
			return r.buf, 0, nil
		}
		n := int64(chunkSize)
		if n > r.pos {
			n = r.pos
		}
		chunk := make([]byte, int(n)+len(r.buf))
		if _, err := r.f.ReadAt(chunk[:n], r.pos-n); err != nil {
			return nil, 0, err
		}
		copy(chunk[n:], r.buf)
		r.buf = chunk
		r.pos -= n
	}
}
