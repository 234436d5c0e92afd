package gendocs

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

func sampleTree() *cobra.Command {
	root := &cobra.Command{Use: "tool", Short: "A tool", Long: "Reads TOKMESH_<KEY> variables."}
	root.PersistentFlags().String("key-file", "", "key file; default: <data-dir>/master.key")
	sub := &cobra.Command{Use: "verify", Short: "Verify things", Run: func(*cobra.Command, []string) {}}
	root.AddCommand(sub)
	return root
}

func readGzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGenerate_WritesManPagesAndCompletions(t *testing.T) {
	dir := t.TempDir()
	date := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	if err := Generate(sampleTree(), dir, Options{Version: "1.2.3", Date: date}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{
		"man/tool.1.gz", "man/tool-verify.1.gz", "man/tool-completion-bash.1.gz",
		"completions/bash/tool", "completions/zsh/_tool", "completions/fish/tool.fish", "completions/powershell/tool.ps1",
	} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	page := readGzip(t, filepath.Join(dir, "man", "tool.1.gz"))
	for _, want := range []string{`.TH "TOOL" "1" "Jan 2026" "TokMesh 1.2.3" "TokMesh Manual"`, "TOKMESH_<KEY>", "<data-dir>/master.key"} {
		if !strings.Contains(page, want) {
			t.Errorf("man page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "Auto generated") {
		t.Error("man page carries cobra's dated auto-gen tag")
	}
	// The escaping for the man pages must not leak into the completions.
	zsh, err := os.ReadFile(filepath.Join(dir, "completions", "zsh", "_tool"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(zsh), `\<`) {
		t.Error("zsh completion contains markdown escapes")
	}
}

func TestGenerate_IsReproducible(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	o := Options{Version: "1.0.0", Date: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := Generate(sampleTree(), a, o); err != nil {
		t.Fatal(err)
	}
	if err := Generate(sampleTree(), b, o); err != nil {
		t.Fatal(err)
	}
	pa, _ := os.ReadFile(filepath.Join(a, "man", "tool.1.gz"))
	pb, _ := os.ReadFile(filepath.Join(b, "man", "tool.1.gz"))
	if len(pa) == 0 || string(pa) != string(pb) {
		t.Error("the same tree and options gave different man page files")
	}
}
