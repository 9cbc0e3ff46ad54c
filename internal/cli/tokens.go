package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/client"
)

// repoFlags are the flags that take a repository followed by actions, as az's do:
// --repository samples/* content/read content/write. joinRepositoryArgs folds those words into
// the flag's one value, before the flags are parsed.
var repoFlags = map[string]bool{"--repository": true, "--add-repository": true, "--remove-repository": true}

func joinRepositoryArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		out = append(out, args[i])
		if !repoFlags[args[i]] || i+1 >= len(args) {
			continue
		}
		j := i + 1
		words := []string{}
		for ; j < len(args) && !strings.HasPrefix(args[j], "-"); j++ {
			words = append(words, args[j])
		}
		out = append(out, strings.Join(words, " "))
		i = j - 1
	}
	return out
}

// parseRepositories reads --repository values: "REPO ACTION [ACTION…]".
func parseRepositories(vals []string) ([]client.RepositoryActions, error) {
	var out []client.RepositoryActions
	for _, v := range vals {
		f := strings.Fields(v)
		if len(f) == 0 {
			return nil, errors.New("--repository needs a repository and its actions: --repository samples/* content/read")
		}
		if len(f) == 1 {
			return nil, fmt.Errorf("At least one action must be specified with %q.", f[0])
		}
		out = append(out, client.RepositoryActions{Repository: f[0], Actions: f[1:]})
	}
	return out, nil
}

func (a *app) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage repository-scoped tokens (az acr token)"}
	var name, registry, scopeMap, status, expiration string
	var repos []string
	var days int
	var noPasswords bool
	common := func(c *cobra.Command) {
		c.Flags().StringVarP(&name, "name", "n", "", "token name")
		c.Flags().StringVarP(&registry, "registry", "r", "", "registry name")
	}
	required := func() error {
		return errors.Join(need(name, "--name"), need(registry, "--registry"))
	}
	create := &cobra.Command{Use: "create", Short: "Create a token; its passwords are shown once", Args: cobra.NoArgs, Annotations: table(colsToken),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := required(); err != nil {
				return nil, err
			}
			if (scopeMap == "") == (len(repos) == 0) {
				return nil, errors.New("usage error: --repository | --scope-map")
			}
			t := client.TokenCreate{Name: name, NoPasswords: noPasswords, Expiry: expiration, ExpiryInDays: days}
			if scopeMap != "" {
				t.ScopeMap = &scopeMap
			}
			if status != "" {
				t.Status = &status
			}
			var err error
			if t.Repositories, err = parseRepositories(repos); err != nil {
				return nil, err
			}
			tok, err := c.CreateToken(ctx, registry, t)
			if err == nil && !noPasswords {
				a.warn("Please store your generated credentials safely. Meanwhile you can use it through \"docker login <server> -u %s -p <password>\".", name)
			}
			return tok, err
		})}
	common(create)
	create.Flags().StringArrayVar(&repos, "repository", nil, "repository and actions: --repository samples/* content/read content/write (repeatable)")
	create.Flags().StringVar(&scopeMap, "scope-map", "", "existing scope map to use")
	create.Flags().StringVar(&status, "status", "", "enabled (default) or disabled")
	create.Flags().BoolVar(&noPasswords, "no-passwords", false, "create no passwords now")
	create.Flags().IntVar(&days, "expiration-in-days", 0, "days until the passwords expire (default: never)")
	create.Flags().StringVar(&expiration, "expiration", "", "expiry time of the passwords, e.g. 2027-12-31T23:59:59Z")

	update := &cobra.Command{Use: "update", Short: "Change a token's status or scope map", Args: cobra.NoArgs, Annotations: table(colsToken),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.run(func(ctx context.Context, c *client.Client) (any, error) {
				if err := required(); err != nil {
					return nil, err
				}
				u := client.TokenUpdate{}
				if status != "" {
					u.Status = &status
				}
				if cmd.Flags().Changed("scope-map") {
					u.ScopeMap = &scopeMap
				}
				if u == (client.TokenUpdate{}) {
					return nil, errors.New("nothing to update: give --status or --scope-map")
				}
				return c.UpdateToken(ctx, registry, name, u)
			})(cmd, args)
		}}
	common(update)
	update.Flags().StringVar(&scopeMap, "scope-map", "", "scope map to use (empty: none)")
	update.Flags().StringVar(&status, "status", "", "enabled or disabled")

	show := &cobra.Command{Use: "show", Short: "Show a token", Args: cobra.NoArgs, Annotations: table(colsToken),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := required(); err != nil {
				return nil, err
			}
			return c.Token(ctx, registry, name)
		})}
	common(show)
	list := &cobra.Command{Use: "list", Short: "List a registry's tokens", Args: cobra.NoArgs, Annotations: table(colsToken),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(registry, "--registry"); err != nil {
				return nil, err
			}
			return c.Tokens(ctx, registry)
		})}
	list.Flags().StringVarP(&registry, "registry", "r", "", "registry name")
	var yes bool
	del := &cobra.Command{Use: "delete", Short: "Delete a token", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := required(); err != nil {
				return nil, err
			}
			if err := a.confirm(fmt.Sprintf("Deleting the token %q of registry %q: its passwords stop working. Are you sure you want to continue?", name, registry), yes); err != nil {
				return nil, err
			}
			return nil, c.DeleteToken(ctx, registry, name)
		})}
	common(del)
	yesFlag(del, &yes)
	cmd.AddCommand(create, update, show, list, del, a.tokenCredentialCmd())
	return cmd
}

