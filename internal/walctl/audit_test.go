package walctl

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/datadir"
)

// makeAuditDir writes n audit records into <dir>/audit through the real
// audit log and returns the data dir and the log's last hash.
func makeAuditDir(t *testing.T, n int) (dir, last string) {
	t.Helper()
	dir = t.TempDir()
	l, err := audit.Open(filepath.Join(dir, datadir.AuditDir), "tmnd-walctl", audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := l.Attempt(audit.Record{Actor: "LOCAL_ADMIN", Role: "admin", Action: "apikey.create", Resource: "tmak-" + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, l.LastHash()
}

func TestAuditVerify_CleanLogExits0WithAnchorAndLastHash(t *testing.T) {
	dir, last := makeAuditDir(t, 5)
	code, out, errOut := run(t, "audit", "verify", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "OK: 5 records") || !strings.Contains(out, "anchor:    "+audit.ZeroHash) || !strings.Contains(out, "last hash: "+last) {
		t.Fatalf("code %d out %s err %s", code, out, errOut)
	}
	code, out, _ = run(t, "audit", "verify", "--data-dir", dir, "-o", "json")
	var res auditVerifyJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || !res.OK || res.Records != 5 || res.LastHash != last || res.Anchor != audit.ZeroHash {
		t.Fatalf("code %d json %s (%v)", code, out, err)
	}
}

func TestAuditVerify_EditedLineExits1WithTheFollowingSeq(t *testing.T) {
	dir, _ := makeAuditDir(t, 5)
	files, _ := filepath.Glob(filepath.Join(dir, datadir.AuditDir, "audit-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// Change one byte of the third record (seq 3): the break shows at seq 4.
	i := bytes.Index(b, []byte(`"resource":"tmak-c"`))
	b[i+len(`"resource":"tmak-`)] = 'z'
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, "audit", "verify", "--data-dir", dir)
	if code != 1 || !strings.Contains(out, "BROKEN at seq 4") {
		t.Fatalf("code %d out %s", code, out)
	}
	code, out, _ = run(t, "audit", "verify", "--data-dir", dir, "-o", "json")
	var res auditVerifyJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || res.OK || res.FirstBrokenSeq != 4 || res.File != files[0] {
		t.Fatalf("code %d json %s (%v)", code, out, err)
	}
}

func TestAuditVerify_LockedAndMissing(t *testing.T) {
	dir, _ := makeAuditDir(t, 1)
	l, err := datadir.Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	code, _, _ := run(t, "audit", "verify", "--data-dir", dir)
	l.Release()
	if code != ExitLocked {
		t.Fatalf("locked: code %d", code)
	}
	if code, _, _ := run(t, "audit", "verify", "--data-dir", t.TempDir()); code != ExitNotFound {
		t.Fatalf("no audit dir: code %d", code)
	}
	if code, _, _ := run(t, "audit", "verify", "--data-dir", filepath.Join(t.TempDir(), "nope")); code != ExitNotFound {
		t.Fatalf("no data dir: code %d", code)
	}
}
