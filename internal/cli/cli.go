// Package cli is tokmesh-cli (07-tools §1): a cobra command tree over
// pkg/client, settings from flags > TOKMESH_* environment > profile file
// (viper) > defaults, and sysexits exit codes.
package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/yndnr/tokmesh-go/internal/buildinfo"
	"github.com/yndnr/tokmesh-go/pkg/client"
)

// Exit codes (07-tools §1.6).
const (
	ExitOK          = 0
	ExitFailure     = 1  // error envelope, invalid token, not ready
	ExitDeclined    = 2  // interrupted or declined at a prompt
	ExitUsage       = 64 // EX_USAGE
	ExitData        = 65 // EX_DATAERR
	ExitUnavailable = 69 // EX_UNAVAILABLE
	ExitConfig      = 78 // EX_CONFIG
)

// CLI error codes (07-tools §1.5).
const (
	CodeConfig   = "TM-CLI-1001"
	CodeConnect  = "TM-CLI-1002"
	CodeTLS      = "TM-CLI-1003"
	CodeNoAPIKey = "TM-CLI-1004"
	CodeUsage    = "TM-CLI-1005"
	CodeTimeout  = "TM-CLI-1006"
	CodeData     = "TM-CLI-1007"
)

func init() {
	// Help lists commands in the order of the spec's command tree (most
	// used first), not alphabetically.
	cobra.EnableCommandSorting = false
}

// Env is what the CLI reads from and writes to; tests fill it in.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
	// StdinTTY / StdoutTTY / StderrTTY report whether they are terminals
	// (default: isTerminal). Prompts need StdinTTY, colour in
	// tables StdoutTTY, spinners and progress bars StderrTTY.
	StdinTTY, StdoutTTY, StderrTTY func() bool
	// Context is cancelled when the user interrupts (Ctrl+C); nil means
	// context.Background().
	Context context.Context
}

// Run runs tokmesh-cli with args (without the program name) on the real
// environment and returns the exit code. The first Ctrl+C (or SIGTERM)
// cancels the running command, which then exits 2; a second one kills the
// process the default way.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := interruptContext()
	defer stop()
	return Main(args, Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Context: ctx})
}

// interruptContext is cancelled on the first SIGINT/SIGTERM, after which
// the signals get their default behaviour back.
func interruptContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			signal.Stop(ch)
			cancel()
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		signal.Stop(ch)
		cancel()
	}
}

// isTerminal reports whether v is a terminal: a terminal-device ioctl
// (TCGETS / GetConsoleMode) must succeed, so a character device that is no
// terminal (/dev/null) is not one — `revoke ID </dev/null` must refuse
// without --force rather than prompt and read EOF. The check runs through
// SyscallConn so it does not switch the descriptor to blocking mode as
// Fd() would.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok || f == nil {
		return false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	tty := false
	if err := rc.Control(func(fd uintptr) { tty = isatty.IsTerminal(fd) || isatty.IsCygwinTerminal(fd) }); err != nil {
		return false
	}
	return tty
}

// cliError is an error with its exit code and CLI/server code.
type cliError struct {
	exit      int
	code      string
	msg       string
	requestID string
	details   map[string]any
	hint      string
}

func (e *cliError) Error() string { return e.msg }

func usageErr(format string, a ...any) error {
	return &cliError{exit: ExitUsage, code: CodeUsage, msg: fmt.Sprintf(format, a...)}
}

func dataErr(format string, a ...any) error {
	return &cliError{exit: ExitData, code: CodeData, msg: fmt.Sprintf(format, a...)}
}

func configErr(code, hint, format string, a ...any) error {
	return &cliError{exit: ExitConfig, code: code, msg: fmt.Sprintf(format, a...), hint: hint}
}

// errDeclined: the user answered no (exit 2, nothing printed but a note).
var errDeclined = &cliError{exit: ExitDeclined, msg: "declined at the confirmation prompt"}

// errSilentFailure: exit 1 after the command printed its own result
// (invalid token).
var errSilentFailure = &cliError{exit: ExitFailure}

