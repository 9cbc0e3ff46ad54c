package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/client"
)

// kubernetesCmd is berth kubernetes: what a cluster needs to pull from berth.
func (a *app) kubernetesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "kubernetes", Short: "Let a Kubernetes cluster pull from berth (docs/kubernetes.md)"}
	ps := &cobra.Command{Use: "pull-secret", Short: "Image pull secrets, when that is what a cluster has"}
	var registry, token, sp, passwordName, namespace, name string
	var stdin, apply bool
	var horizon time.Duration
	var days int
	create := &cobra.Command{
		Use:   "create",
		Short: "Print a kubernetes.io/dockerconfigjson Secret for a token (a new password) or a service principal (its secret on stdin); --apply applies it with kubectl",
		Args:  cobra.NoArgs,
		Example: "  berth kubernetes pull-secret create -n default --token cluster-pull --namespace prod -o yaml\n" +
			"  printf '%s' \"$SECRET\" | berth kubernetes pull-secret create -n default --service-principal APPID --password-stdin --apply",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if registry == "" || (token == "") == (sp == "") {
				return errors.New("usage: berth kubernetes pull-secret create -n REGISTRY (--token NAME | --service-principal APPID --password-stdin) [--namespace NS] [--name NAME] [--apply]")
			}
			if !dnsName.MatchString(name) || !dnsName.MatchString(namespace) {
				return fmt.Errorf("--name %q and --namespace %q must be Kubernetes names (lower-case letters, digits, '-', at most 63)", name, namespace)
			}
			c, s, err := a.client()
			if err != nil {
				return err
			}
			reg, _, err := a.resolveRegistry(ctx, c, s, registry)
			if err != nil {
				return err
			}
			var user, password string
			var expiry *time.Time
			if token != "" {
				if passwordName != "password1" && passwordName != "password2" {
					return fmt.Errorf("--password-name must be password1 or password2, not %q", passwordName)
				}
				req := client.TokenCredentials{Password1: passwordName == "password1", Password2: passwordName == "password2", ExpiryInDays: days}
				v, _, err := a.call(ctx, func(ctx context.Context, c *client.Client) (any, error) {
					return c.GenerateTokenCredentials(ctx, reg.Name, token, req)
				})
				if err != nil {
					return err
				}
				t := v.(client.Token)
				if t.Credentials == nil {
					return fmt.Errorf("token %q: no credentials returned", token)
				}
				for _, p := range t.Credentials.Passwords {
					if p.Name == passwordName && p.Value != nil {
						user, password = t.Credentials.Username, *p.Value
						if p.Expiry != nil {
							if e, err := time.Parse(time.RFC3339, *p.Expiry); err == nil {
								expiry = &e
							}
						}
					}
				}
				if password == "" {
					return fmt.Errorf("token %q: the new %s was not returned", token, passwordName)
				}
			} else {
				if !stdin {
					return errors.New("--service-principal needs its secret on stdin: --password-stdin")
				}
				if password, err = a.secret("Secret: ", true); err != nil {
					return err
				}
				user = sp
				v, _, err := a.call(ctx, func(ctx context.Context, c *client.Client) (any, error) { return c.ServicePrincipal(ctx, sp) })
				if err != nil {
					return err
				}
				// The secret given is one of these; the soonest to expire is the one to watch.
				for _, cred := range v.(client.ServicePrincipal).PasswordCredentials {
					if cred.EndDateTime == nil {
						continue
					}
					if e, err := time.Parse(time.RFC3339, *cred.EndDateTime); err == nil && (expiry == nil || e.Before(*expiry)) {
						expiry = &e
					}
				}
			}
			if expiry != nil && expiry.Before(time.Now().Add(horizon)) {
				a.warn("the credential in the pull secret expires on %s, within %s: pulls will then fail with 401 (renew it, or use the credential provider: docs/kubernetes.md)",
					expiry.UTC().Format(time.RFC3339), horizon)
			}
			secret := pullSecret(name, namespace, reg.LoginServer, user, password)
			if !apply {
				return a.print(secret)
			}
			b, _ := json.Marshal(secret)
			kubectl, err := exec.LookPath("kubectl")
			if err != nil {
				return fmt.Errorf("--apply needs kubectl on PATH: %w", err)
			}
			k := exec.CommandContext(ctx, kubectl, "apply", "-f", "-")
			k.Stdin = bytes.NewReader(b)
			var out bytes.Buffer
			k.Stdout, k.Stderr = &out, &out
			if err := k.Run(); err != nil {
				return fmt.Errorf("kubectl apply: %v: %s", err, strings.TrimSpace(out.String()))
			}
			fmt.Fprint(a.stdout, out.String())
			return nil
		},
	}
	create.Flags().StringVarP(&registry, "registry", "n", "", "registry name or login server")
	create.Flags().StringVar(&token, "token", "", "a repository-scoped token: a new password is generated for the secret")
	create.Flags().StringVar(&passwordName, "password-name", "password1", "with --token: which password to (re)generate")
	create.Flags().IntVar(&days, "expiration-in-days", 0, "with --token: the new password's lifetime (default: none)")
	create.Flags().StringVar(&sp, "service-principal", "", "a service principal's client id (its secret on stdin)")
	create.Flags().BoolVar(&stdin, "password-stdin", false, "read the service principal's secret from stdin")
	create.Flags().StringVar(&namespace, "namespace", "default", "the Secret's namespace")
	create.Flags().StringVar(&name, "name", "berth-pull", "the Secret's name")
	create.Flags().BoolVar(&apply, "apply", false, "apply it with kubectl instead of printing it")
	create.Flags().DurationVar(&horizon, "warn-within", 30*24*time.Hour, "warn when the credential expires within this long")
	ps.AddCommand(create)
	cmd.AddCommand(ps)
	return cmd
}

var dnsName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// pullSecret is a kubernetes.io/dockerconfigjson Secret, as kubectl create secret
// docker-registry makes it.
func pullSecret(name, namespace, server, user, password string) map[string]any {
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	type entry struct { // in kubectl's order
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]entry{server: {user, password, auth}}})
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"type":       "kubernetes.io/dockerconfigjson",
		"data":       map[string]string{".dockerconfigjson": base64.StdEncoding.EncodeToString(cfg)},
	}
}
