package tui

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/yndnr/tokmesh-go/pkg/client"
)

// Goldens live in testdata/<TestName>/<subtest>.golden; regenerate them
// with `go test ./internal/tui/ -run TestGolden -update` (the -update flag
// comes from charmbracelet/x/exp/golden, which teatest uses).

// recorder wraps the model and keeps its latest screen, so a test can wait
// for the screen state instead of parsing the renderer's byte stream.
type recorder struct {
	m    *Model
	mu   sync.Mutex
	view string
}

func (r *recorder) Init() tea.Cmd { return r.m.Init() }

func (r *recorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := r.m.Update(msg)
	return r, cmd
}

func (r *recorder) View() tea.View {
	v := r.m.View()
	r.mu.Lock()
	r.view = v.Content
	r.mu.Unlock()
	return v
}

func (r *recorder) screen() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.view
}

// harness runs the dashboard under teatest with a fake source and clock.
type harness struct {
	t     *testing.T
	tm    *teatest.TestModel
	rec   *recorder
	src   *fakeSource
	clock *fakeClock
}

func start(t *testing.T, src *fakeSource, w, h int) *harness {
	t.Helper()
	clock := newFakeClock()
	m := New(Options{Source: src, Clock: clock, Plain: true, Location: time.UTC, Interval: time.Second,
		Target: "unix:/var/lib/tokmesh-server/admin.sock", SelfKeyID: keyAd})
	rec := &recorder{m: m}
	tm := teatest.NewTestModel(t, rec, teatest.WithInitialTermSize(w, h))
	hs := &harness{t: t, tm: tm, rec: rec, src: src, clock: clock}
	t.Cleanup(func() { _ = tm.Quit() })
	return hs
}

// waitFor waits until the screen satisfies cond.
func (h *harness) waitFor(what string, cond func(screen string) bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond(h.rec.screen()) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("timed out waiting for %s; screen:\n%s", what, h.rec.screen())
}

func (h *harness) waitText(s string) {
	h.t.Helper()
	h.waitFor(strconv.Quote(s), func(v string) bool { return strings.Contains(v, s) })
}

// key presses a special key (tea.KeyEnter, tea.KeyDown, …), with modifiers.
func (h *harness) key(code rune, mods ...tea.KeyMod) {
	var mod tea.KeyMod
	for _, m := range mods {
		mod |= m
	}
	h.tm.Send(tea.KeyPressMsg{Code: code, Mod: mod})
}

func (h *harness) typeText(s string) { h.tm.Type(s) }

// refreshAfter advances the clock by d and refreshes, waiting until the
// source served the new snapshot and the screen shows want.
func (h *harness) refreshAfter(d time.Duration, want string) {
	h.t.Helper()
	n := h.src.snapshotCalls()
	h.clock.Advance(d)
	h.typeText("r")
	h.waitFor("refresh", func(v string) bool { return h.src.snapshotCalls() > n && strings.Contains(v, want) })
}

// final quits and returns the final screen.
func (h *harness) final() string {
	h.t.Helper()
	_ = h.tm.Quit()
	fm := h.tm.FinalModel(h.t, teatest.WithFinalTimeout(10*time.Second))
	return fm.(*recorder).m.Screen()
}

func golden(t *testing.T, screen string) {
	t.Helper()
	teatest.RequireEqualOutput(t, []byte(screen+"\n"))
}

// checkFrame asserts the screen is exactly w×h.
func checkFrame(t *testing.T, screen string, w, h int) {
	t.Helper()
	lines := strings.Split(screen, "\n")
	if len(lines) != h {
		t.Fatalf("%d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if got := lipgloss.Width(l); got != w {
			t.Fatalf("line %d is %d cells wide, want %d: %q", i, got, w, l)
		}
	}
}

func TestGoldenOverview(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cluster bool
		w, h    int
	}{
		{"standalone_80x24", false, 80, 24},
		{"standalone_120x40", false, 120, 40},
		{"cluster_80x24", true, 80, 24},
		{"cluster_120x40", true, 120, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, newFake(tc.cluster), tc.w, tc.h)
			h.waitText("measuring")
			h.refreshAfter(time.Second, "validate 1200.0/s")
			screen := h.final()
			checkFrame(t, screen, tc.w, tc.h)
			golden(t, screen)
		})
	}
}

