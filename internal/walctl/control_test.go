package walctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/crypt"
	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/server"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

// node is a real tokmesh-server on a data dir, reached over its local
// admin socket (no API key needed there).
type node struct {
	t     *testing.T
	srv   *server.Server
	local *http.Client
}

// startNode starts the real server on dataDir with the master key keyHex
// (TOKMESH_ENCRYPTION_KEY). It returns the Start error instead of failing.
func startNode(t *testing.T, dataDir, keyHex string) (*node, error) {
	t.Helper()
	c := config.Default()
	c.Storage.DataDir = dataDir
	c.Server.HTTP.Address = "127.0.0.1:0"
	c.Server.HTTPS.Address = "127.0.0.1:0"
	c.Server.RESP.Enabled = false
	c.Server.RESPTLS.Enabled = false
	c.Server.Shutdown.GracePeriod = 100 * time.Millisecond
	c.Security.Auth.Argon2 = config.Argon2{Memory: 8192, Iterations: 1, Parallelism: 1}
	sockDir, err := os.MkdirTemp("", "wctl") // short: Unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "a.sock")
	c.Server.Local.SocketPath = sock
	getenv := func(k string) string {
		if k == crypt.EnvKey {
			return keyHex
		}
		return ""
	}
	srv := server.New(c, server.Options{Getenv: getenv})
	if err := srv.Start(context.Background()); err != nil {
		srv.Close()
		return nil, err
	}
	n := &node{t: t, srv: srv, local: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}}
	t.Cleanup(func() { n.close() })
	return n, nil
}

func (n *node) close() {
	if n.srv != nil {
		if err := n.srv.Close(); err != nil {
			n.t.Errorf("close server: %v", err)
		}
		n.srv = nil
	}
	n.local.CloseIdleConnections()
}

// do sends an admin request over the local socket and decodes the data.
func (n *node) do(method, path, body string) map[string]any {
	n.t.Helper()
	req, _ := http.NewRequest(method, "http://local"+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.local.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		n.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		n.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
	}
	if d, ok := v["data"].(map[string]any); ok {
		return d
	}
	return v
}

// makeServerDataDir lets the real server write a data dir with API keys:
// a first run creates three keys and disables one (commands in keys.log),
// a second run starts from there (folding them into keys.snap) and creates
// two more. Sessions come along for the WAL and a snapshot.
func makeServerDataDir(t *testing.T) (dir, keyHex string, keyIDs []string) {
	t.Helper()
	keyHex = strings.Repeat("5a", 32)
	dir, keyIDs = makeServerDataDirWithKey(t, keyHex)
	return dir, keyHex, keyIDs
}

func makeServerDataDirWithKey(t *testing.T, keyHex string) (dir string, keyIDs []string) {
	t.Helper()
	dir = t.TempDir()
	create := func(n *node, role string) string {
		k := n.do("POST", "/admin/v1/keys", fmt.Sprintf(`{"role":%q,"description":"walctl test"}`, role))
		id, _ := k["key_id"].(string)
		if id == "" {
			t.Fatalf("create key: %v", k)
		}
		return id
	}
	n, err := startNode(t, dir, keyHex)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"admin", "issuer", "validator"} {
		keyIDs = append(keyIDs, create(n, role))
	}
	n.do("POST", "/admin/v1/keys/"+keyIDs[2]+"/status", `{"status":"disabled"}`)
	for i := range 20 {
		n.do("POST", "/sessions", fmt.Sprintf(`{"user_id":"u%d"}`, i))
	}
	n.close()
	n, err = startNode(t, dir, keyHex)
	if err != nil {
		t.Fatal(err)
	}
	keyIDs = append(keyIDs, create(n, "metrics"), create(n, "issuer"))
	n.do("POST", "/admin/v1/backups/snapshots", `{"description":"walctl test"}`)
	n.close()
	for _, f := range []string{auth.SnapshotFileName, auth.LogFileName} {
		if _, err := os.Stat(filepath.Join(dir, datadir.ControlDir, f)); err != nil {
			t.Fatalf("the server wrote no %s: %v", f, err)
		}
	}
	return dir, keyIDs
}

