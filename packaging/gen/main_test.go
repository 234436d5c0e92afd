package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWindowsConfig_LoadsWithWindowsDataDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "windows", "config.yaml")
	if err := windowsConfig(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, "data_dir: "+windowsDataDir+"\n") {
		t.Error("storage.data_dir is not the Windows data dir")
	}
	if strings.Contains(s, "/var/lib/tokmesh-server") || strings.Contains(s, "key_file: /etc") {
		t.Error("Windows config carries Linux package paths")
	}
}

func TestManDate(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	for in, want := range map[string]string{
		"2026-01-31":           "2026-01-31",
		"2026-01-31T23:59:59Z": "2026-01-31",
	} {
		got, err := manDate(in)
		if err != nil || got != want {
			t.Errorf("manDate(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := manDate("31/01/2026"); err == nil {
		t.Error("manDate accepted a bad date")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "86400")
	if got, _ := manDate(""); got != "1970-01-02" {
		t.Errorf("SOURCE_DATE_EPOCH: got %q", got)
	}
}

// TestRun_GeneratesFromTheRealTrees builds every binary of the table with
// the overlay, so a renamed root constructor fails here rather than at
// release time.
func TestRun_GeneratesFromTheRealTrees(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles every binary")
	}
	out := t.TempDir()
	t.Chdir("../..")
	if err := run(out, "1.0.0", "2026-01-31"); err != nil {
		t.Fatal(err)
	}
	for _, b := range binaries {
		for _, f := range []string{"man/" + b.Name + ".1.gz", "completions/bash/" + b.Name, "completions/zsh/_" + b.Name} {
			if _, err := os.Stat(filepath.Join(out, f)); err != nil {
				t.Errorf("%s: %v", b.Name, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(out, "windows", "config.yaml")); err != nil {
		t.Error(err)
	}
}
