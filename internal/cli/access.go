package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
)

// accessFlags are the registry settings of authorization and exposure, shared by registry
// create and update.
type accessFlags struct {
	anonymous, public        boolFlag
	anonRepos, defaultAction string
	mode                     string
}

func (f *accessFlags) add(c *cobra.Command) {
	boolVar(c, &f.anonymous, "anonymous-pull-enabled", "let clients without credentials pull every repository")
	c.Flags().StringVar(&f.anonRepos, "anonymous-pull-repositories", "", "repositories (names or 'prefix/*', space- or comma-separated; '' for none) anonymous clients may pull")
	boolVar(c, &f.public, "public-network-enabled", "accept clients from the network at all")
	c.Flags().StringVar(&f.defaultAction, "default-action", "", "Allow or Deny the addresses no network rule names")
	c.Flags().StringVar(&f.mode, "role-assignment-mode", "", "rbac (AcrPull, AcrPush, AcrDelete, Owner, Contributor, Reader) or rbac-abac (repository roles with conditions)")
}

func (f *accessFlags) apply(c *cobra.Command, u *client.RegistryUpdate) {
	u.AnonymousPullEnabled = f.anonymous.ptr()
	if c.Flags().Changed("anonymous-pull-repositories") {
		repos := strings.FieldsFunc(f.anonRepos, func(r rune) bool { return r == ',' || r == ' ' })
		if repos == nil {
			repos = []string{}
		}
		u.AnonymousPullRepositories = &repos
	}
	if f.public.set {
		v := "Disabled"
		if f.public.v {
			v = "Enabled"
		}
		u.PublicNetworkAccess = &v
	}
	if f.defaultAction != "" {
		u.NetworkRuleSet = &client.NetworkRuleSetUpdate{DefaultAction: &f.defaultAction}
	}
	if f.mode != "" {
		u.RoleAssignmentMode = &f.mode
	}
}

func (a *app) networkRuleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "network-rule", Short: "Manage a registry's IP allow rules (az acr network-rule)"}
	var name, ip string
	flags := func(c *cobra.Command, withIP bool) {
		c.Flags().StringVarP(&name, "name", "n", "", "registry name")
		if withIP {
			c.Flags().StringVar(&ip, "ip-address", "", "IPv4 or IPv6 address or CIDR range")
		}
	}
	list := &cobra.Command{Use: "list", Short: "List the rules and the default action", Args: cobra.NoArgs, Annotations: table(colsNetworkRules),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			return c.NetworkRules(ctx, name)
		})}
	flags(list, false)
	add := &cobra.Command{Use: "add", Short: "Allow an address or CIDR", Args: cobra.NoArgs, Annotations: table(colsNetworkRules),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := errors.Join(need(name, "--name"), need(ip, "--ip-address")); err != nil {
				return nil, err
			}
			return c.AddNetworkRule(ctx, name, ip)
		})}
	flags(add, true)
	remove := &cobra.Command{Use: "remove", Short: "Remove the rule for an address or CIDR", Args: cobra.NoArgs, Annotations: table(colsNetworkRules),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := errors.Join(need(name, "--name"), need(ip, "--ip-address")); err != nil {
				return nil, err
			}
			return c.RemoveNetworkRule(ctx, name, ip)
		})}
	flags(remove, true)
	cmd.AddCommand(list, add, remove)
	return cmd
}

