package engine

import (
	"errors"
	"fmt"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/session"
)

// Scan pages through the live sessions (a standalone node is primary of
// every partition), survives a restart's new layout, and refuses to run on
// a closed engine.
func TestScan_PagesThroughLiveSessionsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	e := mustOpen(t, testConfig(dir))
	live := map[session.ID]bool{}
	for i := range 300 {
		s := create(t, e, fmt.Sprintf("scan-token-%08d", i), fmt.Sprintf("u%d", i%7))
		if i%10 == 0 {
			if _, err := e.Revoke(s.ID); err != nil {
				t.Fatal(err)
			}
			continue
		}
		live[s.ID] = true
	}
	scan := func(e *Engine) map[session.ID]int {
		seen := map[session.ID]int{}
		cursor := uint64(0)
		for {
			page := 0
			next, err := e.Scan(cursor, 25, func(id session.ID) { seen[id]++; page++ })
			if err != nil {
				t.Fatal(err)
			}
			if page > 25 {
				t.Fatalf("page of %d for count 25", page)
			}
			if next == 0 {
				return seen
			}
			cursor = next
		}
	}
	check := func(seen map[session.ID]int) {
		t.Helper()
		if len(seen) != len(live) {
			t.Fatalf("%d visited, %d live", len(seen), len(live))
		}
		for id, n := range seen {
			if !live[id] || n != 1 {
				t.Fatalf("%s visited %d times", id, n)
			}
		}
	}
	check(scan(e))
	if avg := e.AvgTTLMillis(); avg < 7_100_000 || avg > 7_200_000 { // default TTL 2 h
		t.Fatalf("avg ttl %d ms", avg)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Scan(0, 10, func(session.ID) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("scan of a closed engine: %v", err)
	}
	e = mustOpen(t, testConfig(dir)) // recovered: other slots, same sessions
	defer e.Close()
	check(scan(e))
}
