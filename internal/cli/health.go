package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-registry/berth/internal/checkhealth"
)

// checkHealthCmd is `berth check-health`, az acr check-health for berth.
func (a *app) checkHealthCmd() *cobra.Command {
	var o checkhealth.Options
	cmd := &cobra.Command{
		Use:   "check-health",
		Short: "Check the client environment and the connection to a registry, with az acr check-health's error codes",
		Long: `Check the client environment and the connection to a registry.

In order: the container tool (DOCKER_COMMAND, default docker; podman works too) and its daemon,
its version, berth's version, the registry's login server (an upper-case name is an error), DNS,
TLS (trusted, not expiring within 30 days), the challenge of /v2/ (403: network rules), clock
skew, a refresh token and an access token for the signed-in identity, the credentials docker,
podman and helm store for the login server (expired, refused, or in the way of anonymous pull),
a pull of --repository, and helm.

--name takes a registry name (resolved through 'berth auth login') or a login server (host[:port]).
Each error prints its code, message and fix; see ` + checkhealth.DocsURL + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Getenv, o.Version = a.getenv, version()
			s, _ := a.loadSession()
			hc, err := a.httpClient(a.tlsFor(s), 30*time.Second)
			if err != nil {
				return err
			}
			o.HTTP = hc
			if c, _, err := a.client(); err == nil {
				o.Session = c
			}
			if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				in := bufio.NewReader(a.stdin)
				o.Confirm = func(q string) bool {
					fmt.Fprintf(a.stderr, "%s (y/N): ", q)
					line, _ := in.ReadString('\n')
					return strings.EqualFold(strings.TrimSpace(line), "y") || strings.EqualFold(strings.TrimSpace(line), "yes")
				}
			}
			structured := cmd.Flags().Changed("output") || a.query != ""
			if !structured {
				o.Report = func(r checkhealth.Result) { a.writeHealth(r, o.IgnoreErrors) }
			}
			results, err := checkhealth.Run(cmd.Context(), o)
			if structured {
				if perr := a.print(results); perr != nil {
					return perr
				}
			} else {
				fmt.Fprintf(a.stdout, "Please refer to %s for more information.\n", checkhealth.DocsURL)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Name, "name", "n", "", "registry name, or its login server (host[:port])")
	f.BoolVar(&o.IgnoreErrors, "ignore-errors", false, "run every check, even after errors")
	f.BoolVarP(&o.Yes, "yes", "y", false, "do not ask before the pull check")
	f.StringVar(&o.Repository, "repository", "", "REPO[:TAG] to pull a manifest and its smallest blob from")
	f.BoolVar(&o.PlainHTTP, "plain-http", false, "talk to the login server over http (default: the signed-in server's scheme, else https)")
	return cmd
}

// writeHealth prints a result the way az acr check-health does.
func (a *app) writeHealth(r checkhealth.Result, ignoring bool) {
	switch r.Status {
	case checkhealth.StatusError:
		fmt.Fprintf(a.stdout, "%s An error occurred: %s\n%s\n", time.Now().UTC().Format("2006-01-02 15:04:05.000000"), r.Code, r.Message)
		if r.Detail != "" {
			fmt.Fprintf(a.stdout, "  detail: %s\n", r.Detail)
		}
		fmt.Fprintf(a.stdout, "  fix: %s\n", r.Fix)
		if !ignoring {
			fmt.Fprintf(a.stdout, "Please refer to %s#%s for more information.\n", checkhealth.DocsURL, strings.ToLower(r.Code))
		}
	case checkhealth.StatusWarning:
		if !a.onlyErrors {
			fmt.Fprintf(a.stdout, "WARNING: %s\n", r.Message)
		}
	default:
		fmt.Fprintln(a.stdout, r.Message)
	}
}
