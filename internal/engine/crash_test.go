package engine

// The crash harness: a real child process (this test binary re-executed)
// runs the engine under a concurrent write load and prints every
// acknowledgement; the parent SIGKILLs it at a random moment, recovers the
// same data dir and checks every acknowledged fact. TOKMESH_CRASH_CYCLES sets
// the cycles per sync mode (make test: 10, make test-crash: 100).

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/session"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

const (
	crashChildEnv = "TOKMESH_CRASH_CHILD"
	testKeyHex    = "8c5f0e6b1a2d3c4e5f60718293a4b5c6d7e8f90112233445566778899aabbccd"
)

func crashCycles(t *testing.T) int {
	n := 10
	if v := os.Getenv("TOKMESH_CRASH_CYCLES"); v != "" {
		if x, err := strconv.Atoi(v); err == nil && x > 0 {
			n = x
		}
	}
	if testing.Short() {
		n = 3
	}
	return n
}

func testGetenv(k string) string {
	if k == "TOKMESH_ENCRYPTION_KEY" {
		return testKeyHex
	}
	return ""
}

func crashConfig(dir string, mode wal.SyncMode) Config {
	cfg := DefaultConfig(dir)
	cfg.SyncMode = mode
	cfg.Getenv = testGetenv
	cfg.Session.MaxPerUser = 10000
	cfg.SegmentSize = 1 << 20 // roll segments often
	cfg.SnapshotInterval = 0
	cfg.SnapshotWALThreshold = 0
	return cfg
}

// runCrashChild is the child process body. It never returns normally: it
// runs until the parent kills it.
func runCrashChild() {
	dir := os.Getenv("TOKMESH_CRASH_DIR")
	mode, _ := wal.ParseSyncMode(os.Getenv("TOKMESH_CRASH_MODE"))
	cycle := os.Getenv("TOKMESH_CRASH_CYCLE")
	seed, _ := strconv.ParseUint(os.Getenv("TOKMESH_CRASH_SEED"), 10, 64)
	cfg := crashConfig(dir, mode)
	cfg.SweepInterval = 10 * time.Millisecond
	e, err := Open(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(3)
	}
	var outMu sync.Mutex
	out := func(format string, args ...any) {
		line := fmt.Sprintf(format+"\n", args...)
		outMu.Lock()
		os.Stdout.WriteString(line) // one write(2) per line, before the next op
		outMu.Unlock()
	}
	out("READY")
	// Snapshots at random moments, so kills also land mid-snapshot.
	go func() {
		r := rand.New(rand.NewPCG(seed, 99))
		for {
			time.Sleep(time.Duration(20+r.IntN(150)) * time.Millisecond)
			if _, err := e.Snapshot(); err != nil {
				fmt.Fprintln(os.Stderr, "child snapshot:", err)
			}
		}
	}()
	ip := netip.MustParseAddr("127.0.0.1")
	for g := 0; g < 8; g++ {
		go func(g int) {
			r := rand.New(rand.NewPCG(seed, uint64(g)))
			type own struct {
				tok string
				id  session.ID
			}
			var mine []own
			for i := 0; ; i++ {
				tok := fmt.Sprintf("crash-%s-%d-%d-%016x", cycle, g, i, r.Uint64())
				user := fmt.Sprintf("user-%d-%d", g, i/7)
				switch op := r.IntN(20); {
				case op < 11:
					res, err := e.Create(session.CreateRequest{Token: tok, UserID: user, TTLSeconds: 3600, TTLSet: true, IP: ip, UserAgent: "crash", CreatedBy: "LOCAL_ADMIN", Data: map[string]string{"k": "v"}})
					if err == nil {
						mine = append(mine, own{tok, res.Session.ID})
						out("C %s", tok)
					}
				case op < 12:
					_, err := e.Create(session.CreateRequest{Token: tok, UserID: user, TTLSeconds: 1, TTLSet: true, IP: ip, CreatedBy: "LOCAL_ADMIN"})
					if err == nil {
						out("E %s", tok)
					}
				case op < 15 && len(mine) > 0:
					k := r.IntN(len(mine))
					o := mine[k]
					mine = append(mine[:k], mine[k+1:]...)
					out("r %s", o.tok) // intent: the revoke may land even if its ack is never printed
					if _, err := e.Revoke(o.id); err == nil {
						out("R %s", o.tok)
					}
				case op < 17 && len(mine) > 0:
					o := mine[r.IntN(len(mine))]
					out("n %s", o.tok) // intent
					if s, err := e.Renew(o.id, int64(3600+r.IntN(3600))); err == nil {
						out("N %s %d", o.tok, s.ExpiresAt)
					}
				case op < 18 && len(mine) > 0:
					o := mine[r.IntN(len(mine))]
					_, _ = e.Touch(o.id, ip, "crash-touch")
				case op < 19:
					bad := strings.Repeat("u", 200) // user_id over 128 bytes: rejected
					if _, err := e.Create(session.CreateRequest{Token: tok, UserID: bad, TTLSeconds: 3600, TTLSet: true}); err != nil {
						out("X %s", tok)
					}
				default:
					if len(mine) > 0 && r.IntN(2) == 0 {
						o := mine[r.IntN(len(mine))]
						_, _ = e.Validate(o.tok, true, ip, "crash-validate")
					}
				}
			}
		}(g)
	}
	select {}
}