// hints for common server codes.
var hints = map[string]string{
	"TM-AUTH-4010":  "pass an API key with -k/--api-key or TOKMESH_API_KEY, or use the local admin socket (-t local)",
	"TM-AUTH-4011":  "check the API key (format <key_id>:<secret>)",
	"TM-AUTH-4012":  "the key is disabled or expired; enable it or use another key",
	"TM-AUTH-4014":  "the local clock is too far from the server's; check NTP",
	"TM-AUTH-4030":  "the key's role does not allow this; use an admin key",
	"TM-SESS-4040":  "check the session ID (tmss-…); `tokmesh-cli session list -u USER` lists live sessions",
	"TM-ADMIN-4041": "check the ID; `tokmesh-cli apikey list` lists keys",
	"TM-SYS-5030":   "the node is not ready yet (recovering, restoring or draining); retry shortly",
	"TM-SYS-4040":   "the server does not know this route; is it an older version? (`tokmesh-cli version`)",
	"TM-ADMIN-4091": "another backup, restore or cluster operation is running; `tokmesh-cli backup status` shows the latest restore",
	"TM-ADMIN-4221": "the file is not a backup of this cluster's key (magic, version, checksum or key ID mismatch)",
	"TM-ADMIN-4291": "the same operation ran less than a minute ago; wait and retry",
	"TM-ADMIN-5031": "a restore is in progress; `tokmesh-cli backup status` shows it",
	"TM-CLST-4001":  "this server is standalone; cluster operations need cluster mode (`tokmesh-cli cluster status`)",
}

// withHint replaces the generic hint of a server error code with one that
// fits the command (TM-ADMIN-4041 means a key, backup, job or node).
func withHint(err error, code, hint string) error {
	var ae *client.Error
	if errors.As(err, &ae) && ae.Code == code {
		ce := classify(err)
		ce.hint = hint
		return ce
	}
	return err
}

// classify turns any error into a cliError.
func classify(err error) *cliError {
	var ce *cliError
	if errors.As(err, &ce) {
		return ce
	}
	// Before the transport check: a request cut short by Ctrl+C comes back
	// as a TransportError wrapping context.Canceled.
	if errors.Is(err, context.Canceled) {
		return &cliError{exit: ExitDeclined, msg: "interrupted"}
	}
	var ae *client.Error
	if errors.As(err, &ae) {
		return &cliError{exit: ExitFailure, code: ae.Code, msg: ae.Message, requestID: ae.RequestID, details: ae.Details, hint: hints[ae.Code]}
	}
	var te *client.TransportError
	if errors.As(err, &te) {
		switch te.Kind {
		case client.KindTLS:
			hint := "check --target and the CA file of the profile (ca_file)"
			var rh tls.RecordHeaderError
			if errors.Is(te, http.ErrSchemeMismatch) || errors.As(te, &rh) {
				hint = "the port does not speak TLS: use http:// for a plaintext port, or the server's HTTPS port (default 5443)"
			}
			return &cliError{exit: ExitUnavailable, code: CodeTLS, msg: te.Error(), hint: hint}
		case client.KindTimeout:
			return &cliError{exit: ExitUnavailable, code: CodeTimeout, msg: te.Error(), hint: "raise --timeout or check the server's load"}
		case client.KindBadData:
			return &cliError{exit: ExitData, code: CodeData, msg: te.Error(), hint: "is the target a TokMesh server?"}
		}
		hint := "is tokmesh-server running? Pick another server with -t/--target (URL, unix:PATH or a profile name)"
		if strings.HasPrefix(te.Target, "unix:") {
			hint = "is tokmesh-server running on this machine? Run from the server's working directory (./data/admin.sock), or pass -t unix:PATH or -t https://HOST:5443"
		}
		return &cliError{exit: ExitUnavailable, code: CodeConnect, msg: te.Error(), hint: hint}
	}
	// Errors from cobra itself: unknown command or flag, wrong arguments.
	return &cliError{exit: ExitUsage, code: CodeUsage, msg: err.Error(), hint: "see --help"}
}

