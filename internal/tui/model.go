// Package tui is `tokmesh-cli top` (07-tools §1.7): a bubbletea full-screen
// dashboard of a TokMesh node or cluster — header, nodes, partition map,
// traffic/security/WAL metrics — with interactive Sessions and Keys panels.
//
// Invariants:
//   - All data comes through a DataSource and all times through a Clock,
//     so tests drive the model with a fake source and a fixed clock and the
//     rendered screen is deterministic.
//   - The model never blocks: every call to the source runs in a tea.Cmd,
//     at most one refresh is in flight, and a lost connection only sets the
//     "disconnected — retrying" banner; the next tick retries.
//   - Secrets are never shown: sessions carry no token and key listings
//     carry no secret; the dashboard has no action that returns one.
package tui

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/yndnr/tokmesh-go/pkg/client"
)

// MinInterval is the shortest refresh interval (07-tools §1.7).
const MinInterval = 250 * time.Millisecond

// DefaultInterval is the refresh interval when none is given.
const DefaultInterval = time.Second

// flashFor is how long an action's result stays in the footer.
const flashFor = 5 * time.Second

// Clock is the model's source of time. Tick schedules one tick message
// after d; the real clock uses tea.Tick, a test clock may never fire and
// let the test drive refreshes instead.
type Clock interface {
	Now() time.Time
	Tick(d time.Duration, fn func(time.Time) tea.Msg) tea.Cmd
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Tick(d time.Duration, fn func(time.Time) tea.Msg) tea.Cmd {
	return tea.Tick(d, fn)
}

// Options configure a Model.
type Options struct {
	// Source is where data comes from (required).
	Source DataSource
	// Interval between refreshes (default 1 s; values below MinInterval
	// are raised to it — the CLI rejects them before).
	Interval time.Duration
	// Clock (default: the wall clock and tea.Tick).
	Clock Clock
	// Plain renders without any escape sequence: no colour, no bold or
	// reverse video (--no-color, NO_COLOR, TERM=dumb; the tests).
	Plain bool
	// Location for absolute times (default time.Local).
	Location *time.Location
	// Target describes the server, for the banner (e.g. "unix:/…/admin.sock").
	Target string
	// SelfKeyID is the API key the dashboard itself uses ("" on the
	// socket); disabling it gets an extra warning in the dialog.
	SelfKeyID string
	// Context bounds every call to the source (default Background).
	Context context.Context
}

// Panel is a focusable panel.
type Panel int

// The panels, in Tab order.
const (
	PanelNodes Panel = iota
	PanelSessions
	PanelKeys
	panelCount
)

func (p Panel) String() string {
	return [...]string{"Nodes", "Sessions", "Keys"}[p]
}

type overlay int

const (
	overlayNone overlay = iota
	overlayHelp
	overlayDetails
	overlayConfirm
)

// confirmDialog guards a dangerous action.
type confirmDialog struct {
	title string
	body  []string
	// typed, when not empty, must be typed exactly to confirm (revoke all).
	typed string
	input lineInput
	run   tea.Cmd
}

// Sort orders per panel.
var (
	nodeSorts    = []string{"node", "sessions", "qps", "p99", "lag", "skew"}
	sessionSorts = []string{"last active", "created", "expires", "device"}
	keySorts     = []string{"key id", "role", "status", "last use"}
)

// Model is the dashboard. Use New; it implements tea.Model.
type Model struct {
	opt Options
	st  styles

	width, height int
	panel         Panel

	snap         *Snapshot
	snapAt       time.Time // when the shown snapshot was taken
	everOK       bool
	prevSample   *Sample
	prevSampleAt time.Time
	rates        Rates
	haveRates    bool

	fetching     bool
	fetchAgain   bool // a refresh was asked for while one was in flight
	paused       bool
	err          error // last refresh failure; nil when the last refresh worked
	failures     int   // consecutive failed refreshes
	disconnected bool

	// per panel: selected row, first visible row, sort index, selected ID
	cursor   [panelCount]int
	offset   [panelCount]int
	sortIdx  [panelCount]int
	selected [panelCount]string

	// Sessions panel
	searching    bool
	search       lineInput
	sessUser     string
	sessions     *SessionPage
	sessErr      string
	sessFetching bool
	sessAgain    bool

	overlay overlay
	confirm *confirmDialog
	detail  struct {
		title string
		lines []string
	}

	flash    string
	flashErr bool
	flashAt  time.Time
}

// New builds a Model.
func New(o Options) *Model {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	o.Interval = max(o.Interval, MinInterval)
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	m := &Model{opt: o, st: newStyles(o.Plain), width: 80, height: 24}
	m.search = newInput("user ID: ")
	return m
}

// Messages.
type (
	tickMsg     struct{}
	snapshotMsg struct {
		snap *Snapshot
		err  error
		at   time.Time
	}
	sessionsMsg struct {
		user string
		page *SessionPage
		err  error
	}
	actionMsg struct {
		text string
		err  error
	}
)

// Init starts the first refresh and the tick loop.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.fetch(), m.tick())
}