type expect struct {
	kind          byte // 'C' live, 'E' expiring (ttl 1 s), 'R' revoked, 'X' rejected
	expires       int64
	ackedAt       time.Time
	maybeRevoked  bool // a revoke was issued but its ack was not seen
	renewInFlight bool // a renew was issued after the last acknowledged one
}

func TestCrash_SIGKILLNeverLosesAcknowledgedWrites(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("child")
	}
	for _, mode := range []wal.SyncMode{wal.SyncAlways, wal.SyncInterval, wal.SyncNone} {
		t.Run(mode.String(), func(t *testing.T) {
			runCrashCycles(t, mode, crashCycles(t))
		})
	}
}

func runCrashCycles(t *testing.T, mode wal.SyncMode, cycles int) {
	dir := t.TempDir()
	facts := map[string]*expect{}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	acked := 0
	for c := 0; c < cycles; c++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"=1", "TOKMESH_CRASH_DIR="+dir,
			"TOKMESH_CRASH_MODE="+mode.String(), "TOKMESH_CRASH_CYCLE="+strconv.Itoa(c),
			"TOKMESH_CRASH_SEED="+strconv.FormatUint(seed+uint64(c), 10))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Wait for READY, then let it run a random while and SIGKILL it.
		select {
		case l, ok := <-lines:
			if !ok || l != "READY" {
				cmd.Wait()
				t.Fatalf("cycle %d: child did not start: %q %s", c, l, stderr.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("cycle %d: child start timeout: %s", c, stderr.String())
		}
		killAt := time.After(time.Duration(50+rng.IntN(600)) * time.Millisecond)
		var got []string
	collect:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break collect
				}
				got = append(got, l)
			case <-killAt:
				_ = cmd.Process.Signal(syscall.SIGKILL)
				killAt = nil
			}
		}
		werr := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("cycle %d: child ended by %v, not SIGKILL; stderr: %s", c, werr, stderr.String())
		}
		now := time.Now()
		for _, l := range got {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			ex := facts[f[1]]
			if ex == nil {
				ex = &expect{}
				facts[f[1]] = ex
			}
			switch f[0] {
			case "C", "E", "R", "X":
				ex.kind = f[0][0]
				ex.ackedAt = now
			case "N":
				ex.expires, _ = strconv.ParseInt(f[2], 10, 64)
				ex.renewInFlight = false
			case "r":
				ex.maybeRevoked = true
			case "n":
				ex.renewInFlight = true
			}
			acked++
		}
		verifyCrashFacts(t, dir, mode, facts, c)
	}
	t.Logf("%s: %d cycles, %d acknowledged operations checked", mode, cycles, acked)
	if acked == 0 {
		t.Fatal("no operation was acknowledged: the harness tested nothing")
	}
}

func verifyCrashFacts(t *testing.T, dir string, mode wal.SyncMode, facts map[string]*expect, cycle int) {
	t.Helper()
	cfg := crashConfig(dir, mode)
	cfg.SweepInterval = -1
	cfg.SnapshotOnClose = cycle%2 == 0 // alternate clean and dirty shutdown of the verifier
	e, err := Open(cfg)
	if err != nil {
		t.Fatalf("cycle %d: recovery failed: %v", cycle, err)
	}
	defer func() {
		if err := e.Close(); err != nil {
			t.Fatalf("cycle %d: close: %v", cycle, err)
		}
	}()
	if err := e.Store().CheckInvariants(); err != nil {
		t.Fatalf("cycle %d: indexes inconsistent after recovery: %v", cycle, err)
	}
	ip := netip.Addr{}
	for tok, ex := range facts {
		s, _, err := e.store.Validate(tok, false, ip, "")
		switch ex.kind {
		case 'R':
			if !errors.Is(err, session.ErrRevoked) {
				t.Fatalf("cycle %d (%s): acknowledged revocation of %s lost: got %v", cycle, mode, tok, err)
			}
		case 'X':
			if !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("cycle %d (%s): rejected create %s appeared: %v", cycle, mode, tok, err)
			}
		case 'E':
			if err == nil && time.Since(ex.ackedAt) > 1500*time.Millisecond {
				t.Fatalf("cycle %d (%s): expired session %s validates again", cycle, mode, tok)
			}
			if mode != wal.SyncNone && err != nil && !errors.Is(err, session.ErrExpired) && !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("cycle %d (%s): expiring session %s: %v", cycle, mode, tok, err)
			}
		case 'C':
			if mode == wal.SyncNone {
				if err == nil || errors.Is(err, session.ErrNotFound) || (ex.maybeRevoked && errors.Is(err, session.ErrRevoked)) {
					continue // none mode may lose creates, never revocations
				}
				t.Fatalf("cycle %d (%s): %s: unexpected %v", cycle, mode, tok, err)
			}
			if ex.maybeRevoked && errors.Is(err, session.ErrRevoked) {
				continue // the unacknowledged revoke landed: allowed
			}
			if err != nil {
				t.Fatalf("cycle %d (%s): acknowledged create %s lost: %v", cycle, mode, tok, err)
			}
			if ex.expires != 0 && !ex.renewInFlight && s.ExpiresAt != ex.expires {
				t.Fatalf("cycle %d (%s): acknowledged renew of %s lost: expires_at %d, acked %d", cycle, mode, tok, s.ExpiresAt, ex.expires)
			}
		}
	}
}
