package walctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/crypt"
	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/session"
	"github.com/yndnr/tokmesh-go/internal/snapshot"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

// makeDataDir builds a real data dir with the engine: n sessions, a
// snapshot after the first half, some revocations. The key lives in
// <dir>/master.key, as on a zero-config node.
func makeDataDir(t *testing.T, n int) (dir string, tokens []string) {
	t.Helper()
	dir = t.TempDir()
	cfg := engine.DefaultConfig(dir)
	cfg.Getenv = func(string) string { return "" }
	cfg.SweepInterval = -1
	cfg.SnapshotInterval, cfg.SnapshotWALThreshold, cfg.SnapshotOnClose = 0, 0, false
	e, err := engine.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		tok := fmt.Sprintf("walctl-secret-token-%05d", i)
		res, err := e.Create(session.CreateRequest{Token: tok, UserID: fmt.Sprintf("u%d", i%5), IP: netip.MustParseAddr("127.0.0.1"), CreatedBy: "LOCAL_ADMIN"})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
		if i%10 == 0 {
			if _, err := e.Revoke(res.Session.ID); err != nil {
				t.Fatal(err)
			}
		}
		if i == n/2 {
			if _, err := e.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, tokens
}

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Run(args, Options{Stdout: &o, Stderr: &e, IsTTY: func() bool { return false }, Getenv: func(string) string { return "" }})
	return code, o.String(), e.String()
}

func lastSeg(t *testing.T, dir string) string {
	segs, err := wal.ListSegments(filepath.Join(dir, datadir.WALDir))
	if err != nil || len(segs) == 0 {
		t.Fatal(err)
	}
	return segs[len(segs)-1].Path
}