func (m *Model) tick() tea.Cmd {
	return m.opt.Clock.Tick(m.opt.Interval, func(time.Time) tea.Msg { return tickMsg{} })
}

func (m *Model) callTimeout() time.Duration {
	return min(max(3*m.opt.Interval, 2*time.Second), 10*time.Second)
}

// fetch starts a refresh; with one in flight it runs again when that one
// ends, so data read before an action cannot be the last word after it.
func (m *Model) fetch() tea.Cmd {
	if m.fetching {
		m.fetchAgain = true
		return nil
	}
	m.fetching = true
	src, clock, ctx, to := m.opt.Source, m.opt.Clock, m.opt.Context, m.callTimeout()
	return func() tea.Msg {
		at := clock.Now()
		ctx, cancel := context.WithTimeout(ctx, to)
		defer cancel()
		s, err := src.Snapshot(ctx)
		return snapshotMsg{snap: s, err: err, at: at}
	}
}

// fetchSessions refreshes the searched user's sessions.
func (m *Model) fetchSessions() tea.Cmd {
	if m.sessUser == "" {
		return nil
	}
	if m.sessFetching {
		m.sessAgain = true
		return nil
	}
	m.sessFetching = true
	src, ctx, to, user := m.opt.Source, m.opt.Context, m.callTimeout(), m.sessUser
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, to)
		defer cancel()
		p, err := src.Sessions(ctx, user)
		return sessionsMsg{user: user, page: p, err: err}
	}
}

// refresh refreshes everything now.
func (m *Model) refresh() tea.Cmd {
	return tea.Batch(m.fetch(), m.fetchSessions())
}

func (m *Model) action(f func(ctx context.Context) (string, error)) tea.Cmd {
	ctx, to := m.opt.Context, m.callTimeout()
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, to)
		defer cancel()
		text, err := f(ctx)
		return actionMsg{text: text, err: err}
	}
}

func (m *Model) setFlash(text string, isErr bool) {
	m.flash, m.flashErr, m.flashAt = text, isErr, m.opt.Clock.Now()
}

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return m, nil
	case tickMsg:
		var cmds []tea.Cmd
		cmds = append(cmds, m.tick())
		if m.flash != "" && m.opt.Clock.Now().Sub(m.flashAt) >= flashFor {
			m.flash = ""
		}
		if !m.paused {
			cmds = append(cmds, m.refresh())
		}
		return m, tea.Batch(cmds...)
	case snapshotMsg:
		m.applySnapshot(msg)
		if m.fetchAgain {
			m.fetchAgain = false
			return m, m.fetch()
		}
		return m, nil
	case sessionsMsg:
		m.sessFetching = false
		if msg.user != m.sessUser || m.sessAgain {
			// The search changed or an action happened meanwhile.
			m.sessAgain = false
			return m, m.fetchSessions()
		}
		if msg.err != nil {
			m.sessErr = errText(msg.err)
			return m, nil
		}
		m.sessErr = ""
		m.sessions = msg.page
		m.clampCursor(PanelSessions)
		return m, nil
	case actionMsg:
		if msg.err != nil {
			m.setFlash("Error: "+errText(msg.err), true)
		} else {
			m.setFlash(msg.text, false)
		}
		return m, m.refresh()
	case tea.KeyPressMsg:
		// A key press may carry several characters of text: handle them
		// one by one, so "/u-1001" opens the search and types into it.
		if utf8.RuneCountInString(msg.Text) > 1 {
			return m.handleText(msg.Text)
		}
		return m.handleKey(msg)
	case tea.PasteMsg:
		// Pasted text acts as typed, character by character.
		return m.handleText(msg.Content)
	}
	return m, nil
}

