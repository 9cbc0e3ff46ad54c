package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/client"
)

// configCmd is az acr config: the registry's retention and soft-delete policies.
func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "A registry's content policies: retention of untagged manifests, soft delete (az acr config)"}
	var registry, status, kind string
	var days int
	regFlag := func(c *cobra.Command) { c.Flags().StringVarP(&registry, "registry", "r", "", "registry name") }
	update := func(ctx context.Context, c *client.Client, p client.PoliciesUpdate) (client.Registry, error) {
		if err := need(registry, "--registry"); err != nil {
			return client.Registry{}, err
		}
		return c.UpdateRegistry(ctx, registry, client.RegistryUpdate{Policies: &p})
	}
	optStatus := func() *string {
		if status == "" {
			return nil
		}
		return &status
	}

	retention := &cobra.Command{Use: "retention", Short: "Delete untagged manifests some days after they lost their last tag"}
	rShow := &cobra.Command{Use: "show", Short: "Show the retention policy", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(registry, "--registry"); err != nil {
				return nil, err
			}
			r, err := c.Registry(ctx, registry)
			return r.Policies.RetentionPolicy, err
		})}
	regFlag(rShow)
	rUpdate := &cobra.Command{Use: "update", Short: "Turn retention on or off, or set its days", Args: cobra.NoArgs,
		Long: `Turn the retention of untagged manifests on or off, or set its days (0 to 365; 0 deletes a
manifest at the next pass after it lost its last tag). The server applies it every few minutes,
on one replica at a time. Locked manifests (write- or delete-disabled), the manifests an index
names and the referrers (signatures, SBOMs) of a manifest still there are kept; with soft delete
on, what retention deletes can be restored.

  berth config retention update -r myregistry --status enabled --days 30 --type UntaggedManifests`,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if kind != "" && kind != "UntaggedManifests" {
				return nil, fmt.Errorf("--type %q is invalid: the only type is UntaggedManifests", kind)
			}
			var p client.PoliciesUpdate
			p.RetentionPolicy = &client.RetentionPolicyUpdate{Status: optStatus()}
			if days >= 0 {
				p.RetentionPolicy.Days = &days
			}
			if p.RetentionPolicy.Days == nil && p.RetentionPolicy.Status == nil {
				return nil, errors.New("nothing to update: give --status or --days")
			}
			r, err := update(ctx, c, p)
			return r.Policies.RetentionPolicy, err
		})}
	regFlag(rUpdate)
	rUpdate.Flags().StringVar(&status, "status", "", "enabled or disabled")
	rUpdate.Flags().IntVar(&days, "days", -1, "days after a manifest lost its last tag (0–365)")
	rUpdate.Flags().StringVar(&kind, "type", "", "UntaggedManifests (the only type)")
	retention.AddCommand(rShow, rUpdate)

	soft := &cobra.Command{Use: "soft-delete", Short: "Keep deleted manifests, restorable, for some days"}
	sShow := &cobra.Command{Use: "show", Short: "Show the soft-delete policy", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(registry, "--registry"); err != nil {
				return nil, err
			}
			r, err := c.Registry(ctx, registry)
			return r.Policies.SoftDeletePolicy, err
		})}
	regFlag(sShow)
	sUpdate := &cobra.Command{Use: "update", Short: "Turn soft delete on or off, or set its days", Args: cobra.NoArgs,
		Long: `Turn soft delete on or off, or set its days (1 to 90). With it on, a deleted manifest (by
docker, crane, berth repository delete, purge or retention) is kept with its tags for that many
days: 'berth manifest list-deleted' shows it and 'berth manifest restore' brings it back; then
it is purged and its blobs go at the next garbage collection. Manifests deleted while it was off
are gone at once.

  berth config soft-delete update -r myregistry --status enabled --days 7`,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			var p client.PoliciesUpdate
			p.SoftDeletePolicy = &client.SoftDeletePolicyUpdate{Status: optStatus()}
			if days >= 0 {
				p.SoftDeletePolicy.RetentionDays = &days
			}
			if p.SoftDeletePolicy.RetentionDays == nil && p.SoftDeletePolicy.Status == nil {
				return nil, errors.New("nothing to update: give --status or --days")
			}
			r, err := update(ctx, c, p)
			return r.Policies.SoftDeletePolicy, err
		})}
	regFlag(sUpdate)
	sUpdate.Flags().StringVar(&status, "status", "", "enabled or disabled")
	sUpdate.Flags().IntVar(&days, "days", -1, "days a deleted manifest is kept (1–90)")
	soft.AddCommand(sShow, sUpdate)
	cmd.AddCommand(retention, soft)
	return cmd
}
