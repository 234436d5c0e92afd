package tui

import (
	"strings"
	"unicode"

	tea "charm.land/bubbletea/v2"
)

// lineInput is a one-line text field: typing, Backspace, Ctrl+U (clear),
// Ctrl+W (delete word). bubbles/textinput would pull in a clipboard module
// that go.mod does not carry; the dashboard needs no more than this.
type lineInput struct {
	prompt string
	value  []rune
	limit  int
}

func newInput(prompt string) lineInput { return lineInput{prompt: prompt, limit: 256} }

func (in *lineInput) SetValue(s string) { in.value = []rune(s) }

func (in *lineInput) Value() string { return string(in.value) }

// Update applies one key press.
func (in *lineInput) Update(k tea.KeyPressMsg) {
	switch {
	case k.Code == tea.KeyBackspace:
		if len(in.value) > 0 {
			in.value = in.value[:len(in.value)-1]
		}
		return
	case k.Keystroke() == "ctrl+u":
		in.value = nil
		return
	case k.Keystroke() == "ctrl+w":
		v := strings.TrimRightFunc(string(in.value), unicode.IsSpace)
		i := strings.LastIndexFunc(v, unicode.IsSpace)
		in.value = []rune(v[:i+1])
		return
	}
	// Printable keys (letters, digits, space, shifted symbols) carry text.
	in.insert([]rune(k.Text))
}

func (in *lineInput) insert(rs []rune) {
	for _, r := range rs {
		if len(in.value) >= in.limit {
			return
		}
		if unicode.IsPrint(r) {
			in.value = append(in.value, r)
		}
	}
}

// View renders the prompt, the value and a block cursor.
func (in *lineInput) View() string { return in.prompt + string(in.value) + "█" }
