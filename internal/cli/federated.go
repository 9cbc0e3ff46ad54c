package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/client"
)

const colsFederated = `{Name: name, Issuer: issuer, Subject: subject || claimsMatchingExpression.value, Audiences: join(', ', audiences)}`

// federatedCmd is az ad app federated-credential, under berth sp: the external tokens a service
// principal trusts instead of a secret.
func (a *app) federatedCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "federated-credential", Short: "Trust an external OpenID Connect issuer's tokens for a service principal (az ad app federated-credential)"}
	var appID, fcID, parameters, name, issuer, subject, expression, description, jwksFile string
	var audiences []string
	idFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&appID, "id", "", "the service principal's client id (appId)")
	}
	fcFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&fcID, "federated-credential-id", "", "the federated credential's name or id")
	}
	fields := func(c *cobra.Command) {
		c.Flags().StringVar(&parameters, "parameters", "", "the credential as JSON (az's form: name, issuer, subject, description, audiences), inline or a file (@file or a path)")
		c.Flags().StringVar(&issuer, "issuer", "", "the tokens' issuer (iss), one of the server's federation.issuers")
		c.Flags().StringVar(&subject, "subject", "", "the tokens' subject (sub), matched exactly: repo:ORG/REPO:ref:refs/heads/main, system:serviceaccount:NS:NAME")
		c.Flags().StringVar(&expression, "claims-matching-expression", "", "instead of --subject: claims['sub'] matches 'repo:ORG/REPO:ref:refs/heads/*' (* any characters, ? one; eq is exact; terms joined by and)")
		c.Flags().StringSliceVar(&audiences, "audiences", nil, "the audiences (aud) the tokens must carry one of (default api://BerthTokenExchange)")
		c.Flags().StringVar(&description, "description", "", "a description")
		c.Flags().StringVar(&jwksFile, "jwks-file", "", "a static key set (JWKS) for an issuer the server cannot reach, e.g. from kubectl get --raw /openid/v1/jwks")
	}
	// build is the credential the flags and --parameters give; set lists the fields given.
	build := func(cmd *cobra.Command) (client.FederatedCredential, map[string]bool, error) {
		var fc client.FederatedCredential
		set := map[string]bool{}
		if parameters != "" {
			raw := parameters
			if p, ok := strings.CutPrefix(parameters, "@"); ok || !strings.HasPrefix(strings.TrimSpace(parameters), "{") {
				if !ok {
					p = parameters
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return fc, nil, fmt.Errorf("--parameters: %w", err)
				}
				raw = string(b)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				return fc, nil, fmt.Errorf("--parameters is not a JSON object: %w", err)
			}
			if err := json.Unmarshal([]byte(raw), &fc); err != nil {
				return fc, nil, fmt.Errorf("--parameters: %w", err)
			}
			for k := range m {
				set[k] = true
			}
		}
		f := cmd.Flags()
		if f.Changed("name") {
			fc.Name, set["name"] = name, true
		}
		if f.Changed("issuer") {
			fc.Issuer, set["issuer"] = issuer, true
		}
		if f.Changed("subject") {
			fc.Subject, set["subject"] = &subject, true
		}
		if f.Changed("claims-matching-expression") {
			fc.ClaimsMatchingExpression, set["claimsMatchingExpression"] = &client.ClaimsMatchingExpression{Value: expression, LanguageVersion: 1}, true
		}
		if f.Changed("audiences") {
			fc.Audiences, set["audiences"] = audiences, true
		}
		if f.Changed("description") {
			fc.Description, set["description"] = description, true
		}
		if jwksFile != "" {
			b, err := os.ReadFile(jwksFile)
			if err != nil {
				return fc, nil, fmt.Errorf("--jwks-file: %w", err)
			}
			if !json.Valid(b) {
				return fc, nil, fmt.Errorf("--jwks-file: %s is not JSON", jwksFile)
			}
			fc.JWKS, set["jwks"] = b, true
		}
		return fc, set, nil
	}
	create := &cobra.Command{Use: "create", Short: "Add a federated credential", Args: cobra.NoArgs, Annotations: table(colsFederated),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := need(appID, "--id"); err != nil {
				return err
			}
			fc, _, err := build(cmd)
			if err != nil {
				return err
			}
			if fc.Name == "" || fc.Issuer == "" || (fc.Subject == nil && fc.ClaimsMatchingExpression == nil) {
				return fmt.Errorf("usage: berth sp federated-credential create --id APPID --name NAME --issuer URL (--subject S | --claims-matching-expression E) [--audiences A] (or --parameters credential.json)")
			}
			return a.run(func(ctx context.Context, c *client.Client) (any, error) {
				return c.CreateFederatedCredential(ctx, appID, fc)
			})(cmd, args)
		}}
	create.Flags().StringVarP(&name, "name", "n", "", "the credential's name (3 to 120 letters, digits, - and _)")
	fields(create)
	update := &cobra.Command{Use: "update", Short: "Change a federated credential (what is given)", Args: cobra.NoArgs, Annotations: table(colsFederated),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := need(appID, "--id"); err != nil {
				return err
			}
			if err := need(fcID, "--federated-credential-id"); err != nil {
				return err
			}
			fc, set, err := build(cmd)
			if err != nil {
				return err
			}
			// Only what was given is sent: the server keeps the rest.
			body := map[string]any{}
			b, _ := json.Marshal(fc)
			var all map[string]any
			json.Unmarshal(b, &all)
			for k := range set {
				body[k] = all[k]
			}
			if set["subject"] && !set["claimsMatchingExpression"] {
				body["claimsMatchingExpression"] = nil
			}
			return a.run(func(ctx context.Context, c *client.Client) (any, error) {
				return c.PatchFederatedCredential(ctx, appID, fcID, body)
			})(cmd, args)
		}}
	fields(update)
	show := &cobra.Command{Use: "show", Short: "Show a federated credential", Args: cobra.NoArgs, Annotations: table(colsFederated),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(appID, "--id"); err != nil {
				return nil, err
			}
			if err := need(fcID, "--federated-credential-id"); err != nil {
				return nil, err
			}
			return c.FederatedCredential(ctx, appID, fcID)
		})}
	list := &cobra.Command{Use: "list", Short: "List a service principal's federated credentials", Args: cobra.NoArgs, Annotations: table(colsFederated),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(appID, "--id"); err != nil {
				return nil, err
			}
			return c.FederatedCredentials(ctx, appID)
		})}
	del := &cobra.Command{Use: "delete", Short: "Remove a federated credential", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(appID, "--id"); err != nil {
				return nil, err
			}
			if err := need(fcID, "--federated-credential-id"); err != nil {
				return nil, err
			}
			return nil, c.DeleteFederatedCredential(ctx, appID, fcID)
		})}
	for _, c := range []*cobra.Command{create, update, show, list, del} {
		idFlag(c)
	}
	for _, c := range []*cobra.Command{update, show, del} {
		fcFlag(c)
	}
	cmd.AddCommand(create, update, show, list, del)
	return cmd
}