func keyFile(t *testing.T, hexKey string) (string, *crypt.MasterKey) {
	t.Helper()
	p := writeKey(t, hexKey)
	k, err := crypt.ReadKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, k
}

func newKeyFile(t *testing.T) (string, *crypt.MasterKey) {
	t.Helper()
	k, err := crypt.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	return keyFile(t, k.Hex())
}

// openControl opens the control store the way the server does (writable,
// so a later Apply would work), or returns the error.
func openControl(t *testing.T, dir string, key *crypt.MasterKey) (*auth.View, error) {
	t.Helper()
	st, err := auth.OpenStore(auth.StoreOptions{Dir: filepath.Join(dir, datadir.ControlDir), MasterKey: key})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return st.View(), nil
}

func checkKeys(t *testing.T, v *auth.View, ids []string) {
	t.Helper()
	if v.Len() != len(ids) {
		t.Fatalf("%d keys, want %d", v.Len(), len(ids))
	}
	for i, id := range ids {
		k, ok := v.Get(id)
		if !ok {
			t.Fatalf("key %s lost", id)
		}
		if want := auth.StatusActive; i == 2 {
			if k.Status != auth.StatusDisabled {
				t.Fatalf("key %s: status %s, want disabled", id, k.Status)
			}
		} else if k.Status != want {
			t.Fatalf("key %s: status %s", id, k.Status)
		}
	}
}

func TestRekey_ControlStoreWrittenByServerStartsUnderNewKey(t *testing.T) {
	dir, oldHex, ids := makeServerDataDir(t)
	oldPath, oldKey := keyFile(t, oldHex)
	newPath, newKey := newKeyFile(t)

	code, out, errOut := run(t, "rekey", "--data-dir", dir, "--key-file", oldPath, "--new-key-file", newPath)
	if code != 0 {
		t.Fatalf("rekey: %d %s %s", code, out, errOut)
	}
	// The control store no longer opens under the old key ...
	if _, err := openControl(t, dir, oldKey); !errors.Is(err, auth.ErrKeyMismatch) {
		t.Fatalf("old key: %v, want a key ID mismatch", err)
	}
	// ... and the server starts under the new one with every key as it was.
	n, err := startNode(t, dir, newKey.Hex())
	if err != nil {
		t.Fatalf("server under the new key: %v", err)
	}
	list := n.do("GET", "/admin/v1/keys", "")
	b, _ := json.Marshal(list)
	for _, id := range ids {
		if !bytes.Contains(b, []byte(id)) {
			t.Fatalf("key %s missing from %s", id, b)
		}
	}
	n.close()
	v, err := openControl(t, dir, newKey)
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, v, ids)
	if code, out, _ := run(t, "verify", "--data-dir", dir, "--key-file", newPath); code != 0 {
		t.Fatalf("verify under the new key: %d %s", code, out)
	}
}

