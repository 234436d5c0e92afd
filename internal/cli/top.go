package cli

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/internal/buildinfo"
	"github.com/yndnr/tokmesh-go/internal/tui"
	"github.com/yndnr/tokmesh-go/pkg/client"
)

// topCmd is `tokmesh-cli top` (07-tools §1.7): the full-screen dashboard
// of internal/tui over the target's admin API and /metrics.
func (a *app) topCmd() *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Live dashboard of nodes, sessions, keys and latency",
		Long: `top is a full-screen live view of the target: cluster health, nodes, the partition
map, validate/create rate and p99, auth failures and bans, WAL fsync latency and size.
Its Sessions panel searches a user's live sessions and revokes one or all of them; its
Keys panel enables and disables API keys. Every action asks for confirmation first.

It needs an interactive terminal and an admin key (or the local admin socket).
When the server goes away, top shows a "disconnected — retrying" banner and keeps
retrying. Press ? inside top for the keys.`,
		Example: `  tokmesh-cli top
  tokmesh-cli top --interval 500ms
  tokmesh-cli -t https://tokmesh.internal:5443 -k "$KEY" top`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < tui.MinInterval {
				return usageErr("--interval %s is too short: the minimum is %s", interval, tui.MinInterval)
			}
			if !a.env.StdinTTY() || !a.env.StdoutTTY() {
				return &cliError{exit: ExitUsage, code: CodeUsage,
					msg:  "top needs an interactive terminal: stdin and stdout must both be a TTY",
					hint: "run it in a terminal; for scripts use `tokmesh-cli cluster status -o json` or `session list -o json`"}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			return a.runTop(a.ctx(cmd), c, interval)
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", tui.DefaultInterval, "refresh interval (minimum 250ms)")
	return cmd
}

func (a *app) runTop(ctx context.Context, c *client.Client, interval time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	metrics, closeMetrics, err := a.topMetrics(c)
	if err != nil {
		return err
	}
	defer closeMetrics()

	plain := !a.colourAllowed() // --no-color, NO_COLOR, TERM=dumb
	selfKey, _, _ := strings.Cut(a.topAPIKey(), ":")
	m := tui.New(tui.Options{
		Source:    tui.NewRemote(c, metrics),
		Interval:  interval,
		Plain:     plain,
		Target:    c.Target(),
		SelfKeyID: selfKey,
		Context:   ctx,
	})
	// The view asks for the alternate screen; bubbletea detects the colour
	// profile from the environment and downsamples the styles to it.
	p := tea.NewProgram(m, tea.WithInput(a.env.Stdin), tea.WithOutput(a.env.Stdout), tea.WithContext(ctx))
	if _, err := p.Run(); err != nil {
		if errors.Is(err, tea.ErrInterrupted) || ctx.Err() != nil {
			return &cliError{exit: ExitDeclined, msg: "interrupted"}
		}
		return &cliError{exit: ExitUsage, code: CodeUsage, msg: "cannot run the dashboard on this terminal: " + err.Error()}
	}
	return nil
}

// topMetrics builds the raw GET /metrics fetch for the client's target:
// pkg/client decodes only JSON envelopes. It reuses the same target, TLS
// settings and API key as the client.
func (a *app) topMetrics(c *client.Client) (tui.MetricsFunc, func(), error) {
	ua := "tokmesh-cli/" + buildinfo.Version
	target := c.Target()
	tr := &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second}
	hc := &http.Client{Transport: tr}
	if path, ok := strings.CutPrefix(target, "unix:"); ok {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}
		return tui.MetricsHTTP(hc, "http://tokmesh-local", "", ua), tr.CloseIdleConnections, nil
	}
	tr.Proxy = http.ProxyFromEnvironment
	if strings.HasPrefix(target, "https://") {
		tc, err := tlsConfig(a.s.profile)
		if err != nil {
			return nil, nil, err
		}
		tr.TLSClientConfig = tc
		tr.ForceAttemptHTTP2 = true
	}
	return tui.MetricsHTTP(hc, target, a.topAPIKey(), ua), tr.CloseIdleConnections, nil
}

// topAPIKey is the API key the client uses ("" on a socket target without
// one): the same resolution as client().
func (a *app) topAPIKey() string {
	rt, err := a.resolveTarget()
	if err != nil {
		return "" // client() succeeded before, so this does not happen
	}
	return rt.key
}
