// Package gendocs renders the man pages and shell completion scripts of a
// cobra command tree for the release packages (10-packaging §3).
//
// The command trees of tokmesh-server and tokmesh-walctl are unexported, so
// the generator (packaging/gen) compiles each binary with a one-function
// overlay file that calls FromEnv: the pages are rendered from the real
// tree, never from a copy that could drift. Release binaries do not contain
// this package.
package gendocs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
)

// Environment variables that switch a binary built with the overlay into
// generator mode.
const (
	EnvDir     = "TOKMESH_GENDOCS_DIR"     // output directory; generator mode when set
	EnvVersion = "TOKMESH_GENDOCS_VERSION" // version shown in the man page footer
	EnvDate    = "TOKMESH_GENDOCS_DATE"    // man page date, YYYY-MM-DD (reproducible builds)
)

// Options describe the rendered pages.
type Options struct {
	Version string    // e.g. "1.2.0"; "dev" when empty
	Date    time.Time // man page date; zero means today (UTC)
}

// FromEnv is called by the generator overlay from an init function. When
// EnvDir is set it renders root's documentation there and exits the
// process (0 on success, 1 on failure); otherwise it returns at once.
func FromEnv(root func() *cobra.Command) {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		return
	}
	o := Options{Version: os.Getenv(EnvVersion)}
	if d := os.Getenv(EnvDate); d != "" {
		t, err := time.Parse("2006-01-02", d)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gendocs: %s: %v\n", EnvDate, err)
			os.Exit(1)
		}
		o.Date = t
	}
	if err := Generate(root(), dir, o); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Generate writes, for the binary whose root command is root:
//
//	dir/man/<cmd>[-<sub>...].1.gz             one gzipped page per command
//	dir/completions/bash/<name>               bash-completion (v2)
//	dir/completions/zsh/_<name>               zsh
//	dir/completions/fish/<name>.fish          fish
//	dir/completions/powershell/<name>.ps1     PowerShell
//
// The layout matches the install locations so packaging rules can use
// globs and new binaries need no new rules.
func Generate(root *cobra.Command, dir string, o Options) error {
	name := root.Name()
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Date.IsZero() {
		o.Date = time.Now().UTC()
	}
	// Same tree as at run time: cobra adds the completion command lazily
	// (unless the binary disables it), and its pages belong in the manual.
	root.InitDefaultCompletionCmd()
	root.DisableAutoGenTag = true // the tag carries today's date: not reproducible

	completions := []struct {
		path string
		gen  func(*bytes.Buffer) error
	}{
		{filepath.Join("bash", name), func(b *bytes.Buffer) error { return root.GenBashCompletionV2(b, true) }},
		{filepath.Join("zsh", "_"+name), func(b *bytes.Buffer) error { return root.GenZshCompletion(b) }},
		{filepath.Join("fish", name+".fish"), func(b *bytes.Buffer) error { return root.GenFishCompletion(b, true) }},
		{filepath.Join("powershell", name+".ps1"), func(b *bytes.Buffer) error { return root.GenPowerShellCompletionWithDesc(b) }},
	}
	for _, c := range completions {
		var b bytes.Buffer
		if err := c.gen(&b); err != nil {
			return fmt.Errorf("%s completion for %s: %w", strings.Split(c.path, string(filepath.Separator))[0], name, err)
		}
		if err := writeFile(filepath.Join(dir, "completions", c.path), b.Bytes()); err != nil {
			return err
		}
	}
	// Man pages last: escaping changes the tree's texts, which the
	// completion scripts (descriptions) must not see.
	escapeMarkdown(root)
	manDir := filepath.Join(dir, "man")
	tmp, err := os.MkdirTemp("", "gendocs-man-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	date := o.Date.UTC()
	hdr := &doc.GenManHeader{
		Section: "1",
		Date:    &date,
		Source:  "TokMesh " + o.Version,
		Manual:  "TokMesh Manual",
	}
	if err := doc.GenManTree(root, hdr, tmp); err != nil {
		return fmt.Errorf("man pages for %s: %w", name, err)
	}
	pages, err := filepath.Glob(filepath.Join(tmp, "*.1"))
	if err != nil {
		return err
	}
	sort.Strings(pages)
	if len(pages) == 0 {
		return fmt.Errorf("man pages for %s: none generated", name)
	}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		gz, err := gzipBytes(b)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(manDir, filepath.Base(p)+".gz"), gz); err != nil {
			return err
		}
	}

	return nil
}

// placeholder matches what markdown takes for an HTML tag: <name>.
var placeholder = regexp.MustCompile(`<([A-Za-z][A-Za-z0-9_.-]*)>`)

// escapeMarkdown protects "<...>" placeholders such as TOKMESH_<KEY> in
// long descriptions and flag usages, which the man page renderer (markdown)
// would drop as HTML tags. Only this process's copy of the tree changes.
func escapeMarkdown(root *cobra.Command) {
	esc := func(s string) string { return placeholder.ReplaceAllString(s, `\<$1>`) }
	seen := map[*pflag.Flag]bool{} // subcommands share their parents' persistent flags
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Long = esc(c.Long)
		for _, fs := range []*pflag.FlagSet{c.LocalFlags(), c.PersistentFlags(), c.InheritedFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if !seen[f] {
					seen[f] = true
					f.Usage = esc(f.Usage)
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// gzipBytes compresses b the way `gzip -n -9` does: no name, no time stamp,
// so identical pages give identical files.
func gzipBytes(b []byte) ([]byte, error) {
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
