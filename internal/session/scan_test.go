package session

import (
	"fmt"
	"sync"
	"testing"
)

// scanAll runs a full scan with the given page size and returns how often
// each ID was visited and the number of calls.
func scanAll(t *testing.T, st *Store, count int, between func()) (map[ID]int, int) {
	t.Helper()
	seen := map[ID]int{}
	cursor, calls := uint64(0), 0
	for {
		cursor = st.Scan(cursor, count, func(id ID, _ int64) { seen[id]++ })
		calls++
		if cursor == 0 {
			return seen, calls
		}
		if calls > 1_000_000 {
			t.Fatal("scan does not end")
		}
		if between != nil {
			between()
		}
	}
}

func TestScan_VisitsEveryLiveSessionExactlyOnceAndSkipsTheRest(t *testing.T) {
	e := newEnv(t, nil)
	live := map[ID]bool{}
	for i := range 2000 {
		res := e.create(CreateRequest{UserID: fmt.Sprintf("u%d", i), TTLSeconds: 600, TTLSet: true})
		switch i % 4 {
		case 0: // revoked: a tombstone, not a session
			if ok, _, err := e.st.Revoke(res.Session.ID); err != nil || !ok {
				t.Fatal(err)
			}
		default:
			live[res.Session.ID] = true
		}
	}
	// Short-lived sessions that expire (not yet swept) are not live.
	for i := range 50 {
		e.create(CreateRequest{UserID: fmt.Sprintf("short%d", i), TTLSeconds: 1, TTLSet: true})
	}
	e.clk.Add(1500)
	for _, count := range []int{1, 7, 10, 1000} {
		seen, calls := scanAll(t, e.st, count, nil)
		if len(seen) != len(live) {
			t.Fatalf("count %d: %d sessions visited, %d live", count, len(seen), len(live))
		}
		for id, n := range seen {
			if !live[id] || n != 1 {
				t.Fatalf("count %d: %s visited %d times (live %v)", count, id, n, live[id])
			}
		}
		if count == 1 && calls < len(live) {
			t.Fatalf("count 1 returned more than one session per call (%d calls)", calls)
		}
	}
}

func TestScan_EmptyStoreAndCursorPastTheEndEnd(t *testing.T) {
	e := newEnv(t, nil)
	if c := e.st.Scan(0, 10, func(ID, int64) { t.Fatal("visited a session of an empty store") }); c != 0 {
		t.Fatalf("cursor %d on an empty store", c)
	}
	e.create(CreateRequest{})
	if c := e.st.Scan(uint64(e.st.NumShards())<<32, 10, func(ID, int64) { t.Fatal("visited past the end") }); c != 0 {
		t.Fatalf("cursor %d past the end", c)
	}
}

// A sparse store (most slots free after revocations) makes a call stop
// after its slot budget with a non-zero cursor, and the scan still ends
// with every live session.
func TestScan_SlotBudgetBoundsOneCall(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Shards = 1 })
	var ids []ID
	for i := range 3 * scanMinSlots {
		ids = append(ids, e.create(CreateRequest{UserID: fmt.Sprintf("u%d", i)}).Session.ID)
	}
	keep := ids[len(ids)-1]
	for _, id := range ids[:len(ids)-1] {
		if _, _, err := e.st.Revoke(id); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	c := e.st.Scan(0, 1, func(ID, int64) { n++ })
	if c == 0 || n != 0 {
		t.Fatalf("first call: cursor %d, %d sessions; want a partial page", c, n)
	}
	seen, _ := scanAll(t, e.st, 1, nil)
	if len(seen) != 1 || seen[keep] != 1 {
		t.Fatalf("visited %v", seen)
	}
}

// Weak consistency: sessions live for the whole scan are returned exactly
// once while others are created and revoked between pages (reusing freed
// slots) and concurrently with the scan.
func TestScan_StableSessionsSurviveChurn(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Shards = 8 })
	stable := map[ID]bool{}
	var churn []ID
	for i := range 3000 {
		res := e.create(CreateRequest{UserID: fmt.Sprintf("u%d", i)})
		if i%3 == 0 {
			churn = append(churn, res.Session.ID)
		} else {
			stable[res.Session.ID] = true
		}
	}
	next := 3000
	between := func() {
		// Revoke a few churn sessions and create new ones in their slots.
		for range 5 {
			if len(churn) == 0 {
				break
			}
			e.st.Revoke(churn[0])
			churn = churn[1:]
		}
		for range 5 {
			next++
			res := e.create(CreateRequest{UserID: fmt.Sprintf("u%d", next)})
			churn = append(churn, res.Session.ID)
		}
	}
	// Concurrent churn on top of the between-page churn.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			res, err := e.st.Create(CreateRequest{UserID: fmt.Sprintf("bg%d", i)})
			if err == nil {
				e.st.Revoke(res.Session.ID)
			}
		}
	}()
	seen, _ := scanAll(t, e.st, 10, between)
	close(stop)
	wg.Wait()
	for id := range stable {
		if seen[id] != 1 {
			t.Fatalf("stable session %s visited %d times", id, seen[id])
		}
	}
}

func TestAvgTTL_IsTheMeanTimeToEffectiveExpiry(t *testing.T) {
	e := newEnv(t, nil)
	if got := e.st.AvgTTL(1024); got != 0 {
		t.Fatalf("empty store: %d", got)
	}
	e.create(CreateRequest{UserID: "a", TTLSeconds: 100, TTLSet: true})
	e.create(CreateRequest{UserID: "b", TTLSeconds: 300, TTLSet: true})
	// Idle timeout sooner than the TTL: the effective expiry counts.
	e.create(CreateRequest{UserID: "c", TTLSeconds: 900, TTLSet: true, IdleTimeoutSeconds: 200, IdleSet: true})
	if got := e.st.AvgTTL(1024); got != 200_000 {
		t.Fatalf("avg ttl %d ms, want 200000", got)
	}
	e.clk.Add(50_000)
	if got := e.st.AvgTTL(1024); got != 150_000 {
		t.Fatalf("avg ttl after 50 s: %d ms, want 150000", got)
	}
}
