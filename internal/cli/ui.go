package cli

// Terminal niceties: colour in tables and messages, spinners for waits and
// progress bars for transfers. All of them appear only on a terminal: colour
// needs stdout (tables) or stderr (messages) to be a TTY and is off with
// --no-color, NO_COLOR, no_color in the profile or TERM=dumb; spinners and
// progress bars need stderr to be a TTY and are off with --quiet. Without
// colour nothing here writes an escape sequence.

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// palette renders styled text for one stream.
type palette struct {
	on                              bool
	bold, green, red, yellow, faint lipgloss.Style
}

func newPalette(w io.Writer, on bool) palette {
	r := lipgloss.NewRenderer(w)
	if on {
		// 16-colour ANSI: readable on light and dark themes, and set
		// explicitly so that nothing probes the terminal.
		r.SetColorProfile(termenv.ANSI)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	return palette{
		on:     on,
		bold:   r.NewStyle().Bold(true),
		green:  r.NewStyle().Foreground(lipgloss.Color("2")),
		red:    r.NewStyle().Foreground(lipgloss.Color("1")),
		yellow: r.NewStyle().Foreground(lipgloss.Color("3")),
		faint:  r.NewStyle().Faint(true),
	}
}

func (p palette) render(st lipgloss.Style, s string) string {
	if !p.on || s == "" {
		return s
	}
	return st.Render(s)
}

func (p palette) errorText(s string) string { return p.render(p.red.Bold(true), s) }
func (p palette) warnText(s string) string  { return p.render(p.yellow.Bold(true), s) }

// colourAllowed: the user has not turned colour off.
func (a *app) colourAllowed() bool {
	return !a.s.noColor && !a.flags.noColor && a.env.Getenv("NO_COLOR") == "" && a.env.Getenv("TERM") != "dumb"
}

// outPalette styles stdout (tables).
func (a *app) outPalette() palette {
	return newPalette(a.env.Stdout, a.colourAllowed() && a.env.StdoutTTY())
}

// errPalette styles stderr (errors, warnings, spinners, progress).
func (a *app) errPalette() palette {
	return newPalette(a.env.Stderr, a.colourAllowed() && a.env.StderrTTY())
}

// statusColour maps status words in tables to a colour.
var statusColour = map[string]string{
	"active": "green", "alive": "green", "healthy": "green", "ready": "green", "succeeded": "green",
	"success": "green", "ok": "green", "VALID": "green", "valid": "green",
	"disabled": "red", "dead": "red", "unavailable": "red", "failed": "red", "failure": "red",
	"not_ready": "red", "INVALID": "red", "invalid": "red", "revoked": "red", "left": "red",
	"suspect": "yellow", "degraded": "yellow", "moving": "yellow", "pending": "yellow", "running": "yellow",
	"draining": "yellow", "attempt": "yellow", "recovering": "yellow", "restoring": "yellow",
}

// paint colours an aligned table: header lines bold, status words
// coloured. It only inserts escape sequences around whole words, so the
// alignment done before stays intact. In table rows (cells padded by two
// or more spaces) the first column is an ID or a field name and is left
// alone; a line that is not a table row ("VALID: …", "not_ready (code …)")
// gets only its first word coloured.
func (a *app) paint(out string) string {
	p := a.outPalette()
	if !p.on {
		return out
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(out, "\n") {
		body, nl := strings.CutSuffix(line, "\n")
		if body == "" {
			b.WriteString(line)
			continue
		}
		if a.isHeader(body) {
			b.WriteString(p.render(p.bold, strings.TrimRight(body, " ")))
		} else {
			b.WriteString(p.colourWords(body))
		}
		if nl {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func (a *app) isHeader(line string) bool {
	norm := strings.Join(strings.Fields(line), " ")
	for _, h := range a.headers {
		if h == norm {
			return true
		}
	}
	return false
}

func (p palette) colourWords(line string) string {
	tableRow := strings.Contains(line, "  ")
	var b strings.Builder
	i, n := 0, 0 // n: index of the word
	for i < len(line) {
		if line[i] == ' ' {
			b.WriteByte(' ')
			i++
			continue
		}
		j := strings.IndexByte(line[i:], ' ')
		if j < 0 {
			j = len(line)
		} else {
			j += i
		}
		word := line[i:j]
		colour := ""
		if (tableRow && n > 0) || (!tableRow && n == 0) {
			colour = statusColour[strings.TrimSuffix(word, ":")]
		}
		switch colour {
		case "green":
			word = p.render(p.green, word)
		case "red":
			word = p.render(p.red, word)
		case "yellow":
			word = p.render(p.yellow, word)
		}
		b.WriteString(word)
		i = j
		n++
	}
	return b.String()
}

// ---- spinner ----

// spinnerFrames and spinnerFPS: a braille dot turning. The CLI draws it
// itself rather than through bubbles/spinner, so that commands other than
// top do not need a bubbletea program.
var (
	spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	spinnerFPS    = 100 * time.Millisecond
)

// spin shows a spinner with msg on stderr until the returned function is
// called (which clears it). Off a terminal or with --quiet it does nothing.
func (a *app) spin(msg string) (stop func()) {
	if a.s.quiet || !a.env.StderrTTY() {
		return func() {}
	}
	p := a.errPalette()
	w := a.env.Stderr
	width := 0
	draw := func(i int) {
		frame := spinnerFrames[i%len(spinnerFrames)]
		width = max(width, lipgloss.Width(frame+" "+msg))
		fmt.Fprint(w, "\r"+p.render(p.yellow, frame)+" "+msg)
	}
	draw(0) // at once, so even a short wait shows what is happening
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(spinnerFPS)
		defer t.Stop()
		for i := 1; ; i++ {
			select {
			case <-quit:
				// Spaces rather than an erase sequence: no escape codes
				// without colour.
				fmt.Fprint(w, "\r"+strings.Repeat(" ", width)+"\r")
				return
			case <-t.C:
				draw(i)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

// ---- progress bar ----

// progress is a one-line progress bar on stderr. Its methods must be
// called from one goroutine at a time. Off a terminal or with --quiet it
// draws nothing.
type progress struct {
	on     bool
	w      io.Writer
	p      palette
	label  string
	total  int64 // bytes, or 100 for percentages
	bytes  bool  // show sizes and rate
	offset int64 // already there when the transfer started (resumes)
	cur    int64
	start  time.Time
	drawn  time.Time
	width  int
}

const progressBarCells = 28

// newProgress starts a bar for total units (bytes when bytes is true,
// else percent with total 100).
func (a *app) newProgress(label string, total int64, bytes bool) *progress {
	pr := &progress{on: !a.s.quiet && a.env.StderrTTY(), w: a.env.Stderr, p: a.errPalette(),
		label: label, total: total, bytes: bytes, start: time.Now()}
	pr.draw()
	return pr
}

// resumeFrom records units that were already done before this run.
func (pr *progress) resumeFrom(n int64) { pr.offset, pr.cur = n, n; pr.draw() }

// set moves the bar to n units (redrawn at most 10 times a second).
func (pr *progress) set(n int64) {
	pr.cur = n
	if time.Since(pr.drawn) >= 100*time.Millisecond {
		pr.draw()
	}
}

// add advances the bar by n units.
func (pr *progress) add(n int64) { pr.set(pr.cur + n) }

// done draws the final state and ends the line.
func (pr *progress) done() {
	if !pr.on {
		return
	}
	pr.draw()
	fmt.Fprintln(pr.w)
	pr.on = false
}

func (pr *progress) draw() {
	if !pr.on {
		return
	}
	pr.drawn = time.Now()
	frac := 0.0
	if pr.total > 0 {
		frac = min(1, float64(pr.cur)/float64(pr.total))
	}
	filled := int(frac * progressBarCells)
	bar := pr.p.render(pr.p.green, strings.Repeat("█", filled)) + pr.p.render(pr.p.faint, strings.Repeat("░", progressBarCells-filled))
	line := fmt.Sprintf("%s %s %3d%%", pr.label, bar, int(frac*100))
	if pr.bytes {
		line += "  " + humanBytes(pr.cur)
		if pr.total > 0 {
			line += "/" + humanBytes(pr.total)
		}
		if el := time.Since(pr.start).Seconds(); el > 0.5 && pr.cur > pr.offset {
			line += fmt.Sprintf("  %s/s", humanBytes(int64(float64(pr.cur-pr.offset)/el)))
		}
	}
	w := lipgloss.Width(line)
	pad := ""
	if w < pr.width {
		pad = strings.Repeat(" ", pr.width-w)
	}
	pr.width = max(pr.width, w)
	fmt.Fprint(pr.w, "\r"+line+pad)
}

// countingReader reports every read to a progress bar.
type countingReader struct {
	r  io.Reader
	pr *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.pr.add(int64(n))
	return n, err
}

// humanBytes renders a size with binary units ("12.3 MiB").
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
