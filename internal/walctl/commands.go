package walctl

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/internal/crypt"
	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/snapshot"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

func msTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

// ---- inspect ---------------------------------------------------------------

type segmentJSON struct {
	File      string         `json:"file"`
	ID        uint64         `json:"id"`
	FirstSeq  uint64         `json:"first_seq"`
	LastSeq   uint64         `json:"last_seq"`
	Records   int            `json:"records"`
	ByType    map[string]int `json:"records_by_type"`
	Bytes     int64          `json:"bytes"`
	Cipher    string         `json:"cipher"`
	KeyID     string         `json:"key_id"`
	CreatedAt string         `json:"created_at"`
	Error     string         `json:"error,omitempty"`
}

type snapJSON struct {
	File       string            `json:"file"`
	Kind       string            `json:"kind"`
	CoveredSeq uint64            `json:"covered_seq"`
	NodeID     string            `json:"node_id"`
	ClusterID  string            `json:"cluster_id"`
	Partitions uint32            `json:"partitions"`
	Cipher     string            `json:"cipher"`
	KeyID      string            `json:"key_id"`
	CreatedAt  string            `json:"created_at"`
	Bytes      int64             `json:"bytes"`
	Counts     map[string]uint64 `json:"counts,omitempty"`
	// CountsVerified is true when the counts come from a file verified with
	// the key; false when they were read from the CRC-checked trailer only.
	CountsVerified bool   `json:"counts_verified"`
	Error          string `json:"error,omitempty"`
}

type inspectJSON struct {
	DataDir   string        `json:"data_dir"`
	Node      *datadir.Node `json:"node,omitempty"`
	Segments  []segmentJSON `json:"segments"`
	Snapshots []snapJSON    `json:"snapshots"`
	Backups   []snapJSON    `json:"backups"`
	Control   controlJSON   `json:"control_store"`
}

func newInspect(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect",
		Short: "Summarize WAL segments, snapshots, backups and the control store (no key needed)",
		Long: `inspect lists every WAL segment (ID, seq range, records by type, bytes,
cipher, key ID), every snapshot and backup (covered seq, header, entry
counts) and the control store files (kind, index range, records, cipher, key
ID). The framing is plaintext, so no key is needed: without one, snapshot
entry counts come from the CRC-checked trailer (counts_verified false); with
the key they come from the fully verified file, and the control store
summary also counts the API keys.`,
		Example: "  tokmesh-walctl inspect --data-dir ./data\n  tokmesh-walctl inspect -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.lockDataDir()
			if err != nil {
				return err
			}
			defer l.Release()
			out := inspectJSON{DataDir: g.dataDir, Segments: []segmentJSON{}, Snapshots: []snapJSON{}, Backups: []snapJSON{}}
			if n, err := datadir.ReadNode(g.dataDir); err == nil {
				out.Node = &n
			}
			segs, err := wal.InspectSegments(g.walDir())
			if err != nil {
				return exitf(ExitIO, "%v", err)
			}
			for _, s := range segs {
				sj := segmentJSON{File: s.Path, ID: s.ID, FirstSeq: s.FirstSeq, LastSeq: s.LastSeq, Records: s.Records,
					ByType: map[string]int{}, Bytes: s.Bytes, Cipher: s.Cipher.String(), KeyID: s.KeyID.String(), CreatedAt: msTime(s.CreatedAt)}
				for t, n := range s.CountByType {
					sj.ByType[wal.TypeName(t)] = n
				}
				if s.Err != nil {
					sj.Error = s.Err.Error()
				} else if s.BadOffset > 0 {
					sj.Error = fmt.Sprintf("framing stops at offset %d (run verify)", s.BadOffset)
				}
				out.Segments = append(out.Segments, sj)
			}
			key := g.optionalKey()
			snaps, _ := snapshot.List(g.snapDir())
			for _, p := range snaps {
				out.Snapshots = append(out.Snapshots, describeSnapshot(p, key))
			}
			backs, _ := filepath.Glob(filepath.Join(g.backDir(), "*.tmbak"))
			sort.Strings(backs)
			for _, p := range backs {
				out.Backups = append(out.Backups, describeSnapshot(p, key))
			}
			if out.Control, err = inspectControl(g.dataDir, key); err != nil {
				return exitf(ExitIO, "control store: %v", err)
			}
			if g.output == "json" {
				return g.json(out)
			}
			printInspect(g, &out)
			return nil
		},
	}
}

