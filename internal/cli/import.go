package cli

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/client"
)

func (a *app) importCmd() *cobra.Command {
	var registry string
	var req client.ImportRequest
	var noWait bool
	var importID string
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Copy an image from another registry, server-side (az acr import)",
		Long: `Copy an image from another registry into this one, server-side, as az acr import does: the
manifest the source names (an index with every platform's manifest), the blobs they reference,
and with --with-referrers the source's referrers of each (signatures, SBOMs), digests unchanged.
Blobs the registry holds already are not fetched again, so an interrupted import resumes when
run again. The server reaches the source itself (with -u/-p if given); a source in a private
or loopback network needs outbound.allowed_networks. The command waits for the end unless
--no-wait, then prints the operation.

  berth import -n myregistry --source docker.io/library/alpine:3.20 --image base/alpine:3.20`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := errors.Join(need(registry, "--name"), need(req.Source, "--source")); err != nil {
				return nil, err
			}
			if (req.Username == "") != (req.Password == "") {
				return nil, errors.New("usage error: --username and --password go together")
			}
			op, err := c.StartImport(ctx, registry, req)
			if err != nil || noWait {
				return op, err
			}
			for deadline := time.Now().Add(time.Hour); op.Status == "Running"; {
				if time.Now().After(deadline) {
					return op, errors.New("the import still runs after an hour: see 'berth import show'")
				}
				time.Sleep(300 * time.Millisecond)
				if op, err = c.Import(ctx, registry, op.ID); err != nil {
					return nil, err
				}
			}
			if op.Status == "Failed" {
				return nil, errors.New("the import failed: " + op.Error)
			}
			return op, nil
		}),
	}
	cmd.Flags().StringVarP(&registry, "name", "n", "", "the registry to import into")
	cmd.Flags().StringVar(&req.Source, "source", "", "HOST/REPOSITORY:TAG or HOST/REPOSITORY@DIGEST")
	cmd.Flags().StringVarP(&req.Image, "image", "t", "", "REPOSITORY[:TAG] to import as (default: the source's)")
	cmd.Flags().StringVarP(&req.Username, "username", "u", "", "user name at the source registry")
	cmd.Flags().StringVarP(&req.Password, "password", "p", "", "password at the source registry")
	cmd.Flags().BoolVar(&req.Force, "force", false, "overwrite the target tag if it exists")
	cmd.Flags().BoolVar(&req.WithReferrers, "with-referrers", false, "also copy the source's referrers (signatures, SBOMs)")
	cmd.Flags().BoolVar(&req.PlainHTTP, "plain-http", false, "reach the source over http (a lab)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "start the import and print the operation without waiting")
	show := &cobra.Command{Use: "show", Short: "Show how an import goes", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := errors.Join(need(registry, "--name"), need(importID, "--id")); err != nil {
				return nil, err
			}
			return c.Import(ctx, registry, importID)
		})}
	show.Flags().StringVarP(&registry, "name", "n", "", "registry name")
	show.Flags().StringVar(&importID, "id", "", "the import's id")
	cmd.AddCommand(show)
	return cmd
}