// settings are the effective global settings.
type settings struct {
	target     string
	targetFrom origin
	apiKey     string
	output     string
	timeout    time.Duration
	noColor    bool
	quiet      bool
	configPath string
	// apiKeySource says where apiKey came from (for `config cli show`).
	apiKeySource string

	// resolved profile target fields
	profile targetProfile
}

type targetProfile struct {
	Socket     string `mapstructure:"socket"`
	URL        string `mapstructure:"url"`
	APIKey     string `mapstructure:"api_key"`
	APIKeyFile string `mapstructure:"api_key_file"`
	APIKeyEnv  string `mapstructure:"api_key_env"`
	CAFile     string `mapstructure:"ca_file"`
	CertFile   string `mapstructure:"cert_file"`
	KeyFile    string `mapstructure:"key_file"`
}

// app is one invocation.
type app struct {
	env   Env
	flags struct {
		target, apiKey, output, timeout, config string
		noColor, quiet                          bool
	}
	root *cobra.Command
	s    settings
	file *viper.Viper // the profile file (nil when absent)
	// newClient is resolved lazily by client().
	c *client.Client
	// headers are the table headers written so far (paint makes them bold).
	headers []string
}

// Main runs the CLI on env and returns the exit code.
func Main(args []string, env Env) int {
	if env.Stdin == nil {
		env.Stdin = os.Stdin
	}
	if env.Stdout == nil {
		env.Stdout = os.Stdout
	}
	if env.Stderr == nil {
		env.Stderr = os.Stderr
	}
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.StdinTTY == nil {
		in := env.Stdin
		env.StdinTTY = func() bool { return isTerminal(in) }
	}
	if env.StdoutTTY == nil {
		out := env.Stdout
		env.StdoutTTY = func() bool { return isTerminal(out) }
	}
	if env.StderrTTY == nil {
		errw := env.Stderr
		env.StderrTTY = func() bool { return isTerminal(errw) }
	}
	if env.Context == nil {
		env.Context = context.Background()
	}
	a := &app{env: env}
	a.root = a.buildRoot()
	a.root.SetArgs(args)
	a.root.SetIn(env.Stdin)
	a.root.SetOut(env.Stdout)
	a.root.SetErr(env.Stderr)
	err := a.root.ExecuteContext(env.Context)
	if a.c != nil {
		a.c.Close()
	}
	if err == nil {
		return ExitOK
	}
	ce := classify(err)
	if a.s.output == "" {
		// cobra failed before the settings were resolved (unknown command
		// or flag, missing argument): -o json still means a JSON error.
		a.s.output = a.earlyOutput(args)
	}
	a.printError(ce)
	return ce.exit
}

// earlyOutput is the output format for an error raised before
// resolveSettings ran, from the raw arguments (flag parsing may have
// stopped before -o), TOKMESH_OUTPUT or the profile file, in that order.
// Anything unusable means table.
func (a *app) earlyOutput(args []string) string {
	valid := func(v string) bool { return v == "table" || v == "wide" || v == "json" || v == "yaml" }
	flagVal := func(long, short string) (string, bool) {
		val, found := "", false
		for i := 0; i < len(args); i++ {
			arg := args[i]
			if arg == "--" {
				break
			}
			next := func() string {
				if i+1 < len(args) {
					i++
					return args[i]
				}
				return ""
			}
			switch {
			case arg == "--"+long:
				val, found = next(), true
			case strings.HasPrefix(arg, "--"+long+"="):
				val, found = strings.TrimPrefix(arg, "--"+long+"="), true
			case short != "" && len(arg) > 1 && arg[0] == '-' && arg[1] != '-':
				// -o json, -ojson, -o=json, and after bool shorthands: -qo json.
				rest := strings.TrimLeft(arg[1:], "q")
				if v, ok := strings.CutPrefix(rest, short); ok {
					if v == "" {
						v = next()
					}
					val, found = strings.TrimPrefix(v, "="), true
				}
			}
		}
		return val, found
	}
	if v, ok := flagVal("output", "o"); ok {
		return v
	}
	if v := a.env.Getenv("TOKMESH_OUTPUT"); v != "" {
		return v
	}
	path, ok := flagVal("config", "")
	if !ok {
		path = a.env.Getenv("TOKMESH_CLI_CONFIG")
	}
	if path == "" {
		path = a.defaultConfigPath()
	}
	if path != "" {
		v := viper.New()
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if v.ReadInConfig() == nil && valid(v.GetString("output")) {
			return v.GetString("output")
		}
	}
	return "table"
}

