package cli

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/pkg/client"
)

// noSettings replaces the root's PersistentPreRunE for commands that must
// work whatever the profile file says (help, completion scripts).
func noSettings(*cobra.Command, []string) error { return nil }

func (a *app) helpCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "help [command]",
		Short:             "Help about any command",
		Example:           "  tokmesh-cli help\n  tokmesh-cli help backup restore",
		PersistentPreRunE: noSettings,
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			parent, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, sub := range parent.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					out = append(out, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := c.Root().Find(args)
			if err != nil || target == nil || len(rest) > 0 {
				return usageErr("unknown help topic %q", strings.Join(args, " "))
			}
			return target.Help()
		},
	}
}

// shells are the completion scripts offered, with how to install each.
var shells = []struct{ name, short, long, example string }{
	{"bash", "Print the bash completion script",
		`Print the bash completion script. It needs the bash-completion package.

Load it in the current shell:
  source <(tokmesh-cli completion bash)
Load it for every new shell (Linux):
  tokmesh-cli completion bash | sudo tee /etc/bash_completion.d/tokmesh-cli > /dev/null`,
		"  source <(tokmesh-cli completion bash)\n  tokmesh-cli completion bash > ~/.local/share/bash-completion/completions/tokmesh-cli"},
	{"zsh", "Print the zsh completion script",
		`Print the zsh completion script. Completion must be enabled (autoload -U compinit;
compinit in ~/.zshrc).

Load it for every new shell:
  tokmesh-cli completion zsh > "${fpath[1]}/_tokmesh-cli"`,
		"  tokmesh-cli completion zsh > \"${fpath[1]}/_tokmesh-cli\"\n  source <(tokmesh-cli completion zsh)"},
	{"fish", "Print the fish completion script",
		`Print the fish completion script.

Load it for every new shell:
  tokmesh-cli completion fish > ~/.config/fish/completions/tokmesh-cli.fish`,
		"  tokmesh-cli completion fish > ~/.config/fish/completions/tokmesh-cli.fish\n  tokmesh-cli completion fish | source"},
	{"powershell", "Print the PowerShell completion script",
		`Print the PowerShell completion script.

Load it in the current session:
  tokmesh-cli completion powershell | Out-String | Invoke-Expression
Add that line to your PowerShell profile ($PROFILE) to load it in every session.`,
		"  tokmesh-cli completion powershell | Out-String | Invoke-Expression"},
}

func (a *app) completionCmd() *cobra.Command {
	var subs []*cobra.Command
	for _, sh := range shells {
		subs = append(subs, &cobra.Command{
			Use:     sh.name,
			Short:   sh.short,
			Long:    sh.long,
			Example: sh.example,
			Args:    exactArgs(0),
			RunE: func(cmd *cobra.Command, _ []string) error {
				root, w := cmd.Root(), a.env.Stdout
				switch cmd.Name() {
				case "bash":
					return root.GenBashCompletionV2(w, true)
				case "zsh":
					return root.GenZshCompletion(w)
				case "fish":
					return root.GenFishCompletion(w, true)
				default:
					return root.GenPowerShellCompletionWithDesc(w)
				}
			},
		})
	}
	cmd := group("completion", "Print a shell completion script (bash, zsh, fish, powershell)",
		"  source <(tokmesh-cli completion bash)\n  tokmesh-cli completion zsh > \"${fpath[1]}/_tokmesh-cli\"", subs...)
	cmd.Long = `Print a completion script for your shell. Besides commands and flags it completes
profile names for -t, and session, API key, backup and node IDs by asking the
target server (when it answers within 2 seconds).`
	cmd.PersistentPreRunE = noSettings
	return cmd
}

// completionTimeout bounds the server calls made to complete an ID.
const completionTimeout = 2 * time.Second