func TestRekey_InterruptedInTheControlStoreFinishesOnRerun(t *testing.T) {
	dir, oldHex, ids := makeServerDataDir(t)
	oldPath, oldKey := keyFile(t, oldHex)
	newPath, newKey := newKeyFile(t)

	afterControlFileRekeyed = func(path string) error { return fmt.Errorf("simulated crash after %s", filepath.Base(path)) }
	code, _, errOut := run(t, "rekey", "--data-dir", dir, "--key-file", oldPath, "--new-key-file", newPath)
	afterControlFileRekeyed = nil
	if code != 74 || !strings.Contains(errOut, "simulated crash after keys.snap") {
		t.Fatalf("interrupted rekey: %d %s", code, errOut)
	}
	// One file under each key: neither key opens the store.
	if _, err := openControl(t, dir, oldKey); err == nil {
		t.Fatal("half-rekeyed store opened under the old key")
	}
	if _, err := openControl(t, dir, newKey); err == nil {
		t.Fatal("half-rekeyed store opened under the new key")
	}
	code, out, errOut := run(t, "rekey", "--data-dir", dir, "--key-file", oldPath, "--new-key-file", newPath, "-o", "json")
	if code != 0 {
		t.Fatalf("rerun: %d %s %s", code, out, errOut)
	}
	var res struct{ Rewritten, Skipped int }
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Skipped != 1 || res.Rewritten == 0 {
		t.Fatalf("rerun output %s: %v", out, err)
	}
	v, err := openControl(t, dir, newKey)
	if err != nil {
		t.Fatalf("after the rerun: %v", err)
	}
	checkKeys(t, v, ids)
	if _, err := os.Stat(filepath.Join(dir, datadir.ControlDir, auth.LogFileName+".tmp")); !os.IsNotExist(err) {
		t.Fatalf("temp file left behind: %v", err)
	}
	n, err := startNode(t, dir, newKey.Hex())
	if err != nil {
		t.Fatalf("server after the rerun: %v", err)
	}
	n.close()
}

func TestRekey_DamagedControlStoreChangesNothing(t *testing.T) {
	dir, oldHex, _ := makeServerDataDir(t)
	oldPath, _ := keyFile(t, oldHex)
	newPath, _ := newKeyFile(t)
	logPath := filepath.Join(dir, datadir.ControlDir, auth.LogFileName)
	b, _ := os.ReadFile(logPath)
	b[72+20] ^= 1 // after the 72-byte header: inside the first record, which is not the last
	os.WriteFile(logPath, b, 0o600)
	before := snapshotTree(t, dir)
	code, _, errOut := run(t, "rekey", "--data-dir", dir, "--key-file", oldPath, "--new-key-file", newPath)
	if code != 1 || !strings.Contains(errOut, "keys.log") {
		t.Fatalf("rekey of a damaged store: %d %s", code, errOut)
	}
	if after := snapshotTree(t, dir); after != before {
		t.Fatal("rekey changed files although the control store is damaged")
	}
}

// snapshotTree renders the names and contents of every file under dir
// except LOCK.
func snapshotTree(t *testing.T, dir string) string {
	t.Helper()
	var sb strings.Builder
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == datadir.LockFile {
			return err
		}
		b, _ := os.ReadFile(p)
		fmt.Fprintf(&sb, "%s %x\n", p, b)
		return nil
	})
	return sb.String()
}

type verifyOut struct {
	OK       bool          `json:"ok"`
	Problems []wal.Problem `json:"problems"`
	Warnings []wal.Problem `json:"warnings"`
}

func verifyJSONOut(t *testing.T, args ...string) (int, verifyOut) {
	t.Helper()
	code, out, errOut := run(t, append([]string{"verify", "-o", "json"}, args...)...)
	var v verifyOut
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("verify -o json: %v: %s %s", err, out, errOut)
	}
	return code, v
}