func (a *app) printError(ce *cliError) {
	if ce == errSilentFailure {
		return
	}
	if ce == errDeclined || ce.code == "" {
		fmt.Fprintln(a.env.Stderr, a.errPalette().warnText("Aborted: ")+ce.msg)
		return
	}
	if a.s.output == "json" {
		details := ce.details
		if details == nil {
			details = map[string]any{}
		}
		writeJSON(a.env.Stderr, map[string]any{"code": ce.code, "message": ce.msg, "request_id": ce.requestID, "details": details})
		return
	}
	line := ce.msg + " (code " + ce.code
	if ce.requestID != "" {
		line += ", request " + ce.requestID
	}
	fmt.Fprintln(a.env.Stderr, a.errPalette().errorText("Error: ")+line+")")
	details := ce.details
	if probs, ok := details["errors"].([]any); ok && len(probs) > 0 {
		// Configuration problems (reload): one line each.
		for _, p := range probs {
			if m, ok := p.(map[string]any); ok {
				fmt.Fprintf(a.env.Stderr, "  %v %v: %v\n", m["code"], m["key"], m["message"])
			}
		}
		details = withoutKey(details, "errors")
	}
	if len(details) > 0 {
		fmt.Fprintf(a.env.Stderr, "Details: %s\n", compactJSON(details))
	}
	if ce.hint != "" {
		fmt.Fprintln(a.env.Stderr, "Hint: "+ce.hint)
	}
}

func (a *app) notice(format string, args ...any) {
	if a.s.quiet {
		return
	}
	fmt.Fprintf(a.env.Stderr, format+"\n", args...)
}

// warn prints even with --quiet (secrets shown once).
func (a *app) warn(format string, args ...any) {
	fmt.Fprintf(a.env.Stderr, a.errPalette().warnText("WARNING:")+" "+format+"\n", args...)
}

func withoutKey(m map[string]any, key string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func (a *app) buildRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "tokmesh-cli",
		Short: "Manage TokMesh sessions, API keys and servers",
		Long: `tokmesh-cli manages TokMesh servers: sessions, API keys, configuration, backups,
health and clusters.

Without configuration it talks to the local admin socket of a server on this machine
(./data/admin.sock, then /var/lib/tokmesh-server/admin.sock), which needs no API key.
Remote servers are reached with -t URL and an admin API key (-k or TOKMESH_API_KEY),
or through named targets in the profile file (~/.config/tokmesh-cli/cli.yaml).

Exit codes: 0 ok, 1 the server refused (or: invalid token, not ready, invalid
configuration), 2 interrupted or declined, 64 usage, 65 bad input data,
69 server unavailable, 78 CLI configuration error.`,
		Example: `  tokmesh-cli apikey create --role issuer
  tokmesh-cli -t https://tokmesh.internal:5443 -k "$KEY" session list -u u-1001 -o json
  tokmesh-cli -t prod system status
  tokmesh-cli backup snapshot --description "before upgrade"`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.resolveSettings(cmd) },
		Args:              cobra.NoArgs,
		RunE:              func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.StringVarP(&a.flags.target, "target", "t", "", "profile name, http(s):// URL, unix:PATH, npipe:NAME or local (env TOKMESH_TARGET)")
	pf.StringVarP(&a.flags.apiKey, "api-key", "k", "", "API key <key_id>:<secret> (env TOKMESH_API_KEY)")
	pf.StringVarP(&a.flags.output, "output", "o", "table", "output format: table|wide|json|yaml (env TOKMESH_OUTPUT)")
	pf.StringVar(&a.flags.timeout, "timeout", "30s", "request timeout (env TOKMESH_TIMEOUT)")
	pf.BoolVar(&a.flags.noColor, "no-color", false, "disable colour (env NO_COLOR)")
	pf.BoolVarP(&a.flags.quiet, "quiet", "q", false, "suppress notices, spinners, progress bars and table headers")
	pf.StringVar(&a.flags.config, "config", "", "profile file (env TOKMESH_CLI_CONFIG)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })

	root.AddCommand(a.sessionCmd(), a.apikeyCmd(), a.configCmd(), a.backupCmd(), a.systemCmd(), a.clusterCmd(),
		a.topCmd(), a.completionCmd(), a.versionCmd())
	root.SetHelpCommand(a.helpCmd())
	a.registerCompletions(root)
	return root
}