func (a *app) tokenCredentialCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "credential", Short: "Generate or delete a token's passwords"}
	var name, registry, expiration string
	var p1, p2 bool
	var days int
	common := func(c *cobra.Command) {
		c.Flags().StringVarP(&name, "name", "n", "", "token name")
		c.Flags().StringVarP(&registry, "registry", "r", "", "registry name")
		c.Flags().BoolVar(&p1, "password1", false, "password1")
		c.Flags().BoolVar(&p2, "password2", false, "password2")
	}
	gen := &cobra.Command{Use: "generate", Short: "Generate password1 and/or password2 (both by default); shown once", Args: cobra.NoArgs, Annotations: table(colsTokenCredentials),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := errors.Join(need(name, "--name"), need(registry, "--registry")); err != nil {
				return nil, err
			}
			tok, err := c.GenerateTokenCredentials(ctx, registry, name, client.TokenCredentials{Password1: p1, Password2: p2, Expiry: expiration, ExpiryInDays: days})
			if err != nil || tok.Credentials == nil {
				return nil, err
			}
			// az's shape (GenerateCredentialsResult): the user name and the passwords just made.
			out := client.Credentials{Username: tok.Credentials.Username, Passwords: []client.Password{}}
			for _, p := range tok.Credentials.Passwords {
				if p.Value != nil {
					out.Passwords = append(out.Passwords, p)
				}
			}
			return out, nil
		})}
	common(gen)
	gen.Flags().IntVar(&days, "expiration-in-days", 0, "days until the passwords expire (default: never)")
	gen.Flags().StringVar(&expiration, "expiration", "", "expiry time, e.g. 2027-12-31T23:59:59Z")
	del := &cobra.Command{Use: "delete", Short: "Delete password1 and/or password2", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := errors.Join(need(name, "--name"), need(registry, "--registry")); err != nil {
				return nil, err
			}
			if !p1 && !p2 {
				return nil, errors.New("give --password1, --password2 or both")
			}
			for pw, on := range map[string]bool{"password1": p1, "password2": p2} {
				if on {
					if err := c.DeleteTokenCredential(ctx, registry, name, pw); err != nil {
						return nil, err
					}
				}
			}
			return nil, nil
		})}
	common(del)
	cmd.AddCommand(gen, del)
	return cmd
}

func (a *app) scopeMapCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "scope-map", Short: "Manage scope maps (az acr scope-map)"}
	var name, registry, description string
	var repos, add, remove []string
	common := func(c *cobra.Command) {
		c.Flags().StringVarP(&name, "name", "n", "", "scope map name")
		c.Flags().StringVarP(&registry, "registry", "r", "", "registry name")
	}
	required := func() error { return errors.Join(need(name, "--name"), need(registry, "--registry")) }
	create := &cobra.Command{Use: "create", Short: "Create a scope map", Args: cobra.NoArgs, Annotations: table(colsScopeMap),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := required(); err != nil {
				return nil, err
			}
			r, err := parseRepositories(repos)
			if err != nil {
				return nil, err
			}
			return c.CreateScopeMap(ctx, registry, client.ScopeMapCreate{Name: name, Description: description, Repositories: r})
		})}
	common(create)
	create.Flags().StringArrayVar(&repos, "repository", nil, "repository and actions: --repository samples/* content/read (repeatable)")
	create.Flags().StringVar(&description, "description", "", "description (at most 256 characters)")

	update := &cobra.Command{Use: "update", Short: "Add or remove repository actions; tokens see the change at once", Args: cobra.NoArgs, Annotations: table(colsScopeMap),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.run(func(ctx context.Context, c *client.Client) (any, error) {
				if err := required(); err != nil {
					return nil, err
				}
				var u client.ScopeMapUpdate
				var err error
				if u.AddRepositories, err = parseRepositories(add); err != nil {
					return nil, err
				}
				if u.RemoveRepositories, err = parseRepositories(remove); err != nil {
					return nil, err
				}
				if cmd.Flags().Changed("description") {
					u.Description = &description
				}
				return c.UpdateScopeMap(ctx, registry, name, u)
			})(cmd, args)
		}}
	common(update)
	update.Flags().StringArrayVar(&add, "add-repository", nil, "repository and actions to add (repeatable)")
	update.Flags().StringArrayVar(&remove, "remove-repository", nil, "repository and actions to remove (repeatable)")
	update.Flags().StringVar(&description, "description", "", "new description")

	show := &cobra.Command{Use: "show", Short: "Show a scope map", Args: cobra.NoArgs, Annotations: table(colsScopeMap),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := required(); err != nil {
				return nil, err
			}
			return c.ScopeMap(ctx, registry, name)
		})}
	common(show)
	list := &cobra.Command{Use: "list", Short: "List a registry's scope maps", Args: cobra.NoArgs, Annotations: table(colsScopeMap),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(registry, "--registry"); err != nil {
				return nil, err
			}
			return c.ScopeMaps(ctx, registry)
		})}
	list.Flags().StringVarP(&registry, "registry", "r", "", "registry name")
	var yes bool
	del := &cobra.Command{Use: "delete", Short: "Delete a scope map no token uses", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := required(); err != nil {
				return nil, err
			}
			if err := a.confirm(fmt.Sprintf("Deleting the scope map %q of registry %q. Are you sure you want to continue?", name, registry), yes); err != nil {
				return nil, err
			}
			return nil, c.DeleteScopeMap(ctx, registry, name)
		})}
	common(del)
	yesFlag(del, &yes)
	cmd.AddCommand(create, update, show, list, del)
	return cmd
}