// completeFrom completes from a server-side list. arg true: only the first
// positional argument (not for flags).
func (a *app) completeFrom(arg bool, fetch func(ctx context.Context, c *client.Client) ([]cobra.Completion, error)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if arg && len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if err := a.resolveSettings(cmd); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		a.s.timeout = min(a.s.timeout, completionTimeout)
		c, err := a.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(a.ctx(cmd), completionTimeout)
		defer cancel()
		all, err := fetch(ctx, c)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, s := range all {
			if strings.HasPrefix(s, toComplete) {
				out = append(out, s)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func sessionIDs(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	l, err := c.ListSessions(ctx, client.ListSessionsOptions{SortBy: "last_active", Size: 100})
	if err != nil {
		return nil, err
	}
	out := make([]cobra.Completion, 0, len(l.Items))
	for _, s := range l.Items {
		out = append(out, cobra.CompletionWithDesc(s.ID, s.UserID))
	}
	return out, nil
}

func keyIDs(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	l, err := c.ListKeys(ctx, client.ListKeysOptions{Size: 100})
	if err != nil {
		return nil, err
	}
	out := make([]cobra.Completion, 0, len(l.Items))
	for _, k := range l.Items {
		out = append(out, cobra.CompletionWithDesc(k.KeyID, k.Role+" "+k.Status+" "+k.Description))
	}
	return out, nil
}

func backupIDs(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	l, err := c.ListBackups(ctx, 1, 100)
	if err != nil {
		return nil, err
	}
	out := make([]cobra.Completion, 0, len(l.Items))
	for _, b := range l.Items {
		out = append(out, cobra.CompletionWithDesc(b.BackupID, ts(b.CreatedAt)+" "+b.Description))
	}
	return out, nil
}

func clusterNodeIDs(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	res, err := c.ClusterNodes(ctx)
	if err != nil {
		return nil, err
	}
	return nodeIDs(res), nil
}

// profileNames completes -t: "local" and the profile file's targets.
func (a *app) profileNames(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	_ = a.resolveSettings(cmd) // loads the profile file; errors leave it nil
	names := []string{"local"}
	if a.file != nil {
		for n := range a.file.GetStringMap("targets") {
			names = append(names, n)
		}
	}
	sort.Strings(names[1:])
	var out []cobra.Completion
	for _, n := range names {
		if strings.HasPrefix(n, toComplete) {
			out = append(out, n)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func fixed(values ...string) cobra.CompletionFunc {
	return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
}

// registerCompletions attaches dynamic completions to the tree: profile
// names for -t, IDs fetched from the target for commands taking one, fixed
// values for enum flags, and no file names where no file is expected.
func (a *app) registerCompletions(root *cobra.Command) {
	must := func(err error) {
		if err != nil {
			panic("cli: completion registration: " + err.Error()) // a programming error, caught by the tests
		}
	}
	must(root.RegisterFlagCompletionFunc("target", a.profileNames))
	must(root.RegisterFlagCompletionFunc("output", fixed("table", "wide", "json", "yaml")))
	find := func(path ...string) *cobra.Command {
		c, rest, err := root.Find(path)
		if err != nil || len(rest) > 0 {
			panic("cli: no command " + strings.Join(path, " "))
		}
		return c
	}
	for _, p := range [][]string{{"session", "get"}, {"session", "touch"}, {"session", "renew"}, {"session", "revoke"}} {
		find(p...).ValidArgsFunction = a.completeFrom(true, sessionIDs)
	}
	for _, p := range [][]string{{"apikey", "get"}, {"apikey", "enable"}, {"apikey", "disable"}, {"apikey", "rotate"}} {
		find(p...).ValidArgsFunction = a.completeFrom(true, keyIDs)
	}
	find("backup", "download").ValidArgsFunction = a.completeFrom(true, backupIDs)
	must(find("backup", "restore").RegisterFlagCompletionFunc("id", a.completeFrom(false, backupIDs)))
	find("cluster", "remove").ValidArgsFunction = a.completeFrom(true, clusterNodeIDs)
	must(find("system", "gc").RegisterFlagCompletionFunc("type", fixed("expired", "memory", "all")))
	must(find("system", "audit").RegisterFlagCompletionFunc("result", fixed("attempt", "success", "failure")))
	must(find("session", "list").RegisterFlagCompletionFunc("sort-by", fixed("created_at", "last_active")))
	must(find("session", "list").RegisterFlagCompletionFunc("sort-order", fixed("desc", "asc")))
	must(find("apikey", "create").RegisterFlagCompletionFunc("role", fixed("metrics", "validator", "issuer", "admin")))
	must(find("apikey", "list").RegisterFlagCompletionFunc("role", fixed("metrics", "validator", "issuer", "admin")))
	must(find("apikey", "list").RegisterFlagCompletionFunc("status", fixed("active", "disabled")))
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.ValidArgsFunction == nil {
			c.ValidArgsFunction = cobra.NoFileCompletions
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
