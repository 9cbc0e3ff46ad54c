package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/client"
)

func (a *app) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage directory users (az ad user)"}
	var name string
	var stdin bool
	nameFlag := func(c *cobra.Command) { c.Flags().StringVarP(&name, "name", "n", "", "user name") }
	// password reads the new password from stdin, or leaves it to the server to generate.
	password := func() (string, error) {
		if !stdin {
			return "", nil
		}
		return a.secret("Password: ", true)
	}
	create := &cobra.Command{Use: "create", Short: "Create a user (the password is generated and shown once unless --password-stdin)", Args: cobra.NoArgs, Annotations: table(colsUser),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			pw, err := password()
			if err != nil {
				return nil, err
			}
			return c.CreateUser(ctx, name, pw)
		})}
	nameFlag(create)
	create.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from stdin")
	var ssoOnly boolFlag
	update := &cobra.Command{Use: "update", Short: "Set a user's password (generated unless --password-stdin), or with --sso-only whether it signs in with single sign-on only", Args: cobra.NoArgs, Annotations: table(colsUser)}
	update.RunE = a.run(func(ctx context.Context, c *client.Client) (any, error) {
		if err := need(name, "--name"); err != nil {
			return nil, err
		}
		if ssoOnly.set {
			return c.SetUserSSOOnly(ctx, name, ssoOnly.v)
		}
		pw, err := password()
		if err != nil {
			return nil, err
		}
		return c.SetUserPassword(ctx, name, pw)
	})
	nameFlag(update)
	boolVar(update, &ssoOnly, "sso-only", "true: the user signs in with single sign-on only (password sign-in refused); false: a password works again")
	update.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from stdin")
	show := &cobra.Command{Use: "show", Short: "Show a user", Args: cobra.NoArgs, Annotations: table(colsUser),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			return c.User(ctx, name)
		})}
	nameFlag(show)
	list := &cobra.Command{Use: "list", Short: "List users", Args: cobra.NoArgs, Annotations: table(colsUser),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) { return c.Users(ctx) })}
	del := &cobra.Command{Use: "delete", Short: "Delete a user", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			return nil, c.DeleteUser(ctx, name)
		})}
	nameFlag(del)
	cmd.AddCommand(create, update, show, list, del)
	return cmd
}

func (a *app) groupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Manage directory groups (az ad group)"}
	var name, description, member string
	nameFlag := func(c *cobra.Command) { c.Flags().StringVarP(&name, "name", "n", "", "group name") }
	create := &cobra.Command{Use: "create", Short: "Create a group", Args: cobra.NoArgs, Annotations: table(colsGroup),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			return c.CreateGroup(ctx, name, description)
		})}
	nameFlag(create)
	create.Flags().StringVar(&description, "description", "", "description")
	show := &cobra.Command{Use: "show", Short: "Show a group and its members", Args: cobra.NoArgs, Annotations: table(colsGroup),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			return c.Group(ctx, name)
		})}
	nameFlag(show)
	list := &cobra.Command{Use: "list", Short: "List groups", Args: cobra.NoArgs, Annotations: table(colsGroup),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) { return c.Groups(ctx) })}
	del := &cobra.Command{Use: "delete", Short: "Delete a group", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			return nil, c.DeleteGroup(ctx, name)
		})}
	nameFlag(del)

	members := &cobra.Command{Use: "member", Short: "Add, remove and list a group's members"}
	memberFlags := func(c *cobra.Command) {
		c.Flags().StringVarP(&name, "group", "g", "", "group name")
		c.Flags().StringVar(&member, "member-id", "", "user name")
	}
	add := &cobra.Command{Use: "add", Short: "Add a user to a group", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := errors.Join(need(name, "--group"), need(member, "--member-id")); err != nil {
				return nil, err
			}
			return c.AddGroupMember(ctx, name, member)
		})}
	memberFlags(add)
	remove := &cobra.Command{Use: "remove", Short: "Remove a user from a group", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := errors.Join(need(name, "--group"), need(member, "--member-id")); err != nil {
				return nil, err
			}
			return nil, c.RemoveGroupMember(ctx, name, member)
		})}
	memberFlags(remove)
	mlist := &cobra.Command{Use: "list", Short: "List a group's members", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--group"); err != nil {
				return nil, err
			}
			g, err := c.Group(ctx, name)
			return g.Members, err
		})}
	mlist.Flags().StringVarP(&name, "group", "g", "", "group name")
	members.AddCommand(add, remove, mlist)
	cmd.AddCommand(create, show, list, del, members)
	return cmd
}

func (a *app) spCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "sp", Short: "Manage service principals (az ad sp)"}
	var id, display string
	var years int
	var appendSecret bool
	create := &cobra.Command{Use: "create", Short: "Create a service principal; its secret is shown once (as az ad sp create-for-rbac)", Args: cobra.NoArgs, Annotations: table(colsSPSecret),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			return c.CreateServicePrincipal(ctx, display, years)
		})}
	create.Flags().StringVarP(&display, "name", "n", "", "display name")
	create.Flags().IntVar(&years, "years", 1, "years until the secret expires")
	idFlag := func(c *cobra.Command) { c.Flags().StringVar(&id, "id", "", "client id (appId)") }
	show := &cobra.Command{Use: "show", Short: "Show a service principal and its secrets' expiry", Args: cobra.NoArgs, Annotations: table(colsSP),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(id, "--id"); err != nil {
				return nil, err
			}
			return c.ServicePrincipal(ctx, id)
		})}
	idFlag(show)
	list := &cobra.Command{Use: "list", Short: "List service principals", Args: cobra.NoArgs, Annotations: table(colsSP),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) { return c.ServicePrincipals(ctx) })}
	del := &cobra.Command{Use: "delete", Short: "Delete a service principal", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(id, "--id"); err != nil {
				return nil, err
			}
			return nil, c.DeleteServicePrincipal(ctx, id)
		})}
	idFlag(del)
	cred := &cobra.Command{Use: "credential", Short: "Reset a service principal's secret"}
	reset := &cobra.Command{Use: "reset", Short: "Make a new secret (replacing the others unless --append); shown once", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(id, "--id"); err != nil {
				return nil, err
			}
			if years < 1 {
				return nil, fmt.Errorf("--years must be at least 1")
			}
			return c.ResetServicePrincipalSecret(ctx, id, appendSecret, years)
		})}
	idFlag(reset)
	reset.Flags().BoolVar(&appendSecret, "append", false, "keep the existing secret (at most two)")
	reset.Flags().IntVar(&years, "years", 1, "years until the secret expires")
	cred.AddCommand(reset)
	cmd.AddCommand(create, show, list, del, cred, a.federatedCmd())
	return cmd
}