func TestVerify_CleanDataDirExits0(t *testing.T) {
	dir, _ := makeDataDir(t, 100)
	code, out, errOut := run(t, "verify", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("code %d out %s err %s", code, out, errOut)
	}
	code, out, _ = run(t, "verify", "--data-dir", dir, "-o", "json")
	var v struct {
		OK       bool  `json:"ok"`
		Problems []any `json:"problems"`
		Warnings []any `json:"warnings"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || !v.OK || v.Problems == nil || v.Warnings == nil {
		t.Fatalf("json verify: %d %s", code, out)
	}
}

func TestVerifyAndRepair_FlippedByteMidSegment(t *testing.T) {
	dir, _ := makeDataDir(t, 100)
	seg := lastSeg(t, dir)
	b, _ := os.ReadFile(seg)
	b[len(b)/2] ^= 0x10
	os.WriteFile(seg, b, 0o600)

	code, out, _ := run(t, "verify", "--data-dir", dir)
	if code != 1 || !strings.Contains(out, filepath.Base(seg)) {
		t.Fatalf("verify: code %d out %s", code, out)
	}
	if code, _, errOut := run(t, "repair", "--data-dir", dir); code != 64 || !strings.Contains(errOut, "--yes") {
		t.Fatalf("repair without --yes off a TTY: %d %s", code, errOut)
	}
	code, out, errOut := run(t, "repair", "--data-dir", dir, "--yes")
	if code != 0 || !strings.Contains(out, "dropped") {
		t.Fatalf("repair: %d %s %s", code, out, errOut)
	}
	baks, _ := filepath.Glob(filepath.Join(dir, datadir.WALDir, "*.bak"))
	if len(baks) == 0 {
		t.Fatal("repair kept no .bak")
	}
	if code, out, _ := run(t, "verify", "--data-dir", dir); code != 0 {
		t.Fatalf("verify after repair: %d %s", code, out)
	}
}

func TestVerify_TornTailIsAWarningNotAFailure(t *testing.T) {
	dir, _ := makeDataDir(t, 50)
	seg := lastSeg(t, dir)
	st, _ := os.Stat(seg)
	os.Truncate(seg, st.Size()-5)
	code, out, _ := run(t, "verify", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "WARNING") {
		t.Fatalf("code %d out %s", code, out)
	}
}

func TestVerify_FlippedSnapshotChunkByteExits1(t *testing.T) {
	dir, _ := makeDataDir(t, 200)
	snaps, _ := snapshot.List(filepath.Join(dir, datadir.SnapshotDir))
	if len(snaps) == 0 {
		t.Fatal("no snapshot")
	}
	b, _ := os.ReadFile(snaps[0])
	b[len(b)/2] ^= 1
	os.WriteFile(snaps[0], b, 0o600)
	code, out, _ := run(t, "verify", "--data-dir", dir, "-o", "json")
	if code != 1 || !strings.Contains(out, filepath.Base(snaps[0])) {
		t.Fatalf("code %d out %s", code, out)
	}
}

// 05-storage §8: exit 78 is "no key available or key ID mismatch", as for
// dump and repair.
func TestVerify_WrongKeyExits78(t *testing.T) {
	dir, _ := makeDataDir(t, 20)
	other := filepath.Join(t.TempDir(), "other.key")
	k, _ := crypt.GenerateMasterKey()
	crypt.WriteKeyFile(other, k)
	code, out, _ := run(t, "verify", "--data-dir", dir, "--key-file", other)
	if code != 78 || !strings.Contains(out, "rekey") || !strings.Contains(out, "key_mismatch") || strings.Contains(out, "repair") {
		t.Fatalf("code %d out %s", code, out)
	}
	if code, _, _ := run(t, "dump", "--data-dir", dir, "--key-file", other); code != 78 {
		t.Fatalf("dump with the wrong key: %d", code)
	}
	// Corruption found besides the mismatch is still exit 1: fixing the
	// key would not make it go away.
	seg := lastSeg(t, dir)
	b, _ := os.ReadFile(seg)
	b[len(b)/2] ^= 0x10
	os.WriteFile(seg, b, 0o600)
	if code, out, _ := run(t, "verify", "--data-dir", dir, "--key-file", other); code != 1 {
		t.Fatalf("wrong key and a flipped byte: code %d out %s", code, out)
	}
}

func TestDump_JSONLinesCarryHashesNeverTokens(t *testing.T) {
	dir, tokens := makeDataDir(t, 60)
	code, out, errOut := run(t, "dump", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("dump: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var first struct {
		Seq     uint64         `json:"seq"`
		Segment uint64         `json:"segment"`
		Type    string         `json:"type"`
		Session map[string]any `json:"session"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Type == "" || first.Segment == 0 {
		t.Fatalf("first line %q: %v", lines[0], err)
	}
	if _, ok := first.Session["token_hash"]; !ok {
		t.Fatalf("no token_hash in %s", lines[0])
	}
	for _, tok := range tokens {
		if strings.Contains(out, tok) {
			t.Fatalf("dump leaked token %s", tok)
		}
	}
	_, revokes, _ := run(t, "dump", "--data-dir", dir, "--type", "SESSION_REVOKE")
	for _, l := range strings.Split(strings.TrimSpace(revokes), "\n") {
		if !strings.Contains(l, `"type":"SESSION_REVOKE"`) {
			t.Fatalf("type filter let through %s", l)
		}
	}
	code, snapOut, _ := run(t, "dump", "--data-dir", dir, "--snapshot", mustFirstSnapshot(t, dir))
	if code != 0 || !strings.Contains(snapOut, `"entry":"session"`) {
		t.Fatalf("snapshot dump: %d %s", code, snapOut)
	}
	if code, _, _ := run(t, "dump", "--data-dir", dir, "--type", "BOGUS"); code != 64 {
		t.Fatalf("bad --type: %d", code)
	}
}

func mustFirstSnapshot(t *testing.T, dir string) string {
	snaps, _ := snapshot.List(filepath.Join(dir, datadir.SnapshotDir))
	if len(snaps) == 0 {
		t.Fatal("no snapshot")
	}
	return snaps[0]
}

func TestRekey_ReencryptsEverythingAndIsResumable(t *testing.T) {
	dir, _ := makeDataDir(t, 80)
	oldKey, _ := crypt.ReadKeyFile(filepath.Join(dir, "master.key"))
	newPath := filepath.Join(t.TempDir(), "new.key")
	nk, _ := crypt.GenerateMasterKey()
	crypt.WriteKeyFile(newPath, nk)
	code, out, errOut := run(t, "rekey", "--data-dir", dir, "--new-key-file", newPath)
	if code != 0 {
		t.Fatalf("rekey: %d %s %s", code, out, errOut)
	}
	// master.key in the data dir was the old key: it now holds the new one.
	cur, _ := crypt.ReadKeyFile(filepath.Join(dir, "master.key"))
	if cur.ID() != nk.ID() || cur.ID() == oldKey.ID() {
		t.Fatal("data dir key not replaced")
	}
	if code, out, _ := run(t, "verify", "--data-dir", dir); code != 0 {
		t.Fatalf("verify under new key: %s", out)
	}
	// Running again skips everything.
	code, out, _ = run(t, "rekey", "--data-dir", dir, "--new-key-file", newPath, "--key-file", newPath)
	if code != 64 {
		t.Fatalf("rekey to the same key: %d %s", code, out)
	}
}

func TestDataDirHeldByServerExits75(t *testing.T) {
	dir, _ := makeDataDir(t, 5)
	l, err := datadir.Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	for _, cmd := range []string{"inspect", "verify", "dump", "repair"} {
		code, _, errOut := run(t, cmd, "--data-dir", dir, "--yes")
		if cmd != "repair" {
			code, _, errOut = run(t, cmd, "--data-dir", dir)
		}
		if code != 75 || !strings.Contains(errOut, "locked") {
			t.Fatalf("%s: code %d %s", cmd, code, errOut)
		}
	}
}

func TestExitCodes_MissingDirNoKeyBadFlag(t *testing.T) {
	if code, _, _ := run(t, "verify", "--data-dir", filepath.Join(t.TempDir(), "nope")); code != 66 {
		t.Fatalf("missing dir: %d", code)
	}
	dir, _ := makeDataDir(t, 5)
	os.Remove(filepath.Join(dir, "master.key"))
	if code, _, errOut := run(t, "verify", "--data-dir", dir); code != 78 || !strings.Contains(errOut, "TOKMESH_ENCRYPTION_KEY") {
		t.Fatalf("no key: %d %s", code, errOut)
	}
	if code, _, _ := run(t, "verify", "--bogus"); code != 64 {
		t.Fatalf("bad flag: %d", code)
	}
	if code, _, _ := run(t, "inspect", "--data-dir", dir); code != 0 {
		t.Fatalf("inspect needs no key: %d", code)
	}
}

func TestInspect_ListsSegmentsAndSnapshots(t *testing.T) {
	dir, _ := makeDataDir(t, 100)
	code, out, _ := run(t, "inspect", "--data-dir", dir, "-o", "json")
	var v inspectJSON
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("%d %s", code, out)
	}
	if len(v.Segments) == 0 || len(v.Snapshots) != 1 || v.Node == nil || v.Segments[0].Records == 0 {
		t.Fatalf("inspect: %+v", v)
	}
	if v.Snapshots[0].Counts["session"] == 0 {
		t.Fatalf("snapshot counts missing: %+v", v.Snapshots[0])
	}
	code, text, _ := run(t, "inspect", "--data-dir", dir)
	if code != 0 || !strings.Contains(text, "SEGMENT") || !strings.Contains(text, "SESSION_PUT") {
		t.Fatalf("text inspect: %s", text)
	}
}