func (a *app) roleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "role", Short: "Role definitions and assignments (az role)"}
	def := &cobra.Command{Use: "definition", Short: "The built-in roles"}
	def.AddCommand(&cobra.Command{Use: "list", Short: "List the built-in roles with their actions per mode", Args: cobra.NoArgs, Annotations: table(colsRoleDefinition),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) { return c.RoleDefinitions(ctx) })})

	asg := &cobra.Command{Use: "assignment", Short: "Role assignments"}
	var create client.RoleAssignmentCreate
	cr := &cobra.Command{Use: "create", Short: "Assign a role to a user, group or service principal at a scope", Args: cobra.NoArgs, Annotations: table(colsAssignment),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := errors.Join(need(create.Assignee, "--assignee"), need(create.Role, "--role"), need(create.Scope, "--scope")); err != nil {
				return nil, err
			}
			return c.CreateRoleAssignment(ctx, create)
		})}
	cr.Flags().StringVar(&create.Assignee, "assignee", "", "user or group name, service principal client id, or user:NAME, group:NAME, sp:CLIENT_ID")
	cr.Flags().StringVar(&create.Role, "role", "", "role name or id (see 'berth role definition list')")
	cr.Flags().StringVar(&create.Scope, "scope", "", "'/' for the whole server or '/registries/NAME'")
	cr.Flags().StringVar(&create.Condition, "condition", "", "ABAC condition on the repository name (repository roles only)")
	cr.Flags().StringVar(&create.ConditionVersion, "condition-version", "", "condition syntax version: 2.0")

	var filter client.RoleAssignmentFilter
	ls := &cobra.Command{Use: "list", Short: "List role assignments", Args: cobra.NoArgs, Annotations: table(colsAssignment),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) { return c.RoleAssignments(ctx, filter) })}
	ls.Flags().StringVar(&filter.Assignee, "assignee", "", "only this principal's")
	ls.Flags().StringVar(&filter.Role, "role", "", "only this role's")
	ls.Flags().StringVar(&filter.Scope, "scope", "", "only at this scope")

	var ids []string
	del := &cobra.Command{Use: "delete", Short: "Delete role assignments by id", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if len(ids) == 0 {
				return nil, errors.New("the --ids flag is required (see 'berth role assignment list')")
			}
			for _, id := range ids {
				if err := c.DeleteRoleAssignment(ctx, id); err != nil {
					return nil, err
				}
			}
			return nil, nil
		})}
	del.Flags().StringSliceVar(&ids, "ids", nil, "assignment ids")
	asg.AddCommand(cr, ls, del)
	cmd.AddCommand(def, asg)
	return cmd
}

func (a *app) explainCmd() *cobra.Command {
	var req client.ExplainRequest
	var tokenFile string
	cmd := &cobra.Command{Use: "explain", Short: "Say why an identity may or may not do an action on a repository, rule by rule", Args: cobra.NoArgs, Annotations: table(colsExplain),
		Example: "  berth explain -n default --identity ci-bot --repository team-a/app --action push\n" +
			"  berth explain -n default --identity 3f2c…-client-id --repository team-a/app --action pull --ip 203.0.113.9\n" +
			"  berth explain -n default --identity anonymous --action catalog\n" +
			"  berth explain -n default --identity ci-bot --repository samples/app --action push --grant repository:samples/app:pull\n" +
			"  berth explain -n default --identity ci-bot --repository samples/app --action push --access-token-file token.jwt",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := errors.Join(need(req.Registry, "--name"), need(req.Identity, "--identity"), need(req.Action, "--action")); err != nil {
				return err
			}
			if tokenFile != "" {
				g, err := grantOfTokenFile(tokenFile, a.stdin)
				if err != nil {
					return err
				}
				req.Grant = append(req.Grant, g...)
			}
			v, _, err := a.call(cmd.Context(), func(ctx context.Context, c *client.Client) (any, error) { return c.Explain(ctx, req) })
			if err != nil {
				return err
			}
			e := v.(client.Explanation)
			if cmd.Flags().Changed("output") || a.query != "" {
				return a.print(e)
			}
			return writeExplanation(a.stdout, e)
		}}
	cmd.Flags().StringVarP(&req.Registry, "name", "n", "", "registry name")
	cmd.Flags().StringVar(&req.Identity, "identity", "", "user name, service principal client id, token:NAME, admin or anonymous")
	cmd.Flags().StringVar(&req.Repository, "repository", "", "repository name")
	cmd.Flags().StringVar(&req.Action, "action", "", "pull, push, delete, metadata_read, metadata_write or catalog")
	cmd.Flags().StringVar(&req.IP, "ip", "", "also check the registry's network rules (and the management allow-list) for this client address")
	cmd.Flags().StringArrayVar(&req.Grant, "grant", nil, "explain a request made with an access token holding this scope (repository:NAME:ACTIONS; repeatable)")
	cmd.Flags().StringVar(&req.Subject, "subject", "", "for a service principal: which of its federated credentials an external token with this subject would match (repo:ORG/REPO:ref:refs/heads/dev)")
	cmd.Flags().StringVar(&tokenFile, "access-token-file", "", "explain a request made with the access token in this file ('-' for standard input): its grant is read, its signature is not checked")
	return cmd
}