func TestGoldenSessionsSearchAndRevoke(t *testing.T) {
	h := start(t, newFake(false), 80, 24)
	h.waitText("measuring")
	h.typeText("/")
	h.waitText("user ID: ")
	h.typeText("u-1001")
	h.key(tea.KeyEnter)
	h.waitText("3 live sessions")
	h.key(tea.KeyDown) // the second most recently active: sess3
	h.typeText("x")
	h.waitText("Revoke session " + sess3)
	screen := h.rec.screen()
	checkFrame(t, screen, 80, 24)
	t.Run("confirm_dialog", func(t *testing.T) { golden(t, screen) })

	h.typeText("y")
	h.waitText("Revoked session " + sess3)
	h.waitText("2 live sessions")
	if got := h.src.revokedIDs(); !slices.Equal(got, []string{sess3}) {
		t.Fatalf("revoked %v, want [%s]", got, sess3)
	}
	screen = h.final()
	checkFrame(t, screen, 80, 24)
	t.Run("revoked", func(t *testing.T) { golden(t, screen) })
}

func TestSessionsRevokeDeclined(t *testing.T) {
	h := start(t, newFake(false), 80, 24)
	h.waitText("measuring")
	// Fast typing arrives as one message with several runes.
	h.tm.Send(tea.KeyPressMsg{Code: '/', Text: "/u-1001"})
	h.key(tea.KeyEnter)
	h.waitText("3 live sessions")
	for _, no := range []func(){func() { h.typeText("n") }, func() { h.key(tea.KeyEscape) }, func() { h.key(tea.KeyEnter) }} {
		h.typeText("x")
		h.waitText("y revoke")
		no()
		h.waitFor("dialog closed", func(v string) bool { return !strings.Contains(v, "y revoke") })
	}
	if got := h.src.revokedIDs(); len(got) != 0 {
		t.Fatalf("declined dialogs revoked %v", got)
	}
	// Esc closed only the dialogs: the dashboard still runs.
	h.waitText("[Sessions]")
}

func TestGoldenSessionsRevokeAllNeedsTypedUser(t *testing.T) {
	h := start(t, newFake(false), 80, 24)
	h.waitText("measuring")
	h.typeText("/u-1001")
	h.key(tea.KeyEnter)
	h.waitText("3 live sessions")

	// A wrong user ID cancels.
	h.typeText("X")
	h.waitText("Type the user ID to confirm")
	h.typeText("u-1002")
	h.key(tea.KeyEnter)
	h.waitText("did not match")
	if got := h.src.revokedIDs(); len(got) != 0 {
		t.Fatalf("wrong confirmation revoked %v", got)
	}

	h.typeText("X")
	h.waitText("Type the user ID to confirm")
	h.typeText("u-1001")
	h.waitText("> u-1001")
	screen := h.rec.screen()
	checkFrame(t, screen, 80, 24)
	t.Run("confirm_dialog", func(t *testing.T) { golden(t, screen) })
	h.key(tea.KeyEnter)
	h.waitText("Revoked 3 sessions of user u-1001")
	h.waitText("No live sessions for user u-1001")
	if got := h.src.revokedIDs(); !slices.Equal(got, []string{"user:u-1001"}) {
		t.Fatalf("revoked %v", got)
	}
}

func TestGoldenSessionDetails(t *testing.T) {
	h := start(t, newFake(false), 80, 24)
	h.waitText("measuring")
	h.typeText("/u-1001")
	h.key(tea.KeyEnter)
	h.waitText("3 live sessions")
	h.key(tea.KeyEnter)
	h.waitText("data.tenant")
	screen := h.final()
	checkFrame(t, screen, 80, 24)
	golden(t, screen)
}