func (m *Model) applySnapshot(msg snapshotMsg) {
	m.fetching = false
	if msg.err != nil {
		m.err = msg.err
		m.failures++
		m.disconnected = isTransport(msg.err)
		return
	}
	if m.err != nil && m.everOK {
		m.setFlash("reconnected to "+m.target(), false)
	}
	m.err, m.failures, m.disconnected, m.everOK = nil, 0, false, true
	m.snap, m.snapAt = msg.snap, msg.at
	if s := msg.snap.Metrics; s != nil {
		if m.prevSample != nil {
			m.rates, m.haveRates = computeRates(m.prevSample, s, msg.at.Sub(m.prevSampleAt).Seconds())
		}
		m.prevSample, m.prevSampleAt = s, msg.at
	} else {
		m.prevSample, m.haveRates = nil, false
	}
	for p := range panelCount {
		m.clampCursor(p)
	}
}

func (m *Model) target() string {
	if m.opt.Target == "" {
		return "the server"
	}
	return m.opt.Target
}

// handleText handles each character of s as one key press.
func (m *Model) handleText(s string) (tea.Model, tea.Cmd) {
	var cmds []tea.Cmd
	for _, r := range s {
		_, cmd := m.handleKey(tea.KeyPressMsg{Code: r, Text: string(r)})
		cmds = append(cmds, cmd)
	}
	return m, tea.Sequence(cmds...)
}

func (m *Model) handleKey(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	if k.Keystroke() == "ctrl+c" {
		return m, tea.Quit
	}
	switch m.overlay {
	case overlayConfirm:
		return m.confirmKey(k)
	case overlayHelp, overlayDetails:
		switch k.String() {
		case "esc", "q", "enter", "?":
			m.overlay = overlayNone
		}
		return m, nil
	}
	if m.searching {
		return m.searchKey(k)
	}
	// A key press acknowledges the last message.
	if m.flash != "" && !m.flashErr {
		m.flash = ""
	}
	switch {
	case key.Matches(k, keys.Quit):
		return m, tea.Quit
	case key.Matches(k, keys.Next):
		m.panel = (m.panel + 1) % panelCount
	case key.Matches(k, keys.Prev):
		m.panel = (m.panel + panelCount - 1) % panelCount
	case key.Matches(k, keys.Up):
		m.move(-1)
	case key.Matches(k, keys.Down):
		m.move(1)
	case key.Matches(k, keys.PageUp):
		m.move(-max(1, m.visibleRows()-1))
	case key.Matches(k, keys.PageDown):
		m.move(max(1, m.visibleRows()-1))
	case key.Matches(k, keys.Top):
		m.move(-1 << 30)
	case key.Matches(k, keys.Bottom):
		m.move(1 << 30)
	case key.Matches(k, keys.Sort):
		m.sortIdx[m.panel] = (m.sortIdx[m.panel] + 1) % len(m.sorts(m.panel))
		m.clampCursor(m.panel)
	case key.Matches(k, keys.Pause):
		m.paused = !m.paused
		if !m.paused {
			return m, m.refresh()
		}
	case key.Matches(k, keys.Refresh):
		return m, m.refresh()
	case key.Matches(k, keys.Help):
		m.overlay = overlayHelp
	case key.Matches(k, keys.Details):
		m.openDetails()
	case key.Matches(k, keys.Search):
		m.panel = PanelSessions
		m.searching = true
		m.search.SetValue(m.sessUser)
	case m.panel == PanelSessions && key.Matches(k, keys.Revoke):
		m.confirmRevoke()
	case m.panel == PanelSessions && key.Matches(k, keys.RevokeAll):
		m.confirmRevokeAll()
	case m.panel == PanelKeys && key.Matches(k, keys.Enable):
		m.confirmKeyStatus("active")
	case m.panel == PanelKeys && key.Matches(k, keys.Disable):
		m.confirmKeyStatus("disabled")
	}
	return m, nil
}

func (m *Model) searchKey(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	switch k.Keystroke() {
	case "esc":
		m.searching = false
		return m, nil
	case "enter":
		m.searching = false
		user := strings.TrimSpace(m.search.Value())
		if user == "" {
			return m, nil
		}
		if user != m.sessUser {
			m.sessUser, m.sessions, m.sessErr = user, nil, ""
			m.cursor[PanelSessions], m.offset[PanelSessions], m.selected[PanelSessions] = 0, 0, ""
		}
		return m, m.fetchSessions()
	}
	m.search.Update(k)
	return m, nil
}

