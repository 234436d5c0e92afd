package walctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/internal/crypt"
	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/snapshot"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

func newRekey(g *globals) *cobra.Command {
	var newKeyFile string
	cmd := &cobra.Command{
		Use:   "rekey --new-key-file FILE",
		Short: "Re-encrypt every WAL segment, snapshot, backup and the control store under a new master key",
		Long: `rekey re-encrypts every WAL segment, snapshot, backup and control store file
(control/keys.snap, control/keys.log) under the key in --new-key-file,
replacing each file atomically (temp file, fsync, rename, directory fsync).
Re-running after an interruption finishes the job: files already under the
new key ID are skipped. When the old key was <data-dir>/master.key, that file
is replaced last.

Exit codes: 0 done; 1 a file is damaged (run verify; nothing more is
changed); 74 I/O error; 78 no key, or a file under a key that is neither the
current nor the new one.`,
		Example: "  tokmesh-server keygen --out /etc/tokmesh-server/new.key\n  tokmesh-walctl rekey --data-dir ./data --new-key-file /etc/tokmesh-server/new.key",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if newKeyFile == "" {
				return exitf(ExitUsage, "--new-key-file is required")
			}
			l, err := g.lockDataDir()
			if err != nil {
				return err
			}
			defer l.Release()
			newKey, err := crypt.ReadKeyFile(newKeyFile)
			if err != nil {
				return exitf(ExitNoKey, "new key: %v", err)
			}
			oldKey, err := g.key()
			if err != nil {
				return err
			}
			if oldKey.ID() == newKey.ID() {
				return exitf(ExitUsage, "the new key is the current key (id %s)", oldKey.ID())
			}
			// The control store first: it is checked completely before any
			// of its files changes, and without it the server cannot start.
			rewritten, skipped, err := rekeyControl(g.dataDir, oldKey, newKey)
			if err != nil {
				return err
			}
			n, k, err := wal.Rekey(g.walDir(), oldKey, newKey)
			rewritten, skipped = rewritten+n, skipped+k
			if err != nil {
				return rekeyError("WAL", err)
			}
			snaps, _ := snapshot.List(g.snapDir())
			backs, _ := filepath.Glob(filepath.Join(g.backDir(), "*.tmbak"))
			sort.Strings(backs)
			for _, p := range append(snaps, backs...) {
				did, err := rekeySnapshot(p, oldKey, newKey)
				if err != nil {
					return rekeyError(p, err)
				}
				if did {
					rewritten++
				} else {
					skipped++
				}
			}
			replacedKeyFile := false
			dataKey := filepath.Join(g.dataDir, crypt.DefaultKeyFileName)
			if g.oldKeyIsDataDirKey(dataKey) {
				if err := datadir.WriteFileAtomic(dataKey, []byte(newKey.Hex()+"\n"), 0o600); err != nil {
					return exitf(ExitIO, "replace %s: %v", dataKey, err)
				}
				replacedKeyFile = true
			}
			if g.output == "json" {
				return g.json(map[string]any{"rewritten": rewritten, "skipped": skipped, "old_key_id": oldKey.ID().String(),
					"new_key_id": newKey.ID().String(), "replaced_data_dir_key": replacedKeyFile})
			}
			fmt.Fprintf(g.stdout, "re-encrypted %d files under key %s (%d already were)\n", rewritten, newKey.ID(), skipped)
			if replacedKeyFile {
				fmt.Fprintf(g.stdout, "%s now holds the new key\n", dataKey)
			} else {
				fmt.Fprintf(g.stdout, "configure the server with the new key (security.encryption.key_file or %s) before starting it\n", crypt.EnvKey)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&newKeyFile, "new-key-file", "", "file with the new 64-hex-char master key (tokmesh-server keygen)")
	return cmd
}

// oldKeyIsDataDirKey reports whether the key in use came from dataKey
// (<data-dir>/master.key): found there by the key lookup, or named by
// --key-file.
func (g *globals) oldKeyIsDataDirKey(dataKey string) bool {
	dk, err := os.Stat(dataKey)
	if err != nil {
		return false
	}
	if g.keyFile != "" {
		kf, err := os.Stat(g.keyFile)
		return err == nil && os.SameFile(kf, dk)
	}
	return g.getenv(crypt.EnvKey) == ""
}

// rekeyError maps a WAL or snapshot rekey failure to its exit code.
func rekeyError(what string, err error) error {
	switch {
	case errors.Is(err, wal.ErrKeyMismatch), errors.Is(err, snapshot.ErrKeyMismatch):
		return exitf(ExitNoKey, "%s: %v", what, err)
	case errors.Is(err, wal.ErrCorrupt), errors.Is(err, snapshot.ErrCorrupt), errors.Is(err, wal.ErrFormatVersion), errors.Is(err, snapshot.ErrFormatVersion):
		return exitf(ExitProblems, "%s: %v (run `tokmesh-walctl verify`; files not yet re-encrypted are unchanged)", what, err)
	}
	return exitf(ExitIO, "%s: %v", what, err)
}

// rekeySnapshot rewrites one snapshot or backup under newKey; false when it
// already is under newKey.
func rekeySnapshot(path string, oldKey, newKey *crypt.MasterKey) (bool, error) {
	h, err := snapshot.ReadHeader(path)
	if err != nil {
		return false, err
	}
	if h.KeyID == newKey.ID() {
		return false, nil
	}
	r, err := snapshot.Open(path, oldKey)
	if err != nil {
		return false, err
	}
	defer r.Close()
	w, err := snapshot.Create(path, snapshot.WriteOptions{Key: newKey, Cipher: h.Cipher, Kind: h.Kind, NodeID: h.NodeID,
		ClusterID: h.ClusterID, Partitions: h.Partitions, CoveredSeq: h.CoveredSeq, Meta: h.Meta, CreatedAt: h.CreatedAt})
	if err != nil {
		return false, err
	}
	for {
		typ, payload, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			w.Abort()
			return false, err
		}
		if err := w.Add(typ, payload); err != nil {
			w.Abort()
			return false, err
		}
	}
	return true, w.Commit()
}

