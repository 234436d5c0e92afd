// Package walctl implements tokmesh-walctl, the offline storage tool:
// inspect, verify, dump, repair and rekey the WAL, snapshots, backups and
// control store of a data dir, and inspect/verify backup files
// (05-storage §8).
//
// Every command that takes a data dir acquires its LOCK first and refuses
// (exit 75) while a live server holds it; backup commands operate on a file
// and are allowed while a server runs.
package walctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/internal/buildinfo"
	"github.com/yndnr/tokmesh-go/internal/crypt"
	"github.com/yndnr/tokmesh-go/internal/datadir"
)

// Exit codes (05-storage §8).
const (
	ExitOK       = 0
	ExitProblems = 1
	ExitUsage    = 64
	ExitNotFound = 66
	ExitIO       = 74
	ExitLocked   = 75
	ExitNoKey    = 78
)

// ExitError carries a process exit code; Silent means the message was
// already printed.
type ExitError struct {
	Code   int
	Err    error
	Silent bool
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}
func (e *ExitError) Unwrap() error { return e.Err }

func exitf(code int, format string, args ...any) error {
	return &ExitError{Code: code, Err: fmt.Errorf(format, args...)}
}

// globals holds the flags shared by every command.
type globals struct {
	dataDir string
	keyFile string
	output  string
	stdout  io.Writer
	stderr  io.Writer
	stdin   io.Reader
	isTTY   func() bool
	getenv  func(string) string
}

// Options lets tests run the tool in-process. Nil fields mean the process's
// own: os.Stdout, os.Stderr, os.Stdin, os.Getenv; a nil IsTTY asks whether
// Stdin is a terminal.
type Options struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	IsTTY          func() bool
	Getenv         func(string) string
}

// Run executes tokmesh-walctl with args and returns the process exit code.
func Run(args []string, o Options) int {
	g := &globals{stdout: o.Stdout, stderr: o.Stderr, stdin: o.Stdin, isTTY: o.IsTTY, getenv: o.Getenv}
	if g.stdout == nil {
		g.stdout = os.Stdout
	}
	if g.stderr == nil {
		g.stderr = os.Stderr
	}
	if g.stdin == nil {
		g.stdin = os.Stdin
	}
	if g.isTTY == nil {
		stdin := g.stdin
		g.isTTY = func() bool { return isTerminal(stdin) }
	}
	if g.getenv == nil {
		g.getenv = os.Getenv
	}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if !ee.Silent && ee.Err != nil {
			fmt.Fprintln(g.stderr, "tokmesh-walctl:", ee.Err)
		}
		return ee.Code
	}
	// cobra's own errors (unknown flag, bad args) are usage errors.
	fmt.Fprintln(g.stderr, "tokmesh-walctl:", err)
	return ExitUsage
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "tokmesh-walctl",
		Short: "Inspect, verify, dump, repair and re-encrypt TokMesh storage offline",
		Long: `tokmesh-walctl works on a stopped node's data dir: the encrypted WAL,
snapshots, backups and control store. It takes the data dir lock first and
refuses to run while a server holds it. The master key is found in
--key-file, then TOKMESH_ENCRYPTION_KEY, then <data-dir>/master.key.

Exit codes: 0 ok, 1 problems found, 64 usage, 66 not found, 74 I/O error,
75 data dir locked by a running server, 78 no key or key ID mismatch.`,
		Example: `  tokmesh-walctl verify --data-dir /var/lib/tokmesh-server
  tokmesh-walctl dump --type SESSION_REVOKE -o json
  tokmesh-walctl repair --yes`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.dataDir, "data-dir", "./data", "data directory of the (stopped) node")
	root.PersistentFlags().StringVar(&g.keyFile, "key-file", "", "master key file (64 hex chars); default: $TOKMESH_ENCRYPTION_KEY, then <data-dir>/master.key")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format: text|json")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if g.output != "text" && g.output != "json" {
			return exitf(ExitUsage, "--output must be text or json, not %q", g.output)
		}
		return nil
	}
	root.AddCommand(newInspect(g), newVerify(g), newDump(g), newRepair(g), newRekey(g), newBackup(g), newAudit(g), newVersion(g))
	return root
}

func newVersion(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and build date",
		Example: "  tokmesh-walctl version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(g.stdout, buildinfo.String("tokmesh-walctl"))
			return nil
		},
	}
}

// lockDataDir checks that the data dir exists and takes its lock.
func (g *globals) lockDataDir() (*datadir.Lock, error) {
	st, err := os.Stat(g.dataDir)
	if err != nil || !st.IsDir() {
		return nil, exitf(ExitNotFound, "data dir %s not found", g.dataDir)
	}
	l, err := datadir.Acquire(g.dataDir)
	if err != nil {
		if errors.Is(err, datadir.ErrLocked) {
			return nil, &ExitError{Code: ExitLocked, Err: fmt.Errorf("%w; tokmesh-walctl only works on a stopped node (backup inspect/verify work on a file while the server runs)", err)}
		}
		return nil, exitf(ExitIO, "lock %s: %v", g.dataDir, err)
	}
	return l, nil
}

// key loads the master key: --key-file, TOKMESH_ENCRYPTION_KEY, <data-dir>/master.key.
func (g *globals) key() (*crypt.MasterKey, error) {
	if g.keyFile != "" {
		k, err := crypt.ReadKeyFile(g.keyFile)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, exitf(ExitNoKey, "key file %s not found", g.keyFile)
			}
			return nil, exitf(ExitNoKey, "key file: %v", err)
		}
		return k, nil
	}
	k, _, err := crypt.LoadMasterKey(crypt.LoadOptions{DataDir: g.dataDir, Getenv: g.getenv})
	if err != nil {
		return nil, exitf(ExitNoKey, "%v (use --key-file, %s, or %s)", err, crypt.EnvKey, filepath.Join(g.dataDir, crypt.DefaultKeyFileName))
	}
	return k, nil
}

// optionalKey returns the key or nil when none is available.
func (g *globals) optionalKey() *crypt.MasterKey {
	k, err := g.key()
	if err != nil {
		return nil
	}
	return k
}

func (g *globals) walDir() string  { return filepath.Join(g.dataDir, datadir.WALDir) }
func (g *globals) snapDir() string { return filepath.Join(g.dataDir, datadir.SnapshotDir) }
func (g *globals) backDir() string { return filepath.Join(g.dataDir, datadir.BackupDir) }

func (g *globals) json(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// isTerminal reports whether r is a terminal. A character device is not
// enough (/dev/null is one): go-isatty asks the terminal driver (an ioctl on
// Unix, GetConsoleMode on Windows, plus Cygwin/MSYS pipes).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// jsonRaw embeds metadata that is already JSON.
type jsonRaw []byte

// MarshalJSON returns the bytes when they are valid JSON, else a JSON string.
func (r jsonRaw) MarshalJSON() ([]byte, error) {
	if json.Valid(r) {
		return r, nil
	}
	return json.Marshal(string(r))
}
