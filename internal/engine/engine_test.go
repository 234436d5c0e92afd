package engine

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/metrics"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/crypt"
	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/session"
	"github.com/yndnr/tokmesh-go/internal/snapshot"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func testConfig(dir string) Config {
	cfg := DefaultConfig(dir)
	cfg.Getenv = testGetenv
	cfg.SweepInterval = -1
	cfg.SnapshotInterval = 0
	cfg.SnapshotWALThreshold = 0
	cfg.SnapshotOnClose = false
	cfg.Session.MaxPerUser = 10000
	return cfg
}

func mustOpen(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := Open(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return e
}

func create(t testing.TB, e *Engine, tok, user string) session.Session {
	t.Helper()
	res, err := e.Create(session.CreateRequest{Token: tok, UserID: user, IP: loopback, UserAgent: "test", CreatedBy: "LOCAL_ADMIN",
		Data: map[string]string{"tenant": "acme"}})
	if err != nil {
		t.Fatalf("create %s: %v", tok, err)
	}
	return res.Session
}

// state renders every session and tombstone for comparison.
func state(e *Engine) []string {
	var out []string
	for i := 0; i < e.store.NumShards(); i++ {
		e.store.RangeShard(i, func(s *session.Session) {
			out = append(out, string(s.AppendJSON(nil))+fmt.Sprintf("|%x", s.TokenHash))
		}, func(t *session.Tombstone) {
			out = append(out, fmt.Sprintf("T|%s|%x|%d|%d", t.ID, t.TokenHash, t.ExpiresAt, t.Version))
		})
	}
	sort.Strings(out)
	return out
}

func equalState(t *testing.T, a, b []string) {
	t.Helper()
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("state differs:\n%d entries vs %d entries", len(a), len(b))
	}
}

