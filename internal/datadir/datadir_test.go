package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestAcquire_SecondHolderGetsLockedErrorWithPID(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	_, err = Acquire(dir)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Acquire: got %v, want ErrLocked", err)
	}
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("want pid %d in %v", os.Getpid(), err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

func TestNode_RoundTripAndNewerFormatRefused(t *testing.T) {
	dir := t.TempDir()
	n := Node{FormatVersion: 1, NodeID: "tmnd-a", Partitions: 256, CreatedAt: 1}
	if err := WriteNode(dir, n); err != nil {
		t.Fatal(err)
	}
	got, err := ReadNode(dir)
	if err != nil || got != n {
		t.Fatalf("got %+v %v", got, err)
	}
	st, _ := os.Stat(filepath.Join(dir, NodeFile))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	n.FormatVersion = 2
	if err := WriteNode(dir, n); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadNode(dir); err == nil {
		t.Fatal("newer format accepted")
	}
}
