package tui

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/yndnr/tokmesh-go/pkg/client"
)

// Smallest screen the layout is designed for; below it a notice is shown.
const minWidth, minHeight = 60, 16

// View implements tea.Model: the dashboard is a full-screen view in the
// terminal's alternate screen.
func (m *Model) View() tea.View {
	v := tea.NewView(m.Screen())
	v.AltScreen = true
	return v
}

// Screen renders the dashboard. Every line is exactly m.width cells wide and
// there are exactly m.height lines, so overlays can be spliced in. In plain
// mode it holds no escape sequence.
func (m *Model) Screen() string {
	s := m.screen()
	if m.st.plain {
		s = ansi.Strip(s)
	}
	return s
}

func (m *Model) screen() string {
	w, h := m.width, m.height
	if w < minWidth || h < minHeight {
		msg := fmt.Sprintf("tokmesh top needs at least %d×%d (this terminal: %d×%d)", minWidth, minHeight, w, h)
		return ansi.Truncate(msg, max(w, 1), "…")
	}
	var lines []string
	lines = append(lines, m.headerLines()...)
	lines = append(lines, m.bannerLines()...)
	lines = append(lines, m.tabsLine())
	body := m.bodyLines(m.bodyHeight())
	lines = append(lines, body...)
	lines = append(lines, m.footerLine())
	for i := range lines {
		lines[i] = m.fit(lines[i], w)
	}
	switch m.overlay {
	case overlayHelp:
		lines = m.splice(lines, m.box("Help", helpLines()))
	case overlayDetails:
		lines = m.splice(lines, m.box(m.detail.title, m.detail.lines))
	case overlayConfirm:
		body := slices.Clone(m.confirm.body)
		if m.confirm.typed != "" {
			body = append(body, m.confirm.input.View())
		}
		lines = m.splice(lines, m.box(m.confirm.title, body))
	}
	return strings.Join(lines, "\n")
}

// fit truncates or pads a (possibly styled) line to exactly w cells.
func (m *Model) fit(s string, w int) string {
	if lipgloss.Width(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	if pad := w - lipgloss.Width(s); pad > 0 {
		s += strings.Repeat(" ", pad)
	}
	return s
}

// truncate shortens plain text to n cells with an ellipsis.
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	return ansi.Truncate(s, n, "…")
}

func (m *Model) fixedLines() int {
	return len(m.headerLines()) + len(m.bannerLines()) + 2 // tabs + footer
}

func (m *Model) bodyHeight() int { return max(1, m.height-m.fixedLines()) }

// --- header, banner, tabs, footer ---

func (m *Model) clock() string { return m.opt.Clock.Now().In(m.opt.Location).Format("15:04:05") }

func dashID(id string) string {
	if id == "" {
		return "—"
	}
	return id
}

func (m *Model) headerLines() []string {
	st := m.st
	right := m.clock()
	if m.snap == nil {
		left := st.title.Render("TokMesh top") + "  " + m.target()
		return []string{m.leftRight(left, right), ""}
	}
	c := m.snap.Cluster
	mode := c.Mode
	if mode == "" {
		mode = "unknown"
	}
	sep := st.dim.Render(" │ ")
	title := func(id func(string) string) string {
		return st.title.Render("TokMesh top") + sep + m.health(c.Health) + sep + mode + " mode" + sep +
			"cluster " + id(c.ClusterID) + sep + "leader " + id(c.LeaderID)
	}
	left := title(dashID)
	if lipgloss.Width(left)+lipgloss.Width(right)+1 > m.width {
		left = title(func(id string) string { return truncate(dashID(id), 14) })
	}
	var sessions int
	var qps float64
	for _, n := range m.snap.Nodes {
		sessions += n.Sessions
		qps += n.QPS
	}
	nodes := fmt.Sprintf("nodes %d", len(m.snap.Nodes))
	if c.Nodes.Suspect+c.Nodes.Dead > 0 {
		nodes += fmt.Sprintf(" (%d alive, %d suspect, %d dead)", c.Nodes.Alive, c.Nodes.Suspect, c.Nodes.Dead)
	}
	totals := nodes + sep + "sessions " + thousands(int64(sessions)) + sep + "QPS " + fmtRate(qps) + sep +
		fmt.Sprintf("partitions %d", c.Partitions.Total)
	if n := c.Partitions.Unavailable; n > 0 {
		totals += " · " + st.bad.Render(fmt.Sprintf("%d unavailable", n))
	}
	if n := c.Partitions.Moving; n > 0 {
		totals += " · " + st.warn.Render(fmt.Sprintf("%d moving", n))
	}
	if n := c.Partitions.UnderReplicated; n > 0 {
		totals += " · " + st.warn.Render(fmt.Sprintf("%d under-replicated", n))
	}
	if c.Rebalance.Running {
		totals += " · " + st.warn.Render(fmt.Sprintf("rebalancing %d%%", c.Rebalance.Progress))
	}
	lines := []string{m.leftRight(left, right), totals}
	if len(c.Warnings) > 0 {
		lines = append(lines, st.warn.Render("! "+strings.Join(c.Warnings, "; ")))
	}
	return lines
}