// grantOfTokenFile reads the access claim of the JWT in file (or standard input for "-") as scope
// strings. The token is not verified: explain only asks what its grant would allow, and the
// token itself never leaves this machine.
func grantOfTokenFile(file string, stdin io.Reader) ([]string, error) {
	var raw []byte
	var err error
	if file == "-" {
		raw, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		raw, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("--access-token-file: %w", err)
	}
	parts := strings.Split(strings.TrimSpace(string(raw)), ".")
	if len(parts) != 3 {
		return nil, errors.New("--access-token-file: not a JWT (header.payload.signature)")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("--access-token-file: the payload is not base64url: %w", err)
	}
	var claims struct {
		GrantType string         `json:"grant_type"`
		Access    []access.Scope `json:"access"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("--access-token-file: the payload is not JSON: %w", err)
	}
	if claims.GrantType != "access_token" {
		return nil, fmt.Errorf("--access-token-file: a %q token carries no grant: give an access token from /oauth2/token", claims.GrantType)
	}
	out := []string{}
	for _, sc := range claims.Access {
		out = append(out, sc.String())
	}
	if len(out) == 0 {
		out = append(out, "") // an empty grant: the token allows nothing
	}
	return out, nil
}

// writeExplanation prints an explanation for people: the verdict, the reason, then every rule
// considered (-o json gives the same as data).
func writeExplanation(w io.Writer, e client.Explanation) error {
	e = safeExplanation(e)
	verb := e.Action + " " + e.Resource
	if e.Action == "*" {
		verb = "list " + e.Resource
	}
	switch {
	case e.Allowed && e.Decision.Filtered:
		fmt.Fprintf(w, "ALLOWED, FILTERED: %s may %s in registry %q, but sees only the repositories it may pull\n", e.Identity, verb, e.Registry)
	case e.Allowed:
		fmt.Fprintf(w, "ALLOWED: %s may %s in registry %q\n", e.Identity, verb, e.Registry)
	default:
		fmt.Fprintf(w, "DENIED: %s may not %s in registry %q\n", e.Identity, verb, e.Registry)
	}
	fmt.Fprintf(w, "mode: %s; data action: %s\n", e.Mode, e.DataAction)
	if e.Network != nil {
		state := "allowed"
		if !e.Network.Allow {
			state = "refused before authentication"
		}
		fmt.Fprintf(w, "network: %s from %s: %s\n", state, e.IP, e.Network.Reason)
	}
	if e.Management != nil {
		state := "allowed"
		if !e.Management.Allow {
			state = "refused"
		}
		fmt.Fprintf(w, "management API: %s from %s: %s\n", state, e.IP, e.Management.Reason)
	}
	state := "denied"
	if e.Decision.Allow {
		state = "allowed"
	}
	fmt.Fprintf(w, "access: %s (%s): %s\n", state, e.Decision.Code, e.Decision.Reason)
	if len(e.Steps) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nconsidered:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range e.Steps {
		mark := "no"
		if s.Matched {
			mark = "yes"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", mark, s.Source, s.Ref, s.Detail)
	}
	return tw.Flush()
}

// safeExplanation is e with every text made safe for a terminal (names come from others).
func safeExplanation(e client.Explanation) client.Explanation {
	for _, p := range []*string{&e.Identity, &e.Registry, &e.Mode, &e.Resource, &e.Action, &e.DataAction, &e.IP,
		&e.Decision.Code, &e.Decision.Reason} {
		*p = safe(*p)
	}
	for _, d := range []**client.Decision{&e.Network, &e.Management} {
		if *d != nil {
			c := **d
			c.Code, c.Reason = safe(c.Code), safe(c.Reason)
			*d = &c
		}
	}
	steps := make([]client.Step, len(e.Steps))
	for i, st := range e.Steps {
		steps[i] = client.Step{Source: safe(st.Source), Ref: safe(st.Ref), Matched: st.Matched, Detail: safe(st.Detail)}
	}
	e.Steps = steps
	return e
}
