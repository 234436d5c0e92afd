package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Filter selects records for GET /admin/v1/audit/logs.
type Filter struct {
	// Start and End bound the record time: Start ≤ time < End; a zero value
	// leaves that side open.
	Start, End time.Time
	// Actor, Action and Result match exactly when non-empty.
	Actor, Action, Result string
	// Page (≥ 1, default 1) and Size (≥ 1, default 20) select a page of the
	// newest-first result. The HTTP layer enforces the API's limits.
	Page, Size int
}

// Query returns one page of matching records, newest first, and the number
// of all matching records. It reads the files backwards, so memory is
// bounded by the page, not by the log. Lines that do not parse are skipped
// with a WARN (Verify reports them).
func (l *Log) Query(f Filter) ([]Record, int, error) {
	if f.Page < 0 || f.Size < 0 {
		return nil, 0, errors.New("audit: page and size must be positive")
	}
	if f.Page == 0 {
		f.Page = 1
	}
	if f.Size == 0 {
		f.Size = 20
	}
	first := (f.Page - 1) * f.Size
	files, err := listFiles(l.dir)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: %w", err)
	}
	items := []Record{}
	total := 0
	for i := len(files) - 1; i >= 0; i-- {
		// A file holds records of its day or earlier (the file never moves
		// back when the clock does), so once a whole day lies before Start
		// so does everything older.
		if !f.Start.IsZero() {
			dayStart, _ := time.Parse(dayLayout, files[i].day)
			if !dayStart.AddDate(0, 0, 1).After(f.Start) {
				break
			}
		}
		err := l.scanBackwards(files[i].path, func(r *Record) {
			if !f.match(r) {
				return
			}
			if total >= first && total < first+f.Size {
				items = append(items, *r)
			}
			total++
		})
		if err != nil {
			return nil, 0, err
		}
	}
	return items, total, nil
}

func (f *Filter) match(r *Record) bool {
	switch {
	case !f.Start.IsZero() && r.Time.Before(f.Start):
		return false
	case !f.End.IsZero() && !r.Time.Before(f.End):
		return false
	case f.Actor != "" && r.Actor != f.Actor:
		return false
	case f.Action != "" && r.Action != f.Action:
		return false
	case f.Result != "" && r.Result != f.Result:
		return false
	}
	return true
}

// scanBackwards calls fn for every record of path, last first. An
// incomplete last line (a write in progress) is skipped.
func (l *Log) scanBackwards(path string, fn func(*Record)) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // deleted by retention meanwhile
		}
		return fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	rl, err := newReverseLines(f, st.Size())
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", path, err)
	}
	skipFirst := rl.Partial
	bad := 0
	for {
		line, _, err := rl.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("audit: read %s: %w", path, err)
		}
		if skipFirst {
			skipFirst = false
			continue
		}
		r, err := parseLine(line)
		if err != nil {
			bad++
			continue
		}
		fn(&r)
	}
	if bad > 0 {
		l.log.Warn("audit query skipped unparsable lines; run tokmesh-walctl audit verify", "file", path, "lines", bad)
	}
	return nil
}
