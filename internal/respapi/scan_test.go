package respapi

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/yndnr/tokmesh-go/internal/auth"
)

// scanAll runs SCAN to the end and counts how often each key came back.
func scanAll(t *testing.T, c *redis.Client, match string, count int64, between func()) map[string]int {
	t.Helper()
	seen := map[string]int{}
	var cursor uint64
	for calls := 0; ; calls++ {
		keys, next, err := c.Scan(context.Background(), cursor, match, count).Result()
		if err != nil {
			t.Fatal(err)
		}
		if limit := max(count, defaultScanCount); int64(len(keys)) > limit {
			t.Fatalf("page of %d keys for COUNT %d", len(keys), count)
		}
		for _, k := range keys {
			seen[k]++
		}
		if next == 0 {
			return seen
		}
		if calls > 100000 {
			t.Fatal("SCAN does not end")
		}
		cursor = next
		if between != nil {
			between()
		}
	}
}

func TestScan_ReturnsEveryLiveSessionAndEndsAtCursorZero(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	issuer, admin := e.client(auth.RoleIssuer, 2), e.client(auth.RoleAdmin, 2)
	live := map[string]bool{}
	for i := range 60 {
		cr := create(t, issuer, fmt.Sprintf(`{"user_id":"scan%d"}`, i))
		if i%5 == 0 {
			issuer.Del(ctx, cr.SessionID)
			continue
		}
		live[cr.SessionID] = true
	}
	for _, count := range []int64{0, 1, 7, 1000} { // 0: go-redis sends no COUNT (default 10)
		seen := scanAll(t, admin, "", count, nil)
		if len(seen) != len(live) {
			t.Fatalf("COUNT %d: %d keys, %d live", count, len(seen), len(live))
		}
		for k, n := range seen {
			if !live[k] || n != 1 {
				t.Fatalf("COUNT %d: %s returned %d times (live %v)", count, k, n, live[k])
			}
		}
	}
	// The iterator helper of go-redis works too (default COUNT).
	n := 0
	it := admin.Scan(ctx, 0, "", 0).Iterator()
	for it.Next(ctx) {
		n++
	}
	if it.Err() != nil || n != len(live) {
		t.Fatalf("iterator: %d keys, %v", n, it.Err())
	}
	// The default page is 10.
	keys, err := admin.Do(ctx, "SCAN", 0).Slice()
	if err != nil || len(keys) != 2 || len(keys[1].([]any)) != 10 {
		t.Fatalf("SCAN 0: %v %v", keys, err)
	}

	// MATCH filters (glob, case-sensitive); TYPE string is every session.
	var one string
	for k := range live {
		one = k
		break
	}
	if seen := scanAll(t, admin, one, 1000, nil); len(seen) != 1 || seen[one] != 1 {
		t.Fatalf("MATCH exact: %v", seen)
	}
	if seen := scanAll(t, admin, "tmss-*", 1000, nil); len(seen) != len(live) {
		t.Fatalf("MATCH tmss-*: %d", len(seen))
	}
	if seen := scanAll(t, admin, "TMSS-*", 1000, nil); len(seen) != 0 {
		t.Fatalf("MATCH is case-sensitive: %d", len(seen))
	}
	if keys, cur, err := admin.ScanType(ctx, 0, "", 1000, "string").Result(); err != nil || len(keys) != len(live) || cur != 0 {
		t.Fatalf("TYPE string: %d keys, cursor %d, %v", len(keys), cur, err)
	}
	for _, typ := range []string{"hash", "list", "zset"} {
		if keys, cur, err := admin.ScanType(ctx, 0, "", 1000, typ).Result(); err != nil || len(keys) != 0 || cur != 0 {
			t.Fatalf("TYPE %s: %v, cursor %d, %v", typ, keys, cur, err)
		}
	}
}