func describeSnapshot(path string, key *crypt.MasterKey) snapJSON {
	sj := snapJSON{File: path}
	h, err := snapshot.ReadHeader(path)
	if err != nil {
		sj.Error = err.Error()
		return sj
	}
	sj.Kind = h.Kind.String()
	sj.CoveredSeq, sj.NodeID, sj.ClusterID, sj.Partitions = h.CoveredSeq, h.NodeID, h.ClusterID, h.Partitions
	sj.Cipher, sj.KeyID, sj.CreatedAt = h.Cipher.String(), h.KeyID.String(), msTime(h.CreatedAt)
	if st, err := os.Stat(path); err == nil {
		sj.Bytes = st.Size()
	}
	// With the key, the counts come from a fully verified file; without it
	// (or under another key), from the trailer, whose structure and CRC
	// Inspect checks (snapshot package docs) but which only the key
	// authenticates.
	var info snapshot.Info
	if key != nil && key.ID() == h.KeyID {
		info, err = snapshot.Verify(path, key)
		sj.CountsVerified = err == nil
	} else {
		info, err = snapshot.Inspect(path)
	}
	if err != nil {
		sj.Error = err.Error()
		return sj
	}
	sj.Counts = map[string]uint64{}
	for t, n := range info.Trailer.Counts {
		sj.Counts[entryName(t)] = n
	}
	return sj
}

func printInspect(g *globals, o *inspectJSON) {
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "data dir:\t%s\n", o.DataDir)
	if o.Node != nil {
		fmt.Fprintf(w, "node:\t%s (cluster %q, %d partitions, created %s)\n", o.Node.NodeID, o.Node.ClusterID, o.Node.Partitions, msTime(o.Node.CreatedAt))
	}
	fmt.Fprintf(w, "control store:\t%s\n\n", controlLine(&o.Control))
	fmt.Fprintf(w, "SEGMENT\tSEQ\tRECORDS\tBY TYPE\tBYTES\tCIPHER\tKEY ID\tNOTE\n")
	for _, s := range o.Segments {
		var parts []string
		for t, n := range s.ByType {
			parts = append(parts, fmt.Sprintf("%s=%d", t, n))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "%s\t%d..%d\t%d\t%s\t%d\t%s\t%s\t%s\n", filepath.Base(s.File), s.FirstSeq, s.LastSeq, s.Records,
			strings.Join(parts, ","), s.Bytes, s.Cipher, s.KeyID, s.Error)
	}
	fmt.Fprintln(w)
	for _, group := range []struct {
		title string
		list  []snapJSON
	}{{"SNAPSHOT", o.Snapshots}, {"BACKUP", o.Backups}} {
		fmt.Fprintf(w, "%s\tCOVERED SEQ\tBYTES\tCIPHER\tKEY ID\tCREATED\tCOUNTS\tNOTE\n", group.title)
		for _, s := range group.list {
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", filepath.Base(s.File), s.CoveredSeq, s.Bytes, s.Cipher, s.KeyID,
				s.CreatedAt, countsText(s.Counts), snapNote(&s))
		}
		fmt.Fprintln(w)
	}
	if len(o.Control.Files) > 0 {
		fmt.Fprintf(w, "CONTROL FILE\tKIND\tINDEX\tRECORDS\tBYTES\tCIPHER\tKEY ID\tCREATED\tNOTE\n")
		for _, f := range o.Control.Files {
			idx := fmt.Sprintf("%d", f.Index)
			if f.Kind == "log" {
				idx = fmt.Sprintf("base %d", f.Index)
				if f.Records > 0 {
					idx = fmt.Sprintf("%d..%d", f.FirstIndex, f.LastIndex)
				}
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", filepath.Base(f.File), f.Kind, idx, f.Records, f.Bytes,
				f.Cipher, f.KeyID, f.CreatedAt, f.Error)
		}
		fmt.Fprintln(w)
	}
	w.Flush()
}

