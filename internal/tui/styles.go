package tui

import "charm.land/lipgloss/v2"

// styles are built once per model. lipgloss v2 styles always render full
// escape sequences (bubbletea downsamples them to the terminal's profile);
// in plain mode (--no-color, NO_COLOR, TERM=dumb, and the tests) View strips
// every escape sequence, so the screen is plain text.
type styles struct {
	plain bool // no escape sequences at all

	title, bold, dim, header, selected lipgloss.Style
	ok, warn, bad                      lipgloss.Style
	tabActive, tabIdle                 lipgloss.Style
	bannerBad, bannerWarn              lipgloss.Style
	flashOK, flashErr                  lipgloss.Style
	box, boxTitle                      lipgloss.Style
	cellUnavailable, cellMoving        lipgloss.Style
	nodeCells                          []lipgloss.Style
}

// nodePalette colours partition cells by primary node. Red and yellow are
// reserved for unavailable and moving partitions.
var nodePalette = []string{"4", "2", "5", "6", "12", "10", "13", "14", "8"}

func newStyles(plain bool) styles {
	s := styles{plain: plain}
	n := lipgloss.NewStyle
	s.title = n().Bold(true).Foreground(lipgloss.Color("6"))
	s.bold = n().Bold(true)
	s.dim = n().Faint(true)
	s.header = n().Bold(true).Underline(true)
	s.selected = n().Reverse(true)
	s.ok = n().Foreground(lipgloss.Color("2"))
	s.warn = n().Foreground(lipgloss.Color("3"))
	s.bad = n().Foreground(lipgloss.Color("1")).Bold(true)
	s.tabActive = n().Reverse(true).Bold(true)
	s.tabIdle = n()
	s.bannerBad = n().Background(lipgloss.Color("1")).Foreground(lipgloss.Color("15")).Bold(true)
	s.bannerWarn = n().Background(lipgloss.Color("3")).Foreground(lipgloss.Color("0")).Bold(true)
	s.flashOK = n().Foreground(lipgloss.Color("2")).Bold(true)
	s.flashErr = n().Foreground(lipgloss.Color("1")).Bold(true)
	s.box = n().Border(lipgloss.RoundedBorder()).BorderForeground(lipgloss.Color("6")).Padding(0, 1)
	s.boxTitle = n().Bold(true)
	s.cellUnavailable = n().Background(lipgloss.Color("1")).Foreground(lipgloss.Color("15")).Bold(true)
	s.cellMoving = n().Background(lipgloss.Color("3")).Foreground(lipgloss.Color("0"))
	for _, c := range nodePalette {
		s.nodeCells = append(s.nodeCells, n().Background(lipgloss.Color(c)).Foreground(lipgloss.Color("0")))
	}
	return s
}
