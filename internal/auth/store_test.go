package auth

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// testKey builds a valid key record (hash with test params).
func testKey(t testing.TB, role Role, createdAt int64) Key {
	t.Helper()
	h, err := HashSecret(NewSecret(), testParams)
	if err != nil {
		t.Fatal(err)
	}
	return Key{ID: newKeyID(time.UnixMilli(createdAt)), Role: role, Description: "d", Status: StatusActive,
		AllowList: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::1/128")},
		RateLimit: 100, CreatedAt: createdAt, CreatedBy: LocalAdminID, SecretHash: h}
}

func openTestStore(t testing.TB, dir string, mk *crypt.MasterKey, opts ...func(*StoreOptions)) *Store {
	t.Helper()
	o := StoreOptions{Dir: dir, MasterKey: mk}
	for _, f := range opts {
		f(&o)
	}
	s, err := OpenStore(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fillStore applies a create, a status change, a rotation and a touch.
func fillStore(t testing.TB, s *Store) []Key {
	t.Helper()
	ctx := context.Background()
	var keys []Key
	for i := range 3 {
		k := testKey(t, Roles[i], 1000+int64(i))
		if _, err := s.Apply(ctx, Command{Type: CmdCreate, Key: k}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if _, err := s.Apply(ctx, Command{Type: CmdSetStatus, ID: keys[0].ID, Status: StatusDisabled}); err != nil {
		t.Fatal(err)
	}
	h, _ := HashSecret(NewSecret(), testParams)
	if _, err := s.Apply(ctx, Command{Type: CmdRotate, ID: keys[1].ID, SecretHash: h, GraceUntil: 5000}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, Command{Type: CmdTouch, Touches: []Touch{{keys[2].ID, 7000}, {"tmak-00000000000000000000000000", 1}}}); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestStore_PersistsAcrossReopen(t *testing.T) {
	dir, mk := t.TempDir(), testMasterKey(t, 1)
	s := openTestStore(t, dir, mk)
	keys := fillStore(t, s)
	want := s.View().Keys()
	if len(want) != 3 || s.Index() != 6 {
		t.Fatalf("%d keys at index %d", len(want), s.Index())
	}
	s.Close()

	s2 := openTestStore(t, dir, mk)
	if got := s2.View().Keys(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen:\n%#v\nwant\n%#v", got, want)
	}
	if s2.Index() != 6 || s2.Recovery().Replayed != 6 {
		t.Fatalf("index %d, recovery %+v", s2.Index(), s2.Recovery())
	}
	k, _ := s2.View().Get(keys[0].ID)
	if k.Status != StatusDisabled {
		t.Fatal("status lost")
	}
	k, _ = s2.View().Get(keys[1].ID)
	if k.PrevSecretHash != keys[1].SecretHash || k.RotationGraceUntil != 5000 {
		t.Fatal("rotation lost")
	}
	k, _ = s2.View().Get(keys[2].ID)
	if k.LastUsedAt != 7000 {
		t.Fatal("touch lost")
	}
	// Writes continue after the reopen (which compacted the log).
	if _, err := s2.Apply(context.Background(), Command{Type: CmdSetStatus, ID: keys[0].ID, Status: StatusActive}); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	s3 := openTestStore(t, dir, mk)
	if k, _ := s3.View().Get(keys[0].ID); k.Status != StatusActive || s3.Index() != 7 {
		t.Fatalf("status %s index %d", k.Status, s3.Index())
	}
}

func TestStore_FilesHoldNoPlaintext(t *testing.T) {
	dir, mk := t.TempDir(), testMasterKey(t, 1)
	s := openTestStore(t, dir, mk)
	keys := fillStore(t, s)
	for _, name := range []string{LogFileName} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		for _, k := range keys {
			if bytes.Contains(b, []byte(k.ID)) || bytes.Contains(b, []byte("argon2id")) {
				t.Fatalf("%s holds plaintext", name)
			}
		}
	}
	s.Compact()
	b, _ := os.ReadFile(filepath.Join(dir, SnapshotFileName))
	if bytes.Contains(b, []byte(keys[0].ID)) || bytes.Contains(b, []byte("argon2id")) {
		t.Fatal("snapshot holds plaintext")
	}
	st, _ := os.Stat(filepath.Join(dir, SnapshotFileName))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot mode %v", st.Mode())
	}
}

func TestStore_RejectedCommandIsNotLogged(t *testing.T) {
	dir, mk := t.TempDir(), testMasterKey(t, 1)
	s := openTestStore(t, dir, mk)
	ctx := context.Background()
	before := fileSize(t, filepath.Join(dir, LogFileName))
	k := testKey(t, RoleAdmin, 1)
	for name, cmd := range map[string]Command{
		"unknown key status": {Type: CmdSetStatus, ID: k.ID, Status: StatusDisabled},
		"unknown key rotate": {Type: CmdRotate, ID: k.ID, SecretHash: k.SecretHash},
		"bad role":           {Type: CmdCreate, Key: func() Key { k := k; k.Role = "root"; return k }()},
		"no hash":            {Type: CmdCreate, Key: func() Key { k := k; k.SecretHash = ""; return k }()},
		"unknown type":       {Type: 99},
	} {
		if _, err := s.Apply(ctx, cmd); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := s.Apply(ctx, Command{Type: CmdCreate, Key: k}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, Command{Type: CmdCreate, Key: k}); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if s.Index() != 1 {
		t.Fatalf("index %d", s.Index())
	}
	if after := fileSize(t, filepath.Join(dir, LogFileName)); after <= before {
		t.Fatal("create not logged")
	}
}

func TestStore_TornTailIsTruncated(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(good []byte, lastRec int) []byte
	}{
		{"half a record", func(b []byte, last int) []byte { return b[:last+(len(b)-last)/2] }},
		{"only a prefix byte", func(b []byte, last int) []byte { return b[:last+3] }},
		{"zero-filled tail", func(b []byte, last int) []byte {
			return append(b[:last], make([]byte, len(b)-last)...)
		}},
		{"garbled final record", func(b []byte, last int) []byte {
			c := bytes.Clone(b)
			c[len(c)-5] ^= 0xff
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, mk := t.TempDir(), testMasterKey(t, 1)
			s := openTestStore(t, dir, mk)
			ctx := context.Background()
			k1, k2 := testKey(t, RoleAdmin, 1), testKey(t, RoleIssuer, 2)
			s.Apply(ctx, Command{Type: CmdCreate, Key: k1})
			last := fileSize(t, filepath.Join(dir, LogFileName))
			s.Apply(ctx, Command{Type: CmdCreate, Key: k2})
			s.Close()
			path := filepath.Join(dir, LogFileName)
			b, _ := os.ReadFile(path)
			os.WriteFile(path, tc.tear(b, int(last)), 0o600)

			s2 := openTestStore(t, dir, mk)
			if s2.Index() != 1 || s2.View().Len() != 1 {
				t.Fatalf("index %d keys %d", s2.Index(), s2.View().Len())
			}
			if _, ok := s2.View().Get(k1.ID); !ok {
				t.Fatal("first key lost")
			}
			if s2.Recovery().TornTailBytes == 0 {
				t.Fatal("torn tail not reported")
			}
			// The tail is gone: the log now holds only a header.
			if sz := fileSize(t, path); sz != fileHeaderSize {
				t.Fatalf("log size %d after truncation", sz)
			}
			if _, err := s2.Apply(ctx, Command{Type: CmdCreate, Key: k2}); err != nil {
				t.Fatal(err)
			}
			s2.Close()
			s3 := openTestStore(t, dir, mk)
			if s3.View().Len() != 2 || s3.Recovery().TornTailBytes != 0 {
				t.Fatalf("after rewrite: %d keys, %+v", s3.View().Len(), s3.Recovery())
			}
		})
	}
}

func TestStore_CorruptionRefusesToOpen(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string
		corrupt func(b []byte) []byte
	}{
		{"flipped byte in a middle record", LogFileName, func(b []byte) []byte { b[fileHeaderSize+20] ^= 1; return b }},
		{"bad log magic", LogFileName, func(b []byte) []byte { b[0] = 'X'; return b }},
		{"log header CRC", LogFileName, func(b []byte) []byte { b[30] ^= 1; return b }},
		{"log header truncated", LogFileName, func(b []byte) []byte { return b[:40] }},
		{"snapshot byte flipped", SnapshotFileName, func(b []byte) []byte { b[len(b)-3] ^= 1; return b }},
		{"snapshot truncated", SnapshotFileName, func(b []byte) []byte { return b[:len(b)-1] }},
		{"snapshot trailing bytes", SnapshotFileName, func(b []byte) []byte { return append(b, 1, 2, 3) }},
		{"log missing", LogFileName, func(b []byte) []byte { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, mk := t.TempDir(), testMasterKey(t, 1)
			s := openTestStore(t, dir, mk)
			fillStore(t, s)
			if tc.file == SnapshotFileName {
				if err := s.Compact(); err != nil {
					t.Fatal(err)
				}
				s.Apply(context.Background(), Command{Type: CmdTouch, Touches: []Touch{{s.View().Keys()[0].ID, 99999}}})
			}
			s.Close()
			path := filepath.Join(dir, tc.file)
			b, _ := os.ReadFile(path)
			if nb := tc.corrupt(b); nb == nil {
				os.Remove(path)
			} else {
				os.WriteFile(path, nb, 0o600)
			}
			_, err := OpenStore(StoreOptions{Dir: dir, MasterKey: mk})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v", err)
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(ce.File, tc.file) {
				t.Fatalf("error does not name %s: %v", tc.file, err)
			}
		})
	}
}

func TestStore_IndexGapRefusesToOpen(t *testing.T) {
	dir, mk := t.TempDir(), testMasterKey(t, 1)
	s := openTestStore(t, dir, mk)
	ctx := context.Background()
	k1, k2, k3 := testKey(t, RoleAdmin, 1), testKey(t, RoleAdmin, 2), testKey(t, RoleAdmin, 3)
	s.Apply(ctx, Command{Type: CmdCreate, Key: k1})
	a := fileSize(t, filepath.Join(dir, LogFileName))
	s.Apply(ctx, Command{Type: CmdCreate, Key: k2})
	b := fileSize(t, filepath.Join(dir, LogFileName))
	s.Apply(ctx, Command{Type: CmdCreate, Key: k3})
	s.Close()
	path := filepath.Join(dir, LogFileName)
	data, _ := os.ReadFile(path)
	// Cut record 2 out of the middle: record 3 follows record 1.
	os.WriteFile(path, append(data[:a:a], data[b:]...), 0o600)
	if _, err := OpenStore(StoreOptions{Dir: dir, MasterKey: mk}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "expected 2") {
		t.Fatalf("got %v", err)
	}
}

func TestStore_WrongMasterKeyIsKeyMismatch(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, testMasterKey(t, 1))
	fillStore(t, s)
	s.Close()
	_, err := OpenStore(StoreOptions{Dir: dir, MasterKey: testMasterKey(t, 2)})
	if !errors.Is(err, ErrKeyMismatch) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "rekey") {
		t.Fatalf("error should name tokmesh-walctl rekey: %v", err)
	}
}