func TestBackup_InspectAndVerifyAFile(t *testing.T) {
	dir, _ := makeDataDir(t, 30)
	key, _ := crypt.ReadKeyFile(filepath.Join(dir, "master.key"))
	path := filepath.Join(dir, datadir.BackupDir, "tmbk-01jh8w3m5v00gq1t7c2r9x4bzd.tmbak")
	w, err := snapshot.Create(path, snapshot.WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: snapshot.KindBackup,
		NodeID: "tmnd-test", Partitions: 256, CoveredSeq: 7, Meta: []byte(`{"backup_id":"tmbk-01jh8w3m5v00gq1t7c2r9x4bzd"}`)})
	if err != nil {
		t.Fatal(err)
	}
	w.Add(engine.EntryPartition, []byte{0, 1, 1, 1})
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	// Allowed while a server holds the data dir.
	l, _ := datadir.Acquire(dir)
	defer l.Release()
	code, out, _ := run(t, "backup", "inspect", path, "-o", "json")
	if code != 0 || !strings.Contains(out, `"backup_id":"tmbk-01jh8w3m5v00gq1t7c2r9x4bzd"`) {
		t.Fatalf("inspect: %d %s", code, out)
	}
	if code, out, errOut := run(t, "backup", "verify", path, "--key-file", filepath.Join(dir, "master.key")); code != 0 {
		t.Fatalf("verify: %d %s %s", code, out, errOut)
	}
	b, _ := os.ReadFile(path)
	b[len(b)-40] ^= 1
	os.WriteFile(path, b, 0o600)
	if code, _, _ := run(t, "backup", "verify", path, "--key-file", filepath.Join(dir, "master.key")); code != 1 {
		t.Fatalf("corrupt backup verify: %d", code)
	}
	if code, _, _ := run(t, "backup", "verify", path+"x"); code != 66 {
		t.Fatalf("missing file: %d", code)
	}
}

func TestDump_MissingSnapshotFileExits66(t *testing.T) {
	dir, _ := makeDataDir(t, 5)
	code, _, errOut := run(t, "dump", "--data-dir", dir, "--snapshot", filepath.Join(t.TempDir(), "nope.snap"))
	if code != 66 || !strings.Contains(errOut, "not found") {
		t.Fatalf("missing --snapshot file: exit %d, stderr %s (want 66)", code, errOut)
	}
}

func TestRekey_KeyFileNamingTheDataDirKeyIsReplaced(t *testing.T) {
	dir, _ := makeDataDir(t, 10)
	newPath := filepath.Join(t.TempDir(), "new.key")
	nk, _ := crypt.GenerateMasterKey()
	crypt.WriteKeyFile(newPath, nk)
	// The old key is <data-dir>/master.key, named explicitly.
	code, out, errOut := run(t, "rekey", "--data-dir", dir, "--key-file", filepath.Join(dir, "master.key"), "--new-key-file", newPath)
	if code != 0 {
		t.Fatalf("rekey: %d %s %s", code, out, errOut)
	}
	if cur, err := crypt.ReadKeyFile(filepath.Join(dir, "master.key")); err != nil || cur.ID() != nk.ID() {
		t.Fatalf("data dir key not replaced: %v", err)
	}
	if code, out, _ := run(t, "verify", "--data-dir", dir); code != 0 {
		t.Fatalf("verify with the data dir key: %d %s", code, out)
	}
}