func TestVerify_ControlStoreDefectsAreProblems(t *testing.T) {
	base, keyHex, _ := makeServerDataDir(t)
	kf, _ := keyFile(t, keyHex)
	ctl := func(dir, name string) string { return filepath.Join(dir, datadir.ControlDir, name) }
	for _, tc := range []struct {
		name     string
		file     string
		mutate   func([]byte) []byte
		wantKind string
		wantCode int
	}{
		{"log record byte", auth.LogFileName, func(b []byte) []byte { b[72+20] ^= 1; return b }, "crc_mismatch", 1},
		{"log header byte", auth.LogFileName, func(b []byte) []byte { b[30] ^= 1; return b }, "header_checksum", 1},
		{"snapshot record byte", auth.SnapshotFileName, func(b []byte) []byte { b[len(b)-5] ^= 1; return b }, "crc_mismatch", 1},
		{"snapshot trailing bytes", auth.SnapshotFileName, func(b []byte) []byte { return append(b, 1, 2, 3) }, "trailing_data", 1},
		{"log removed", auth.LogFileName, func([]byte) []byte { return nil }, "missing_file", 1},
		{"log tail torn", auth.LogFileName, func(b []byte) []byte { return b[:len(b)-3] }, "torn_tail", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.CopyFS(dir, os.DirFS(base))
			if code, v := verifyJSONOut(t, "--data-dir", dir, "--key-file", kf); code != 0 || !v.OK {
				t.Fatalf("clean copy: %d %+v", code, v)
			}
			b, _ := os.ReadFile(ctl(dir, tc.file))
			if b = tc.mutate(b); b == nil {
				os.Remove(ctl(dir, tc.file))
			} else {
				os.WriteFile(ctl(dir, tc.file), b, 0o600)
			}
			code, v := verifyJSONOut(t, "--data-dir", dir, "--key-file", kf)
			list := v.Problems
			if tc.wantCode == 0 {
				list = v.Warnings
			}
			if code != tc.wantCode || len(list) == 0 || list[0].Kind != tc.wantKind || !strings.HasSuffix(list[0].File, tc.file) {
				t.Fatalf("code %d, %+v", code, v)
			}
			// The text output names the file and, for WAL-free problems,
			// does not send the operator to repair.
			_, text, _ := run(t, "verify", "--data-dir", dir, "--key-file", kf)
			if !strings.Contains(text, tc.file) || strings.Contains(text, "tokmesh-walctl repair") {
				t.Fatalf("text: %s", text)
			}
		})
	}
}

func TestVerify_ControlStoreUnderAnotherKeyExits78(t *testing.T) {
	dir, keyHex, _ := makeServerDataDir(t)
	// Only the control store is under another key: it comes from a node
	// with another master key.
	other, _ := makeServerDataDirWithKey(t, strings.Repeat("a5", 32))
	ctl := filepath.Join(dir, datadir.ControlDir)
	os.RemoveAll(ctl)
	os.CopyFS(ctl, os.DirFS(filepath.Join(other, datadir.ControlDir)))
	kf, _ := keyFile(t, keyHex)
	code, v := verifyJSONOut(t, "--data-dir", dir, "--key-file", kf)
	if code != 78 || len(v.Problems) != 2 || v.Problems[0].Kind != "key_mismatch" || !strings.HasSuffix(v.Problems[0].File, auth.SnapshotFileName) {
		t.Fatalf("code %d %+v", code, v)
	}
}

// inspectOut is the part of inspect -o json these tests read.
type inspectOut struct {
	Snapshots []snapOut `json:"snapshots"`
	Backups   []snapOut `json:"backups"`
	Control   struct {
		Files []struct {
			File       string `json:"file"`
			Kind       string `json:"kind"`
			Index      uint64 `json:"index"`
			FirstIndex uint64 `json:"first_index"`
			LastIndex  uint64 `json:"last_index"`
			Records    int    `json:"records"`
			Cipher     string `json:"cipher"`
			KeyID      string `json:"key_id"`
		} `json:"files"`
		SnapshotIndex uint64 `json:"snapshot_index"`
		LastIndex     uint64 `json:"last_index"`
		LogRecords    int    `json:"log_records"`
		APIKeys       *struct {
			Total, Active, Disabled int
		} `json:"api_keys"`
	} `json:"control_store"`
}

type snapOut struct {
	File           string            `json:"file"`
	Counts         map[string]uint64 `json:"counts"`
	CountsVerified bool              `json:"counts_verified"`
	Error          string            `json:"error"`
}

