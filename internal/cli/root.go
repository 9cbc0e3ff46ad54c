// Package cli holds berth's commands. Each is a thin shell: it parses flags and calls into the
// packages that do the work.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Env is what the commands read and write besides their arguments.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// OSEnv is the process's own environment.
func OSEnv() Env {
	return Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Execute runs berth with args (without the program name).
func Execute(ctx context.Context, env Env, args []string) error {
	root := Root(env)
	root.SetArgs(joinRepositoryArgs(args))
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	return root.ExecuteContext(ctx)
}

// Root returns the berth command tree.
func Root(env Env) *cobra.Command {
	a := &app{stdin: env.Stdin, stdout: env.Stdout, stderr: env.Stderr, getenv: env.Getenv}
	root := &cobra.Command{
		Use:           "berth",
		Short:         "berth is an OCI registry with Azure Container Registry's identity and access model",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "json", "output format: json, table or tsv (berth logs also: jsonl)")
	root.PersistentFlags().StringVar(&a.query, "query", "", "JMESPath query applied to the output, e.g. passwords[0].value")
	root.AddCommand(serveCmd(), migrateCmd(), gcCmd(), versionCmd(), a.authCmd(), a.loginCmd(), a.registryCmd(), a.credentialCmd(),
		a.tokenCmd(), a.scopeMapCmd(), a.userCmd(), a.groupCmd(), a.spCmd(),
		a.networkRuleCmd(), a.roleCmd(), a.explainCmd(), a.logsCmd(), a.checkHealthCmd())
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