func TestGoldenKeysEnableDisable(t *testing.T) {
	h := start(t, newFake(false), 80, 24)
	h.waitText("measuring")
	h.key(tea.KeyTab, tea.ModShift) // Nodes → Keys backwards
	h.waitText("[Keys]")
	// Sorted by key ID: admin, issuer, validator. Disable the issuer key.
	h.key(tea.KeyDown)
	h.typeText("d")
	h.waitText("Disable API key " + keyIs)
	screen := h.rec.screen()
	checkFrame(t, screen, 80, 24)
	t.Run("disable_dialog", func(t *testing.T) { golden(t, screen) })
	h.typeText("y")
	h.waitText("Key " + keyIs + " is now disabled")
	h.waitFor("the list to show the change", func(v string) bool {
		for _, l := range strings.Split(v, "\n") {
			if strings.Contains(l, keyIs) && strings.Contains(l, "disabled") {
				return true
			}
		}
		return false
	})

	// e on an active key needs no dialog; on the disabled one it asks.
	h.key(tea.KeyUp)
	h.typeText("e")
	h.waitText("is already active")
	h.typeText("G") // last row: the validator key, disabled
	h.typeText("e")
	h.waitText("Enable API key " + keyVa)
	screen = h.rec.screen()
	t.Run("enable_dialog", func(t *testing.T) { golden(t, screen) })
	h.typeText("y")
	h.waitText("Key " + keyVa + " is now active")
	if got := h.src.statusChanges(); !slices.Equal(got, []string{keyIs + "=disabled", keyVa + "=active"}) {
		t.Fatalf("status changes %v", got)
	}

	// Disabling our own key warns in the dialog.
	h.typeText("g")
	h.typeText("d")
	h.waitText("This is the key this dashboard uses")
	h.key(tea.KeyEscape)
	h.waitFor("dialog closed", func(v string) bool { return !strings.Contains(v, "This is the key") })
	if n := len(h.src.statusChanges()); n != 2 {
		t.Fatalf("Esc changed a key: %v", h.src.statusChanges())
	}
}

func TestGoldenHelpOverlay(t *testing.T) {
	h := start(t, newFake(true), 80, 24)
	h.waitText("measuring")
	h.typeText("?")
	h.waitText("this help")
	screen := h.rec.screen()
	checkFrame(t, screen, 80, 24)
	golden(t, screen)
	h.typeText("?")
	h.waitFor("help closed", func(v string) bool { return !strings.Contains(v, "this help") })
}

func TestGoldenDisconnectedBannerAndRecovery(t *testing.T) {
	for _, size := range []struct {
		name string
		w, h int
	}{{"80x24", 80, 24}, {"120x40", 120, 40}} {
		t.Run(size.name, func(t *testing.T) {
			src := newFake(false)
			h := start(t, src, size.w, size.h)
			h.waitText("measuring")
			src.setFail(connErr())
			for i := 1; i <= 3; i++ {
				h.clock.Advance(time.Second)
				h.typeText("r")
				h.waitText("disconnected — retrying every 1s · " + map[int]string{1: "1 failed attempt", 2: "2 failed attempts", 3: "3 failed attempts"}[i])
			}
			screen := h.rec.screen()
			checkFrame(t, screen, size.w, size.h)
			if !strings.Contains(screen, "last data 12:00:00") || !strings.Contains(screen, "cannot connect to unix:/var/lib/tokmesh-server/admin.sock: connect: connectio") {
				t.Fatalf("banner lacks the last data time or the cause:\n%s", screen)
			}
			golden(t, screen)

			src.setFail(nil)
			h.clock.Advance(time.Second)
			h.typeText("r")
			h.waitText("reconnected to unix:/var/lib/tokmesh-server/admin.sock")
			h.waitFor("banner gone", func(v string) bool { return !strings.Contains(v, "disconnected") })
		})
	}
}

func TestServerErrorIsNotDisconnected(t *testing.T) {
	src := newFake(false)
	src.setFail(&client.Error{Code: "TM-AUTH-4030", Message: "role does not allow this", HTTPStatus: 403})
	h := start(t, src, 80, 24)
	h.waitText("server error — retrying")
	if strings.Contains(h.rec.screen(), "disconnected") {
		t.Fatal("a server error shown as disconnected")
	}
	h.waitText("role does not allow this (TM-AUTH-4030)")
}

