package cli

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth-registry/berth/client"
)

// boolFlag is a flag that takes true or false, as az's --admin-enabled does.
type boolFlag struct {
	set bool
	v   bool
}

func (b *boolFlag) String() string { return strconv.FormatBool(b.v) }
func (b *boolFlag) Type() string   { return "true|false" }
func (b *boolFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	b.set, b.v = true, v
	return nil
}

// boolVar adds a boolFlag that, as az's, may stand alone (--admin-enabled is true) or take a
// value (--admin-enabled false, --admin-enabled=false): joinBoolArgs joins a separate value.
func boolVar(c *cobra.Command, b *boolFlag, name, usage string) {
	c.Flags().Var(b, name, usage+" (alone: true)")
	c.Flags().Lookup(name).NoOptDefVal = "true"
}

// joinBoolArgs turns "--flag true" into "--flag=true" for the boolFlag flags of root's commands,
// so that a bare flag and a flag with its value both parse.
func joinBoolArgs(root *cobra.Command, args []string) []string {
	names := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if _, ok := f.Value.(*boolFlag); ok {
				names["--"+f.Name] = true
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if names[args[i]] && i+1 < len(args) {
			if _, err := strconv.ParseBool(args[i+1]); err == nil {
				out = append(out, args[i]+"="+args[i+1])
				i++
				continue
			}
		}
		out = append(out, args[i])
	}
	return out
}

func (b *boolFlag) ptr() *bool {
	if !b.set {
		return nil
	}
	return &b.v
}

func need(name, flag string) error {
	if name == "" {
		return fmt.Errorf("the %s flag is required", flag)
	}
	return nil
}

func (a *app) registryCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "registry", Short: "Manage registries (az acr create/show/list/update/delete)"}
	var name, loginServer string
	var admin boolFlag
	var access accessFlags
	var create, update *cobra.Command
	nameFlag := func(c *cobra.Command) { c.Flags().StringVarP(&name, "name", "n", "", "registry name") }

	create = &cobra.Command{Use: "create", Short: "Create a registry", Args: cobra.NoArgs, Annotations: table(colsRegistry),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			u := client.RegistryUpdate{Name: name, AdminUserEnabled: admin.ptr()}
			if loginServer != "" {
				u.LoginServer = &loginServer
			}
			access.apply(create, &u)
			return c.CreateRegistry(ctx, u)
		})}
	nameFlag(create)
	create.Flags().StringVar(&loginServer, "login-server", "", "host name clients use for this registry (default: the server's)")
	boolVar(create, &admin, "admin-enabled", "enable the admin user")
	access.add(create)

	show := &cobra.Command{Use: "show", Short: "Show a registry", Args: cobra.NoArgs, Annotations: table(colsRegistry),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			return c.Registry(ctx, name)
		})}
	nameFlag(show)

	list := &cobra.Command{Use: "list", Short: "List the registries", Args: cobra.NoArgs, Annotations: table(colsRegistry),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) { return c.Registries(ctx) })}

	update = &cobra.Command{Use: "update", Short: "Change a registry's settings", Args: cobra.NoArgs, Annotations: table(colsRegistry),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			u := client.RegistryUpdate{AdminUserEnabled: admin.ptr()}
			if loginServer != "" {
				u.LoginServer = &loginServer
			}
			access.apply(update, &u)
			if reflect.ValueOf(u).IsZero() {
				return nil, errors.New("nothing to update: give --admin-enabled, --login-server, --anonymous-pull-enabled, --anonymous-pull-repositories, --public-network-enabled, --default-action or --role-assignment-mode")
			}
			r, err := c.UpdateRegistry(ctx, name, u)
			if err == nil && r.Credentials != nil {
				a.warn("the admin user's passwords were generated: 'berth credential show -n %s' shows them again", name)
			}
			return r, err
		})}
	nameFlag(update)
	update.Flags().StringVar(&loginServer, "login-server", "", "host name (or IP) and optional port clients use for this registry: no other registry may have its host; changing it needs a role at /")
	boolVar(update, &admin, "admin-enabled", "enable or disable the admin user")
	access.add(update)

	var yes bool
	del := &cobra.Command{Use: "delete", Short: "Delete a registry with its content", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			if err := a.confirm(fmt.Sprintf("Deleting registry %q deletes its content. Are you sure you want to continue?", name), yes); err != nil {
				return nil, err
			}
			return nil, c.DeleteRegistry(ctx, name)
		})}
	nameFlag(del)
	yesFlag(del, &yes)

	var usageRepo string
	usage := &cobra.Command{Use: "show-usage", Short: "Show what a registry holds: bytes, repositories, manifests, tags (az acr show-usage)", Args: cobra.NoArgs,
		Annotations: table(`value[].{NAME: name, LIMIT: limit, "CURRENT VALUE": currentValue, UNIT: unit}`),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			if usageRepo != "" {
				return c.RepositoryUsage(ctx, name, usageRepo)
			}
			return c.RegistryUsage(ctx, name)
		})}
	nameFlag(usage)
	usage.Flags().StringVar(&usageRepo, "repository", "", "one repository's figures instead")
	cmd.AddCommand(create, show, list, update, del, usage)
	return cmd
}

func (a *app) credentialCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "credential", Short: "Show and renew the admin user's credentials (az acr credential)"}
	var name, pw string
	show := &cobra.Command{Use: "show", Short: "Show the admin user's name and both passwords", Args: cobra.NoArgs, Annotations: table(colsCredentials),
		Long: `Show the admin user's name and both passwords, as az acr credential show: the admin
user is the registry's shared credential, and its passwords can be read again by the roles that
hold registries/credentials/list (Owner, Contributor, Container Registry Contributor and Data
Access Configuration Administrator). Every read is a login event (operation list_credentials)
naming who read them.

  docker login myregistry.example -u myregistry \
    -p "$(berth credential show -n myregistry --query 'passwords[0].value' -o tsv)"`,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			creds, err := c.ListCredentials(ctx, name)
			for _, p := range creds.Passwords {
				if p.Value == nil {
					a.warn("%s cannot be shown (made before berth kept admin passwords, or sealed with another key-encryption key): run 'berth credential renew -n %s --password-name %s'", p.Name, name, p.Name)
				}
			}
			return creds, err
		})}
	show.Flags().StringVarP(&name, "name", "n", "", "registry name")
	renew := &cobra.Command{Use: "renew", Short: "Regenerate one admin password", Args: cobra.NoArgs, Annotations: table(colsCredentials),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			if pw != "password" && pw != "password2" {
				return nil, errors.New("--password-name must be password or password2")
			}
			return c.RenewAdminCredential(ctx, name, pw)
		})}
	renew.Flags().StringVarP(&name, "name", "n", "", "registry name")
	renew.Flags().StringVar(&pw, "password-name", "", "password or password2")
	cmd.AddCommand(show, renew)
	return cmd
}
