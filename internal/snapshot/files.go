package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const (
	fileNamePrefix = "snapshot-"
	fileNameSuffix = ".snap"
	seqDigits      = 20
	tempSuffix     = ".tmp"
)

// FileName returns the snapshot file name for a covered seq:
// "snapshot-<20-digit covered seq>.snap".
func FileName(coveredSeq uint64) string {
	return fmt.Sprintf("%s%0*d%s", fileNamePrefix, seqDigits, coveredSeq, fileNameSuffix)
}

// ParseFileName returns the covered seq of a snapshot file name (base name
// only) and whether the name has exactly the FileName form.
func ParseFileName(name string) (uint64, bool) {
	if len(name) != len(fileNamePrefix)+seqDigits+len(fileNameSuffix) ||
		!strings.HasPrefix(name, fileNamePrefix) || !strings.HasSuffix(name, fileNameSuffix) {
		return 0, false
	}
	digits := name[len(fileNamePrefix) : len(fileNamePrefix)+seqDigits]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return seq, true
}

// List returns the paths (dir joined with the name) of the snapshot files in
// dir, newest (highest covered seq) first. Temp files and other names are
// ignored. A missing dir holds no snapshots: List returns nil, nil.
func List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("snapshot: list: %w", err)
	}
	type file struct {
		seq  uint64
		name string
	}
	var files []file
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if seq, ok := ParseFileName(e.Name()); ok {
			files = append(files, file{seq, e.Name()})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].seq > files[j].seq })
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = filepath.Join(dir, f.name)
	}
	return out, nil
}

// Prune deletes all but the newest retain snapshots in dir and returns the
// removed paths. It does not look inside the files: callers prune only after
// the newest snapshot was committed (and therefore verified). retain must be
// at least 1.
func Prune(dir string, retain int) (removed []string, err error) {
	if retain < 1 {
		return nil, fmt.Errorf("snapshot: prune: retain must be at least 1, got %d", retain)
	}
	files, err := List(dir)
	if err != nil {
		return nil, err
	}
	if len(files) <= retain {
		return nil, nil
	}
	for _, p := range files[retain:] {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("snapshot: prune: %w", err)
		}
		removed = append(removed, p)
	}
	if err := syncDir(dir); err != nil {
		return removed, fmt.Errorf("snapshot: prune: fsync dir: %w", err)
	}
	return removed, nil
}

// RemoveStaleTemp deletes "snapshot-<seq>.snap.tmp" files left in dir by a
// crash during a snapshot and returns the removed paths. Call it only when
// no snapshot is being written (at startup).
func RemoveStaleTemp(dir string) (removed []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("snapshot: remove temp: %w", err)
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), tempSuffix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if _, ok := ParseFileName(name); !ok {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("snapshot: remove temp: %w", err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}
