package auth

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden")

const goldenDir = "testdata/golden/v1"

// TestGolden_V1ControlStoreStillLoads keeps format version 1 readable: a
// committed store (snapshot with two keys, log with a status change and a
// rotation) sealed under testMasterKey(9) must load with the same content.
func TestGolden_V1ControlStoreStillLoads(t *testing.T) {
	mk := testMasterKey(t, 9)
	cmds := seedCommands()
	if *updateGolden {
		dir := t.TempDir()
		s, err := OpenStore(StoreOptions{Dir: dir, MasterKey: mk})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for i, c := range cmds {
			if _, err := s.Apply(ctx, c); err != nil {
				t.Fatal(err)
			}
			if i == 1 {
				if err := s.Compact(); err != nil {
					t.Fatal(err)
				}
			}
		}
		s.Close()
		os.MkdirAll(goldenDir, 0o755)
		for _, name := range []string{SnapshotFileName, LogFileName} {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			if err := os.WriteFile(filepath.Join(goldenDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	s, err := OpenStore(StoreOptions{Dir: goldenDir, MasterKey: mk, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r := s.Recovery(); r.SnapshotIndex != 2 || r.Replayed != 3 || r.TornTailBytes != 0 {
		t.Fatalf("recovery %+v", r)
	}
	k, ok := s.View().Get(cmds[0].Key.ID)
	if !ok || k.Status != StatusDisabled || k.PrevSecretHash != cmds[0].Key.SecretHash ||
		k.RotationGraceUntil != cmds[3].GraceUntil || k.LastUsedAt != cmds[4].Touches[0].At ||
		len(k.AllowList) != 2 || k.Description != "seed" {
		t.Fatalf("key %#v", k)
	}
	if e, ok := s.View().Get(cmds[1].Key.ID); !ok || e.Role != RoleAdmin {
		t.Fatal("emergency key")
	}
}