func TestRecovery_WALOnlyRestoresEverySessionAndTombstone(t *testing.T) {
	dir := t.TempDir()
	e := mustOpen(t, testConfig(dir))
	var ids []session.ID
	for i := range 200 {
		ids = append(ids, create(t, e, fmt.Sprintf("token-recovery-%04d", i), fmt.Sprintf("u%d", i%7)).ID)
	}
	for _, id := range ids[:50] {
		if ok, err := e.Revoke(id); err != nil || !ok {
			t.Fatalf("revoke: %v %v", ok, err)
		}
	}
	if _, err := e.Renew(ids[60], 60); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Touch(ids[61], netip.MustParseAddr("10.1.2.3"), "other-agent"); err != nil {
		t.Fatal(err)
	}
	if n, err := e.RevokeUser("u3", ids[3]); err != nil || n == 0 {
		t.Fatalf("revoke user: %d %v", n, err)
	}
	before := state(e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := mustOpen(t, testConfig(dir))
	defer e2.Close()
	equalState(t, before, state(e2))
	if err := e2.store.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Validate("token-recovery-0000", false, loopback, ""); !errors.Is(err, session.ErrRevoked) {
		t.Fatalf("revoked token after recovery: %v", err)
	}
	if e2.Recovery().WALRecords == 0 || e2.Recovery().Snapshot != "" {
		t.Fatalf("expected a WAL-only recovery: %+v", e2.Recovery())
	}
}

func TestRecovery_SnapshotPlusWALTailEqualsLiveState(t *testing.T) {
	dir := t.TempDir()
	e := mustOpen(t, testConfig(dir))
	for i := range 300 {
		create(t, e, fmt.Sprintf("token-snap-%05d", i), fmt.Sprintf("u%d", i%11))
	}
	// Snapshot while writers keep going: replay after covered_seq must converge.
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				s := create(t, e, fmt.Sprintf("token-live-%d-%05d", g, i), fmt.Sprintf("w%d", g))
				if i%3 == 0 {
					if _, err := e.Revoke(s.ID); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	res, err := e.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	before := state(e)
	e.Close()

	e2 := mustOpen(t, testConfig(dir))
	defer e2.Close()
	if e2.Recovery().Snapshot != res.Path {
		t.Fatalf("recovered from %q, want %q", e2.Recovery().Snapshot, res.Path)
	}
	equalState(t, before, state(e2))
	if err := e2.store.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshot_RetentionKeepsNewestAndDropsCoveredSegments(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SegmentSize = 64 << 10
	e := mustOpen(t, cfg)
	defer e.Close()
	for round := range 4 {
		for i := range 400 {
			create(t, e, fmt.Sprintf("token-ret-%d-%05d", round, i), "u")
		}
		if _, err := e.Snapshot(); err != nil {
			t.Fatal(err)
		}
	}
	snaps, _ := snapshot.List(filepath.Join(dir, datadir.SnapshotDir))
	if len(snaps) != 2 {
		t.Fatalf("want 2 retained snapshots, got %d", len(snaps))
	}
	h, _ := snapshot.ReadHeader(snaps[1])
	segs, _ := wal.InspectSegments(filepath.Join(dir, datadir.WALDir))
	if len(segs) == 0 || segs[0].FirstSeq > h.CoveredSeq+1 {
		t.Fatalf("retention deleted a segment the oldest snapshot still needs: %+v", segs)
	}
	for _, s := range segs[:len(segs)-1] {
		if s.LastSeq <= h.CoveredSeq {
			t.Fatalf("segment %s (last seq %d) covered by oldest snapshot (%d) was kept", s.Path, s.LastSeq, h.CoveredSeq)
		}
	}
}

func TestOpen_SecondEngineOnSameDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	e := mustOpen(t, testConfig(dir))
	defer e.Close()
	_, err := Open(testConfig(dir))
	if !errors.Is(err, datadir.ErrLocked) {
		t.Fatalf("got %v", err)
	}
}

func TestOpen_EncryptedDataWithoutKeyExits78(t *testing.T) {
	dir := t.TempDir()
	e := mustOpen(t, testConfig(dir))
	create(t, e, "token-needs-a-key-1", "u")
	e.Close()
	cfg := testConfig(dir)
	cfg.Getenv = func(string) string { return "" }
	_, err := Open(cfg)
	var se *StartupError
	if !errors.As(err, &se) || se.Code != ExitNoKey {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"TOKMESH_ENCRYPTION_KEY", "key_file", "master.key"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error does not name %s: %v", want, err)
		}
	}
}

// A data dir written under another master key is not damaged: the refusal
// (exit 65) names both key IDs, the two ways to configure the key and
// walctl rekey, and never steers the operator to the destructive repair
// (04-security §11).
func TestOpen_WrongKeyExits65NamingBothKeysAndRekeyNotRepair(t *testing.T) {
	for _, c := range []struct {
		name     string
		snapshot bool
		sentinel error
	}{
		{"wal only", false, wal.ErrKeyMismatch},
		{"snapshot and wal", true, snapshot.ErrKeyMismatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			e := mustOpen(t, testConfig(dir))
			writtenID := e.MasterKey().ID().String()
			create(t, e, "token-wrong-key-01", "u")
			if c.snapshot {
				if _, err := e.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			create(t, e, "token-wrong-key-02", "u")
			e.Close()
			cfg := testConfig(dir)
			cfg.Getenv = func(k string) string {
				if k == "TOKMESH_ENCRYPTION_KEY" {
					return strings.Repeat("ab", 32)
				}
				return ""
			}
			_, err := Open(cfg)
			var se *StartupError
			if !errors.As(err, &se) || se.Code != ExitDataErr {
				t.Fatalf("got %v, want a StartupError with exit %d", err, ExitDataErr)
			}
			if !errors.Is(err, c.sentinel) {
				t.Fatalf("error does not wrap %v: %v", c.sentinel, err)
			}
			msg := err.Error()
			loaded, err := crypt.NewMasterKey(bytes.Repeat([]byte{0xab}, 32))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{writtenID, loaded.ID().String(), "security.encryption.key_file", "TOKMESH_ENCRYPTION_KEY", "tokmesh-walctl rekey"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error does not name %q: %s", want, msg)
				}
			}
			for _, bad := range []string{"repair", "walctl verify", "cannot be recovered"} {
				if strings.Contains(msg, bad) {
					t.Errorf("error mentions %q: %s", bad, msg)
				}
			}
		})
	}
}

