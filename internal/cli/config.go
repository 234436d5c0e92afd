package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/pkg/client"
)

func (a *app) configCmd() *cobra.Command {
	server := group("server", "Show, validate and reload the server's configuration",
		"  tokmesh-cli config server show\n  tokmesh-cli config server validate /etc/tokmesh-server/config.yaml",
		a.configServerShow(), a.configServerValidate(), a.configServerReload())
	cli := group("cli", "Inspect this CLI's own settings",
		"  tokmesh-cli config cli show",
		a.configCLIShow())
	return group("config", "Server configuration and CLI settings",
		"  tokmesh-cli config server show -o yaml\n  tokmesh-cli config server reload\n  tokmesh-cli config cli show",
		server, cli)
}

func (a *app) configServerShow() *cobra.Command {
	return &cobra.Command{
		Use:     "show",
		Short:   "Print the server's effective configuration",
		Example: "  tokmesh-cli config server show\n  tokmesh-cli config server show -o yaml > effective.yaml",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			tree, err := c.ServerConfig(a.ctx(cmd))
			if err != nil {
				return err
			}
			out := map[string]any{"config": tree}
			return a.emit(out, func(w *tabwriter.Writer, _ bool) {
				a.header(w, "KEY", "VALUE")
				flat := map[string]string{}
				flatten("", tree, flat)
				keys := make([]string, 0, len(flat))
				for k := range flat {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					row(w, k, flat[k])
				}
			})
		},
	}
}

// flatten turns the nested configuration tree into dotted keys.
func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, sub := range t {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(key, sub, out)
		}
	case []any:
		parts := make([]string, len(t))
		for i, x := range t {
			parts[i] = scalar(x)
		}
		out[prefix] = "[" + strings.Join(parts, ", ") + "]"
	case string:
		out[prefix] = strconv.Quote(t)
		if t != "" && !strings.ContainsAny(t, " \t\"'#:") {
			out[prefix] = t
		}
	default:
		out[prefix] = scalar(t)
	}
}

// configProblems renders config errors as the server's validate route does
// (code, key, message without the parts that have their own fields).
func configProblems(errs []*config.Error) []client.ConfigProblem {
	out := make([]client.ConfigProblem, 0, len(errs))
	for _, e := range errs {
		msg := strings.TrimPrefix(e.Error(), e.Code+" ")
		if e.Key != "" {
			msg = strings.TrimPrefix(msg, e.Key+": ")
		}
		out = append(out, client.ConfigProblem{Code: e.Code, Key: e.Key, Message: msg})
	}
	return out
}

func (a *app) configServerValidate() *cobra.Command {
	var remote bool
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a server configuration file (exit 0 valid, 1 invalid)",
		Long: `Check a tokmesh-server configuration file without starting a server.

By default the file is checked here, with the server's own validation code: the
defaults plus this file alone (TOKMESH_* variables and flags are not applied), and
files it names (TLS certificates, key_file) are read relative to the current
directory. With --remote the target server checks it instead (POST
/admin/v1/config/validate), which is what to use when the file names paths on
that server. Exit 0 when valid, 1 when problems were found, 65 when FILE cannot
be read.`,
		Example: `  tokmesh-cli config server validate /etc/tokmesh-server/config.yaml
  tokmesh-cli -t prod config server validate new.yaml --remote -o json`,
		Args: exactArgs(1, "FILE"),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return []cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return dataErr("cannot read configuration file: %v", err)
			}
			var res *client.ConfigValidation
			if remote {
				c, err := a.client()
				if err != nil {
					return err
				}
				if res, err = c.ValidateConfig(a.ctx(cmd), string(data)); err != nil {
					return err
				}
			} else {
				cfg, errs := config.FromYAML(data)
				res = &client.ConfigValidation{Valid: len(errs) == 0, Errors: configProblems(errs)}
				if res.Valid {
					for _, w := range cfg.Warnings() {
						a.notice("WARN: %s", w)
					}
				}
			}
			if err := a.emit(res, func(w *tabwriter.Writer, _ bool) {
				if res.Valid {
					fmt.Fprintf(w, "VALID: %s\n", args[0])
					return
				}
				fmt.Fprintf(w, "INVALID: %s\n", args[0])
				w.Flush()
				a.header(w, "CODE", "KEY", "PROBLEM")
				for _, p := range res.Errors {
					row(w, p.Code, dash(p.Key), p.Message)
				}
				w.Flush()
				a.footer(w, len(res.Errors))
			}); err != nil {
				return err
			}
			if !res.Valid {
				return errSilentFailure
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&remote, "remote", false, "let the target server validate the file")
	return cmd
}

func (a *app) configServerReload() *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the server re-read its configuration",
		Long: `Make the server re-read its configuration file, environment and flags.

Keys that can change at run time are applied at once; the others are listed as
needing a restart and keep their running values. An invalid configuration changes
nothing and exits 1 with the problems found.`,
		Example: "  tokmesh-cli config server reload\n  tokmesh-cli -t prod config server reload -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			stop := a.spin("Reloading the configuration…")
			res, err := c.ReloadConfig(a.ctx(cmd))
			stop()
			if err != nil {
				return err
			}
			if len(res.RestartRequired) > 0 {
				a.notice("NOTE: %d changed key(s) take effect only after a restart", len(res.RestartRequired))
			}
			return a.emit(res, func(w *tabwriter.Writer, _ bool) {
				a.kv(w, "applied", list(res.Applied), "restart_required", list(res.RestartRequired))
			})
		},
	}
}

