// Package cli holds berth's commands. Each is a thin shell: it parses flags and calls into the
// packages that do the work.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Env is what the commands read and write besides their arguments.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// OpenURL shows a web page to the person (single sign-on); nil opens the desktop's browser
	// ($BROWSER, else xdg-open or the system's opener).
	OpenURL func(string)
}

// OSEnv is the process's own environment.
func OSEnv() Env {
	return Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Execute runs berth with args (without the program name).
func Execute(ctx context.Context, env Env, args []string) error {
	root := Root(env)
	root.SetArgs(joinBoolArgs(root, joinRepositoryArgs(args)))
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	return root.ExecuteContext(ctx)
}

// Root returns the berth command tree.
func Root(env Env) *cobra.Command {
	a := &app{stdin: env.Stdin, stdout: env.Stdout, stderr: env.Stderr, getenv: env.Getenv, openURL: env.OpenURL}
	if a.openURL == nil {
		a.openURL = func(u string) { openBrowser(env.Getenv("BROWSER"), u) }
	}
	root := &cobra.Command{
		Use:           "berth",
		Short:         "berth is an OCI registry with Azure Container Registry's identity and access model",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       readBuildInfo().String(),
	}
	root.SetVersionTemplate("berth {{.Version}}\n")
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) { a.tableColumns = cmd.Annotations["table"] }
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "json", "output format: json, jsonc, yaml, yamlc, table, tsv or none (berth logs also: jsonl)")
	root.PersistentFlags().StringVar(&a.query, "query", "", "JMESPath query applied to the output, e.g. passwords[0].value")
	root.PersistentFlags().StringVar(&a.caFile, "ca-file", "", "trust this CA (PEM) for the server's HTTPS, besides the system's (also BERTH_CA_FILE; berth auth login keeps it)")
	root.PersistentFlags().BoolVar(&a.insecure, "insecure", false, "do not verify the server's certificate (a lab with a self-signed one; berth auth login keeps it)")
	root.PersistentFlags().BoolVar(&a.onlyErrors, "only-show-errors", false, "only show errors, suppressing warnings")
	root.PersistentFlags().BoolVar(&a.debug, "debug", false, "print each HTTP request and its answer (with the correlation id) on stderr; credentials redacted, bodies not shown")
	root.AddCommand(serveCmd(), migrateCmd(), a.gcCmd(), healthcheckCmd(), a.ownerCmd(), a.versionCmd(), a.authCmd(), a.loginCmd(), a.registryCmd(), a.credentialCmd(), a.repositoryCmd(), a.manifestCmd(), a.purgeCmd(), a.configCmd(), a.webhookCmd(), a.importCmd(),
		a.tokenCmd(), a.scopeMapCmd(), a.userCmd(), a.groupCmd(), a.spCmd(), a.identityProviderCmd(), a.kubernetesCmd(),
		a.networkRuleCmd(), a.roleCmd(), a.explainCmd(), a.logsCmd(), a.checkHealthCmd())
	return root
}

// Version and Commit are set at build time with
// -ldflags "-X github.com/berth-registry/berth/internal/cli.Version=v1.2.3 -X …/cli.Commit=…";
// otherwise they come from the build information: go install of a tagged module gives the
// version, and go build or go install in a git checkout the commit.
var Version, Commit = "", ""

// buildInfo is what `berth version` prints.
type buildInfo struct {
	Berth      string `json:"berth"`
	Commit     string `json:"commit"`
	CommitTime string `json:"commitTime,omitempty"`
	Modified   bool   `json:"modified"` // built from a checkout with uncommitted changes
	Go         string `json:"go"`
	Platform   string `json:"platform"`
}

func readBuildInfo() buildInfo {
	b := buildInfo{Berth: Version, Commit: Commit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.Berth == "" && bi.Main.Version != "" {
			b.Berth = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				b.CommitTime = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Berth == "" {
		b.Berth = "(devel)"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}

func version() string { return readBuildInfo().Berth }

// String is the one line of `berth --version`.
func (b buildInfo) String() string {
	commit := b.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if b.Modified {
		commit += ", modified"
	}
	return fmt.Sprintf("%s (commit %s, %s, %s)", b.Berth, commit, b.Go, b.Platform)
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print berth's version, commit and Go version",
		Long: `Print berth's version, the commit it was built from (from the build information, or
-ldflags when the build had no git checkout), the Go version and the platform, as JSON by default
(-o table|tsv, --query). 'berth --version' prints the same on one line.`,
		Args:        cobra.NoArgs,
		Annotations: table(`{Berth: berth, Commit: commit, Go: go, Platform: platform}`),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.print(readBuildInfo())
		},
	}
}
