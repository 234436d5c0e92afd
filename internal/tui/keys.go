package tui

import "charm.land/bubbles/v2/key"

// keyMap is every binding of the dashboard (07-tools §1.7). The help
// overlay (helpLines) describes the same keys; keep them together.
type keyMap struct {
	Next, Prev, Up, Down, PageUp, PageDown, Top, Bottom key.Binding
	Details, Sort, Pause, Refresh, Help, Quit           key.Binding
	Search, Revoke, RevokeAll, Enable, Disable          key.Binding
}

var keys = keyMap{
	Next:      key.NewBinding(key.WithKeys("tab"), key.WithHelp("Tab", "next panel")),
	Prev:      key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("Shift+Tab", "previous panel")),
	Up:        key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "move up")),
	Down:      key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "move down")),
	PageUp:    key.NewBinding(key.WithKeys("pgup"), key.WithHelp("PgUp", "page up")),
	PageDown:  key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("PgDn", "page down")),
	Top:       key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("Home/g", "first row")),
	Bottom:    key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("End/G", "last row")),
	Details:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("Enter", "details of the selected row")),
	Sort:      key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "change the sort order")),
	Pause:     key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "pause / resume refreshing")),
	Refresh:   key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "refresh now")),
	Help:      key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "this help")),
	Quit:      key.NewBinding(key.WithKeys("q", "esc", "ctrl+c"), key.WithHelp("q/Esc/Ctrl+C", "quit")),
	Search:    key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "search a user's live sessions")),
	Revoke:    key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "revoke the selected session")),
	RevokeAll: key.NewBinding(key.WithKeys("X"), key.WithHelp("X", "revoke all sessions of the user")),
	Enable:    key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "enable the selected key")),
	Disable:   key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "disable the selected key")),
}
