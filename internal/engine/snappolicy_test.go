package engine

import (
	"fmt"
	"testing"
	"time"
)

func TestSetSnapshotPolicy_EnablesATriggerThatWasOffAtOpen(t *testing.T) {
	e := mustOpen(t, testConfig(t.TempDir())) // both triggers off
	defer e.Close()
	if iv, th := e.SnapshotPolicy(); iv != 0 || th != 0 {
		t.Fatalf("policy at open = %v, %d", iv, th)
	}
	for i := range 20 {
		create(t, e, fmt.Sprintf("token-snap-policy-%04d", i), "u")
	}
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if e.lastSnapSeq.Load() != 0 {
		t.Fatal("snapshot taken with every trigger off")
	}
	e.SetSnapshotPolicy(0, 1) // one WAL byte
	if iv, th := e.SnapshotPolicy(); iv != 0 || th != 1 {
		t.Fatalf("policy = %v, %d", iv, th)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.lastSnapSeq.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no snapshot after lowering the WAL threshold")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.SetSnapshotPolicy(-time.Second, -1)
	if iv, th := e.SnapshotPolicy(); iv != 0 || th != 0 {
		t.Fatalf("negative policy stored as %v, %d", iv, th)
	}
}
