package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/client"
)

// registryAccess is how the content commands reach a registry's data plane: the signed-in
// identity's refresh token (as az acr repository does), or -u/-p credentials (the admin user, a
// repository token, a service principal), which also work without a berth sign-in when --name
// is the registry's URL (https://host[:port]).
type registryAccess struct {
	name, user, password string
}

func (ra *registryAccess) flags(c *cobra.Command, nameFlag string, short string) {
	c.Flags().StringVarP(&ra.name, nameFlag, short, "", "registry name, or its login server (host[:port]); without a berth sign-in, its URL")
	c.Flags().StringVarP(&ra.user, "username", "u", "", "sign in to the registry with this user (admin user, token, service principal client id) instead of the berth sign-in")
	c.Flags().StringVarP(&ra.password, "password", "p", "", "password for --username")
}

// dataPlane returns a client of the registry's /v2/ and /acr/v1/.
func (a *app) dataPlane(ctx context.Context, ra registryAccess) (*client.DataPlane, error) {
	if ra.name == "" {
		return nil, errors.New("the registry is required: --name/-n (--registry/-r for berth manifest)")
	}
	if ra.password != "" && ra.user == "" {
		return nil, errors.New("usage error: --password needs --username")
	}
	s, _ := a.loadSession()
	if u, err := url.Parse(ra.name); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		if ra.user == "" {
			return nil, errors.New("a registry URL needs --username and --password (signed in to berth, give the registry's name instead)")
		}
		hc, err := a.httpClient(a.tlsFor(s), 0)
		if err != nil {
			return nil, err
		}
		return &client.DataPlane{Base: u.Scheme + "://" + u.Host, HTTP: hc, User: ra.user, Password: ra.password}, nil
	}
	v, _, err := a.call(ctx, func(ctx context.Context, c *client.Client) (any, error) {
		reg, su, err := a.resolveRegistry(ctx, c, s, ra.name)
		if err != nil {
			return nil, err
		}
		dp := &client.DataPlane{Base: su.Scheme + "://" + reg.LoginServer, HTTP: c.HTTP}
		if ra.user != "" {
			dp.User, dp.Password = ra.user, ra.password
			return dp, nil
		}
		realm, service, err := dp.Challenge(ctx)
		if err != nil {
			return nil, err
		}
		ru, err := url.Parse(realm)
		if err != nil {
			return nil, fmt.Errorf("the challenge's realm %q is not a URL: %w", realm, err)
		}
		if dp.RefreshToken, err = c.Exchange(ctx, ru.Scheme+"://"+ru.Host, service); err != nil {
			return nil, err
		}
		return dp, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*client.DataPlane), nil
}

// runData is a command that works on a registry's data plane and prints what fn returns.
func (a *app) runData(ra *registryAccess, fn func(ctx context.Context, dp *client.DataPlane) (any, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		dp, err := a.dataPlane(cmd.Context(), *ra)
		if err != nil {
			return err
		}
		v, err := fn(cmd.Context(), dp)
		if err != nil || v == nil {
			return err
		}
		return a.print(v)
	}
}

// splitImage reads REPO:TAG or REPO@DIGEST (as --image and az acr manifest's --name take it).
func splitImage(image string) (repo, tag, digest string, err error) {
	if r, d, ok := strings.Cut(image, "@"); ok && r != "" && d != "" {
		return r, "", d, nil
	}
	if i := strings.LastIndexByte(image, ':'); i > 0 && i < len(image)-1 && !strings.Contains(image[i:], "/") {
		return image[:i], image[i+1:], "", nil
	}
	return "", "", "", fmt.Errorf("%q is not REPOSITORY:TAG or REPOSITORY@DIGEST", image)
}

// orderBy turns az's --orderby (time_asc, time_desc) into the API's.
func orderBy(v string) (string, error) {
	switch v {
	case "":
		return "", nil
	case "time_desc":
		return "timedesc", nil
	case "time_asc":
		return "timeasc", nil
	}
	return "", fmt.Errorf("--orderby must be time_asc or time_desc, not %q", v)
}