// group builds a parent command that only holds subcommands: without a
// subcommand it prints its help; an unknown one is a usage error.
func group(use, short, example string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(subs...)
	return cmd
}

// defaultConfigPath is $XDG_CONFIG_HOME/tokmesh-cli/cli.yaml.
func (a *app) defaultConfigPath() string {
	if runtime.GOOS == "windows" {
		if d := a.env.Getenv("APPDATA"); d != "" {
			return filepath.Join(d, "tokmesh-cli", "cli.yaml")
		}
	}
	if d := a.env.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "tokmesh-cli", "cli.yaml")
	}
	if h := a.env.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "tokmesh-cli", "cli.yaml")
	}
	return ""
}

// origin says where a setting's value came from, which decides how a bad
// value is reported: a flag is a usage error (64); the environment and the
// profile file are configuration (TM-CLI-1001, 78), named so the user can
// find the line to fix.
type origin int

const (
	fromDefault origin = iota
	fromFlag
	fromEnv
	fromFile
)

// pick returns flag > env > file > default for one setting.
func (a *app) pick(fs *pflag.FlagSet, flag, envName, fileKey, def string) string {
	v, _ := a.pickFrom(fs, flag, envName, fileKey, def)
	return v
}

// pickFrom is pick that also says where the value came from.
func (a *app) pickFrom(fs *pflag.FlagSet, flag, envName, fileKey, def string) (string, origin) {
	if f := fs.Lookup(flag); f != nil && f.Changed {
		return f.Value.String(), fromFlag
	}
	if envName != "" {
		if v := a.env.Getenv(envName); v != "" {
			return v, fromEnv
		}
	}
	if a.file != nil && fileKey != "" && a.file.IsSet(fileKey) {
		return a.file.GetString(fileKey), fromFile
	}
	return def, fromDefault
}

// badSetting reports an invalid value where it came from (see origin);
// want describes the accepted values.
func (a *app) badSetting(o origin, flag, envName, fileKey, value, want string) error {
	switch o {
	case fromEnv:
		return configErr(CodeConfig, "fix or unset "+envName,
			"invalid %s=%q in the environment (want %s)", envName, value, want)
	case fromFile:
		return configErr(CodeConfig, "fix "+fileKey+" in the profile file (or override it with --"+flag+")",
			"invalid %s %q in profile file %s (want %s)", fileKey, value, a.s.configPath, want)
	}
	return usageErr("invalid --%s %q (want %s)", flag, value, want)
}