func TestOpen_GeneratesKeyInDataDirOnFirstStart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Getenv = func(string) string { return "" }
	e := mustOpen(t, cfg)
	create(t, e, "token-generated-key", "u")
	e.Close()
	st, err := os.Stat(filepath.Join(dir, "master.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("master.key: %v %v", st, err)
	}
	e2 := mustOpen(t, cfg)
	defer e2.Close()
	if _, err := e2.Validate("token-generated-key", false, loopback, ""); err != nil {
		t.Fatal(err)
	}
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := wal.ListSegments(filepath.Join(dir, datadir.WALDir))
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments: %v", err)
	}
	return segs[len(segs)-1].Path
}

func TestRecovery_TornTailIsTruncatedAndEarlierRecordsSurvive(t *testing.T) {
	dir := t.TempDir()
	e := mustOpen(t, testConfig(dir))
	for i := range 20 {
		create(t, e, fmt.Sprintf("token-torn-%05d", i), "u")
	}
	e.Close()
	seg := lastSegment(t, dir)
	st, _ := os.Stat(seg)
	if err := os.Truncate(seg, st.Size()-7); err != nil { // cut into the last frame
		t.Fatal(err)
	}
	e2 := mustOpen(t, testConfig(dir))
	defer e2.Close()
	if e2.Recovery().TornTail == "" {
		t.Fatal("torn tail not reported")
	}
	for i := range 19 {
		if _, err := e2.Validate(fmt.Sprintf("token-torn-%05d", i), false, loopback, ""); err != nil {
			t.Fatalf("record %d lost: %v", i, err)
		}
	}
	if _, err := e2.Validate("token-torn-00019", false, loopback, ""); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("torn record: %v", err)
	}
}

func TestRecovery_MidLogCorruptionRefusesWithExit65AndNamesWalctl(t *testing.T) {
	dir := t.TempDir()
	e := mustOpen(t, testConfig(dir))
	for i := range 50 {
		create(t, e, fmt.Sprintf("token-midlog-%05d", i), "u")
	}
	e.Close()
	seg := lastSegment(t, dir)
	b, _ := os.ReadFile(seg)
	b[len(b)/2] ^= 0x40
	os.WriteFile(seg, b, 0o600)
	_, err := Open(testConfig(dir))
	var se *StartupError
	if !errors.As(err, &se) || se.Code != ExitDataErr {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"tokmesh-walctl verify", "tokmesh-walctl repair", filepath.Base(seg)} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error does not name %q: %v", want, err)
		}
	}
}

func TestRecovery_CorruptNewestSnapshotFallsBackToOlder(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SnapshotRetain = 2
	e := mustOpen(t, cfg)
	for i := range 100 {
		create(t, e, fmt.Sprintf("token-fallback-%05d", i), "u")
	}
	if _, err := e.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		create(t, e, fmt.Sprintf("token-fallback2-%05d", i), "v")
	}
	newest, err := e.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	before := state(e)
	e.Close()
	b, _ := os.ReadFile(newest.Path)
	b[len(b)/2] ^= 1
	os.WriteFile(newest.Path, b, 0o600)
	e2 := mustOpen(t, cfg)
	defer e2.Close()
	if e2.Recovery().Snapshot == newest.Path || len(e2.Recovery().SnapshotsSkip) != 1 {
		t.Fatalf("recovery %+v", e2.Recovery())
	}
	equalState(t, before, state(e2))
}