// list renders a string list for tables ("-" when empty).
func list(items []string) string {
	if len(items) == 0 {
		return "-"
	}
	return strings.Join(items, ", ")
}

// cliSettings is what `config cli show` prints.
type cliSettings struct {
	ConfigFile       string                   `json:"config_file"`
	ConfigFileExists bool                     `json:"config_file_exists"`
	Current          string                   `json:"current"`
	Target           string                   `json:"target"`
	Endpoint         string                   `json:"endpoint,omitempty"`
	TargetError      string                   `json:"target_error,omitempty"`
	APIKey           string                   `json:"api_key"`
	APIKeySource     string                   `json:"api_key_source"`
	Output           string                   `json:"output"`
	Timeout          string                   `json:"timeout"`
	NoColor          bool                     `json:"no_color"`
	Quiet            bool                     `json:"quiet"`
	Targets          map[string]targetSummary `json:"targets"`
}

type targetSummary struct {
	Socket     string `json:"socket,omitempty"`
	URL        string `json:"url,omitempty"`
	APIKey     string `json:"api_key,omitempty"`
	APIKeyFile string `json:"api_key_file,omitempty"`
	APIKeyEnv  string `json:"api_key_env,omitempty"`
	CAFile     string `json:"ca_file,omitempty"`
	CertFile   string `json:"cert_file,omitempty"`
	KeyFile    string `json:"key_file,omitempty"`
}

// redactKey keeps the key ID of "<key_id>:<secret>" and hides the secret.
func redactKey(k string) string {
	if k == "" {
		return ""
	}
	if id, _, ok := strings.Cut(k, ":"); ok && id != "" {
		return id + ":<redacted>"
	}
	return "<redacted>"
}

func (a *app) configCLIShow() *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Print the effective CLI settings (secrets redacted)",
		Long: `Print the settings this CLI would use: the profile file, the target and its API
key (the secret is never printed), output format, timeout and colour. Each setting
is resolved as flag > environment > profile file > default.`,
		Example: "  tokmesh-cli config cli show\n  tokmesh-cli -t prod config cli show -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cliSettings{ConfigFile: a.s.configPath, ConfigFileExists: a.file != nil, Target: a.s.target,
				Output: a.s.output, Timeout: a.s.timeout.String(), NoColor: !a.colourAllowed(), Quiet: a.s.quiet,
				Targets: map[string]targetSummary{}}
			if a.file != nil {
				out.Current = a.file.GetString("current")
				for name := range a.file.GetStringMap("targets") {
					var p targetProfile
					if err := a.file.UnmarshalKey("targets."+name, &p); err != nil {
						continue
					}
					out.Targets[name] = targetSummary{Socket: p.Socket, URL: p.URL, APIKey: redactKey(p.APIKey),
						APIKeyFile: p.APIKeyFile, APIKeyEnv: p.APIKeyEnv, CAFile: p.CAFile, CertFile: p.CertFile, KeyFile: p.KeyFile}
				}
			}
			if rt, err := a.resolveTarget(); err != nil {
				out.TargetError = classify(err).msg
			} else {
				out.Endpoint = rt.target
				if rt.target == "local" {
					p := client.ResolveLocalSocket()
					if abs, err := filepath.Abs(p); err == nil {
						p = abs
					}
					out.Endpoint = "unix:" + p
				}
				out.APIKey, out.APIKeySource = redactKey(rt.key), rt.keySource
			}
			return a.emit(out, func(w *tabwriter.Writer, wide bool) {
				file := dash(out.ConfigFile)
				if out.ConfigFile != "" && !out.ConfigFileExists {
					file += " (not found)"
				}
				endpoint := out.Endpoint
				if out.TargetError != "" {
					endpoint = "error: " + out.TargetError
				}
				key := "-"
				if out.APIKey != "" {
					key = out.APIKey + " (from " + out.APIKeySource + ")"
				}
				a.kv(w, "config_file", file, "current", dash(out.Current), "target", out.Target, "endpoint", dash(endpoint),
					"api_key", key, "output", out.Output, "timeout", out.Timeout,
					"no_color", strconv.FormatBool(out.NoColor), "quiet", strconv.FormatBool(out.Quiet))
				if len(out.Targets) == 0 {
					return
				}
				w.Flush()
				fmt.Fprintln(w)
				a.header(w, "PROFILE", "ENDPOINT", "API KEY")
				names := make([]string, 0, len(out.Targets))
				for n := range out.Targets {
					names = append(names, n)
				}
				sort.Strings(names)
				for _, n := range names {
					t := out.Targets[n]
					ep := t.URL
					if t.Socket != "" {
						ep = socketTarget(t.Socket)
					}
					key := "-"
					switch {
					case t.APIKey != "":
						key = t.APIKey
					case t.APIKeyFile != "":
						key = "file " + t.APIKeyFile
					case t.APIKeyEnv != "":
						key = "env " + t.APIKeyEnv
					}
					row(w, n, dash(ep), key)
				}
			})
		},
	}
}

// humanDuration renders seconds for people ("3d4h", "2h5m", "42s").
func humanDuration(seconds int64) string {
	days, rest := seconds/86400, seconds%86400
	h, rest := rest/3600, rest%3600
	m, sec := rest/60, rest%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm%ds", m, sec)
	}
	return fmt.Sprintf("%ds", sec)
}
