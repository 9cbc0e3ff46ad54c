package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/client"
)

const colsWebhook = `{NAME: name, STATUS: status, SCOPE: scope, ACTIONS: join(' ', actions)}`

// parseHeaders reads az's --headers KEY=VALUE list.
func parseHeaders(hs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, h := range hs {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--headers %q is not KEY=VALUE", h)
		}
		out[k] = v
	}
	return out, nil
}

func (a *app) webhookCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "webhook", Short: "Tell other systems about pushes and deletes (az acr webhook)"}
	var name, registry, uri, scope, status string
	var actions, headers []string
	ids := func(c *cobra.Command) {
		c.Flags().StringVarP(&name, "name", "n", "", "webhook name (5–50 letters and digits)")
		c.Flags().StringVarP(&registry, "registry", "r", "", "registry name")
	}
	need2 := func() error { return errors.Join(need(name, "--name"), need(registry, "--registry")) }
	settings := func(c *cobra.Command) {
		c.Flags().StringVar(&uri, "uri", "", "the receiver's URL (http or https)")
		c.Flags().StringSliceVar(&actions, "actions", nil, "push, delete, chart_push, chart_delete (space- or comma-separated)")
		c.Flags().StringVar(&scope, "scope", "", "repository[:tag] with * wildcards, e.g. team/*:v*; empty: every repository and tag")
		c.Flags().StringSliceVar(&headers, "headers", nil, "custom headers KEY=VALUE (space- or comma-separated), e.g. Authorization=Bearer…")
		c.Flags().StringVar(&status, "status", "", "enabled or disabled")
	}
	create := &cobra.Command{Use: "create", Short: "Create a webhook", Args: cobra.ArbitraryArgs, Annotations: table(colsWebhook),
		Long: `Create a webhook: each push or delete the actions and the scope name is delivered to --uri as
ACR's payload ({id, timestamp, action, target{mediaType, size, digest, length, repository, tag},
request{id, host, method, useragent}}), at least once (the id tells duplicates), retried with
backoff for a day, and signed: X-Berth-Signature-256 is sha256= and the hex HMAC-SHA256 of the
body with the webhook's signing secret ('berth webhook get-config' shows it).

  berth webhook create -n deployhook -r myregistry --uri https://ci.example/hook --actions push --scope 'team/app:*'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			actions = append(actions, args...) // az takes --actions push delete
			return a.run(func(ctx context.Context, c *client.Client) (any, error) {
				if err := need2(); err != nil {
					return nil, err
				}
				hs, err := parseHeaders(headers)
				if err != nil {
					return nil, err
				}
				return c.CreateWebhook(ctx, registry, client.WebhookCreate{Name: name, ServiceURI: uri, CustomHeaders: hs, Actions: actions, Scope: scope, Status: status})
			})(cmd, nil)
		}}
	ids(create)
	settings(create)
	update := &cobra.Command{Use: "update", Short: "Change a webhook", Args: cobra.ArbitraryArgs, Annotations: table(colsWebhook),
		RunE: func(cmd *cobra.Command, args []string) error {
			actions = append(actions, args...)
			return a.run(func(ctx context.Context, c *client.Client) (any, error) {
				if err := need2(); err != nil {
					return nil, err
				}
				var u client.WebhookUpdate
				fl := cmd.Flags()
				if fl.Changed("uri") {
					u.ServiceURI = &uri
				}
				if len(actions) > 0 {
					u.Actions = &actions
				}
				if fl.Changed("scope") {
					u.Scope = &scope
				}
				if fl.Changed("status") {
					u.Status = &status
				}
				if fl.Changed("headers") {
					hs, err := parseHeaders(headers)
					if err != nil {
						return nil, err
					}
					u.CustomHeaders = &hs
				}
				if u == (client.WebhookUpdate{}) {
					return nil, errors.New("nothing to update: give --uri, --actions, --scope, --headers or --status")
				}
				return c.UpdateWebhook(ctx, registry, name, u)
			})(cmd, nil)
		}}
	ids(update)
	settings(update)
	one := func(use, short string, fn func(ctx context.Context, c *client.Client) (any, error)) *cobra.Command {
		c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need2(); err != nil {
				return nil, err
			}
			return fn(ctx, c)
		})}
		ids(c)
		return c
	}
	show := one("show", "Show a webhook", func(ctx context.Context, c *client.Client) (any, error) { return c.Webhook(ctx, registry, name) })
	show.Annotations = table(colsWebhook)
	del := one("delete", "Delete a webhook with its deliveries", func(ctx context.Context, c *client.Client) (any, error) {
		return nil, c.DeleteWebhook(ctx, registry, name)
	})
	ping := one("ping", "Send a ping delivery", func(ctx context.Context, c *client.Client) (any, error) { return c.PingWebhook(ctx, registry, name) })
	events := one("list-events", "List a webhook's deliveries, newest first, with what the receiver answered", func(ctx context.Context, c *client.Client) (any, error) {
		return c.WebhookEvents(ctx, registry, name)
	})
	events.Annotations = table(`{ID: id, ACTION: eventRequestMessage.content.action, STATUS: status, "HTTP STATUS": eventResponseMessage.statusCode, ATTEMPTS: attempts, "LATENCY MS": latencyMs, TIME: time}`)
	cfg := one("get-config", "Show a webhook's URL, custom headers and signing secret", func(ctx context.Context, c *client.Client) (any, error) {
		return c.WebhookConfig(ctx, registry, name)
	})
	list := &cobra.Command{Use: "list", Short: "List a registry's webhooks", Args: cobra.NoArgs, Annotations: table(colsWebhook),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(registry, "--registry"); err != nil {
				return nil, err
			}
			return c.Webhooks(ctx, registry)
		})}
	list.Flags().StringVarP(&registry, "registry", "r", "", "registry name")
	cmd.AddCommand(create, list, show, update, del, ping, events, cfg)
	return cmd
}