func TestStore_CompactionFoldsLogIntoSnapshot(t *testing.T) {
	dir, mk := t.TempDir(), testMasterKey(t, 1)
	s := openTestStore(t, dir, mk, func(o *StoreOptions) { o.CompactAfter = 4 })
	ctx := context.Background()
	var ids []string
	for i := range 10 {
		k := testKey(t, RoleValidator, int64(i+1))
		if _, err := s.Apply(ctx, Command{Type: CmdCreate, Key: k}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	// Compactions after records 4 and 8: the log holds records 9 and 10.
	if _, err := os.Stat(filepath.Join(dir, SnapshotFileName)); err != nil {
		t.Fatal("no snapshot")
	}
	logSize := fileSize(t, filepath.Join(dir, LogFileName))
	s.Close()
	s2 := openTestStore(t, dir, mk, func(o *StoreOptions) { o.ReadOnly = true })
	if r := s2.Recovery(); r.SnapshotIndex != 8 || r.Replayed != 2 {
		t.Fatalf("recovery %+v (log %d bytes)", r, logSize)
	}
	if s2.View().Len() != 10 || s2.Index() != 10 {
		t.Fatalf("%d keys at %d", s2.View().Len(), s2.Index())
	}
	if _, err := s2.Apply(ctx, Command{Type: CmdTouch}); err == nil {
		t.Fatal("read-only store accepted a write")
	}
	for _, e := range mustReadDir(t, dir) {
		if strings.HasSuffix(e, ".tmp") {
			t.Fatalf("leftover %s", e)
		}
	}
}

func TestStore_CrashBetweenSnapshotAndNewLogRecovers(t *testing.T) {
	dir, mk := t.TempDir(), testMasterKey(t, 1)
	s := openTestStore(t, dir, mk)
	fillStore(t, s)
	oldLog, _ := os.ReadFile(filepath.Join(dir, LogFileName))
	want := s.View().Keys()
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Simulate a crash after the snapshot rename but before the log swap.
	os.WriteFile(filepath.Join(dir, LogFileName), oldLog, 0o600)
	s2 := openTestStore(t, dir, mk)
	if got := s2.View().Keys(); !reflect.DeepEqual(got, want) || s2.Recovery().Replayed != 0 {
		t.Fatalf("recovery %+v", s2.Recovery())
	}
}

func TestStore_SubscribersSeeEveryChangeInOrder(t *testing.T) {
	s := openTestStore(t, t.TempDir(), testMasterKey(t, 1))
	var got []CommandType
	cancel := s.Subscribe(func(v *View, ch Change) { got = append(got, ch.Type) })
	fillStore(t, s)
	cancel()
	s.Apply(context.Background(), Command{Type: CmdTouch})
	want := []CommandType{CmdCreate, CmdCreate, CmdCreate, CmdSetStatus, CmdRotate, CmdTouch}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
}

func TestState_ReplayIsDeterministic(t *testing.T) {
	var cmds []Command
	k1, k2 := testKey(t, RoleAdmin, 1), testKey(t, RoleIssuer, 2)
	cmds = append(cmds, Command{Type: CmdCreate, Key: k1}, Command{Type: CmdEmergencyCreate, Key: k2},
		Command{Type: CmdRotate, ID: k1.ID, SecretHash: k2.SecretHash, GraceUntil: 10},
		Command{Type: CmdRotate, ID: k1.ID, SecretHash: k1.SecretHash},
		Command{Type: CmdSetStatus, ID: k2.ID, Status: StatusDisabled},
		Command{Type: CmdTouch, Touches: []Touch{{k1.ID, 50}, {k1.ID, 40}}})
	a, b := NewState(), NewState()
	for _, c := range cmds {
		dc, err := DecodeCommand(EncodeCommand(&c))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.Apply(&c); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.Apply(&dc); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a.MarshalBinary(6), b.MarshalBinary(6)) {
		t.Fatal("replay of decoded commands diverged")
	}
	k, _ := a.View(0).Get(k1.ID)
	if k.PrevSecretHash != "" || k.RotationGraceUntil != 0 || k.LastUsedAt != 50 {
		t.Fatalf("rotation with grace 0 / touch max: %+v", k)
	}
	st, idx, err := UnmarshalState(a.MarshalBinary(6))
	if err != nil || idx != 6 || !reflect.DeepEqual(st.Keys(), a.Keys()) {
		t.Fatalf("state round trip: %v %d", err, idx)
	}
}

func mustReadDir(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestStore_LogWithoutSnapshotIsCompleteHistory(t *testing.T) {
	// A crash during initialisation leaves the log (base 0) without a
	// snapshot; so does an operator deleting keys.snap. Base 0 means the
	// log holds everything, so nothing is lost.
	dir, mk := t.TempDir(), testMasterKey(t, 1)
	s := openTestStore(t, dir, mk)
	fillStore(t, s)
	want := s.View().Keys()
	s.Close()
	os.Remove(filepath.Join(dir, SnapshotFileName))
	s2 := openTestStore(t, dir, mk)
	if !reflect.DeepEqual(s2.View().Keys(), want) {
		t.Fatal("keys differ")
	}
	if _, err := os.Stat(filepath.Join(dir, SnapshotFileName)); err != nil {
		t.Fatal("snapshot not rewritten on open")
	}
	s2.Close()
	// After a compaction the log no longer starts at 0: losing the
	// snapshot now loses data and must be refused.
	os.Remove(filepath.Join(dir, SnapshotFileName))
	if _, err := OpenStore(StoreOptions{Dir: dir, MasterKey: mk}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("missing snapshot after compaction: %v", err)
	}
}

func TestStore_FailedWriteStopsTheStore(t *testing.T) {
	dir, mk := t.TempDir(), testMasterKey(t, 1)
	s := openTestStore(t, dir, mk)
	s.log.Close() // make the next write fail
	k := testKey(t, RoleAdmin, 1)
	if _, err := s.Apply(context.Background(), Command{Type: CmdCreate, Key: k}); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("got %v", err)
	}
	if s.View().Len() != 0 {
		t.Fatal("failed command was applied")
	}
	if _, err := s.Apply(context.Background(), Command{Type: CmdCreate, Key: testKey(t, RoleAdmin, 2)}); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("store accepted writes after a failure: %v", err)
	}
	s.log = nil
	s.Close()
	s2 := openTestStore(t, dir, mk)
	if s2.View().Len() != 0 {
		t.Fatal("reopen")
	}
}