func (m *Model) confirmKey(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	c := m.confirm
	if c.typed != "" {
		switch k.Keystroke() {
		case "esc":
			m.closeConfirm()
			return m, nil
		case "enter":
			if c.input.Value() != c.typed {
				m.closeConfirm()
				m.setFlash("Cancelled: the typed user ID did not match", true)
				return m, nil
			}
			m.closeConfirm()
			return m, c.run
		}
		c.input.Update(k)
		return m, nil
	}
	switch k.String() {
	case "y", "Y":
		m.closeConfirm()
		return m, c.run
	case "n", "N", "esc", "enter", "q":
		m.closeConfirm()
		m.setFlash("Cancelled", false)
	}
	return m, nil
}

func (m *Model) closeConfirm() {
	m.overlay, m.confirm = overlayNone, nil
}

func (m *Model) confirmRevoke() {
	s := m.selectedSession()
	if s == nil {
		m.setFlash("No session selected: press / to search a user's sessions", true)
		return
	}
	id, src := s.ID, m.opt.Source
	m.confirm = &confirmDialog{
		title: "Revoke session",
		body: []string{
			"Revoke session " + id,
			"of user " + s.UserID + "?",
			"Its token stops validating at once.",
			"",
			"y revoke   n/Esc cancel",
		},
		run: m.action(func(ctx context.Context) (string, error) {
			ok, err := src.RevokeSession(ctx, id)
			if err != nil {
				return "", err
			}
			if !ok {
				return "Session " + id + " was already revoked or expired", nil
			}
			return "Revoked session " + id, nil
		}),
	}
	m.overlay, m.flash = overlayConfirm, ""
}

func (m *Model) confirmRevokeAll() {
	if m.sessUser == "" {
		m.setFlash("No user selected: press / to search a user's sessions", true)
		return
	}
	user, src := m.sessUser, m.opt.Source
	n := "all live sessions"
	if m.sessions != nil {
		n = fmt.Sprintf("all %d live sessions", m.sessions.Total)
	}
	m.confirm = &confirmDialog{
		title: "Revoke all sessions of a user",
		body: []string{
			"Revoke " + n + " of user " + user + "?",
			"Every token of this user stops validating.",
			"Type the user ID to confirm (Esc cancels):",
		},
		typed: user,
		input: newInput("> "),
		run: m.action(func(ctx context.Context) (string, error) {
			n, err := src.RevokeUser(ctx, user)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("Revoked %d sessions of user %s", n, user), nil
		}),
	}
	m.overlay, m.flash = overlayConfirm, ""
}

func (m *Model) confirmKeyStatus(status string) {
	k := m.selectedKey()
	if k == nil {
		m.setFlash("No key selected", true)
		return
	}
	if k.Status == status {
		m.setFlash("Key "+k.KeyID+" is already "+status, false)
		return
	}
	verb, effect := "Enable", "Callers using it are accepted again."
	if status == "disabled" {
		verb, effect = "Disable", "Every request made with it is refused at once."
	}
	body := []string{verb + " API key " + k.KeyID, "(role " + k.Role + displayDesc(k.Description) + ")?", effect}
	if status == "disabled" && k.KeyID == m.opt.SelfKeyID {
		body = append(body, "This is the key this dashboard uses: it will lose access.")
	}
	body = append(body, "", "y "+strings.ToLower(verb)+"   n/Esc cancel")
	id, src := k.KeyID, m.opt.Source
	m.confirm = &confirmDialog{
		title: verb + " API key",
		body:  body,
		run: m.action(func(ctx context.Context) (string, error) {
			warning, err := src.SetKeyStatus(ctx, id, status)
			if err != nil {
				return "", err
			}
			text := "Key " + id + " is now " + status
			if warning != "" {
				text += " — " + warning
			}
			return text, nil
		}),
	}
	m.overlay, m.flash = overlayConfirm, ""
}

func displayDesc(d string) string {
	if d == "" {
		return ""
	}
	return ", " + truncate(d, 30)
}

// --- rows, sorting and the cursor ---

func (m *Model) sorts(p Panel) []string {
	switch p {
	case PanelSessions:
		return sessionSorts
	case PanelKeys:
		return keySorts
	}
	return nodeSorts
}

