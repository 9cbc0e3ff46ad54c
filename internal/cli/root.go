// Package cli holds berth's commands. Each is a thin shell: it parses flags and calls into the
// packages that do the work.
package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Root returns the berth command tree.
func Root() *cobra.Command {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "berth is an OCI registry with Azure Container Registry's identity and access model",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), versionCmd())
	return root
}

// Version is set at build time with -ldflags "-X …/cli.Version=…"; otherwise it comes from the
// module build information.
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print berth's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "berth", version())
			return err
		},
	}
}
