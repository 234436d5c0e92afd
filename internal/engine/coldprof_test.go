package engine

import (
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/wal"
)

// TestColdStartProfile profiles recovery of an existing data dir
// (TOKMESH_COLDSTART_DIR), building it first when empty. Diagnostic only.
func TestColdStartProfile(t *testing.T) {
	dir := os.Getenv("TOKMESH_COLDSTART_DIR")
	if dir == "" {
		t.Skip("set TOKMESH_COLDSTART_DIR")
	}
	cfg := testConfig(dir)
	cfg.SyncMode = wal.SyncNone
	cfg.Session.MaxPerUser = 10000
	if _, err := os.Stat(dir + "/snapshots"); err != nil {
		e := mustOpen(t, cfg)
		fill(t, e, 1_000_000)
		e.Snapshot()
		for i := 1_000_000; i < 1_100_000; i++ {
			e.Create(exampleRequest(i))
		}
		e.Close()
	}
	f, _ := os.Create(dir + "/../cold.prof")
	pprof.StartCPUProfile(f)
	t0 := time.Now()
	e := mustOpen(t, cfg)
	d := time.Since(t0)
	pprof.StopCPUProfile()
	t.Logf("open %v: %+v", d, e.Recovery())
	e.Close()
}