func TestInspect_ControlStoreSummaryWithAndWithoutKey(t *testing.T) {
	dir, keyHex, ids := makeServerDataDir(t)
	kf, key := keyFile(t, keyHex)
	var v inspectOut
	code, out, _ := run(t, "inspect", "--data-dir", dir, "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("inspect: %d %s", code, out)
	}
	c := v.Control
	if len(c.Files) != 2 || c.APIKeys != nil {
		t.Fatalf("control store without a key: %+v", c)
	}
	snap, log := c.Files[0], c.Files[1]
	// Three keys and a disable in the first run, folded into keys.snap at
	// the second start; two creates after it in keys.log.
	if snap.Kind != "snapshot" || snap.Index != 4 || snap.Records != 1 || snap.KeyID != key.ID().String() || snap.Cipher == "" ||
		log.Kind != "log" || log.Index != 4 || log.Records != 2 || log.FirstIndex != 5 || log.LastIndex != 6 ||
		c.LastIndex != 6 || c.SnapshotIndex != 4 || c.LogRecords != 2 {
		t.Fatalf("control store summary: %+v", c)
	}
	code, text, _ := run(t, "inspect", "--data-dir", dir)
	if code != 0 || !strings.Contains(text, "last index 6") || !strings.Contains(text, "keys.log") || !strings.Contains(text, key.ID().String()) {
		t.Fatalf("text inspect: %s", text)
	}
	code, out, _ = run(t, "inspect", "--data-dir", dir, "--key-file", kf, "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Control.APIKeys == nil {
		t.Fatalf("inspect with key: %d %s", code, out)
	}
	if k := v.Control.APIKeys; k.Total != len(ids) || k.Disabled != 1 || k.Active != len(ids)-1 {
		t.Fatalf("API key counts %+v", k)
	}
}

func TestInspect_SnapshotAndBackupCountsWithoutKey(t *testing.T) {
	dir, _, _ := makeServerDataDir(t)
	var v inspectOut
	code, out, _ := run(t, "inspect", "--data-dir", dir, "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("inspect: %d %s", code, out)
	}
	if len(v.Snapshots) == 0 || len(v.Backups) != 1 {
		t.Fatalf("snapshots %d backups %d", len(v.Snapshots), len(v.Backups))
	}
	for _, s := range append(v.Snapshots, v.Backups...) {
		if s.Counts["session"] != 20 || s.CountsVerified || s.Error != "" {
			t.Fatalf("%s: counts %v verified %v %s", s.File, s.Counts, s.CountsVerified, s.Error)
		}
	}
	_, text, _ := run(t, "inspect", "--data-dir", dir)
	if !strings.Contains(text, "session=20") || !strings.Contains(text, "not authenticated") {
		t.Fatalf("text inspect: %s", text)
	}
	code, out, _ = run(t, "backup", "inspect", v.Backups[0].File, "-o", "json")
	if code != 0 || !strings.Contains(out, `"session":20`) {
		t.Fatalf("backup inspect: %d %s", code, out)
	}
}

func TestVerify_ProblemKindsShareOneStyle(t *testing.T) {
	dir, _ := makeDataDir(t, 100)
	seg := lastSeg(t, dir)
	b, _ := os.ReadFile(seg)
	b[len(b)/2] ^= 0x10
	os.WriteFile(seg, b, 0o600)
	snap := mustFirstSnapshot(t, dir)
	b, _ = os.ReadFile(snap)
	b[len(b)/2] ^= 1
	os.WriteFile(snap, b, 0o600)
	code, v := verifyJSONOut(t, "--data-dir", dir)
	if code != 1 || len(v.Problems) < 2 {
		t.Fatalf("code %d %+v", code, v)
	}
	for _, p := range append(v.Problems, v.Warnings...) {
		if strings.Contains(p.Kind, "-") || strings.ToLower(p.Kind) != p.Kind {
			t.Fatalf("kind %q is not snake_case", p.Kind)
		}
	}
	_, text, _ := run(t, "verify", "--data-dir", dir)
	if !strings.Contains(text, "tokmesh-walctl repair") {
		t.Fatalf("WAL problems without the repair hint: %s", text)
	}
}

func TestVerify_SnapshotOnlyProblemHasNoRepairHint(t *testing.T) {
	dir, _ := makeDataDir(t, 200)
	snap := mustFirstSnapshot(t, dir)
	b, _ := os.ReadFile(snap)
	b[len(b)/2] ^= 1
	os.WriteFile(snap, b, 0o600)
	code, out, _ := run(t, "verify", "--data-dir", dir)
	if code != 1 || !strings.Contains(out, filepath.Base(snap)) || strings.Contains(out, "repair") {
		t.Fatalf("code %d out %s", code, out)
	}
}