func TestPauseStopsRefreshing(t *testing.T) {
	src := newFake(false)
	h := start(t, src, 80, 24)
	h.waitText("measuring")
	h.typeText("p")
	h.waitText("PAUSED")
	n := src.snapshotCalls()
	// Ticks while paused do not refresh.
	h.tm.Send(tickMsg{})
	h.tm.Send(tickMsg{})
	h.typeText("?") // a round trip through the event loop
	h.waitText("this help")
	if src.snapshotCalls() != n {
		t.Fatalf("refreshed while paused")
	}
	h.typeText("?")
	h.typeText("p")
	h.waitFor("resumed", func(v string) bool { return !strings.Contains(v, "PAUSED") && src.snapshotCalls() > n })
}

func TestNodesSortAndMove(t *testing.T) {
	h := start(t, newFake(true), 120, 40)
	h.waitText("measuring")
	// Default: by node ID; s → by sessions (B has the most).
	h.typeText("s")
	h.waitText("SESSIONS▼")
	h.waitFor("B, A, C", func(v string) bool { return slices.Equal(nodeRows(v), []string{nodeB, nodeA, nodeC}) })
	// The selection follows the node (A, now the second row), not the row.
	h.waitText("> " + nodeA)
	h.typeText("j")
	h.key(tea.KeyEnter)
	h.waitText("Node " + nodeC)
	h.key(tea.KeyEscape)
	h.waitFor("details closed", func(v string) bool { return !strings.Contains(v, "Node "+nodeC) })
	h.typeText("q")
	h.tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}

// nodeRows returns the node IDs of the Nodes table in screen order.
func nodeRows(screen string) []string {
	var ids []string
	for _, l := range strings.Split(screen, "\n") {
		if f := strings.Fields(strings.TrimPrefix(l, ">")); len(f) > 0 && strings.HasPrefix(f[0], "tmnd-") {
			ids = append(ids, f[0])
		}
	}
	return ids
}

func TestTooSmallTerminal(t *testing.T) {
	h := start(t, newFake(false), 40, 10)
	h.waitText("needs at least 60×16")
}

// TestPartitionMapGroupsLargeTables: 4096 partitions cannot have a cell
// each at 80×24, so cells group partitions and show the worst state.
func TestPartitionMapGroupsLargeTables(t *testing.T) {
	m := New(Options{Source: newFake(false), Clock: newFakeClock(), Plain: true, Location: time.UTC})
	s, _ := newFake(false).Snapshot(context.Background())
	s.Partitions = nil
	for i := range 4096 {
		st := "active"
		if i == 1000 {
			st = "unavailable"
		}
		s.Partitions = append(s.Partitions, Partition{Partition: i, Primary: nodeA, State: st})
	}
	m.Update(snapshotMsg{snap: s, at: t0})
	screen := m.Screen()
	checkFrame(t, screen, 80, 24)
	if !strings.Contains(screen, "1 cell = ") || strings.Count(screen, "X") != 2 { // the glyph in the title and one cell
		t.Fatalf("grouped map:\n%s", screen)
	}
}

// TestColourScreenKeepsTheFrame: with colour the screen carries escape
// sequences, yet every line (overlay included) is still exactly w cells;
// plain mode carries none. The view asks for the alternate screen.
func TestColourScreenKeepsTheFrame(t *testing.T) {
	for _, plain := range []bool{false, true} {
		m := New(Options{Source: newFake(true), Clock: newFakeClock(), Plain: plain, Location: time.UTC})
		s, _ := newFake(true).Snapshot(context.Background())
		m.Update(snapshotMsg{snap: s, at: t0})
		m.Update(tea.KeyPressMsg{Code: '?', Text: "?"})
		v := m.View()
		if !v.AltScreen {
			t.Fatal("the view does not ask for the alternate screen")
		}
		checkFrame(t, v.Content, 80, 24)
		if has := strings.Contains(v.Content, "\x1b["); has == plain {
			t.Fatalf("plain=%v: escape sequences present=%v", plain, has)
		}
		if !strings.Contains(v.Content, "this help") {
			t.Fatalf("plain=%v: no help overlay:\n%s", plain, v.Content)
		}
	}
}
