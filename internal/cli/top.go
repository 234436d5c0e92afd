package cli

import "github.com/spf13/cobra"

// topCmd is `tokmesh-cli top` (07-tools §1.7). Owned by the TUI work; it
// is registered here so the command tree is complete.
func (a *app) topCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "top",
		Short: "Live dashboard of nodes, sessions, keys and latency",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErr("top is not available in this build yet")
		},
	}
}