func TestRepair_StdinFromDevNullIsNotATerminal(t *testing.T) {
	dir, _ := makeDataDir(t, 50)
	seg := lastSeg(t, dir)
	b, _ := os.ReadFile(seg)
	b[len(b)/2] ^= 0x10
	os.WriteFile(seg, b, 0o600)
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	var o, e bytes.Buffer
	// IsTTY unset: the tool decides from Stdin itself.
	code := Run([]string{"repair", "--data-dir", dir}, Options{Stdout: &o, Stderr: &e, Stdin: devNull, Getenv: func(string) string { return "" }})
	if code != 64 || !strings.Contains(e.String(), "--yes") || strings.Contains(e.String(), "[y/N]") {
		t.Fatalf("repair with stdin from %s: code %d stdout %q stderr %q", os.DevNull, code, o.String(), e.String())
	}
	if isTerminal(devNull) {
		t.Fatalf("%s reported as a terminal", os.DevNull)
	}
}

func TestRepair_ReportsTheDroppedSeqRange(t *testing.T) {
	dir, _ := makeDataDir(t, 200)
	segs, err := wal.InspectSegments(filepath.Join(dir, datadir.WALDir))
	if err != nil {
		t.Fatal(err)
	}
	last := segs[len(segs)-1]
	// Damage the record that starts just after the middle of the last segment.
	seg := last.Path
	b, _ := os.ReadFile(seg)
	off := wal.HeaderSize
	var badSeq uint64
	for {
		f, err := wal.DecodeFrame(b[off:])
		if err != nil {
			t.Fatal(err)
		}
		if off > len(b)/2 {
			badSeq = f.Seq
			b[off+wal.FramePrefixSize+12] ^= 0x40 // inside the sealed payload
			break
		}
		off += f.Size
	}
	os.WriteFile(seg, b, 0o600)
	code, out, errOut := run(t, "repair", "--data-dir", dir, "--yes")
	want := fmt.Sprintf("dropped %d records (seq %d..%d)", last.LastSeq-badSeq+1, badSeq, last.LastSeq)
	if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "crc_mismatch") {
		t.Fatalf("repair: %d %q %s; want %q", code, out, errOut, want)
	}
}

func TestRepair_JSONCarriesTheDroppedRange(t *testing.T) {
	dir, _ := makeDataDir(t, 100)
	segs, _ := wal.InspectSegments(filepath.Join(dir, datadir.WALDir))
	last := segs[len(segs)-1]
	b, _ := os.ReadFile(last.Path)
	f, err := wal.DecodeFrame(b[wal.HeaderSize:])
	if err != nil {
		t.Fatal(err)
	}
	b[wal.HeaderSize+wal.FramePrefixSize+12] ^= 0x40
	os.WriteFile(last.Path, b, 0o600)
	code, out, _ := run(t, "repair", "--data-dir", dir, "--yes", "-o", "json")
	var r struct {
		Clean                bool     `json:"clean"`
		FirstDroppedSeq      uint64   `json:"first_dropped_seq"`
		LastDroppedSeq       *uint64  `json:"last_dropped_seq"`
		RecordsDropped       *uint64  `json:"records_dropped"`
		IntactRecordsDropped int      `json:"intact_records_dropped"`
		Backups              []string `json:"backups"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("%d %s", code, out)
	}
	if r.Clean || r.FirstDroppedSeq != f.Seq || r.LastDroppedSeq == nil || *r.LastDroppedSeq != last.LastSeq ||
		*r.RecordsDropped != last.LastSeq-f.Seq+1 || r.IntactRecordsDropped != int(last.LastSeq-f.Seq) || len(r.Backups) == 0 {
		t.Fatalf("repair json: %s", out)
	}
}