func newBackup(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "backup",
		Short:   "Inspect or verify a backup file (allowed while a server runs)",
		Example: "  tokmesh-walctl backup inspect data/backups/tmbk-01jh8w3m5v00gq1t7c2r9x4bzd.tmbak",
	}
	inspect := &cobra.Command{
		Use:     "inspect FILE",
		Short:   "Print a backup's header and metadata (no key needed)",
		Example: "  tokmesh-walctl backup inspect tmbk-01jh8w3m5v00gq1t7c2r9x4bzd.tmbak -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(args[0]); err != nil {
				return exitf(ExitNotFound, "%s not found", args[0])
			}
			h, err := snapshot.ReadHeader(args[0])
			if err != nil {
				return exitf(ExitProblems, "%v", err)
			}
			d := describeSnapshot(args[0], nil)
			if g.output == "json" {
				m := map[string]any{"file": args[0], "kind": d.Kind, "covered_seq": d.CoveredSeq, "node_id": d.NodeID,
					"cluster_id": d.ClusterID, "partitions": d.Partitions, "cipher": d.Cipher, "key_id": d.KeyID,
					"created_at": d.CreatedAt, "bytes": d.Bytes, "counts": d.Counts, "counts_verified": false, "metadata": rawOrNull(h.Meta)}
				if d.Error != "" {
					m["error"] = d.Error
				}
				return g.json(m)
			}
			fmt.Fprintf(g.stdout, "file:        %s\nkind:        %s\ncovered seq: %d\nnode:        %s\ncluster:     %q\npartitions:  %d\ncipher:      %s\nkey id:      %s\ncreated:     %s\nbytes:       %d\ncounts:      %s\nmetadata:    %s\n",
				args[0], d.Kind, d.CoveredSeq, d.NodeID, d.ClusterID, d.Partitions, d.Cipher, d.KeyID, d.CreatedAt, d.Bytes, countsText(d.Counts), string(h.Meta))
			if note := snapNote(&d); note != "" {
				fmt.Fprintf(g.stdout, "note:        %s\n", note)
			}
			return nil
		},
	}
	verify := &cobra.Command{
		Use:     "verify FILE",
		Short:   "Fully verify a backup file (checksums, tags, trailer hash); exit 1 on problems",
		Example: "  tokmesh-walctl backup verify tmbk-01jh8w3m5v00gq1t7c2r9x4bzd.tmbak --key-file /etc/tokmesh-server/master.key",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(args[0]); err != nil {
				return exitf(ExitNotFound, "%s not found", args[0])
			}
			key, err := g.key()
			if err != nil {
				return err
			}
			info, err := snapshot.Verify(args[0], key)
			if err != nil {
				if errors.Is(err, snapshot.ErrKeyMismatch) {
					return exitf(ExitNoKey, "%v", err)
				}
				if g.output == "json" {
					g.json(map[string]any{"ok": false, "problems": []any{snapshotProblem(args[0], err)}})
					return &ExitError{Code: ExitProblems, Silent: true}
				}
				return exitf(ExitProblems, "%v", err)
			}
			counts := map[string]uint64{}
			for t, n := range info.Trailer.Counts {
				counts[entryName(t)] = n
			}
			if g.output == "json" {
				return g.json(map[string]any{"ok": true, "problems": []any{}, "counts": counts, "bytes": info.Bytes})
			}
			fmt.Fprintf(g.stdout, "OK: %s verified (%d chunks, %v)\n", args[0], info.Trailer.Chunks, counts)
			return nil
		},
	}
	cmd.AddCommand(inspect, verify)
	return cmd
}

func rawOrNull(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return jsonRaw(b)
}