func (m *Model) health(h string) string {
	switch h {
	case "healthy":
		return m.st.ok.Render("● healthy")
	case "degraded":
		return m.st.warn.Render("● degraded")
	case "":
		return "● ?"
	}
	return m.st.bad.Render("● " + h)
}

// leftRight puts right at the right edge, truncating left to make room.
func (m *Model) leftRight(left, right string) string {
	room := m.width - lipgloss.Width(right) - 1
	if lipgloss.Width(left) > room {
		left = ansi.Truncate(left, room, "…")
	}
	return left + strings.Repeat(" ", max(1, m.width-lipgloss.Width(left)-lipgloss.Width(right))) + right
}

func (m *Model) lastData() string {
	if m.snap == nil {
		return "no data yet"
	}
	return "last data " + m.snapAt.In(m.opt.Location).Format("15:04:05")
}

func (m *Model) bannerLines() []string {
	if m.err == nil {
		return nil
	}
	what, style := "server error", m.st.bannerWarn
	if m.disconnected {
		what, style = "disconnected", m.st.bannerBad
	}
	attempts := "1 failed attempt"
	if m.failures != 1 {
		attempts = fmt.Sprintf("%d failed attempts", m.failures)
	}
	line := fmt.Sprintf(" %s — retrying every %s · %s · %s", what, fmtInterval(m.opt.Interval), attempts, m.lastData())
	if m.paused {
		line = fmt.Sprintf(" %s — paused (p resumes) · %s", what, m.lastData())
	}
	return []string{
		style.Render(m.fit(line, m.width)),
		m.st.dim.Render("  " + errText(m.err)),
	}
}

