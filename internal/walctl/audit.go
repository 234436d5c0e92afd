package walctl

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/datadir"
)

// auditVerifyJSON is the -o json output of `audit verify`.
type auditVerifyJSON struct {
	OK             bool     `json:"ok"`
	Records        int      `json:"records"`
	Anchor         string   `json:"anchor"`
	LastHash       string   `json:"last_hash"`
	LastSeq        uint64   `json:"last_seq"`
	FirstBrokenSeq uint64   `json:"first_broken_seq,omitempty"`
	File           string   `json:"file,omitempty"`
	Line           int      `json:"line,omitempty"`
	Error          string   `json:"error,omitempty"`
	Warnings       []string `json:"warnings"`
}

func newAudit(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Audit log tools",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit hash chain; exit 1 at the first broken record",
		Long: `verify recomputes the hash chain of <data-dir>/audit, oldest file first:
every record's prev_hash must be the SHA-256 of the previous line and seq
must have no gaps. It prints the anchor (prev_hash of the oldest remaining
record: 64 zeros unless retention deleted older files) and the last hash;
compare the last hash with the audit_last_hash you recorded from
GET /admin/v1/status, since a change to the newest line cannot show in the
chain itself. On a broken chain it prints the seq of the first record whose
prev_hash does not match its predecessor (after an edited line, the record
following it) and exits 1. No key is needed: the audit log is not encrypted.`,
		Example: "  tokmesh-walctl audit verify --data-dir /var/lib/tokmesh-server\n  tokmesh-walctl audit verify -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.lockDataDir()
			if err != nil {
				return err
			}
			defer l.Release()
			dir := filepath.Join(g.dataDir, datadir.AuditDir)
			res, err := audit.Verify(dir)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return exitf(ExitNotFound, "audit dir %s not found", dir)
				}
				return exitf(ExitIO, "%v", err)
			}
			out := auditVerifyJSON{OK: res.OK, Records: res.Records, Anchor: res.Anchor, LastHash: res.LastHash, LastSeq: res.LastSeq,
				FirstBrokenSeq: res.FirstBrokenSeq, File: res.File, Line: res.Line, Warnings: res.Warnings}
			if out.Warnings == nil {
				out.Warnings = []string{}
			}
			if res.Err != nil {
				out.Error = res.Err.Error()
			}
			if g.output == "json" {
				if err := g.json(out); err != nil {
					return err
				}
			} else {
				for _, w := range res.Warnings {
					fmt.Fprintf(g.stdout, "WARNING %s\n", w)
				}
				if res.OK {
					fmt.Fprintf(g.stdout, "OK: %d records verified (last seq %d)\n", res.Records, res.LastSeq)
				} else {
					fmt.Fprintf(g.stdout, "BROKEN at seq %d (%s line %d): %v\n", res.FirstBrokenSeq, res.File, res.Line, res.Err)
					fmt.Fprintf(g.stdout, "%d records verified before it (last good seq %d)\n", res.Records, res.LastSeq)
				}
				fmt.Fprintf(g.stdout, "anchor:    %s\n", orNone(res.Anchor))
				fmt.Fprintf(g.stdout, "last hash: %s\n", orNone(res.LastHash))
				if !res.OK {
					fmt.Fprintf(g.stdout, "(the last hash is that of seq %d, the last record before the break)\n", res.LastSeq)
				}
			}
			if !res.OK {
				return &ExitError{Code: ExitProblems, Silent: true}
			}
			return nil
		},
	})
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "(none: no records)"
	}
	return s
}