func (a *app) resolveSettings(cmd *cobra.Command) error {
	fs := cmd.Flags()
	// Output first, so later errors render in the requested format.
	a.s.output = a.pick(fs, "output", "TOKMESH_OUTPUT", "", "table")
	a.s.quiet = a.flags.quiet

	path := a.pick(fs, "config", "TOKMESH_CLI_CONFIG", "", "")
	explicit := path != ""
	if !explicit {
		path = a.defaultConfigPath()
	}
	a.s.configPath = path
	if path != "" {
		fi, err := os.Stat(path)
		switch {
		case err == nil:
			if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
				a.notice("WARN: profile file %s is readable by group/others (mode %04o); chmod 600 it", path, fi.Mode().Perm())
			}
			v := viper.New()
			v.SetConfigFile(path)
			v.SetConfigType("yaml")
			if err := v.ReadInConfig(); err != nil {
				return configErr(CodeConfig, "fix or remove the profile file", "cannot read profile file %s: %v", path, err)
			}
			a.file = v
		case explicit || !errors.Is(err, os.ErrNotExist):
			return configErr(CodeConfig, "check --config / TOKMESH_CLI_CONFIG", "cannot read profile file %s: %v", path, err)
		}
	}
	out, o := a.pickFrom(fs, "output", "TOKMESH_OUTPUT", "output", "table")
	switch out {
	case "table", "wide", "json", "yaml":
		a.s.output = out
	default:
		if o != fromFlag {
			// Render this error in the format of the flag (or the default),
			// not in the invalid one.
			a.s.output = "table"
		}
		return a.badSetting(o, "output", "TOKMESH_OUTPUT", "output", out, "table, wide, json or yaml")
	}
	to, o := a.pickFrom(fs, "timeout", "TOKMESH_TIMEOUT", "timeout", "30s")
	d, err := time.ParseDuration(to)
	if err != nil || d <= 0 {
		return a.badSetting(o, "timeout", "TOKMESH_TIMEOUT", "timeout", to, "a positive duration such as 30s")
	}
	a.s.timeout = d
	fileNoColor := false
	if a.file != nil && a.file.IsSet("no_color") {
		// A YAML boolean, or a string strconv.ParseBool accepts.
		switch v := a.file.Get("no_color").(type) {
		case bool:
			fileNoColor = v
		case string:
			if fileNoColor, err = strconv.ParseBool(v); err != nil {
				return a.badSetting(fromFile, "no-color", "NO_COLOR", "no_color", v, "true or false")
			}
		default:
			return a.badSetting(fromFile, "no-color", "NO_COLOR", "no_color", fmt.Sprint(v), "true or false")
		}
	}
	a.s.noColor = a.flags.noColor || a.env.Getenv("NO_COLOR") != "" || fileNoColor
	a.s.target, a.s.targetFrom = a.pickFrom(fs, "target", "TOKMESH_TARGET", "current", "local")
	a.s.apiKey = a.pick(fs, "api-key", "TOKMESH_API_KEY", "", "")
	switch {
	case a.s.apiKey == "":
		a.s.apiKeySource = ""
	case fs.Changed("api-key"):
		a.s.apiKeySource = "flag --api-key"
	default:
		a.s.apiKeySource = "env TOKMESH_API_KEY"
	}
	return nil
}

// resolvedTarget is the effective target with its profile and API key.
type resolvedTarget struct {
	target    string // local, unix:PATH, npipe:NAME or an http(s) URL
	profile   targetProfile
	name      string // profile name, "" when the target was not one
	key       string
	keySource string // flag, env, profile api_key, api_key_file, api_key_env or ""
}

// resolveTarget applies the profile file to the -t value and picks the API
// key (-k > TOKMESH_API_KEY > the profile's api_key / api_key_file /
// api_key_env).
func (a *app) resolveTarget() (*resolvedTarget, error) {
	rt := &resolvedTarget{target: a.s.target}
	switch {
	case rt.target == "local", strings.HasPrefix(rt.target, "unix:"), strings.HasPrefix(rt.target, "npipe:"),
		strings.HasPrefix(rt.target, "http://"), strings.HasPrefix(rt.target, "https://"):
	default:
		if a.file == nil || !a.file.IsSet("targets."+rt.target) {
			if a.s.targetFrom == fromFile {
				return nil, configErr(CodeConfig, "set current to a name under targets:, or pass -t",
					"invalid current %q in profile file %s: no such target", rt.target, a.s.configPath)
			}
			return nil, configErr(CodeConfig, "use a profile name from the profile file, an http(s):// URL, unix:PATH or local",
				"unknown target %q", rt.target)
		}
		rt.name = rt.target
		if err := a.file.UnmarshalKey("targets."+rt.name, &rt.profile); err != nil {
			return nil, configErr(CodeConfig, "fix the profile file", "invalid profile %q: %v", rt.name, err)
		}
		switch {
		case rt.profile.Socket != "":
			rt.target = socketTarget(rt.profile.Socket)
		case rt.profile.URL != "":
			rt.target = rt.profile.URL
		default:
			return nil, configErr(CodeConfig, "set url or socket in the profile", "profile %q has neither url nor socket", rt.name)
		}
	}
	a.s.profile = rt.profile
	rt.key, rt.keySource = a.s.apiKey, a.s.apiKeySource
	if rt.key == "" {
		prof := rt.profile
		switch {
		case prof.APIKey != "":
			rt.key, rt.keySource = prof.APIKey, "profile api_key"
		case prof.APIKeyFile != "":
			b, err := os.ReadFile(prof.APIKeyFile)
			if err != nil {
				return nil, configErr(CodeConfig, "fix api_key_file in the profile", "cannot read api_key_file: %v", err)
			}
			rt.key, rt.keySource = strings.TrimSpace(string(b)), "profile api_key_file"
		case prof.APIKeyEnv != "":
			rt.key, rt.keySource = a.env.Getenv(prof.APIKeyEnv), "profile api_key_env "+prof.APIKeyEnv
		}
		if rt.key == "" {
			rt.keySource = ""
		}
	}
	return rt, nil
}