func countsText(c map[string]uint64) string {
	var parts []string
	for t, n := range c {
		parts = append(parts, fmt.Sprintf("%s=%d", t, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func snapNote(s *snapJSON) string {
	if s.Error != "" || s.Counts == nil || s.CountsVerified {
		return s.Error
	}
	return "counts from the trailer, not authenticated (no key)"
}

// controlLine is the one-line control store summary of text inspect.
func controlLine(c *controlJSON) string {
	if len(c.Files) == 0 && len(c.OtherFiles) == 0 {
		return "empty (no API keys yet)"
	}
	var keys []string
	for _, f := range c.Files {
		if f.KeyID != "" && !slices.Contains(keys, f.KeyID) {
			keys = append(keys, f.KeyID)
		}
	}
	s := fmt.Sprintf("%d files, last index %d (snapshot covers %d, %d log records), key ID %s",
		len(c.Files), c.LastIndex, c.SnapshotIndex, c.LogRecords, strings.Join(keys, " and "))
	switch {
	case c.APIKeys != nil:
		s += fmt.Sprintf(", %d API keys (%d active, %d disabled)", c.APIKeys.Total, c.APIKeys.Active, c.APIKeys.Disabled)
	case c.Error != "":
		s += "; " + c.Error
	}
	if len(c.OtherFiles) > 0 {
		s += fmt.Sprintf("; %d unknown files", len(c.OtherFiles))
	}
	return s
}

// ---- verify ----------------------------------------------------------------

// Problem kinds, one style (snake_case, like every JSON name and value of
// the API) for WAL, snapshot, backup and control store problems. The wal
// package's kinds are converted by problemKind; the snapshot package's
// already have this form.
const (
	kindTruncated      = "truncated"
	kindBadMagic       = "bad_magic"
	kindHeaderChecksum = "header_checksum"
	kindFormatVersion  = "format_version"
	kindBadHeader      = "bad_header"
	kindKeyMismatch    = "key_mismatch"
	kindBadLength      = "bad_length"
	kindCRC            = "crc_mismatch"
	kindTag            = "tag_mismatch"
	kindIndexGap       = "index_gap"
	kindTrailingData   = "trailing_data"
	kindTornTail       = "torn_tail"
	kindMissingFile    = "missing_file"
	kindUnknownFile    = "unknown_file"
	kindBadContent     = "bad_content"
	kindReadError      = "read_error"
)

// problemKind converts a wal package kind ("crc-mismatch") to walctl's style.
func problemKind(k string) string { return strings.ReplaceAll(k, "-", "_") }

func walProblems(ps []wal.Problem) []wal.Problem {
	for i := range ps {
		ps[i].Kind = problemKind(ps[i].Kind)
	}
	return ps
}

type verifyJSON struct {
	OK       bool          `json:"ok"`
	Problems []wal.Problem `json:"problems"`
	Warnings []wal.Problem `json:"warnings"`
}

func newVerify(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check every WAL frame, snapshot, backup and control store file; exit 1 on problems",
		Long: `verify checks every segment header, frame CRC and AEAD tag, seq continuity,
every snapshot and backup (chunk CRCs and tags, trailer hash) and every
control store file (header, record CRCs and tags, index continuity, content),
and prints each problem with its file and seq/offset (for the control store,
seq is the record index). A torn tail at the end of the last segment or of
control/keys.log is a warning (the next start drops it) and does not make
the exit code 1.

Exit codes: 0 clean; 1 problems found; 78 when the only problems are files
under another master key (use the right --key-file, or rekey).`,
		Example: "  tokmesh-walctl verify --data-dir ./data\n  tokmesh-walctl verify -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.lockDataDir()
			if err != nil {
				return err
			}
			defer l.Release()
			key, err := g.key()
			if err != nil {
				return err
			}
			res := verifyJSON{Problems: []wal.Problem{}, Warnings: []wal.Problem{}}
			probs, warns, err := wal.Verify(g.walDir(), key)
			if err != nil {
				return exitf(ExitIO, "%v", err)
			}
			res.Problems = append(res.Problems, walProblems(probs)...)
			res.Warnings = append(res.Warnings, walProblems(warns)...)
			// repair fixes what it can read: not a segment under another
			// key or in a format this build does not know.
			walRepairable := slices.ContainsFunc(res.Problems, func(p wal.Problem) bool {
				return p.Kind != kindKeyMismatch && p.Kind != kindFormatVersion
			})
			snaps, _ := snapshot.List(g.snapDir())
			backs, _ := filepath.Glob(filepath.Join(g.backDir(), "*.tmbak"))
			sort.Strings(backs)
			for _, p := range append(snaps, backs...) {
				if _, err := snapshot.Verify(p, key); err != nil {
					res.Problems = append(res.Problems, snapshotProblem(p, err))
				}
			}
			cprobs, cwarns, ctlFiles, err := verifyControl(g.dataDir, key)
			if err != nil {
				return exitf(ExitIO, "control store: %v", err)
			}
			res.Problems = append(res.Problems, cprobs...)
			res.Warnings = append(res.Warnings, cwarns...)

			res.OK = len(res.Problems) == 0
			keyMismatch := slices.ContainsFunc(res.Problems, func(p wal.Problem) bool { return p.Kind == kindKeyMismatch })
			otherProblems := slices.ContainsFunc(res.Problems, func(p wal.Problem) bool { return p.Kind != kindKeyMismatch })
			if g.output == "json" {
				if err := g.json(res); err != nil {
					return err
				}
			} else {
				for _, p := range res.Problems {
					fmt.Fprintf(g.stdout, "PROBLEM %s offset %d seq %d: %s: %s\n", p.File, p.Offset, p.Seq, p.Kind, p.Message)
				}
				for _, p := range res.Warnings {
					fmt.Fprintf(g.stdout, "WARNING %s offset %d seq %d: %s: %s\n", p.File, p.Offset, p.Seq, p.Kind, p.Message)
				}
				if res.OK {
					fmt.Fprintf(g.stdout, "OK: %d segments, %d snapshots, %d backups, %d control store files verified with key %s\n",
						countSegments(g.walDir()), len(snaps), len(backs), ctlFiles, key.ID())
				} else {
					fmt.Fprintf(g.stdout, "%d problem(s) found\n", len(res.Problems))
					if walRepairable {
						fmt.Fprintln(g.stdout, "`tokmesh-walctl repair` drops the WAL from its first bad record on (keeping .bak copies)")
					}
					if keyMismatch {
						fmt.Fprintln(g.stdout, "some files are under another master key: use the right --key-file or `tokmesh-walctl rekey`")
					}
				}
			}
			switch {
			case otherProblems:
				return &ExitError{Code: ExitProblems, Silent: true}
			case keyMismatch:
				// 05-storage §8: 78 = no key available or key ID mismatch.
				return &ExitError{Code: ExitNoKey, Silent: true}
			}
			return nil
		},
	}
}

func countSegments(dir string) int {
	s, _ := wal.ListSegments(dir)
	return len(s)
}

func snapshotProblem(path string, err error) wal.Problem {
	p := wal.Problem{File: path, Kind: kindReadError, Message: err.Error()}
	var ce *snapshot.CorruptionError
	if errors.As(err, &ce) {
		p.Offset = ce.Offset
		if ce.Kind != "" {
			p.Kind = ce.Kind
		}
	}
	if errors.Is(err, snapshot.ErrKeyMismatch) {
		p.Kind = kindKeyMismatch
	}
	return p
}

// ---- repair ----------------------------------------------------------------

func newRepair(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Drop the WAL from its first bad record on, keeping .bak copies",
		Long: `repair finds the first bad WAL frame and keeps every record before it: the
affected segment and all later ones are renamed *.bak and a new segment holds
the good prefix. It prints how many records were dropped. It asks for
confirmation on a terminal and requires --yes otherwise.`,
		Example: "  tokmesh-walctl repair --data-dir ./data --yes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.lockDataDir()
			if err != nil {
				return err
			}
			defer l.Release()
			key, err := g.key()
			if err != nil {
				return err
			}
			if !yes {
				if !g.isTTY() {
					return exitf(ExitUsage, "repair changes the data dir: pass --yes to confirm when not on a terminal")
				}
				fmt.Fprintf(g.stderr, "repair the WAL in %s? records from the first bad frame on are dropped (kept in .bak files) [y/N] ", g.walDir())
				line, _ := bufio.NewReader(g.stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					return exitf(ExitProblems, "repair cancelled")
				}
			}
			res, err := wal.Repair(g.walDir(), key)
			if err != nil {
				if errors.Is(err, wal.ErrKeyMismatch) {
					return exitf(ExitNoKey, "%v", err)
				}
				return exitf(ExitIO, "%v", err)
			}
			out := repairOutput(res, key)
			if g.output == "json" {
				return g.json(out)
			}
			if res.Clean {
				fmt.Fprintln(g.stdout, "nothing to repair: the WAL is clean")
				return nil
			}
			fmt.Fprintf(g.stdout, "repaired %s at offset %d (%s): kept %d records of that segment; ", res.File, res.Offset, out.Kind, res.RecordsKept)
			if out.RecordsDropped != nil {
				fmt.Fprintf(g.stdout, "dropped %d records (seq %d..%d)\n", *out.RecordsDropped, out.FirstDroppedSeq, *out.LastDroppedSeq)
			} else {
				fmt.Fprintf(g.stdout, "dropped seq %d and everything after it (no intact record follows the damage, so the last seq is unknown)\n", out.FirstDroppedSeq)
			}
			for _, b := range res.Backups {
				fmt.Fprintf(g.stdout, "kept %s\n", b)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

// repairJSON is repair's -o json output.
type repairJSON struct {
	Clean       bool   `json:"clean"`
	File        string `json:"file,omitempty"`
	Offset      int64  `json:"offset"`
	Kind        string `json:"kind,omitempty"`
	RecordsKept int    `json:"records_kept"`
	// FirstDroppedSeq..LastDroppedSeq is what the repaired WAL no longer
	// holds; RecordsDropped counts that range. Both are null when no intact
	// record follows the damage (the last seq that was there is unknown).
	FirstDroppedSeq uint64  `json:"first_dropped_seq,omitempty"`
	LastDroppedSeq  *uint64 `json:"last_dropped_seq"`
	RecordsDropped  *uint64 `json:"records_dropped"`
	// IntactRecordsDropped counts the dropped records that were still
	// readable (the damaged ones excluded).
	IntactRecordsDropped int      `json:"intact_records_dropped"`
	Backups              []string `json:"backups"`
	NewSegment           string   `json:"new_segment,omitempty"`
}

func repairOutput(res wal.RepairResult, key *crypt.MasterKey) repairJSON {
	out := repairJSON{Clean: res.Clean, File: res.File, Offset: res.Offset, Kind: problemKind(res.Kind), RecordsKept: res.RecordsKept,
		FirstDroppedSeq: res.Seq, IntactRecordsDropped: res.RecordsDropped, Backups: res.Backups, NewSegment: res.NewSegment}
	if out.Backups == nil {
		out.Backups = []string{}
	}
	if res.Clean {
		out.RecordsDropped = new(uint64)
		return out
	}
	if first, last, ok := seqRangeIn(res.Backups, res.Seq, key); ok {
		if out.FirstDroppedSeq == 0 { // unknown (an unreadable first header): the first seq found
			out.FirstDroppedSeq = first
		}
		n := last - out.FirstDroppedSeq + 1
		out.LastDroppedSeq, out.RecordsDropped = &last, &n
	}
	return out
}

// seqRangeIn returns the lowest and highest seq ≥ from of the frames that
// authenticate under key in the segment files paths (the .bak copies repair
// made), resyncing byte by byte past damage. Seqs are gap-free (05-storage
// §3), so from..last is exactly what the original WAL held from the damage on.
func seqRangeIn(paths []string, from uint64, key *crypt.MasterKey) (first, last uint64, ok bool) {
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil || len(data) < wal.HeaderSize {
			continue
		}
		h, err := wal.DecodeHeader(data[:wal.HeaderSize])
		if err != nil || h.KeyID != key.ID() {
			continue // the frames cannot be authenticated
		}
		aead, err := key.FileAEAD(h.Cipher, h.Salt[:], crypt.PurposeWAL)
		if err != nil {
			continue
		}
		var aad [17]byte
		binary.BigEndian.PutUint64(aad[0:8], h.SegmentID)
		for off := wal.HeaderSize; off < len(data); {
			f, err := wal.DecodeFrame(data[off:])
			if err == nil {
				binary.BigEndian.PutUint64(aad[8:16], f.Seq)
				aad[16] = f.Type
				nonce := crypt.Nonce(f.Seq)
				if _, err = aead.Open(nil, nonce[:], f.Sealed, aad[:]); err == nil {
					if f.Seq >= from {
						if !ok || f.Seq < first {
							first = f.Seq
						}
						if !ok || f.Seq > last {
							last = f.Seq
						}
						ok = true
					}
					off += f.Size
					continue
				}
			}
			off++
		}
	}
	return first, last, ok
}

func hexHash(b []byte) string { return hex.EncodeToString(b) }