// If the newest snapshot is unusable and the WAL no longer reaches the seq
// it covered (its segments were removed), falling back to the older one
// would silently drop acknowledged writes: refuse (exit 65) instead.
func TestRecovery_FallbackThatWouldLoseWritesRefuses(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SnapshotRetain = 2
	e := mustOpen(t, cfg)
	for i := range 20 {
		create(t, e, fmt.Sprintf("token-lost-a-%05d", i), "u")
	}
	if _, err := e.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		create(t, e, fmt.Sprintf("token-lost-b-%05d", i), "v")
	}
	newest, err := e.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	b, _ := os.ReadFile(newest.Path)
	b[len(b)/2] ^= 1
	os.WriteFile(newest.Path, b, 0o600)
	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*"))
	for _, s := range segs {
		os.Remove(s)
	}
	_, err = Open(cfg)
	var se *StartupError
	if !errors.As(err, &se) || se.Code != ExitDataErr || !strings.Contains(err.Error(), "silently lose") ||
		!strings.Contains(err.Error(), filepath.Base(newest.Path)) {
		t.Fatalf("got %v", err)
	}
}

func TestEngine_RevocationIsDurableInNoneMode(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SyncMode = wal.SyncNone
	e := mustOpen(t, cfg)
	defer e.Close()
	s := create(t, e, "token-none-revoke-1", "u")
	before := e.WALStats().Fsyncs
	if ok, err := e.Revoke(s.ID); err != nil || !ok {
		t.Fatal(err)
	}
	if e.WALStats().Fsyncs == before {
		t.Fatal("revoke acknowledged without an fsync in none mode")
	}
}

func TestEngine_CipherRecordedPerFileAndReadByEither(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Cipher = "chacha20-poly1305"
	e := mustOpen(t, cfg)
	create(t, e, "token-cipher-chacha", "u")
	e.Snapshot()
	create(t, e, "token-cipher-chacha2", "u")
	e.Close()
	cfg.Cipher = "aes-256-gcm"
	e2 := mustOpen(t, cfg)
	create(t, e2, "token-cipher-aes-01", "u")
	e2.Close()
	e3 := mustOpen(t, cfg)
	defer e3.Close()
	for _, tok := range []string{"token-cipher-chacha", "token-cipher-chacha2", "token-cipher-aes-01"} {
		if _, err := e3.Validate(tok, false, loopback, ""); err != nil {
			t.Fatalf("%s: %v", tok, err)
		}
	}
}

func TestRecovery_MissingSnapshotWithTruncatedWALRefuses(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SegmentSize = 32 << 10
	e := mustOpen(t, cfg)
	for i := range 300 {
		create(t, e, fmt.Sprintf("token-gap-%05d-xx", i), "u")
	}
	if _, err := e.Snapshot(); err != nil { // deletes the covered segments
		t.Fatal(err)
	}
	create(t, e, "token-gap-after-snap", "u")
	e.Close()
	snaps, _ := snapshot.List(filepath.Join(dir, datadir.SnapshotDir))
	for _, p := range snaps {
		os.Remove(p)
	}
	_, err := Open(cfg)
	var se *StartupError
	if !errors.As(err, &se) || se.Code != ExitDataErr {
		t.Fatalf("recovery from a WAL whose start is gone: %v", err)
	}
}

// TestOpen_ReturnsRecoveryMemoryOnceListsAreBuilt: after a large recovery
// (threshold lowered here) the engine builds the lists, then forces one GC
// and returns free memory to the OS.
func TestOpen_ReturnsRecoveryMemoryOnceListsAreBuilt(t *testing.T) {
	old := bigRecovery
	bigRecovery = 10
	defer func() { bigRecovery = old }()
	dir := t.TempDir()
	cfg := testConfig(dir)
	e := mustOpen(t, cfg)
	for i := range 20 {
		create(t, e, fmt.Sprintf("token-gc-recovery-%05d", i), "u")
	}
	e.Snapshot()
	e.Close()
	forced := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	before := forced()
	e = mustOpen(t, cfg)
	defer e.Close()
	deadline := time.Now().Add(10 * time.Second)
	for forced() == before {
		if time.Now().After(deadline) {
			t.Fatal("no forced GC after recovering 20 sessions with the threshold at 10")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := e.store.ListsPending(); n != 0 {
		t.Fatalf("%d shards still pending after the post-recovery GC", n)
	}
}