// socketTarget is the target of a profile's socket: a named pipe
// (\\.\pipe\NAME, Windows) or a Unix socket path.
func socketTarget(socket string) string {
	if strings.HasPrefix(socket, `\\`) {
		return "npipe:" + socket
	}
	return "unix:" + socket
}

// client builds the client for the effective target (once).
func (a *app) client() (*client.Client, error) { return a.clientWith(true) }

// clientWith builds the client; needKey false is for the public probes
// (/health, /ready), which are called without credentials.
func (a *app) clientWith(needKey bool) (*client.Client, error) {
	if a.c != nil {
		return a.c, nil
	}
	rt, err := a.resolveTarget()
	if err != nil {
		return nil, err
	}
	target, key, prof := rt.target, rt.key, rt.profile
	if strings.HasPrefix(target, "npipe:") && runtime.GOOS != "windows" {
		return nil, configErr(CodeConfig, "use -t unix:PATH or an http(s):// URL",
			"named-pipe targets (%s) exist only on Windows", target)
	}
	http := strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://")
	if !needKey {
		key = ""
	} else if http && key == "" {
		return nil, configErr(CodeNoAPIKey, "pass -k/--api-key, set TOKMESH_API_KEY, or set api_key in the profile",
			"no API key for target %s", target)
	}
	return a.newClient(target, key, prof)
}

func (a *app) newClient(target, key string, prof targetProfile) (*client.Client, error) {
	cfg := client.Config{Target: target, APIKey: key, Timeout: a.s.timeout, UserAgent: "tokmesh-cli/" + buildinfo.Version}
	if strings.HasPrefix(target, "https://") {
		tc, err := tlsConfig(prof)
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, configErr(CodeConfig, "use an http(s):// URL, unix:PATH or local", "%v", err)
	}
	a.c = c
	return c, nil
}

func (a *app) ctx(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// confirm guards a dangerous command: --force skips it; on a TTY it asks
// (want = "" means y/yes, else the exact text); off a TTY it refuses (64).
// Ctrl+C at the prompt exits 2 like a "no".
func (a *app) confirm(force bool, question, want string) error {
	if force {
		return nil
	}
	if !a.env.StdinTTY() {
		return usageErr("refusing a dangerous operation without a terminal; pass --force")
	}
	if want == "" {
		fmt.Fprintf(a.env.Stderr, "%s [y/N] ", question)
	} else {
		fmt.Fprintf(a.env.Stderr, "%s\nType %q to confirm: ", question, want)
	}
	answer := make(chan string, 1)
	go func() {
		// Left blocked on a terminal read if the user interrupts; the
		// process exits right after.
		l, _ := bufio.NewReader(a.env.Stdin).ReadString('\n')
		answer <- l
	}()
	var line string
	select {
	case line = <-answer:
	case <-a.env.Context.Done():
		fmt.Fprintln(a.env.Stderr)
		return &cliError{exit: ExitDeclined, msg: "interrupted"}
	}
	line = strings.TrimSpace(line)
	if want == "" {
		if l := strings.ToLower(line); l == "y" || l == "yes" {
			return nil
		}
		return errDeclined
	}
	if line == want {
		return nil
	}
	return errDeclined
}