func (a *app) repositoryCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "repository", Short: "List, show, lock and delete repositories and their tags (az acr repository)"}
	var ra registryAccess
	var repo, image, order string
	var top int
	var detail, yes bool
	var write, del, read, list boolFlag
	target := func(c *cobra.Command) {
		c.Flags().StringVar(&repo, "repository", "", "repository name")
		c.Flags().StringVarP(&image, "image", "t", "", "REPOSITORY:TAG or REPOSITORY@DIGEST")
	}
	one := func() error {
		if (repo == "") == (image == "") {
			return errors.New("usage error: give --repository or --image, one of them")
		}
		return nil
	}

	listCmd := &cobra.Command{Use: "list", Short: "List the repositories of a registry", Args: cobra.NoArgs,
		RunE: a.runData(&ra, func(ctx context.Context, dp *client.DataPlane) (any, error) { return dp.Catalog(ctx, top) })}
	ra.flags(listCmd, "name", "n")
	listCmd.Flags().IntVar(&top, "top", 0, "list at most this many")

	show := &cobra.Command{Use: "show", Short: "Show a repository's, a tag's or a manifest's attributes", Args: cobra.NoArgs,
		RunE: a.runData(&ra, func(ctx context.Context, dp *client.DataPlane) (any, error) {
			if err := one(); err != nil {
				return nil, err
			}
			if repo != "" {
				return dp.Repository(ctx, repo)
			}
			r, tag, digest, err := splitImage(image)
			if err != nil {
				return nil, err
			}
			if tag != "" {
				return dp.Tag(ctx, r, tag)
			}
			return dp.Manifest(ctx, r, digest)
		})}
	ra.flags(show, "name", "n")
	target(show)

	showTags := &cobra.Command{Use: "show-tags", Short: "List a repository's tags (--detail: with their digests, times and attributes)", Args: cobra.NoArgs,
		Annotations: table(`{NAME: name, DIGEST: digest, "LAST UPDATE TIME": lastUpdateTime, "WRITE ENABLED": changeableAttributes.writeEnabled, "DELETE ENABLED": changeableAttributes.deleteEnabled}`),
		RunE: a.runData(&ra, func(ctx context.Context, dp *client.DataPlane) (any, error) {
			if repo == "" {
				return nil, errors.New("--repository is required")
			}
			o, err := orderBy(order)
			if err != nil {
				return nil, err
			}
			tags, err := dp.Tags(ctx, repo, o, top)
			if err != nil || detail {
				return tags, err
			}
			names := []string{}
			for _, t := range tags {
				names = append(names, t.Name)
			}
			return names, nil
		})}
	ra.flags(showTags, "name", "n")
	showTags.Flags().StringVar(&repo, "repository", "", "repository name")
	showTags.Flags().StringVar(&order, "orderby", "", "time_asc or time_desc (default: by name)")
	showTags.Flags().IntVar(&top, "top", 0, "list at most this many")
	showTags.Flags().BoolVar(&detail, "detail", false, "show each tag's digest, times and attributes")

	deleteCmd := &cobra.Command{Use: "delete", Short: "Delete a repository, or the manifest an image names with all its tags", Args: cobra.NoArgs,
		RunE: a.runData(&ra, func(ctx context.Context, dp *client.DataPlane) (any, error) {
			if err := one(); err != nil {
				return nil, err
			}
			if repo != "" {
				if err := a.confirm(fmt.Sprintf("This operation will delete the repository '%s' and all the images it contains. Are you sure you want to continue?", repo), yes); err != nil {
					return nil, err
				}
				_, err := dp.DeleteRepository(ctx, repo)
				return nil, err
			}
			r, tag, digest, err := splitImage(image)
			if err != nil {
				return nil, err
			}
			if err := a.confirm(fmt.Sprintf("This operation will delete the manifest '%s' and all the tags pointing at it. Are you sure you want to continue?", image), yes); err != nil {
				return nil, err
			}
			if tag != "" {
				t, err := dp.Tag(ctx, r, tag)
				if err != nil {
					return nil, err
				}
				digest = t.Digest
			}
			return nil, dp.DeleteManifest(ctx, r, digest)
		})}
	ra.flags(deleteCmd, "name", "n")
	target(deleteCmd)
	yesFlag(deleteCmd, &yes)

	untag := &cobra.Command{Use: "untag", Short: "Remove a tag, leaving its manifest", Args: cobra.NoArgs,
		RunE: a.runData(&ra, func(ctx context.Context, dp *client.DataPlane) (any, error) {
			r, tag, _, err := splitImage(image)
			if err != nil || tag == "" {
				return nil, errors.New("--image REPOSITORY:TAG is required")
			}
			return nil, dp.Untag(ctx, r, tag)
		})}
	ra.flags(untag, "name", "n")
	untag.Flags().StringVarP(&image, "image", "t", "", "REPOSITORY:TAG")

	update := &cobra.Command{Use: "update", Short: "Lock or unlock a repository, a tag or a manifest (write, delete, read, list)", Args: cobra.NoArgs,
		Long: `Lock or unlock a repository, a tag or a manifest, as az acr repository update does:
--write-enabled false refuses pushes to it and deletes of it, --delete-enabled false refuses
deletes, --read-enabled false refuses pulls, --list-enabled false leaves it out of listings.
Locks hold for everyone, the Owner and the admin user included; purge and retention keep what is
locked. Without a lock flag it shows the attributes.

  berth repository update -n myregistry --image team/app:1.0 --write-enabled false   # immutable release tag`,
		RunE: a.runData(&ra, func(ctx context.Context, dp *client.DataPlane) (any, error) {
			if err := one(); err != nil {
				return nil, err
			}
			u := client.ChangeableAttributesUpdate{WriteEnabled: write.ptr(), DeleteEnabled: del.ptr(), ReadEnabled: read.ptr(), ListEnabled: list.ptr()}
			none := u == client.ChangeableAttributesUpdate{}
			if repo != "" {
				if none {
					return dp.Repository(ctx, repo)
				}
				return dp.UpdateRepository(ctx, repo, u)
			}
			r, tag, digest, err := splitImage(image)
			if err != nil {
				return nil, err
			}
			switch {
			case tag != "" && none:
				return dp.Tag(ctx, r, tag)
			case tag != "":
				return dp.UpdateTag(ctx, r, tag, u)
			case none:
				return dp.Manifest(ctx, r, digest)
			}
			return dp.UpdateManifest(ctx, r, digest, u)
		})}
	ra.flags(update, "name", "n")
	target(update)
	boolVar(update, &write, "write-enabled", "allow pushes and deletes")
	boolVar(update, &del, "delete-enabled", "allow deletes")
	boolVar(update, &read, "read-enabled", "allow pulls")
	boolVar(update, &list, "list-enabled", "show it in listings")

	listDeleted := &cobra.Command{Use: "list-deleted", Short: "List the repositories holding soft-deleted manifests", Args: cobra.NoArgs,
		RunE: a.runData(&ra, func(ctx context.Context, dp *client.DataPlane) (any, error) { return dp.DeletedRepositories(ctx) })}
	ra.flags(listDeleted, "name", "n")

	cmd.AddCommand(listCmd, show, showTags, deleteCmd, untag, update, listDeleted)
	return cmd
}

