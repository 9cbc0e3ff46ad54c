package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/client"
)

// logsCmd is `berth logs`: the audit events, ACR's ContainerRegistryLoginEvents and
// ContainerRegistryRepositoryEvents.
func (a *app) logsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "logs", Short: "Query the audit events: sign-in attempts and repository operations"}
	cmd.AddCommand(a.eventsCmd("login", "login-events", "Sign-in attempts: who, from where, the result and its reason, the scopes granted and refused"),
		a.eventsCmd("repository", "repository-events", "Pushes, pulls, deletes and untags of manifests"))
	return cmd
}

func (a *app) eventsCmd(kind, use, short string) *cobra.Command {
	var f client.EventFilter
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.

Events are listed newest first. Without --name, the events of every registry (and the
directory's sign-ins) are listed, which needs a reader role at "/". -o jsonl writes every
matching event as one JSON object per line, for export.

The correlation id at the end of a client's error message finds the request's events:
  berth logs login-events --correlation-id 5GZ3…`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.Result != "" && f.Result != "success" && f.Result != "failure" {
				return errors.New("--result must be success or failure")
			}
			if a.output == "jsonl" {
				if a.query != "" {
					return errors.New("--query does not apply to -o jsonl: filter with the flags instead")
				}
				_, _, err := a.call(cmd.Context(), func(ctx context.Context, cl *client.Client) (any, error) {
					return nil, cl.ExportEvents(ctx, kind, f, a.stdout)
				})
				return err
			}
			if a.query == "" && (a.output == "table" || a.output == "tsv") {
				a.query = "[].{time: time, registry: registry, operation: operation, identity: identity, ip: callerIpAddress, status: status, result: result, reason: reason, correlationId: correlationId}"
				if kind == "repository" {
					a.query = "[].{time: time, operation: operation, repository: repository, tag: tag, digest: digest, identity: identity, status: status, result: result, reason: reason, correlationId: correlationId}"
				}
			}
			return a.run(func(ctx context.Context, cl *client.Client) (any, error) {
				if kind == "login" {
					return cl.LoginEvents(ctx, f)
				}
				return cl.RepositoryEvents(ctx, f)
			})(cmd, args)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.Registry, "name", "n", "", "registry name (default: every registry, and the directory)")
	fl.StringVar(&f.Identity, "identity", "", "user, client id, token or registry (admin user) name")
	fl.StringVar(&f.Result, "result", "", "success or failure")
	fl.StringVar(&f.Reason, "reason", "", "machine-readable reason, e.g. bad_password, admin_disabled, ip_denied, insufficient_scope")
	fl.StringVar(&f.IP, "ip", "", "caller IP address")
	fl.StringVar(&f.Operation, "operation", "", "login: token, exchange, registry, directory, list_credentials, password_reset; repository: push, pull, delete, untag")
	fl.StringVar(&f.CorrelationID, "correlation-id", "", "the correlation id of a request (the end of a client's error message)")
	if kind == "login" {
		fl.StringVar(&f.Subject, "subject", "", "the external token's subject of federated and single sign-on sign-ins (system:serviceaccount:NS:NAME, repo:ORG/REPO:ref:…)")
	}
	fl.StringVar(&f.Since, "since", "", "RFC 3339 time, or a duration back from now: 90m, 24h, 7d")
	fl.StringVar(&f.Until, "until", "", "RFC 3339 time, or a duration back from now")
	fl.IntVar(&f.Limit, "limit", 100, "most events to list (with -o jsonl, 0 means all)")
	if kind == "repository" {
		fl.StringVar(&f.Repository, "repository", "", "repository name")
	}
	return c
}
