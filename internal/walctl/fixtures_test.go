package walctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/datadir"
)

// The committed corruption fixtures of internal/wal and internal/snapshot,
// checked through the tool an operator would use.
const (
	walFixtureKey  = "7f3a9c2e5b1d4f6081a2c3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728"
	snapFixtureKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
)

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dst, 0o700)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600)
	}
}

func writeKey(t *testing.T, hexKey string) string {
	p := filepath.Join(t.TempDir(), "fixture.key")
	if err := os.WriteFile(p, []byte(hexKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFixtures_WALVerifyDetectsEachAndRepairFixesTheRepairable(t *testing.T) {
	key := writeKey(t, walFixtureKey)
	for _, tc := range []struct {
		name       string
		verifyCode int
		wantOut    string
		repairable bool
	}{
		{"good", 0, "OK", false},
		{"torn-last-record", 0, "WARNING", false},
		{"flipped-byte-mid-segment", 1, "PROBLEM", true},
		{"truncated-header", 1, "PROBLEM", true},
		{"wrong-key", 78, "rekey", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, filepath.Join("..", "wal", "testdata", tc.name, "wal"), filepath.Join(dir, datadir.WALDir))
			code, out, errOut := run(t, "verify", "--data-dir", dir, "--key-file", key)
			if code != tc.verifyCode || !strings.Contains(out, tc.wantOut) {
				t.Fatalf("verify: code %d, out %s %s", code, out, errOut)
			}
			if !tc.repairable {
				return
			}
			if code, out, errOut := run(t, "repair", "--data-dir", dir, "--key-file", key, "--yes"); code != 0 {
				t.Fatalf("repair: %d %s %s", code, out, errOut)
			}
			if code, out, _ := run(t, "verify", "--data-dir", dir, "--key-file", key); code != 0 {
				t.Fatalf("verify after repair: %d %s", code, out)
			}
		})
	}
}

func TestFixtures_SnapshotFilesVerifiedAsBackups(t *testing.T) {
	key := writeKey(t, snapFixtureKey)
	fixtures, _ := filepath.Glob(filepath.Join("..", "snapshot", "testdata", "*.snap"))
	if len(fixtures) < 10 {
		t.Fatalf("only %d snapshot fixtures", len(fixtures))
	}
	for _, f := range fixtures {
		name := filepath.Base(f)
		want := 1
		switch {
		case strings.HasPrefix(name, "good"), name == "empty.snap":
			want = 0
		case name == "other-key.snap":
			want = 78
		}
		code, out, errOut := run(t, "backup", "verify", f, "--key-file", key)
		if code != want {
			t.Errorf("%s: exit %d, want %d (%s%s)", name, code, want, out, errOut)
		}
	}
}