func TestScan_ArgumentErrorsAndRoles(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.client(auth.RoleAdmin, 2)
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"SCAN", 0, "COUNT", 1001}, "TM-ARG-1001 "},
		{[]any{"SCAN", 0, "COUNT", 0}, "ERR syntax error"},
		{[]any{"SCAN", 0, "COUNT", "ten"}, "ERR value is not an integer or out of range"},
		{[]any{"SCAN", "abc"}, "ERR invalid cursor"},
		{[]any{"SCAN", -1}, "ERR invalid cursor"},
		{[]any{"SCAN", 0, "MATCH"}, "ERR syntax error"},
		{[]any{"SCAN", 0, "LIMIT", 5}, "ERR syntax error"},
		{[]any{"SCAN"}, "ERR wrong number of arguments for 'scan' command"},
	} {
		wantErr(t, admin.Do(ctx, tc.args...).Err(), tc.want)
	}
	if _, _, err := admin.Scan(ctx, 0, "", 1000).Result(); err != nil {
		t.Fatalf("COUNT 1000: %v", err)
	}
	// A cursor past the end ends the scan.
	if keys, cur, err := admin.Scan(ctx, 1<<62, "", 10).Result(); err != nil || cur != 0 || len(keys) != 0 {
		t.Fatalf("cursor past the end: %v %d %v", keys, cur, err)
	}
	for _, r := range []auth.Role{auth.RoleMetrics, auth.RoleValidator, auth.RoleIssuer} {
		wantErr(t, e.client(r, 2).Scan(ctx, 0, "", 10).Err(), "TM-AUTH-4030 ")
	}
	wantErr(t, e.anon().Scan(ctx, 0, "", 10).Err(), "TM-AUTH-4010 ")
}

// Weakly consistent: sessions live for the whole scan come back while other
// sessions are created and revoked, between pages and concurrently.
func TestScan_StableSessionsSurviveConcurrentCreatesAndRevokes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	issuer, admin := e.client(auth.RoleIssuer, 2), e.client(auth.RoleAdmin, 2)
	stable := map[string]bool{}
	var churn []string
	for i := range 120 {
		cr := create(t, issuer, fmt.Sprintf(`{"user_id":"stable%d"}`, i))
		if i%2 == 0 {
			stable[cr.SessionID] = true
		} else {
			churn = append(churn, cr.SessionID)
		}
	}
	next := 0
	between := func() {
		for range 3 {
			if len(churn) > 0 {
				issuer.Do(ctx, "TM.REVOKE", churn[0])
				churn = churn[1:]
			}
			next++
			churn = append(churn, create(t, issuer, fmt.Sprintf(`{"user_id":"new%d"}`, next)).SessionID)
		}
	}
	bg := e.client(auth.RoleIssuer, 2)
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
			s, err := bg.Do(ctx, "TM.CREATE", fmt.Sprintf(`{"user_id":"bg%d"}`, i)).Text()
			if err != nil {
				continue
			}
			if i := strings.Index(s, `"session_id":"`); i >= 0 {
				id := s[i+len(`"session_id":"`):]
				bg.Do(ctx, "DEL", id[:strings.IndexByte(id, '"')])
			}
		}
	}()
	seen := scanAll(t, admin, "", 5, between)
	close(stop)
	wg.Wait()
	for id := range stable {
		if seen[id] < 1 {
			t.Fatalf("stable session %s not returned", id)
		}
	}
}

func TestGlobMatch_RedisSemantics(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"tmss-*", "tmss-01abc", true},
		{"tmss-*", "tmsx-01abc", false},
		{"h?llo", "hello", true},
		{"h?llo", "hllo", false},
		{"h*llo", "heeeello", true},
		{"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hbllo", true}, // reversed range
		{"h[a-b]llo", "hcllo", false},
		{`h\*llo`, "h*llo", true},
		{`h\*llo`, "hello", false},
		{`h[\]]llo`, "h]llo", true},
		{"h[abc", "hb", true}, // unterminated class runs to the end
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"**x", "yyx", true},
		{`x\`, `x\`, true},
		{"", "", true},
		{"", "a", false},
		{"a*a*a*a*a*a*a*a*b", strings.Repeat("a", 200), false}, // no exponential blow-up
	} {
		if got := globMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// redis-cli --scan (SCAN with its own cursor loop) and --pattern work.
func TestScan_RedisCLIScanMode(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed (make deps installs it)")
	}
	e := newEnv(t)
	issuer := e.client(auth.RoleIssuer, 2)
	want := map[string]bool{}
	for i := range 25 {
		want[create(t, issuer, fmt.Sprintf(`{"user_id":"cli%d"}`, i)).SessionID] = true
	}
	host, port, _ := net.SplitHostPort(e.addr)
	admin := e.creds[auth.RoleAdmin]
	for _, pattern := range []string{"", "tmss-*"} {
		args := []string{"-h", host, "-p", port, "--no-auth-warning", "--user", admin[0], "--pass", admin[1], "--scan"}
		if pattern != "" {
			args = append(args, "--pattern", pattern)
		}
		out, err := exec.Command(cli, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli --scan: %v: %s", err, out)
		}
		got := strings.Fields(string(out))
		if len(got) != len(want) {
			t.Fatalf("redis-cli --scan %q printed %d keys, want %d: %s", pattern, len(got), len(want), out)
		}
		for _, k := range got {
			if !want[k] {
				t.Fatalf("unexpected key %q", k)
			}
		}
	}
}