func (m *Model) sortedNodes() []Node {
	if m.snap == nil {
		return nil
	}
	ns := slices.Clone(m.snap.Nodes)
	by := nodeSorts[m.sortIdx[PanelNodes]]
	slices.SortStableFunc(ns, func(a, b Node) int {
		var c int
		switch by {
		case "sessions":
			c = cmp.Compare(b.Sessions, a.Sessions)
		case "qps":
			c = cmp.Compare(b.QPS, a.QPS)
		case "p99":
			c = cmp.Compare(b.P99Ms, a.P99Ms)
		case "lag":
			c = cmp.Compare(b.ReplicationLagMs, a.ReplicationLagMs)
		case "skew":
			c = cmp.Compare(abs(b.ClockSkewMs), abs(a.ClockSkewMs))
		}
		return cmp.Or(c, cmp.Compare(a.NodeID, b.NodeID))
	})
	return ns
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func (m *Model) sortedSessions() []client.Session {
	if m.sessions == nil {
		return nil
	}
	ss := slices.Clone(m.sessions.Items)
	by := sessionSorts[m.sortIdx[PanelSessions]]
	slices.SortStableFunc(ss, func(a, b client.Session) int {
		var c int
		switch by {
		case "last active":
			c = cmp.Compare(b.LastActive, a.LastActive)
		case "created":
			c = cmp.Compare(b.CreatedAt, a.CreatedAt)
		case "expires":
			c = cmp.Compare(a.ExpiresAt, b.ExpiresAt)
		case "device":
			c = cmp.Compare(a.DeviceID, b.DeviceID)
		}
		return cmp.Or(c, cmp.Compare(a.ID, b.ID))
	})
	return ss
}

func (m *Model) sortedKeys() []client.Key {
	if m.snap == nil {
		return nil
	}
	ks := slices.Clone(m.snap.Keys)
	by := keySorts[m.sortIdx[PanelKeys]]
	slices.SortStableFunc(ks, func(a, b client.Key) int {
		var c int
		switch by {
		case "role":
			c = cmp.Compare(a.Role, b.Role)
		case "status":
			c = cmp.Compare(a.Status, b.Status)
		case "last use":
			c = cmp.Compare(b.LastUsedAt, a.LastUsedAt)
		}
		return cmp.Or(c, cmp.Compare(a.KeyID, b.KeyID))
	})
	return ks
}

// rowIDs are the IDs of the rows of panel p in display order.
func (m *Model) rowIDs(p Panel) []string {
	var ids []string
	switch p {
	case PanelNodes:
		for _, n := range m.sortedNodes() {
			ids = append(ids, n.NodeID)
		}
	case PanelSessions:
		for _, s := range m.sortedSessions() {
			ids = append(ids, s.ID)
		}
	case PanelKeys:
		for _, k := range m.sortedKeys() {
			ids = append(ids, k.KeyID)
		}
	}
	return ids
}

// clampCursor keeps the selection on the same item across refreshes and
// re-sorts, or within range when it went away.
func (m *Model) clampCursor(p Panel) {
	ids := m.rowIDs(p)
	if i := slices.Index(ids, m.selected[p]); i >= 0 && m.selected[p] != "" {
		m.cursor[p] = i
	}
	m.cursor[p] = max(0, min(m.cursor[p], len(ids)-1))
	if len(ids) > 0 {
		m.selected[p] = ids[m.cursor[p]]
	} else {
		m.selected[p] = ""
	}
}

func (m *Model) move(d int) {
	p := m.panel
	ids := m.rowIDs(p)
	if len(ids) == 0 {
		return
	}
	c := m.cursor[p] + d
	c = max(0, min(c, len(ids)-1))
	m.cursor[p], m.selected[p] = c, ids[c]
}

func (m *Model) selectedSession() *client.Session {
	for _, s := range m.sortedSessions() {
		if s.ID == m.selected[PanelSessions] {
			return &s
		}
	}
	return nil
}

func (m *Model) selectedKey() *client.Key {
	for _, k := range m.sortedKeys() {
		if k.KeyID == m.selected[PanelKeys] {
			return &k
		}
	}
	return nil
}

func (m *Model) selectedNode() *Node {
	for _, n := range m.sortedNodes() {
		if n.NodeID == m.selected[PanelNodes] {
			return &n
		}
	}
	return nil
}

func (m *Model) openDetails() {
	var title string
	var lines []string
	switch m.panel {
	case PanelNodes:
		if n := m.selectedNode(); n != nil {
			title, lines = "Node "+n.NodeID, m.nodeDetails(n)
		}
	case PanelSessions:
		if s := m.selectedSession(); s != nil {
			title, lines = "Session "+s.ID, m.sessionDetails(s)
		}
	case PanelKeys:
		if k := m.selectedKey(); k != nil {
			title, lines = "API key "+k.KeyID, m.keyDetails(k)
		}
	}
	if title == "" {
		return
	}
	m.detail.title, m.detail.lines = title, lines
	m.overlay = overlayDetails
}

var _ tea.Model = (*Model)(nil)