func (a *app) manifestCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "manifest", Short: "List, show and delete manifests (az acr manifest)"}
	var ra registryAccess
	var name, order string
	var top int
	var yes bool
	reg := func(c *cobra.Command) {
		ra.flags(c, "registry", "r")
		c.Flags().StringVarP(&name, "name", "n", "", "REPOSITORY (list-metadata), or REPOSITORY:TAG or REPOSITORY@DIGEST")
	}
	listMeta := &cobra.Command{Use: "list-metadata", Short: "List a repository's manifests with their sizes, tags, times and attributes", Args: cobra.NoArgs,
		Annotations: table(`{DIGEST: digest, TAGS: join(', ', tags), "IMAGE SIZE": imageSize, "CREATED TIME": createdTime, "WRITE ENABLED": changeableAttributes.writeEnabled, "DELETE ENABLED": changeableAttributes.deleteEnabled}`),
		RunE: a.runData(&ra, func(ctx context.Context, dp *client.DataPlane) (any, error) {
			if name == "" {
				return nil, errors.New("--name REPOSITORY is required")
			}
			o, err := orderBy(order)
			if err != nil {
				return nil, err
			}
			return dp.Manifests(ctx, name, o, top)
		})}
	reg(listMeta)
	listMeta.Flags().StringVar(&order, "orderby", "", "time_asc or time_desc (default: by digest)")
	listMeta.Flags().IntVar(&top, "top", 0, "list at most this many")
	showMeta := &cobra.Command{Use: "show-metadata", Short: "Show one manifest's size, tags, times and attributes", Args: cobra.NoArgs,
		RunE: a.runData(&ra, func(ctx context.Context, dp *client.DataPlane) (any, error) {
			r, tag, digest, err := splitImage(name)
			if err != nil {
				return nil, err
			}
			return dp.Manifest(ctx, r, tag+digest)
		})}
	reg(showMeta)
	del := &cobra.Command{Use: "delete", Short: "Delete a manifest with every tag pointing at it", Args: cobra.NoArgs,
		RunE: a.runData(&ra, func(ctx context.Context, dp *client.DataPlane) (any, error) {
			r, tag, digest, err := splitImage(name)
			if err != nil {
				return nil, err
			}
			if err := a.confirm(fmt.Sprintf("Are you sure you want to delete the artifact '%s' and all manifests that refer to it?", name), yes); err != nil {
				return nil, err
			}
			if tag != "" {
				m, err := dp.Manifest(ctx, r, tag)
				if err != nil {
					return nil, err
				}
				digest = m.Digest
			}
			return nil, dp.DeleteManifest(ctx, r, digest)
		})}
	reg(del)
	yesFlag(del, &yes)

	listDeleted := &cobra.Command{Use: "list-deleted", Short: "List a repository's soft-deleted manifests, the most recently deleted first", Args: cobra.NoArgs,
		Annotations: table(`{DIGEST: digest, TAGS: join(', ', tags), "DELETED TIME": deletedTime, "PURGE TIME": purgeTime}`),
		RunE: a.runData(&ra, func(ctx context.Context, dp *client.DataPlane) (any, error) {
			if name == "" {
				return nil, errors.New("--name REPOSITORY is required")
			}
			return dp.DeletedManifests(ctx, name)
		})}
	reg(listDeleted)
	listDeletedTags := &cobra.Command{Use: "list-deleted-tags", Short: "List the tags of a repository's soft-deleted manifests (REPOSITORY[:TAG])", Args: cobra.NoArgs,
		RunE: a.runData(&ra, func(ctx context.Context, dp *client.DataPlane) (any, error) {
			repo, tag, _ := strings.Cut(name, ":")
			if repo == "" {
				return nil, errors.New("--name REPOSITORY[:TAG] is required")
			}
			tags, err := dp.DeletedTags(ctx, repo)
			if err != nil || tag == "" {
				return tags, err
			}
			out := []client.DeletedTag{}
			for _, t := range tags {
				if t.Tag == tag {
					out = append(out, t)
				}
			}
			return out, nil
		})}
	reg(listDeletedTags)
	var digestFlag string
	var force bool
	restore := &cobra.Command{Use: "restore", Short: "Restore a soft-deleted manifest with its tag (REPOSITORY:TAG [-d DIGEST])", Args: cobra.NoArgs,
		Long: `Restore a soft-deleted manifest and tag it, as az acr manifest restore does: without
--digest, the most recently deleted manifest that had the tag. --force moves the tag if it now
points at another manifest.

  berth manifest restore -r myregistry -n team/app:v1`,
		RunE: a.runData(&ra, func(ctx context.Context, dp *client.DataPlane) (any, error) {
			repo, tag, ok := strings.Cut(name, ":")
			if !ok || repo == "" || tag == "" {
				return nil, errors.New("--name REPOSITORY:TAG is required")
			}
			d := digestFlag
			if d == "" {
				deleted, err := dp.DeletedManifests(ctx, repo)
				if err != nil {
					return nil, err
				}
				for _, m := range deleted { // the most recently deleted first
					if slices.Contains(m.Tags, tag) {
						d = m.Digest
						break
					}
				}
				if d == "" {
					return nil, fmt.Errorf("no soft-deleted manifest of %s had the tag %s: see 'berth manifest list-deleted-tags -r REGISTRY -n %s'", repo, tag, repo)
				}
			}
			return dp.Restore(ctx, repo, d, tag, force)
		})}
	reg(restore)
	restore.Flags().StringVarP(&digestFlag, "digest", "d", "", "the manifest's digest (default: the most recently deleted one that had the tag)")
	restore.Flags().BoolVarP(&force, "force", "f", false, "move the tag if it now points at another manifest")
	cmd.AddCommand(listMeta, showMeta, del, listDeleted, listDeletedTags, restore)
	return cmd
}