func fmtInterval(d time.Duration) string {
	if d%time.Second == 0 {
		return d.String()
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

func (m *Model) tabsLine() string {
	var b strings.Builder
	for p := range panelCount {
		if p == m.panel {
			b.WriteString(m.st.tabActive.Render("[" + p.String() + "]"))
		} else {
			b.WriteString(m.st.tabIdle.Render(" " + p.String() + " "))
		}
		b.WriteString(" ")
	}
	state := "every " + fmtInterval(m.opt.Interval)
	if m.paused {
		state = m.st.warn.Render("PAUSED")
	}
	if m.snap != nil {
		state += " · updated " + m.snapAt.In(m.opt.Location).Format("15:04:05")
	}
	return m.leftRight(b.String(), state)
}

func (m *Model) footerLine() string {
	if m.flash != "" {
		if m.flashErr {
			return m.st.flashErr.Render(m.flash)
		}
		return m.st.flashOK.Render(m.flash)
	}
	if m.searching {
		return m.st.dim.Render("Enter search · Esc cancel")
	}
	var hints string
	switch m.panel {
	case PanelSessions:
		hints = "/ search  ↑↓ move  Enter details  x revoke  X revoke all  s sort  ? help  q quit"
	case PanelKeys:
		hints = "↑↓ move  Enter details  e enable  d disable  s sort  Tab panel  ? help  q quit"
	default:
		hints = "Tab panel  ↑↓ move  Enter details  s sort  p pause  r refresh  ? help  q quit"
	}
	return m.st.dim.Render(hints)
}

// --- body ---

func (m *Model) bodyLines(h int) []string {
	var lines []string
	if m.snap == nil && m.panel != PanelSessions {
		msg := "Connecting to " + m.target() + "…"
		if m.err != nil {
			msg = "Waiting for " + m.target() + "…"
		}
		lines = []string{"", "  " + msg}
	} else {
		switch m.panel {
		case PanelNodes:
			lines = m.nodesPanel(h)
		case PanelSessions:
			lines = m.sessionsPanel(h)
		case PanelKeys:
			lines = m.keysPanel(h)
		}
	}
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return lines
}

// nodesLayout splits the Nodes panel's height: node rows, partition map
// rows, and whether there is room for blank separators.
func (m *Model) nodesLayout(h int) (nodeRows, mapRows int, spaced bool) {
	const metricsH, mapFixed = 3, 2 // metrics lines; map title + legend
	n := 0
	if m.snap != nil {
		n = len(m.snap.Nodes)
	}
	nodeRows = max(1, min(n, h-1-metricsH-mapFixed-1))
	rest := h - 1 - nodeRows - metricsH - mapFixed
	need := m.mapRowsNeeded()
	if rest-2 >= min(need, 2) {
		spaced, rest = true, rest-2
	}
	mapRows = max(1, min(need, rest))
	return nodeRows, mapRows, spaced
}

func (m *Model) visibleRows() int {
	h := m.bodyHeight()
	if m.panel == PanelNodes {
		n, _, _ := m.nodesLayout(h)
		return n
	}
	return max(1, h-2)
}

func (m *Model) nodesPanel(h int) []string {
	nodeRows, mapRows, spaced := m.nodesLayout(h)
	var lines []string
	lines = append(lines, m.nodesTable(nodeRows)...)
	if spaced {
		lines = append(lines, "")
	}
	lines = append(lines, m.metricsLines()...)
	if spaced {
		lines = append(lines, "")
	}
	lines = append(lines, m.partitionMap(mapRows)...)
	return lines
}

// column is one column of a table.
type column struct {
	title string
	width int  // fixed width, or the minimum of the flexible column
	pref  int  // flexible column: the width it gets before optional columns
	flex  bool // takes the remaining width
	right bool // right-aligned
	drop  int  // 0: always shown; otherwise dropped (highest first) when narrow
}

// fitColumns fits a table into width (after the two-cell selection
// marker): other optional columns are dropped, highest drop first, until
// the flexible column can have its preferred width; then the flexible
// column takes whatever is left (at least its minimum).
func fitColumns(cols []column, width int) []column {
	cols = slices.Clone(cols)
	total := func(usePref bool) int {
		t := 2
		for _, c := range cols {
			w := c.width
			if usePref && c.flex {
				w = max(c.width, c.pref)
			}
			t += w + 1
		}
		return t - 1
	}
	for total(true) > width {
		// The flexible column itself goes only when even its minimum
		// does not fit.
		flexToo := total(false) > width
		worst := -1
		for i, c := range cols {
			if c.drop > 0 && (!c.flex || flexToo) && (worst < 0 || c.drop > cols[worst].drop) {
				worst = i
			}
		}
		if worst < 0 {
			break
		}
		cols = slices.Delete(cols, worst, worst+1)
	}
	if extra := width - total(false); extra > 0 {
		for i := range cols {
			if cols[i].flex {
				cols[i].width += extra
				break
			}
		}
	}
	return cols
}

func (m *Model) tableHeader(cols []column, sortTitle string) string {
	cells := make([]string, len(cols))
	for i, c := range cols {
		t := c.title
		if t == sortTitle {
			t += "▼"
		}
		cells[i] = t
	}
	return m.st.header.Render(m.row(cols, cells, false))
}

// row renders one table row (plain cells; styles are applied per cell by
// the caller through styledRow).
func (m *Model) row(cols []column, cells []string, selected bool) string {
	var b strings.Builder
	if selected {
		b.WriteString("> ")
	} else {
		b.WriteString("  ")
	}
	for i, c := range cols {
		if i > 0 {
			b.WriteString(" ")
		}
		v := truncate(cells[i], c.width)
		pad := strings.Repeat(" ", max(0, c.width-lipgloss.Width(v)))
		if c.right {
			b.WriteString(pad + v)
		} else {
			b.WriteString(v + pad)
		}
	}
	s := b.String()
	if selected {
		return m.st.selected.Render(s)
	}
	return s
}

// window returns the first visible row so the cursor stays in view.
func (m *Model) window(p Panel, n, rows int) int {
	off := m.offset[p]
	c := m.cursor[p]
	if c < off {
		off = c
	}
	if c >= off+rows {
		off = c - rows + 1
	}
	off = max(0, min(off, n-rows))
	m.offset[p] = off
	return off
}

func (m *Model) nodesTable(rows int) []string {
	cols := fitColumns([]column{
		{title: "NODE", width: 14, pref: 31, flex: true},
		{title: "STATE", width: 7},
		{title: "ROLE", width: 8},
		{title: "SESSIONS", width: 9, right: true},
		{title: "QPS", width: 8, right: true},
		{title: "P99 ms", width: 7, right: true},
		{title: "LAG ms", width: 7, right: true},
		{title: "SKEW ms", width: 7, right: true},
		{title: "PRI/REP", width: 9, right: true, drop: 3},
		{title: "VERSION", width: 10, drop: 2},
		{title: "ADDRESS", width: 21, drop: 4},
	}, m.width)
	sortTitle := map[string]string{"node": "NODE", "sessions": "SESSIONS", "qps": "QPS", "p99": "P99 ms",
		"lag": "LAG ms", "skew": "SKEW ms"}[nodeSorts[m.sortIdx[PanelNodes]]]
	lines := []string{m.tableHeader(cols, sortTitle)}
	nodes := m.sortedNodes()
	off := m.window(PanelNodes, len(nodes), rows)
	for i := off; i < len(nodes) && i < off+rows; i++ {
		n := nodes[i]
		vals := map[string]string{
			"NODE": n.NodeID, "STATE": n.State, "ROLE": dash(n.RaftRole), "SESSIONS": thousands(int64(n.Sessions)),
			"QPS": fmtRate(n.QPS), "P99 ms": nodeP99(n), "LAG ms": strconv.FormatInt(n.ReplicationLagMs, 10),
			"SKEW ms": strconv.FormatInt(n.ClockSkewMs, 10), "PRI/REP": fmt.Sprintf("%d/%d", n.PartitionsPrimary, n.PartitionsReplica),
			"VERSION": dash(n.Version), "ADDRESS": dash(n.AdvertiseAddress),
		}
		cells := make([]string, len(cols))
		for j, c := range cols {
			cells[j] = vals[c.title]
		}
		line := m.row(cols, cells, i == m.cursor[PanelNodes] && m.panel == PanelNodes)
		if n.State != "alive" && n.State != "" && i != m.cursor[PanelNodes] {
			line = m.st.bad.Render(line)
		}
		lines = append(lines, line)
	}
	if len(nodes) == 0 {
		lines = append(lines, m.st.dim.Render("  no nodes reported"))
	}
	return lines
}

// nodeP99 is "—" for an idle node: the server reports 0 without traffic.
func nodeP99(n Node) string {
	if n.QPS == 0 && n.P99Ms == 0 {
		return "—"
	}
	return fmtMs(n.P99Ms)
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// joinFit joins parts with " · ", skipping those that would overflow room
// (parts come most important first).
func joinFit(parts []string, room int) string {
	var out []string
	used := 0
	for _, p := range parts {
		w := lipgloss.Width(p)
		if len(out) > 0 {
			w += 3
		}
		if len(out) > 0 && used+w > room {
			continue
		}
		out = append(out, p)
		used += w
	}
	return strings.Join(out, " · ")
}

// metricsLines are the traffic, security and WAL lines of this node.
func (m *Model) metricsLines() []string {
	st := m.st
	const labelW = 9
	label := func(s string) string { return st.bold.Render(fmt.Sprintf("%-*s", labelW, s)) }
	room := m.width - labelW
	s := m.snap
	var traffic, security []string
	switch {
	case s.Metrics == nil:
		traffic = []string{st.dim.Render("metrics unavailable: " + s.MetricsErr)}
		security = []string{st.dim.Render("—")}
	case !m.haveRates:
		traffic = []string{st.dim.Render("measuring… (rates need two samples)")}
		security = []string{
			fmt.Sprintf("auth failures %s total", thousands(int64(s.Metrics.AuthFailures))),
			fmt.Sprintf("banned IPs %s (%s bans total)", thousands(int64(s.Metrics.BlockedIPs)), thousands(int64(s.Metrics.BruteForceBlocks))),
		}
	default:
		r := m.rates
		traffic = []string{
			fmt.Sprintf("validate %s/s p99 %s", fmtRate(r.ValidateQPS), fmtMsUnit(r.ValidateP99ms)),
			fmt.Sprintf("create %s/s p99 %s", fmtRate(r.CreateQPS), fmtMsUnit(r.CreateP99ms)),
		}
		af := fmt.Sprintf("auth failures %s/s (%s total)", fmtRate(r.AuthFailuresPerSec), thousands(int64(s.Metrics.AuthFailures)))
		if r.AuthFailuresPerSec > 0 {
			af = st.warn.Render(af)
		}
		bans := fmt.Sprintf("banned IPs %s (%s bans total)", thousands(int64(s.Metrics.BlockedIPs)), thousands(int64(s.Metrics.BruteForceBlocks)))
		if s.Metrics.BlockedIPs > 0 {
			bans = st.warn.Render(bans)
		}
		security = []string{af, bans}
		if r.RateLimitedPerSec > 0 { // an anomaly: shown only when it happens
			security = append(security, st.warn.Render("rate-limited "+fmtRate(r.RateLimitedPerSec)+"/s"))
		}
	}
	var wal []string
	if s.Metrics != nil && s.Metrics.FsyncFailures > 0 || s.WAL != nil && s.WAL.FsyncFailures > 0 {
		wal = append(wal, st.bad.Render("FSYNC FAILED"))
	}
	if s.Metrics != nil && m.haveRates {
		if r := m.rates; r.FsyncPerSec > 0 {
			wal = append(wal, fmt.Sprintf("fsync p99 %s avg %s", fmtMsUnit(r.FsyncP99ms), fmtMsUnit(r.FsyncMeanms)))
		} else {
			wal = append(wal, "fsync —")
		}
	}
	if s.WAL != nil {
		wal = append(wal, fmt.Sprintf("size %s (%d seg)", fmtBytes(float64(s.WAL.TotalBytes)), s.WAL.Segments))
	} else if s.WALErr != "" {
		wal = append(wal, st.dim.Render("status unavailable: "+s.WALErr))
	}
	if s.Metrics != nil && m.haveRates {
		r := m.rates
		wal = append(wal, "+"+fmtBytes(r.WALBytesPerSec)+"/s")
		if r.FsyncPerSec > 0 {
			wal = append(wal, fmtRate(r.FsyncPerSec)+" fsync/s")
		}
	}
	if s.WAL != nil && s.WAL.SyncMode != "" {
		wal = append(wal, "sync "+s.WAL.SyncMode)
	}
	return []string{
		label("Traffic") + joinFit(traffic, room),
		label("Security") + joinFit(security, room),
		label("WAL") + joinFit(wal, room),
	}
}

// --- partition map ---

// cellsPerRow is the partition map's width in cells.
func (m *Model) cellsPerRow() int { return max(1, m.width-2) }

func (m *Model) mapRowsNeeded() int {
	if m.snap == nil || len(m.snap.Partitions) == 0 {
		return 1
	}
	return (len(m.snap.Partitions) + m.cellsPerRow() - 1) / m.cellsPerRow()
}

// partition cell states, worst last (a grouped cell shows its worst).
const (
	cellActive = iota
	cellUnderReplicated
	cellMoving
	cellUnavailable
)

func (m *Model) partitionMap(rows int) []string {
	st := m.st
	parts := m.snap.Partitions
	c := m.snap.Cluster.Partitions
	title := st.bold.Render("Partitions") + fmt.Sprintf(" %d", len(parts))
	if len(parts) == 0 {
		return []string{title, st.dim.Render("  no partition table")}
	}
	per := m.cellsPerRow()
	group := max(1, (len(parts)+rows*per-1)/(rows*per))
	// The title doubles as the legend of the state glyphs.
	title += " · " + st.cellUnavailable.Render("X") + fmt.Sprintf(" %d unavailable", c.Unavailable) +
		" · " + st.cellMoving.Render("~") + fmt.Sprintf(" %d moving", c.Moving) +
		" · " + fmt.Sprintf("! %d under-replicated", c.UnderReplicated)

	// Primary nodes in ID order get letters and colours.
	nodeIdx := map[string]int{}
	var order []string
	for _, n := range m.snap.Nodes {
		order = append(order, n.NodeID)
	}
	for _, p := range parts {
		if !slices.Contains(order, p.Primary) && p.Primary != "" {
			order = append(order, p.Primary)
		}
	}
	slices.Sort(order)
	for i, id := range order {
		nodeIdx[id] = i
	}
	// Replication factor as observed: a partition with fewer replicas than
	// the most replicated one, or with a replica out of sync, is marked.
	maxReplicas := 0
	for _, p := range parts {
		maxReplicas = max(maxReplicas, len(p.Replicas))
	}
	state := func(p Partition) int {
		switch p.State {
		case "unavailable":
			return cellUnavailable
		case "moving":
			return cellMoving
		}
		if p.Primary == "" {
			return cellUnavailable
		}
		if len(p.Replicas) < maxReplicas {
			return cellUnderReplicated
		}
		for _, r := range p.Replicas {
			if !r.InSync {
				return cellUnderReplicated
			}
		}
		return cellActive
	}
	type cell struct {
		glyph string
		style lipgloss.Style
	}
	var cells []cell
	for i := 0; i < len(parts); i += group {
		end := min(i+group, len(parts))
		worst, primaries := cellActive, map[string]int{}
		for _, p := range parts[i:end] {
			worst = max(worst, state(p))
			primaries[p.Primary]++
		}
		primary, best := "", -1
		for id, n := range primaries {
			if n > best || n == best && id < primary {
				primary, best = id, n
			}
		}
		idx, known := nodeIdx[primary]
		glyph := nodeGlyph(idx)
		style := st.nodeCells[idx%len(st.nodeCells)]
		if !known {
			glyph, style = "?", st.dim
		}
		switch worst {
		case cellUnavailable:
			glyph, style = "X", st.cellUnavailable
		case cellMoving:
			glyph, style = "~", st.cellMoving
		case cellUnderReplicated:
			glyph = "!"
		}
		cells = append(cells, cell{glyph, style})
	}
	lines := []string{title}
	for r := 0; r < rows && r*per < len(cells); r++ {
		var b strings.Builder
		b.WriteString("  ")
		row := cells[r*per : min(len(cells), (r+1)*per)]
		// Render runs of equal cells at once: fewer escape sequences.
		for i := 0; i < len(row); {
			j := i
			var run strings.Builder
			for j < len(row) && row[j].glyph == row[i].glyph && sameStyle(row[j].style, row[i].style) {
				run.WriteString(row[j].glyph)
				j++
			}
			b.WriteString(row[i].style.Render(run.String()))
			i = j
		}
		lines = append(lines, b.String())
	}
	var legend []string
	if group > 1 {
		legend = append(legend, st.dim.Render(fmt.Sprintf("1 cell = %d partitions (worst shown)", group)))
	}
	idW := 31
	if m.width < 120 {
		idW = 14
	}
	for i, id := range order {
		legend = append(legend, st.nodeCells[i%len(st.nodeCells)].Render(nodeGlyph(i))+" "+truncate(id, idW))
	}
	lines = append(lines, "  "+strings.Join(legend, "  "))
	return lines
}

func sameStyle(a, b lipgloss.Style) bool {
	return a.GetBackground() == b.GetBackground() && a.GetForeground() == b.GetForeground() && a.GetFaint() == b.GetFaint()
}

// nodeGlyph is the letter of the i-th node on the partition map.
func nodeGlyph(i int) string {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWYZabcdefghijklmnopqrstuvwxyz"
	if i < len(letters) {
		return letters[i : i+1]
	}
	return "#"
}

// --- sessions and keys ---

func (m *Model) sessionsPanel(h int) []string {
	st := m.st
	var info string
	switch {
	case m.searching:
		info = m.search.View()
	case m.sessUser == "":
		info = "Press / and type a user ID to list that user's live sessions."
	default:
		info = st.bold.Render("User "+m.sessUser) + " · "
		if m.sessions == nil {
			info += "loading…"
		} else {
			n := m.sessions.Total
			info += thousands(int64(n)) + " live session" + plural(n)
			if len(m.sessions.Items) < n {
				info += fmt.Sprintf(" (showing %d)", len(m.sessions.Items))
			}
		}
		info += st.dim.Render(" · sort: " + sessionSorts[m.sortIdx[PanelSessions]])
	}
	lines := []string{info}
	if m.sessErr != "" && !m.disconnected { // the banner already says it
		lines = append(lines, st.bad.Render("Error: "+m.sessErr))
	}
	if m.sessions == nil {
		return lines
	}
	cols := fitColumns([]column{
		{title: "SESSION", width: 31},
		{title: "DEVICE", width: 8, pref: 8, flex: true},
		{title: "IP", width: 15, drop: 2},
		{title: "CREATED", width: 10, drop: 3},
		{title: "ACTIVE", width: 10},
		{title: "EXPIRES", width: 9},
		{title: "CREATED BY", width: 31, drop: 4},
	}, m.width)
	sortTitle := map[string]string{"last active": "ACTIVE", "created": "CREATED", "expires": "EXPIRES",
		"device": "DEVICE"}[sessionSorts[m.sortIdx[PanelSessions]]]
	lines = append(lines, m.tableHeader(cols, sortTitle))
	ss := m.sortedSessions()
	if len(ss) == 0 {
		return append(lines, st.dim.Render("  No live sessions for user "+m.sessions.UserID+"."))
	}
	rows := max(1, h-len(lines))
	off := m.window(PanelSessions, len(ss), rows)
	now := m.opt.Clock.Now()
	for i := off; i < len(ss) && i < off+rows; i++ {
		s := ss[i]
		vals := map[string]string{"SESSION": s.ID, "DEVICE": dash(s.DeviceID), "IP": dash(s.IPAddress),
			"CREATED": ago(now, s.CreatedAt), "ACTIVE": ago(now, s.LastActive), "EXPIRES": until(now, s.ExpiresAt),
			"CREATED BY": dash(s.CreatedBy)}
		cells := make([]string, len(cols))
		for j, c := range cols {
			cells[j] = vals[c.title]
		}
		lines = append(lines, m.row(cols, cells, i == m.cursor[PanelSessions]))
	}
	return lines
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (m *Model) keysPanel(h int) []string {
	st := m.st
	s := m.snap
	info := st.bold.Render("API keys") + " · " + thousands(int64(s.KeysTotal))
	if len(s.Keys) < s.KeysTotal {
		info += fmt.Sprintf(" (showing %d)", len(s.Keys))
	}
	info += st.dim.Render(" · sort: " + keySorts[m.sortIdx[PanelKeys]])
	lines := []string{info}
	if s.KeysErr != "" {
		return append(lines, st.bad.Render("Error: "+s.KeysErr))
	}
	cols := fitColumns([]column{
		{title: "KEY", width: 31},
		{title: "ROLE", width: 9},
		{title: "STATUS", width: 8},
		{title: "LAST USE", width: 10},
		{title: "EXPIRES", width: 10, drop: 2},
		{title: "RATE", width: 6, right: true, drop: 3},
		{title: "DESCRIPTION", width: 10, pref: 20, flex: true, drop: 1},
	}, m.width)
	sortTitle := map[string]string{"key id": "KEY", "role": "ROLE", "status": "STATUS", "last use": "LAST USE"}[keySorts[m.sortIdx[PanelKeys]]]
	lines = append(lines, m.tableHeader(cols, sortTitle))
	ks := m.sortedKeys()
	if len(ks) == 0 {
		return append(lines, st.dim.Render("  no API keys"))
	}
	rows := max(1, h-len(lines))
	off := m.window(PanelKeys, len(ks), rows)
	now := m.opt.Clock.Now()
	for i := off; i < len(ks) && i < off+rows; i++ {
		k := ks[i]
		exp := "never"
		if k.ExpiresAt > 0 {
			exp = until(now, k.ExpiresAt)
		}
		rate := "—"
		if k.RateLimit > 0 {
			rate = strconv.Itoa(k.RateLimit)
		}
		vals := map[string]string{"KEY": k.KeyID, "ROLE": k.Role, "STATUS": k.Status, "LAST USE": agoOrNever(now, k.LastUsedAt),
			"EXPIRES": exp, "RATE": rate, "DESCRIPTION": k.Description}
		cells := make([]string, len(cols))
		for j, c := range cols {
			cells[j] = vals[c.title]
		}
		line := m.row(cols, cells, i == m.cursor[PanelKeys])
		if k.Status != "active" && i != m.cursor[PanelKeys] {
			line = st.dim.Render(line)
		}
		lines = append(lines, line)
	}
	return lines
}

// --- overlays ---

func helpLines() []string {
	return []string{
		"Tab / Shift+Tab    next / previous panel",
		"↑ ↓  k j           move (PgUp PgDn Home End)",
		"Enter              details of the selected row",
		"s                  change the sort order",
		"p                  pause / resume refreshing",
		"r                  refresh now",
		"?                  this help",
		"q  Esc  Ctrl+C     quit (Esc closes a dialog first)",
		"",
		"Sessions panel",
		"/                  search a user's live sessions",
		"x                  revoke the selected session",
		"X                  revoke all sessions of that user",
		"",
		"Keys panel",
		"e / d              enable / disable the selected key",
	}
}

// box renders an overlay box with a title, fitting the screen.
func (m *Model) box(title string, body []string) []string {
	inner := lipgloss.Width(title)
	for _, l := range body {
		inner = max(inner, lipgloss.Width(l))
	}
	inner = min(inner, m.width-6)
	maxBody := max(1, m.height-4)
	if len(body) > maxBody {
		body = append(slices.Clone(body[:maxBody-1]), "…")
	}
	content := []string{m.st.boxTitle.Render(truncate(title, inner)), ""}
	if len(body)+2 > maxBody {
		content = content[:1]
	}
	for _, l := range body {
		content = append(content, m.fit(l, inner))
	}
	content[0] = m.fit(content[0], inner)
	return strings.Split(m.st.box.Render(strings.Join(content, "\n")), "\n")
}

// splice draws box centred over lines.
func (m *Model) splice(lines, box []string) []string {
	bw := 0
	for _, l := range box {
		bw = max(bw, lipgloss.Width(l))
	}
	x := max(0, (m.width-bw)/2)
	y := max(0, (len(lines)-len(box))/2)
	reset := ""
	if !m.st.plain {
		reset = "\x1b[0m"
	}
	out := slices.Clone(lines)
	for i, b := range box {
		if y+i >= len(out) {
			break
		}
		base := out[y+i]
		left := ansi.Truncate(base, x, "")
		right := ansi.Cut(base, x+bw, m.width)
		out[y+i] = left + reset + b + reset + right
	}
	return out
}

// --- details ---

func (m *Model) absTime(ms int64) string {
	if ms <= 0 {
		return "—"
	}
	return time.UnixMilli(ms).In(m.opt.Location).Format("2006-01-02 15:04:05")
}

func kv(k, v string) string { return fmt.Sprintf("%-17s %s", k, v) }

func (m *Model) nodeDetails(n *Node) []string {
	now := m.opt.Clock.Now()
	return []string{
		kv("node_id", n.NodeID),
		kv("address", dash(n.AdvertiseAddress)),
		kv("state", n.State),
		kv("raft_role", dash(n.RaftRole)),
		kv("version", dash(n.Version)),
		kv("joined", m.absTime(n.JoinedAt)),
		kv("last seen", m.absTime(n.LastSeen)+" ("+ago(now, n.LastSeen)+")"),
		kv("lease valid", strconv.FormatBool(n.LeaseValid)),
		kv("partitions", fmt.Sprintf("%d primary, %d replica", n.PartitionsPrimary, n.PartitionsReplica)),
		kv("sessions", thousands(int64(n.Sessions))),
		kv("qps / p99", fmtRate(n.QPS)+" / "+fmtMsUnit(n.P99Ms)),
		kv("replication lag", strconv.FormatInt(n.ReplicationLagMs, 10)+" ms"),
		kv("clock skew", strconv.FormatInt(n.ClockSkewMs, 10)+" ms"),
	}
}

func (m *Model) sessionDetails(s *client.Session) []string {
	now := m.opt.Clock.Now()
	idle := "none"
	if s.IdleTimeout > 0 {
		idle = (time.Duration(s.IdleTimeout) * time.Second).String()
	}
	lines := []string{
		kv("id", s.ID),
		kv("user_id", s.UserID),
		kv("device_id", dash(s.DeviceID)),
		kv("ip / user agent", dash(s.IPAddress)+" / "+dash(s.UserAgent)),
		kv("last access", dash(s.LastAccessIP)+" / "+dash(s.LastAccessUA)),
		kv("created by", dash(s.CreatedBy)),
		kv("created", m.absTime(s.CreatedAt)+" ("+ago(now, s.CreatedAt)+")"),
		kv("last active", m.absTime(s.LastActive)+" ("+ago(now, s.LastActive)+")"),
		kv("expires", m.absTime(s.ExpiresAt)+" ("+until(now, s.ExpiresAt)+")"),
		kv("idle timeout", idle),
		kv("version", strconv.FormatUint(s.Version, 10)),
	}
	ks := make([]string, 0, len(s.Data))
	for k := range s.Data {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	for _, k := range ks {
		lines = append(lines, kv("data."+k, s.Data[k]))
	}
	return append(lines, "", "x revoke · Esc close")
}

func (m *Model) keyDetails(k *client.Key) []string {
	now := m.opt.Clock.Now()
	exp := "never"
	if k.ExpiresAt > 0 {
		exp = m.absTime(k.ExpiresAt) + " (" + until(now, k.ExpiresAt) + ")"
	}
	allow := "any"
	if len(k.Allowlist) > 0 {
		allow = strings.Join(k.Allowlist, ", ")
	}
	lines := []string{
		kv("key_id", k.KeyID),
		kv("role", k.Role),
		kv("status", k.Status),
		kv("description", dash(k.Description)),
		kv("allowlist", allow),
		kv("rate limit", strconv.Itoa(k.RateLimit)+"/s"),
		kv("created", m.absTime(k.CreatedAt)+" by "+dash(k.CreatedBy)),
		kv("expires", exp),
		kv("last used", agoOrNever(now, k.LastUsedAt)),
	}
	if k.RotationGraceUntil > 0 {
		lines = append(lines, kv("old secret until", m.absTime(k.RotationGraceUntil)))
	}
	return append(lines, "", "e enable · d disable · Esc close")
}

// --- formatting ---

func thousands(n int64) string {
	s := strconv.FormatInt(abs(n), 10)
	var b strings.Builder
	if n < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtRate(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	if v >= 10000 {
		return thousands(int64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func fmtMs(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "—"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func fmtMsUnit(v float64) string {
	s := fmtMs(v)
	if s == "—" {
		return s
	}
	return s + " ms"
}

func fmtBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(v, 'f', 0, 64) + " B"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}

// fmtDur renders a duration with at most two units: 45s, 12m, 1h59m, 3d4h.
func fmtDur(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 24*time.Hour:
		h, mi := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if mi == 0 {
			return strconv.Itoa(h) + "h"
		}
		return fmt.Sprintf("%dh%dm", h, mi)
	}
	days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if h == 0 {
		return strconv.Itoa(days) + "d"
	}
	return fmt.Sprintf("%dd%dh", days, h)
}

func ago(now time.Time, ms int64) string {
	if ms <= 0 {
		return "—"
	}
	d := now.Sub(time.UnixMilli(ms))
	if d < 0 {
		return "in " + fmtDur(-d)
	}
	if d < time.Second {
		return "now"
	}
	return fmtDur(d) + " ago"
}

func agoOrNever(now time.Time, ms int64) string {
	if ms <= 0 {
		return "never"
	}
	return ago(now, ms)
}

func until(now time.Time, ms int64) string {
	if ms <= 0 {
		return "—"
	}
	d := time.UnixMilli(ms).Sub(now)
	if d <= 0 {
		return "expired"
	}
	return "in " + fmtDur(d)
}
