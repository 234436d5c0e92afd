package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitRestoreDone polls `backup status` until the latest job ended.
func waitRestoreDone(t *testing.T, r *runner) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j := r.must("backup", "status", "-o", "json").json(t)
		if j["status"] == "succeeded" || j["status"] == "failed" {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("restore never ended: %v", j)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBackupCommands(t *testing.T) {
	r, _ := setup(t)
	r.must("session", "create", "-u", "u-1", "-o", "json")
	r.must("session", "create", "-u", "u-2", "-o", "json")
	work := t.TempDir()

	// status before any restore: 404 with a hint that fits.
	expectExit(t, r.run("backup", "status"), ExitFailure, "TM-ADMIN-4041", "none has run")

	// snapshot: table and json.
	res := r.must("backup", "snapshot", "--description", "first")
	if !strings.Contains(res.stdout, "backup_id") || !strings.Contains(res.stdout, "first") || !strings.Contains(res.stdout, "sha256") {
		t.Fatalf("snapshot table: %s", res.stdout)
	}
	b := r.must("backup", "snapshot", "--description", "second", "-o", "json").json(t)
	id := b["backup_id"].(string)
	if b["sessions"].(float64) != 2 || b["sha256"] == "" || b["size_bytes"].(float64) <= 0 {
		t.Fatalf("snapshot json: %v", b)
	}
	expectExit(t, r.run("backup", "snapshot", "--description", strings.Repeat("x", 300)), ExitFailure, "TM-ARG-1001")

	// list
	res = r.must("backup", "list")
	if !strings.Contains(res.stdout, id) || !strings.Contains(res.stdout, "Total: 2") || !strings.Contains(res.stdout, "BACKUP ID") {
		t.Fatalf("list table: %s", res.stdout)
	}
	if !strings.Contains(r.must("backup", "list", "-o", "wide").stdout, b["sha256"].(string)) {
		t.Fatal("list wide lacks the checksum")
	}
	l := r.must("backup", "list", "-o", "json").json(t)
	if l["total"].(float64) != 2 || l["items"].([]any)[0].(map[string]any)["backup_id"] != id {
		t.Fatalf("list json (newest first): %v", l)
	}

	// download: default name in the working directory, checksum verified.
	t.Chdir(work)
	res = r.must("backup", "download", id)
	if !strings.Contains(res.stdout, id+".tmbak") || !strings.Contains(res.stderr, "SHA-256 verified") {
		t.Fatalf("download table: %s / %s", res.stdout, res.stderr)
	}
	full, err := os.ReadFile(filepath.Join(work, id+".tmbak"))
	if err != nil || int64(len(full)) != int64(b["size_bytes"].(float64)) {
		t.Fatalf("downloaded file: %v, %d bytes", err, len(full))
	}
	if fi, _ := os.Stat(filepath.Join(work, id+".tmbak")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("downloaded file mode %v", fi.Mode())
	}
	// Again: nothing to do.
	if d := r.must("backup", "download", id, "-o", "json").json(t); d["already_complete"] != true {
		t.Fatalf("second download: %v", d)
	}
	// Resume: a partial file is continued with a Range request.
	dst := filepath.Join(work, "resumed.tmbak")
	half := len(full) / 2
	os.WriteFile(dst+".part", full[:half], 0o600)
	d := r.must("backup", "download", id, "--file", dst, "-o", "json").json(t)
	if int(d["resumed_from"].(float64)) != half || d["sha256"] != b["sha256"] {
		t.Fatalf("resumed download: %v", d)
	}
	if got, _ := os.ReadFile(dst); string(got) != string(full) {
		t.Fatal("resumed file differs")
	}
	if _, err := os.Stat(dst + ".part"); !os.IsNotExist(err) {
		t.Fatalf("part file left: %v", err)
	}
	// A directory gets <ID>.tmbak inside it.
	sub := filepath.Join(work, "sub")
	os.Mkdir(sub, 0o700)
	if d := r.must("backup", "download", id, "--file", sub, "-o", "json").json(t); d["file"] != filepath.Join(sub, id+".tmbak") {
		t.Fatalf("download into a directory: %v", d)
	}
	// A corrupt partial file fails the checksum: 65, and the part is gone.
	bad := filepath.Join(work, "bad.tmbak")
	os.WriteFile(bad+".part", []byte(strings.Repeat("z", half)), 0o600)
	expectExit(t, r.run("backup", "download", id, "--file", bad), ExitData, "checksum mismatch")
	if _, err := os.Stat(bad + ".part"); !os.IsNotExist(err) {
		t.Fatal("corrupt part file kept")
	}
	// A different file in the way is not overwritten.
	os.WriteFile(bad, []byte("other"), 0o600)
	expectExit(t, r.run("backup", "download", id, "--file", bad), ExitData, "TM-CLI-1007")
	expectExit(t, r.run("backup", "download", "tmbk-nope"), ExitFailure, "TM-ADMIN-4041", "backup list")
	expectExit(t, r.run("backup", "download"), ExitUsage)

	// restore: dangerous.
	expectExit(t, r.run("backup", "restore", "--id", id), ExitUsage, "--force")
	expectExit(t, r.run("backup", "restore"), ExitUsage, "exactly one")
	expectExit(t, r.run("backup", "restore", "--id", id, "--file", dst, "--force"), ExitUsage, "exactly one")
	expectExit(t, r.run("backup", "restore", "--file", filepath.Join(work, "missing.tmbak"), "--force"), ExitData, "TM-CLI-1007")
	r.tty, r.stdin = true, "n\n"
	expectExit(t, r.run("backup", "restore", "--id", id), ExitDeclined)
	r.tty, r.stdin = false, ""
	expectExit(t, r.run("backup", "restore", "--id", "tmbk-nope", "--force"), ExitFailure, "TM-ADMIN-4041")

	// By ID, waiting (json).
	r.must("session", "create", "-u", "u-3") // not in the backup: gone after the restore
	j := r.must("backup", "restore", "--id", id, "--force", "-o", "json").json(t)
	if j["status"] != "succeeded" || j["progress"].(float64) != 100 || j["restored_sessions"].(float64) != 2 || j["pre_restore_backup_id"] == "" {
		t.Fatalf("restore json: %v", j)
	}
	if l := r.must("session", "list", "-o", "json").json(t); l["total"].(float64) != 2 {
		t.Fatalf("sessions after restore: %v", l)
	}
	// By upload, waiting, confirmed on a TTY (table).
	r.tty, r.stdin = true, "y\n"
	res = r.must("backup", "restore", "--file", dst)
	if !strings.Contains(res.stdout, "succeeded") || !strings.Contains(res.stdout, "job_id") {
		t.Fatalf("restore upload table: %s", res.stdout)
	}
	r.tty, r.stdin = false, ""
	// A file that is not a backup: the server rejects it (422 → exit 1).
	junk := filepath.Join(work, "junk.tmbak")
	os.WriteFile(junk, []byte("not a backup"), 0o600)
	expectExit(t, r.run("backup", "restore", "--file", junk, "--force"), ExitFailure, "TM-ADMIN-4221")

	// --no-wait returns the started job; status follows it.
	nw := r.must("backup", "restore", "--id", id, "--force", "--no-wait", "-o", "json").json(t)
	jobID := nw["job_id"].(string)
	if !strings.HasPrefix(jobID, "tm") || nw["status"] == "" {
		t.Fatalf("no-wait json: %v", nw)
	}
	if last := waitRestoreDone(t, r); last["job_id"] != jobID || last["status"] != "succeeded" {
		t.Fatalf("latest job: %v", last)
	}
	res = r.must("backup", "status", jobID)
	if !strings.Contains(res.stdout, jobID) || !strings.Contains(res.stdout, "100%") {
		t.Fatalf("status table: %s", res.stdout)
	}
	if s := r.must("backup", "status", jobID, "-o", "json").json(t); s["job_id"] != jobID {
		t.Fatalf("status json: %v", s)
	}
	expectExit(t, r.run("backup", "status", "tmrj-nope"), ExitFailure, "TM-ADMIN-4041")
	expectExit(t, r.run("backup", "status", "a", "b"), ExitUsage)
}

// TestBackup_ProgressOnlyOnATerminal: the progress bar and spinner show on
// a terminal stderr, never off one or with --quiet, and the JSON on
// stdout stays clean either way.
func TestBackup_ProgressOnlyOnATerminal(t *testing.T) {
	r, _ := setup(t)
	work := t.TempDir()
	id := r.must("backup", "snapshot", "-o", "json").json(t)["backup_id"].(string)

	// Off a terminal: no bar, no carriage returns, no escapes.
	res := r.must("backup", "download", id, "--file", filepath.Join(work, "a.tmbak"), "-o", "json")
	if strings.ContainsAny(res.stderr, "\r\x1b") || strings.Contains(res.stderr, "%") {
		t.Fatalf("progress off a terminal: %q", res.stderr)
	}
	res.json(t)
	res = r.must("backup", "restore", "--id", id, "--force", "-o", "json")
	if strings.ContainsAny(res.stderr, "\r\x1b") || strings.Contains(res.stderr, "Restoring") {
		t.Fatalf("restore progress off a terminal: %q", res.stderr)
	}

	// On a terminal: a bar that reaches 100%.
	r.errTTY = true
	res = r.must("backup", "download", id, "--file", filepath.Join(work, "b.tmbak"), "-o", "json")
	if !strings.Contains(res.stderr, "Downloading") || !strings.Contains(res.stderr, "100%") || !strings.Contains(res.stderr, "\r") {
		t.Fatalf("download progress on a terminal: %q", res.stderr)
	}
	res.json(t)
	res = r.must("backup", "restore", "--file", filepath.Join(work, "b.tmbak"), "--force", "-o", "json")
	if !strings.Contains(res.stderr, "Uploading") || !strings.Contains(res.stderr, "Restoring") || !strings.Contains(res.stderr, "100%") {
		t.Fatalf("restore progress on a terminal: %q", res.stderr)
	}
	res.json(t)
	res = r.must("backup", "snapshot", "-o", "json")
	if !strings.Contains(res.stderr, "Taking a backup") {
		t.Fatalf("snapshot spinner on a terminal: %q", res.stderr)
	}
	// NO_COLOR: the bar still shows, without escape sequences.
	r.env["NO_COLOR"] = "1"
	res = r.must("backup", "download", id, "--file", filepath.Join(work, "c.tmbak"))
	if !strings.Contains(res.stderr, "100%") || strings.Contains(res.stderr+res.stdout, "\x1b") {
		t.Fatalf("NO_COLOR progress: %q", res.stderr)
	}
	delete(r.env, "NO_COLOR")
	// --quiet: nothing on stderr at all.
	res = r.must("-q", "backup", "download", id, "--file", filepath.Join(work, "d.tmbak"), "-o", "json")
	if res.stderr != "" {
		t.Fatalf("quiet download: %q", res.stderr)
	}
	res = r.must("-q", "backup", "snapshot", "-o", "json")
	if res.stderr != "" {
		t.Fatalf("quiet snapshot: %q", res.stderr)
	}
}
