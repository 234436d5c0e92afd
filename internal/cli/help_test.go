package cli

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestFlagUsage_NoBackticks: pflag takes `text` in a flag's usage string
// as the name of the flag's value, so "(see `backup list`)" rendered as
// "--id backup list   ID of a backup…". No flag usage may contain one.
func TestFlagUsage_NoBackticks(t *testing.T) {
	a := &app{env: Env{Getenv: func(string) string { return "" }}}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		check := func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: usage has a backtick: %q", c.CommandPath(), f.Name, f.Usage)
			}
		}
		c.LocalFlags().VisitAll(check)
		c.PersistentFlags().VisitAll(check)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(a.buildRoot())
}

// TestBackupRestoreHelp_IDFlagIsAString: the --id line shows the value
// type, not words taken from the description.
func TestBackupRestoreHelp_IDFlagIsAString(t *testing.T) {
	r := newRunner(t)
	out := r.must("backup", "restore", "--help").stdout
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "--id") {
			if !strings.Contains(l, "--id string") || !strings.Contains(l, "backup list") {
				t.Fatalf("--id help line: %q", l)
			}
			return
		}
	}
	t.Fatalf("no --id in:\n%s", out)
}
