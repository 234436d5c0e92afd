package walctl

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	Error      string            `json:"error,omitempty"`
}

type inspectJSON struct {
	DataDir   string        `json:"data_dir"`
	Node      *datadir.Node `json:"node,omitempty"`
	Segments  []segmentJSON `json:"segments"`
	Snapshots []snapJSON    `json:"snapshots"`
	Backups   []snapJSON    `json:"backups"`
	Control   string        `json:"control_store"`
}

func newInspect(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect",
		Short: "Summarize WAL segments, snapshots and backups (no key needed)",
		Long: `inspect lists every WAL segment (ID, seq range, records by type, bytes,
cipher, key ID), every snapshot and backup (covered seq, header) and the
control store. The framing is plaintext, so no key is needed; with a key,
snapshot entry counts are read from the verified trailer.`,
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
			out.Control = controlSummary(g.dataDir)
			if g.output == "json" {
				return g.json(out)
			}
			printInspect(g, &out)
			return nil
		},
	}
}

func controlSummary(dir string) string {
	entries, err := os.ReadDir(filepath.Join(dir, datadir.ControlDir))
	if err != nil || len(entries) == 0 {
		return "empty (no API keys or cluster state yet)"
	}
	return fmt.Sprintf("%d files", len(entries))
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
	if key != nil && key.ID() == h.KeyID {
		info, err := snapshot.Verify(path, key)
		if err != nil {
			sj.Error = err.Error()
		} else {
			sj.Counts = map[string]uint64{}
			for t, n := range info.Trailer.Counts {
				sj.Counts[entryName(t)] = n
			}
		}
	}
	return sj
}

func printInspect(g *globals, o *inspectJSON) {
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "data dir:\t%s\n", o.DataDir)
	if o.Node != nil {
		fmt.Fprintf(w, "node:\t%s (cluster %q, %d partitions, created %s)\n", o.Node.NodeID, o.Node.ClusterID, o.Node.Partitions, msTime(o.Node.CreatedAt))
	}
	fmt.Fprintf(w, "control store:\t%s\n\n", o.Control)
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
			var parts []string
			for t, n := range s.Counts {
				parts = append(parts, fmt.Sprintf("%s=%d", t, n))
			}
			sort.Strings(parts)
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", filepath.Base(s.File), s.CoveredSeq, s.Bytes, s.Cipher, s.KeyID,
				s.CreatedAt, strings.Join(parts, ","), s.Error)
		}
		fmt.Fprintln(w)
	}
	w.Flush()
}

// ---- verify ----------------------------------------------------------------

type verifyJSON struct {
	OK       bool          `json:"ok"`
	Problems []wal.Problem `json:"problems"`
	Warnings []wal.Problem `json:"warnings"`
}

func newVerify(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check every WAL frame, snapshot and backup; exit 1 on problems",
		Long: `verify checks every segment header, frame CRC and AEAD tag, seq continuity,
every snapshot and backup (chunk CRCs and tags, trailer hash), and prints
each problem with its file and seq/offset. A torn tail at the end of the
last segment is a warning (the next start truncates it) and does not make
the exit code 1.`,
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
			res.Problems = append(res.Problems, probs...)
			res.Warnings = append(res.Warnings, warns...)
			snaps, _ := snapshot.List(g.snapDir())
			backs, _ := filepath.Glob(filepath.Join(g.backDir(), "*.tmbak"))
			sort.Strings(backs)
			keyMismatch := false
			for _, p := range append(snaps, backs...) {
				if _, err := snapshot.Verify(p, key); err != nil {
					res.Problems = append(res.Problems, snapshotProblem(p, err))
					keyMismatch = keyMismatch || errors.Is(err, snapshot.ErrKeyMismatch)
				}
			}
			for _, p := range probs {
				keyMismatch = keyMismatch || p.Kind == wal.KindKeyMismatch
			}
			res.OK = len(res.Problems) == 0
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
					fmt.Fprintf(g.stdout, "OK: %d segments, %d snapshots, %d backups verified with key %s\n", countSegments(g.walDir()), len(snaps), len(backs), key.ID())
				} else {
					fmt.Fprintf(g.stdout, "%d problem(s) found; `tokmesh-walctl repair` drops everything from the first bad WAL record on (keeping .bak copies)\n", len(res.Problems))
					if keyMismatch {
						fmt.Fprintln(g.stdout, "some files are under another master key: use the right --key-file or `tokmesh-walctl rekey`")
					}
				}
			}
			if !res.OK {
				return &ExitError{Code: ExitProblems, Silent: true}
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
	p := wal.Problem{File: path, Kind: "snapshot", Message: err.Error()}
	var ce *snapshot.CorruptionError
	if errors.As(err, &ce) {
		p.Offset = ce.Offset
		if ce.Kind != "" {
			p.Kind = ce.Kind
		}
	}
	if errors.Is(err, snapshot.ErrKeyMismatch) {
		p.Kind = wal.KindKeyMismatch
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
			if g.output == "json" {
				return g.json(res)
			}
			if res.Clean {
				fmt.Fprintln(g.stdout, "nothing to repair: the WAL is clean")
				return nil
			}
			fmt.Fprintf(g.stdout, "repaired %s at offset %d (%s): kept %d records of that segment, dropped %d records from seq %d on\n",
				res.File, res.Offset, res.Kind, res.RecordsKept, res.RecordsDropped, res.Seq)
			for _, b := range res.Backups {
				fmt.Fprintf(g.stdout, "kept %s\n", b)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

func hexHash(b []byte) string { return hex.EncodeToString(b) }
