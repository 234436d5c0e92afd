package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock(s string) *clock {
	c := &clock{}
	c.set(s)
	return c
}

func (c *clock) set(s string) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	c.ns.Store(t.UnixNano())
}
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }

func open(t *testing.T, dir string, c *clock, o Options) *Log {
	t.Helper()
	o.Now = c.now
	l, err := Open(dir, "tmnd-test", o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func admin(action, resource string) Record {
	return Record{RequestID: "req-1", Actor: "tmak-01HXADMIN", Role: "admin", Action: action, Resource: resource,
		TCPRemoteIP: "10.0.0.9", ClientIP: "10.0.0.9", UserAgent: "tokmesh-cli/1.0", Details: map[string]any{"role": "issuer"}}
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'})
	if len(b) == 0 {
		return nil
	}
	return lines
}

func allLines(t *testing.T, dir string) (lines [][]byte, files []string) {
	t.Helper()
	fl, err := listFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fl {
		for _, ln := range readLines(t, f.path) {
			lines = append(lines, ln)
			files = append(files, f.path)
		}
	}
	return lines, files
}

func hashOf(line []byte) string {
	s := sha256.Sum256(line)
	return hex.EncodeToString(s[:])
}

func mustVerify(t *testing.T, dir string) VerifyResult {
	t.Helper()
	res, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestLog_ChainAcrossDayBoundaryAndRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	c := newClock("2025-03-01T23:59:59.5Z")
	l := open(t, dir, c, Options{})
	if l.LastHash() != ZeroHash {
		t.Fatal("empty log must start at zeros")
	}
	if err := l.Attempt(admin("apikey.create", "tmak-01HXNEW")); err != nil {
		t.Fatal(err)
	}
	l.Record(Record{Actor: "tmak-01HXADMIN", Action: "apikey.create", Resource: "tmak-01HXNEW", Result: ResultSuccess})
	if err := l.Close(); err != nil { // drains
		t.Fatal(err)
	}

	c.set("2025-03-02T00:00:00.25Z")
	l = open(t, dir, c, Options{})
	if l.LastSeq() != 2 {
		t.Fatalf("seq not recovered: %d", l.LastSeq())
	}
	for i := range 3 {
		l.Record(Record{Action: "session.create", Resource: fmt.Sprintf("tmss-%d", i), Details: map[string]any{"user_id": "u1", "ttl_seconds": 3600}})
	}
	if err := l.Attempt(admin("backup.create", "")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	last := l.LastHash()

	// Files, modes, names.
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v %v", st.Mode(), err)
	}
	for _, day := range []string{"20250301", "20250302"} {
		st, err := os.Stat(filepath.Join(dir, "audit-"+day+".jsonl"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("file %s: %v %v", day, err, st)
		}
	}
	lines, files := allLines(t, dir)
	if len(lines) != 6 || filepath.Base(files[1]) != "audit-20250301.jsonl" || filepath.Base(files[2]) != "audit-20250302.jsonl" {
		t.Fatalf("lines %d files %v", len(lines), files)
	}
	prev := ZeroHash
	for i, ln := range lines {
		r, err := parseLine(ln)
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != uint64(i+1) || r.PrevHash != prev || r.NodeID != "tmnd-test" {
			t.Fatalf("line %d: seq %d prev %s want %s", i, r.Seq, r.PrevHash, prev)
		}
		prev = hashOf(ln)
	}
	if prev != last {
		t.Fatal("LastHash differs from the hash of the last line")
	}
	res := mustVerify(t, dir)
	if !res.OK || res.Records != 6 || res.Anchor != ZeroHash || res.LastHash != last || res.LastSeq != 6 {
		t.Fatalf("verify: %+v", res)
	}
}

func TestRecord_ExactLineFormat(t *testing.T) {
	dir := t.TempDir()
	c := newClock("2025-03-01T10:00:00.123456Z")
	l := open(t, dir, c, Options{})
	if err := l.Attempt(Record{RequestID: "r-1", Actor: "LOCAL_ADMIN", Role: "admin", Action: "apikey.create", Resource: "tmak-1",
		Code: "", TCPRemoteIP: "", ClientIP: "", UserAgent: "ua <&>", Details: map[string]any{"z": 1, "a": "x"}}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	lines, _ := allLines(t, dir)
	want := `{"seq":1,"time":"2025-03-01T10:00:00.123Z","node_id":"tmnd-test","request_id":"r-1","actor":"LOCAL_ADMIN","role":"admin",` +
		`"action":"apikey.create","resource":"tmak-1","result":"attempt","code":"","tcp_remote_ip":"","client_ip":"","user_agent":"ua \u003c\u0026\u003e",` +
		`"details":{"a":"x","z":1},"prev_hash":"` + ZeroHash + `"}`
	if string(lines[0]) != want {
		t.Fatalf("line\n%s\nwant\n%s", lines[0], want)
	}
	// Query returns records whose JSON is the stored line.
	l = open(t, dir, c, Options{})
	defer l.Close()
	items, total, err := l.Query(Filter{})
	if err != nil || total != 1 {
		t.Fatal(err, total)
	}
	b, err := json.Marshal(items[0])
	if err != nil || string(b) != want {
		t.Fatalf("MarshalJSON\n%s\n%v", b, err)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil || back.Seq != 1 || back.Details["z"] != json.Number("1") {
		t.Fatalf("UnmarshalJSON %+v %v", back, err)
	}
}

func TestAttempt_IsInTheFileWhenItReturns(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, newClock("2025-03-01T10:00:00Z"), Options{})
	defer l.Close()
	if err := l.Attempt(admin("gc.run", "sessions")); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, filepath.Join(dir, "audit-20250301.jsonl"))
	if len(lines) != 1 || !bytes.Contains(lines[0], []byte(`"result":"attempt"`)) {
		t.Fatalf("not written through: %q", lines)
	}
}

func TestAttempt_FailsClosedWhenTheFileCannotBeOpened(t *testing.T) {
	dir := t.TempDir()
	c := newClock("2025-03-01T23:59:59Z")
	l := open(t, dir, c, Options{})
	defer l.Close()
	if err := l.Attempt(admin("apikey.status", "tmak-1")); err != nil {
		t.Fatal(err)
	}
	hash := l.LastHash()
	// Tomorrow's file path is a directory: the write cannot happen.
	blocker := filepath.Join(dir, "audit-20250302.jsonl")
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	c.set("2025-03-02T00:00:01Z")
	if err := l.Attempt(admin("apikey.rotate", "tmak-1")); err == nil {
		t.Fatal("Attempt succeeded although nothing could be written")
	}
	if l.LastHash() != hash || l.LastSeq() != 1 {
		t.Fatal("chain advanced on a failed write")
	}
	// Once writable again the chain continues without a gap.
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := l.Attempt(admin("apikey.rotate", "tmak-1")); err != nil {
		t.Fatal(err)
	}
	if l.LastSeq() != 2 {
		t.Fatalf("seq %d", l.LastSeq())
	}
	l.Close()
	if res := mustVerify(t, dir); !res.OK || res.Records != 2 {
		t.Fatalf("%+v", res)
	}
}

func TestAttempt_FailsClosedWhenTheDirIsRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := open(t, dir, newClock("2025-03-01T10:00:00Z"), Options{})
	defer l.Close()
	if err := l.Attempt(admin("restore.start", "job-1")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	// The open descriptor would still accept writes into the deleted file;
	// Attempt must notice and refuse.
	if err := l.Attempt(admin("restore.start", "job-2")); err == nil {
		t.Fatal("Attempt succeeded with the audit dir gone")
	}
}

func TestAttempt_AfterCloseFails(t *testing.T) {
	l := open(t, t.TempDir(), newClock("2025-03-01T10:00:00Z"), Options{})
	l.Close()
	if err := l.Attempt(admin("gc.run", "")); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v", err)
	}
	l.Record(admin("gc.run", "")) // must not panic or block
	if l.Dropped() != 1 {
		t.Fatalf("dropped %d", l.Dropped())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRecord_OverflowDropsAndAuditDroppedFollows(t *testing.T) {
	dir := t.TempDir()
	var reported atomic.Int64
	l := open(t, dir, newClock("2025-03-01T10:00:00Z"), Options{BufferSize: 2, OnDrop: func(n int) { reported.Add(int64(n)) }})

	// Stall the writer: it takes the first record (draining the queue into
	// its batch) and then waits for the lock.
	drained := make(chan struct{}, 1)
	l.drained = func() {
		select {
		case drained <- struct{}{}:
		default:
		}
	}
	l.mu.Lock()
	l.Record(Record{Action: "session.create", Resource: "s-0"})
	select {
	case <-drained:
	case <-time.After(5 * time.Second):
		t.Fatal("writer did not take the record")
	}
	start := time.Now()
	for i := 1; i <= 9; i++ {
		l.Record(Record{Action: "session.create", Resource: fmt.Sprintf("s-%d", i)})
	}
	if time.Since(start) > time.Second {
		t.Fatal("Record blocked")
	}
	if l.Dropped() != 7 { // s-1 and s-2 fit in the queue
		t.Fatalf("dropped %d", l.Dropped())
	}
	l.mu.Unlock()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if reported.Load() != 7 {
		t.Fatalf("OnDrop reported %d", reported.Load())
	}
	lines, _ := allLines(t, dir)
	var got []string
	for _, ln := range lines {
		r, err := parseLine(ln)
		if err != nil {
			t.Fatal(err)
		}
		if r.Action == ActionDropped {
			if r.Details["count"] != json.Number("7") || r.Actor != ActorSystem {
				t.Fatalf("dropped record %s", ln)
			}
			got = append(got, "dropped")
			continue
		}
		got = append(got, r.Resource)
	}
	if strings.Join(got, ",") != "s-0,dropped,s-1,s-2" {
		t.Fatalf("order %v", got)
	}
	if res := mustVerify(t, dir); !res.OK || res.Records != 4 {
		t.Fatalf("%+v", res)
	}
}

func TestLog_ConcurrentWritersKeepTheChain(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, newClock("2025-03-01T10:00:00Z"), Options{BufferSize: 100000})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if i%20 == 0 {
					if err := l.Attempt(admin("apikey.create", fmt.Sprintf("k-%d-%d", g, i))); err != nil {
						t.Error(err)
					}
					continue
				}
				l.Record(Record{Action: "session.create", Resource: fmt.Sprintf("s-%d-%d", g, i)})
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	res := mustVerify(t, dir)
	if !res.OK || res.Records != 1600 || l.Dropped() != 0 || l.Written() != 1600 {
		t.Fatalf("%+v dropped %d written %d", res, l.Dropped(), l.Written())
	}
}

// buildLog writes n records and returns the dir.
func buildLog(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	c := newClock("2025-03-01T23:59:58Z")
	l := open(t, dir, c, Options{})
	for i := 1; i <= n; i++ {
		if err := l.Attempt(admin("apikey.create", fmt.Sprintf("tmak-%03d", i))); err != nil {
			t.Fatal(err)
		}
		c.add(500 * time.Millisecond) // crosses midnight halfway
	}
	l.Close()
	return dir
}

// editLine applies f to the idx-th line (0-based) across the files.
func editLine(t *testing.T, dir string, idx int, f func([]byte) []byte) string {
	t.Helper()
	fl, _ := listFiles(dir)
	for _, af := range fl {
		lines := readLines(t, af.path)
		if idx >= len(lines) {
			idx -= len(lines)
			continue
		}
		lines[idx] = f(bytes.Clone(lines[idx]))
		var out []byte
		for _, ln := range lines {
			if ln == nil {
				continue
			}
			out = append(append(out, ln...), '\n')
		}
		if err := os.WriteFile(af.path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		return af.path
	}
	t.Fatal("no such line")
	return ""
}

func TestVerify_OneChangedByteIsFound(t *testing.T) {
	cases := []struct {
		name    string
		edit    func([]byte) []byte
		line    int // 0-based line edited
		broken  uint64
		errText string
	}{
		{"resource byte", func(b []byte) []byte { return bytes.Replace(b, []byte("tmak-005"), []byte("tmak-006"), 1) }, 4, 6, "prev_hash"},
		{"time byte", func(b []byte) []byte { return bytes.Replace(b, []byte(`T00:00:00`), []byte(`T00:00:01`), 1) }, 4, 6, "prev_hash"},
		{"prev_hash byte", func(b []byte) []byte {
			i := bytes.Index(b, []byte(`"prev_hash":"`)) + len(`"prev_hash":"`)
			if b[i] == 'a' {
				b[i] = 'b'
			} else {
				b[i] = 'a'
			}
			return b
		}, 4, 5, "prev_hash"},
		{"seq byte", func(b []byte) []byte { return bytes.Replace(b, []byte(`"seq":5,`), []byte(`"seq":6,`), 1) }, 4, 5, "seq 6 follows seq 4"},
		{"json broken", func(b []byte) []byte { b[0] = '['; return b }, 4, 5, "unparsable"},
		{"line deleted", func([]byte) []byte { return nil }, 4, 5, "seq 6 follows seq 4"},
		{"first record prev_hash", func(b []byte) []byte { return bytes.Replace(b, []byte(ZeroHash), []byte(strings.Repeat("1", 64)), 1) }, 0, 1, "64 zeros"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := buildLog(t, 10)
			if res := mustVerify(t, dir); !res.OK || res.Records != 10 {
				t.Fatalf("clean log: %+v", res)
			}
			path := editLine(t, dir, c.line, c.edit)
			res := mustVerify(t, dir)
			if res.OK || res.FirstBrokenSeq != c.broken || res.Err == nil || !strings.Contains(res.Err.Error(), c.errText) {
				t.Fatalf("got OK=%v seq=%d err=%v; want seq %d (%s)", res.OK, res.FirstBrokenSeq, res.Err, c.broken, c.errText)
			}
			if c.name == "resource byte" && (res.File != path || res.Records != 5) {
				t.Fatalf("file %s (edited %s), records %d", res.File, path, res.Records)
			}
		})
	}
}

func TestVerify_EditedLastLineShowsOnlyInLastHash(t *testing.T) {
	dir := buildLog(t, 3)
	before := mustVerify(t, dir)
	editLine(t, dir, 2, func(b []byte) []byte { return bytes.Replace(b, []byte("tmak-003"), []byte("tmak-009"), 1) })
	after := mustVerify(t, dir)
	if !after.OK || after.LastHash == before.LastHash {
		t.Fatalf("the tail is detectable only against an external anchor: %+v", after)
	}
}

func TestVerify_IncompleteLastLineIsAWarningAndOpenTruncatesIt(t *testing.T) {
	dir := buildLog(t, 4)
	fl, _ := listFiles(dir)
	newest := fl[len(fl)-1].path
	f, err := os.OpenFile(newest, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":5,"time":"2025-03`)
	f.Close()
	res := mustVerify(t, dir)
	if !res.OK || len(res.Warnings) != 1 || res.Records != 4 {
		t.Fatalf("%+v", res)
	}
	l := open(t, dir, newClock("2025-03-02T00:00:10Z"), Options{})
	if err := l.Attempt(admin("gc.run", "")); err != nil {
		t.Fatal(err)
	}
	l.Close()
	res = mustVerify(t, dir)
	if !res.OK || len(res.Warnings) != 0 || res.Records != 5 {
		t.Fatalf("%+v", res)
	}
}

func TestOpen_RefusesToContinueAfterACorruptLastLine(t *testing.T) {
	dir := buildLog(t, 3)
	editLine(t, dir, 2, func(b []byte) []byte { return []byte("garbage") })
	if _, err := Open(dir, "n", Options{}); err == nil || !strings.Contains(err.Error(), "audit verify") {
		t.Fatalf("Open = %v", err)
	}
}

func TestVerify_MissingDirAndEmptyDir(t *testing.T) {
	if _, err := Verify(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
	res := mustVerify(t, t.TempDir())
	if !res.OK || res.Records != 0 || res.Anchor != "" {
		t.Fatalf("%+v", res)
	}
}

func TestRetention_DeletesOldFilesAndVerifyAnchorsAtTheOldestRemaining(t *testing.T) {
	dir := t.TempDir()
	c := newClock("2025-03-01T12:00:00Z")
	l := open(t, dir, c, Options{})
	for range 5 { // days 1..5
		if err := l.Attempt(admin("gc.run", "")); err != nil {
			t.Fatal(err)
		}
		if err := l.Attempt(admin("gc.run", "")); err != nil {
			t.Fatal(err)
		}
		c.add(24 * time.Hour)
	}
	l.Close()
	if fl, _ := listFiles(dir); len(fl) != 5 {
		t.Fatalf("%d files", len(fl))
	}

	// Reopen on day 6 with 3 days' retention: cutoff is day 3.
	c.set("2025-03-06T08:00:00Z")
	l = open(t, dir, c, Options{RetentionDays: 3})
	fl, _ := listFiles(dir)
	var days []string
	for _, f := range fl {
		days = append(days, f.day)
	}
	if strings.Join(days, ",") != "20250303,20250304,20250305" {
		t.Fatalf("kept %v", days)
	}
	res := mustVerify(t, dir)
	if !res.OK || res.Anchor == ZeroHash || res.Records != 6 {
		t.Fatalf("%+v", res)
	}

	// The daily run with a shorter retention; the newest file always stays
	// because it holds the chain head.
	// (Stored directly: SetRetentionDays would also kick an asynchronous
	// run that could land after the record below and rightly delete the
	// 2025-03-05 file once it is no longer the newest;
	// TestRetention_ChangeTakesEffectImmediately covers that path.)
	c.set("2025-06-01T00:00:00Z")
	l.retention.Store(1)
	l.prune()
	fl, _ = listFiles(dir)
	if len(fl) != 1 || fl[0].day != "20250305" {
		t.Fatalf("%v", fl)
	}
	if err := l.Attempt(admin("gc.run", "")); err != nil {
		t.Fatal(err)
	}
	l.Close()
	res = mustVerify(t, dir)
	if !res.OK || res.Records != 3 || res.LastSeq != 11 {
		t.Fatalf("%+v", res)
	}
}

// telemetry.audit.retention_days is hot-reloadable (08-config §3, §4: H
// keys take effect immediately): a shorter retention deletes the files it
// puts out of range at once, not at the next daily run up to 24 h later.
func TestRetention_ChangeTakesEffectImmediately(t *testing.T) {
	dir := t.TempDir()
	c := newClock("2025-03-01T12:00:00Z")
	l := open(t, dir, c, Options{})
	defer l.Close()
	for range 5 { // days 1..5
		if err := l.Attempt(admin("gc.run", "")); err != nil {
			t.Fatal(err)
		}
		c.add(24 * time.Hour)
	}
	c.set("2025-03-05T18:00:00Z")
	l.SetRetentionDays(2) // cutoff is day 3
	deadline := time.Now().Add(5 * time.Second)
	for {
		fl, _ := listFiles(dir)
		var days []string
		for _, f := range fl {
			days = append(days, f.day)
		}
		if strings.Join(days, ",") == "20250303,20250304,20250305" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SetRetentionDays(2) the files are still %v", days)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Setting the same value again does not queue another run.
	l.SetRetentionDays(2)
	if len(l.pruneNow) != 0 {
		t.Fatal("an unchanged retention queued a run")
	}
}

func TestQuery_FiltersAndPagesNewestFirst(t *testing.T) {
	dir := t.TempDir()
	c := newClock("2025-03-01T22:00:00Z")
	l := open(t, dir, c, Options{})
	defer l.Close()
	// 30 records over two days: actors alternate, every third fails.
	for i := range 30 {
		r := Record{Actor: []string{"tmak-A", "tmak-B"}[i%2], Action: []string{"session.create", "session.revoke"}[i%2], Resource: fmt.Sprintf("r-%02d", i), Result: ResultSuccess}
		if i%3 == 0 {
			r.Result = ResultFailure
		}
		if i%10 == 0 {
			if err := l.Attempt(r); err != nil {
				t.Fatal(err)
			}
		} else {
			l.mu.Lock() // write synchronously so the order is known
			err := l.appendLocked(&r)
			l.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
		c.add(10 * time.Minute) // r-12 is the first of 2 March
	}
	res := func(f Filter) ([]string, int) {
		t.Helper()
		items, total, err := l.Query(f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range items {
			ids = append(ids, r.Resource)
		}
		return ids, total
	}
	ids, total := res(Filter{Size: 5})
	if total != 30 || strings.Join(ids, ",") != "r-29,r-28,r-27,r-26,r-25" {
		t.Fatalf("page 1: %v %d", ids, total)
	}
	ids, _ = res(Filter{Page: 6, Size: 5})
	if strings.Join(ids, ",") != "r-04,r-03,r-02,r-01,r-00" {
		t.Fatalf("page 6: %v", ids)
	}
	ids, total = res(Filter{Page: 7, Size: 5})
	if len(ids) != 0 || total != 30 {
		t.Fatalf("past the end: %v %d", ids, total)
	}
	ids, total = res(Filter{Actor: "tmak-B", Result: ResultFailure})
	if total != 5 || strings.Join(ids, ",") != "r-27,r-21,r-15,r-09,r-03" {
		t.Fatalf("actor+result: %v %d", ids, total)
	}
	ids, total = res(Filter{Action: "session.create", Result: ResultAttempt})
	if total != 3 || strings.Join(ids, ",") != "r-20,r-10,r-00" {
		t.Fatalf("attempts: %v %d", ids, total)
	}
	start, _ := time.Parse(time.RFC3339, "2025-03-01T23:50:00Z")
	end, _ := time.Parse(time.RFC3339, "2025-03-02T00:20:00Z")
	ids, total = res(Filter{Start: start, End: end})
	if total != 3 || strings.Join(ids, ",") != "r-13,r-12,r-11" {
		t.Fatalf("time window: %v %d", ids, total)
	}
	ids, total = res(Filter{Start: end})
	if total != 16 || len(ids) != 16 || ids[0] != "r-29" || ids[15] != "r-14" {
		t.Fatalf("open end: %v %d", ids, total)
	}
	if _, _, err := l.Query(Filter{Page: -1}); err == nil {
		t.Fatal("negative page accepted")
	}
}

func TestReverseLines(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    []string
		partial bool
	}{
		{"", nil, false},
		{"\n", []string{""}, false},
		{"a\nbb\nccc\n", []string{"ccc", "bb", "a"}, false},
		{"a\nbb\ncc", []string{"cc", "bb", "a"}, true},
		{strings.Repeat("x", chunkSize+7) + "\n" + strings.Repeat("y", 3) + "\n", []string{"yyy", strings.Repeat("x", chunkSize+7)}, false},
	} {
		rl, err := newReverseLines(strings.NewReader(c.in), int64(len(c.in)))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			ln, off, err := rl.Next()
			if err != nil {
				break
			}
			if !strings.HasPrefix(c.in[off:], string(ln)) {
				t.Fatalf("offset %d wrong for %q", off, ln)
			}
			got = append(got, string(ln))
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") || rl.Partial != c.partial {
			t.Errorf("%q: got %q partial %v", c.in[:min(len(c.in), 20)], got, rl.Partial)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	l, err := Open(b.TempDir(), "tmnd-bench", Options{BufferSize: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	r := Record{RequestID: "r-01HX", Actor: "tmak-01HX", Role: "issuer", Action: "session.create", Resource: "tmss-01HX", ClientIP: "10.0.0.1", Details: map[string]any{"user_id": "u-1", "ttl_seconds": 3600}}
	b.ReportAllocs()
	for b.Loop() {
		l.Record(r)
	}
	b.StopTimer()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	if l.Dropped() != 0 {
		b.Fatalf("dropped %d", l.Dropped())
	}
}

func BenchmarkAttempt(b *testing.B) {
	l, err := Open(b.TempDir(), "tmnd-bench", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	r := Record{RequestID: "r-01HX", Actor: "tmak-01HX", Role: "admin", Action: "apikey.create", Resource: "tmak-01HY", Details: map[string]any{"role": "issuer"}}
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Attempt(r); err != nil {
			b.Fatal(err)
		}
	}
}
