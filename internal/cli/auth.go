package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/client"
)

// nullGUID is the user name a registry refresh token is stored under.
const nullGUID = "00000000-0000-0000-0000-000000000000"

func (a *app) authCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "auth", Short: "Sign in to a berth server (the az login of berth)"}
	var server, user, password, federated, idp string
	var stdin, sp, sso, device bool
	login := &cobra.Command{
		Use:   "login",
		Short: "Sign in as a directory user or, with --service-principal, as a service principal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.loadSession()
			if err != nil {
				return err
			}
			if server == "" {
				server = s.Server
			}
			if sso || device {
				return a.ssoLogin(cmd.Context(), s, server, idp, device)
			}
			if server == "" || user == "" {
				return errors.New("usage: berth auth login --server URL -u NAME [--password-stdin], or --sso --identity-provider NAME")
			}
			if !strings.Contains(server, "://") {
				server = "https://" + server
			}
			if federated != "" && !sp {
				return errors.New("--federated-token signs in a service principal: add --service-principal")
			}
			if federated != "" && (password != "" || stdin) {
				return errors.New("give --federated-token or a password, not both")
			}
			if password == "" && federated == "" {
				if password, err = a.secret("Password: ", stdin); err != nil {
					return err
				}
			}
			s.TLS = tlsOptions{} // this sign-in's own options, not the last one's
			s.TLS = a.tlsFor(s)
			c, err := a.newClient(s, server, "")
			if err != nil {
				return err
			}
			var tok client.DirectoryToken
			kind := "user"
			switch {
			case federated != "":
				kind = "servicePrincipal"
				tok, err = c.SignInFederated(cmd.Context(), user, strings.TrimSpace(federated))
			case sp:
				kind = "servicePrincipal"
				tok, err = c.SignInServicePrincipal(cmd.Context(), user, password)
			default:
				tok, err = c.SignIn(cmd.Context(), user, password)
			}
			if err != nil {
				return transportHint(fmt.Errorf("sign-in to %s failed: %w", server, err), server)
			}
			s = session{Server: strings.TrimRight(server, "/"), User: user, Type: kind, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
				ExpiresOn: time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second).UTC().Format(time.RFC3339), TLS: s.TLS}
			if err := a.saveSession(s); err != nil {
				return err
			}
			return a.print(map[string]any{"server": s.Server, "user": map[string]string{"name": user, "type": kind}, "tenant": "berth", "expiresOn": s.ExpiresOn})
		},
	}
	login.Flags().StringVar(&server, "server", "", "URL of the berth server, e.g. https://berth.example.com")
	login.Flags().StringVarP(&user, "username", "u", "", "user name, or a service principal's client id")
	login.Flags().StringVarP(&password, "password", "p", "", "password or client secret (prefer --password-stdin or the prompt)")
	login.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from stdin")
	login.Flags().BoolVar(&sp, "service-principal", false, "sign in as a service principal with its client id and secret")
	login.Flags().BoolVar(&sso, "sso", false, "sign in as a person with single sign-on: the identity provider's page opens in a browser")
	login.Flags().BoolVar(&device, "use-device-code", false, "with --sso, on a machine without a browser: a code to enter on another device")
	login.Flags().StringVar(&idp, "identity-provider", "", "with --sso: the identity provider's name (berth identity-provider list)")
	login.Flags().StringVar(&federated, "federated-token", "", "with --service-principal: an OpenID Connect token (GitHub Actions, GitLab CI, Kubernetes) that one of its federated credentials trusts, instead of a secret")

	logout := &cobra.Command{
		Use: "logout", Short: "Forget the saved sign-in", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.loadSession()
			if err != nil {
				return err
			}
			if s.RefreshToken != "" {
				// Revoke the sign-in on the server, so that no copy of the refresh token renews it.
				c, err := a.newClient(s, s.Server, "")
				if err == nil {
					err = c.RevokeSignIn(cmd.Context(), s.RefreshToken)
				}
				if err != nil {
					a.warn("could not revoke the sign-in on %s (%v); it is forgotten here", s.Server, err)
				}
			}
			return a.saveSession(session{Server: s.Server, TLS: s.TLS})
		},
	}
	show := &cobra.Command{
		Use: "show", Short: "Show who is signed in, and where", Args: cobra.NoArgs,
		Annotations: table(`{User: user.name, Type: user.type, Server: server, "Server owner": serverOwner, "Expires on": expiresOn}`),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, s, err := a.call(cmd.Context(), func(ctx context.Context, c *client.Client) (any, error) { return c.Me(ctx) })
			if err != nil {
				return err
			}
			me := v.(client.Me)
			return a.print(map[string]any{"server": s.Server, "user": map[string]string{"name": me.Name, "type": me.Type},
				"tenant": me.Tenant, "expiresOn": s.ExpiresOn, "serverOwner": me.ServerOwner})
		},
	}
	cmd.AddCommand(login, logout, show)
	return cmd
}

// resolveRegistry finds the registry a name or login server (host[:port]) names, as az acr
// login -n does, and the signed-in server's URL (whose scheme the login server speaks). An
// identity that may not read the registry's settings gets a warning and a guess.
func (a *app) resolveRegistry(ctx context.Context, c *client.Client, s session, name string) (client.Registry, *url.URL, error) {
	su, err := url.Parse(s.Server)
	if err != nil {
		return client.Registry{}, nil, err
	}
	var reg client.Registry
	if strings.ContainsAny(name, ".:") { // a login server, as az acr login -n also takes
		reg, err = registryByLoginServer(ctx, c, name)
	} else {
		reg, err = c.Registry(ctx, strings.ToLower(name))
	}
	switch {
	case client.IsStatus(err, http.StatusForbidden) && strings.ContainsAny(name, ".:"):
		a.warn("cannot list the registries (no control-plane role): using %s as the login server", name)
		reg = client.Registry{Name: strings.ToLower(name), LoginServer: strings.ToLower(name)}
	case client.IsStatus(err, http.StatusForbidden):
		// An identity with data-plane roles only cannot read the registry's settings (az acr
		// login falls back to the name and the cloud's suffix): assume the server's host.
		a.warn("cannot read the settings of registry '%s' (no control-plane role on it): assuming its login server is %s", name, su.Host)
		reg = client.Registry{Name: strings.ToLower(name), LoginServer: su.Host}
	case err != nil:
		return reg, nil, &azError{"LOGIN_SERVER_ERROR", fmt.Sprintf("An error occurred while retrieving the login server for registry '%s': %v", name, err)}
	}
	return reg, su, nil
}

// registryByLoginServer is the registry whose login server is ls (case aside; a login server
// given without a port matches one with the port of the server's address, and the reverse).
func registryByLoginServer(ctx context.Context, c *client.Client, ls string) (client.Registry, error) {
	regs, err := c.Registries(ctx)
	if err != nil {
		return client.Registry{}, err
	}
	host := func(s string) string {
		if h, _, err := net.SplitHostPort(s); err == nil {
			return strings.ToLower(h)
		}
		return strings.ToLower(s)
	}
	var loose []client.Registry
	for _, r := range regs {
		switch {
		case strings.EqualFold(r.LoginServer, ls):
			return r, nil
		case host(r.LoginServer) == host(ls):
			loose = append(loose, r)
		}
	}
	if len(loose) == 1 {
		return loose[0], nil
	}
	return client.Registry{}, fmt.Errorf("no registry has the login server %q (berth registry list shows each one's)", ls)
}

// challenge is what GET /v2/ on a login server answers.
type challenge struct {
	realm, service string
}

// probe fetches the challenge of loginServer, with ACR's errors for the usual failures.
func probe(ctx context.Context, hc *http.Client, scheme, loginServer, registry string) (challenge, error) {
	u := scheme + "://" + loginServer + "/v2/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return challenge{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return challenge{}, fmt.Errorf("Could not connect to the registry login server '%s'. Please verify that the registry exists and the URL '%s' is reachable from your environment.\n"+
			"Try running 'berth check-health -n %s --yes' to diagnose this issue. (%v)", loginServer, u, registry, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusForbidden {
		return challenge{}, fmt.Errorf("Looks like you don't have access to registry '%s'. To see configured network rules, run 'berth registry show -n %s'. (CONNECTIVITY_FORBIDDEN_ERROR)", loginServer, registry)
	}
	scheme, params := client.ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || scheme != "bearer" {
		return challenge{}, fmt.Errorf("Registry '%s' did not ask properly for a basic or a bearer authentication (status %d). (CONNECTIVITY_WWW_AUTHENTICATE_ERROR)", loginServer, resp.StatusCode)
	}
	if params["realm"] == "" || params["service"] == "" {
		return challenge{}, fmt.Errorf("Registry '%s' does not support directory sign-in: its challenge has no realm or service. (CONNECTIVITY_AAD_LOGIN_ERROR)", loginServer)
	}
	return challenge{realm: params["realm"], service: params["service"]}, nil
}

func (a *app) loginCmd() *cobra.Command {
	var name, user, password string
	var expose, stdin, helper bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign docker (or podman, per DOCKER_COMMAND) in to a registry, as az acr login does",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if name == "" {
				return errors.New("usage: berth login -n REGISTRY [--expose-token] [-u USER [--password-stdin]]")
			}
			if helper && (expose || user != "" || password != "") {
				return errors.New("--credential-helper signs in with the berth CLI's own sign-in (or BERTH_CLIENT_ID with a secret or a federated token file): no --username, --password or --expose-token")
			}
			if expose && (user != "" || password != "") {
				return errors.New("`--expose-token` cannot be combined with `--username` or `--password`.")
			}
			if (password != "" || stdin) && user == "" {
				return errors.New("usage error: --password and --password-stdin need --username: berth login -n REGISTRY -u USER -p PASSWORD")
			}
			if name != strings.ToLower(name) {
				a.warn("Uppercase characters are detected in the registry name. When using its server url in docker commands, to avoid authentication errors, use all lowercase.")
			}
			c, s, err := a.client()
			if err != nil {
				return err
			}
			reg, su, err := a.resolveRegistry(ctx, c, s, name)
			if err != nil {
				return err
			}
			if helper {
				if err := a.registerHelper(ctx, s, reg, su.Scheme); err != nil {
					return err
				}
				if _, err := exec.LookPath("docker-credential-" + HelperName); err != nil {
					a.warn("docker-credential-%s is not on PATH: link it to berth (ln -s \"$(command -v berth)\" /usr/local/bin/docker-credential-%s) or go install ./cmd/docker-credential-%s", HelperName, HelperName, HelperName)
				}
				return a.print(map[string]string{"loginServer": reg.LoginServer, "credentialHelper": "docker-credential-" + HelperName, "username": nullGUID})
			}
			if user != "" {
				if password == "" {
					if password, err = a.secret("Password: ", stdin); err != nil {
						return err
					}
				}
				return a.dockerLogin(ctx, su.Scheme, reg.LoginServer, user, password)
			}
			ch, err := probe(ctx, c.HTTP, su.Scheme, reg.LoginServer, reg.Name)
			if err != nil {
				return err
			}
			ru, err := url.Parse(ch.realm)
			if err != nil {
				return fmt.Errorf("the challenge's realm %q is not a URL: %w", ch.realm, err)
			}
			refresh, err := c.Exchange(ctx, ru.Scheme+"://"+ru.Host, ch.service)
			if err != nil {
				status := 0
				var ce *client.Error
				if errors.As(err, &ce) {
					status = ce.Status
				}
				denied := &azError{"CONNECTIVITY_REFRESH_TOKEN_ERROR", fmt.Sprintf("Access to registry '%s' was denied. Response code: %d. Please try running 'berth auth login' again to refresh permissions. (%v)", reg.LoginServer, status, err)}
				if expose {
					return denied
				}
				// As az acr login: without a refresh token, the admin user, when the signed-in
				// identity may read its passwords.
				creds, cerr := c.ListCredentials(ctx, reg.Name)
				if cerr != nil || len(creds.Passwords) == 0 || creds.Passwords[0].Value == nil {
					return denied
				}
				a.warn("Unable to get a registry refresh token with the directory sign-in (%v): logging in with the admin user's credentials instead", err)
				return a.dockerLogin(ctx, su.Scheme, reg.LoginServer, creds.Username, *creds.Passwords[0].Value)
			}
			if expose {
				a.warn("You can perform manual login using the provided refresh token below, for example: 'docker login %s -u %s -p <refreshToken>'. "+
					"The token in both the accessToken and refreshToken fields is a registry refresh token, not an access token: use it as the password of user %s, or exchange it at /oauth2/token for an access token.",
					reg.LoginServer, nullGUID, nullGUID)
				return a.print(map[string]string{"loginServer": reg.LoginServer, "username": nullGUID, "accessToken": refresh, "refreshToken": refresh})
			}
			return a.dockerLogin(ctx, su.Scheme, reg.LoginServer, nullGUID, refresh)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "registry name")
	cmd.Flags().BoolVar(&helper, "credential-helper", false, "instead of storing a token, let docker-credential-berth hand docker, podman, skopeo, crane, regctl, oras and helm a fresh one at every use (credHelpers)")
	cmd.Flags().BoolVarP(&expose, "expose-token", "t", false, "print the refresh token instead of storing it with docker (needs no docker)")
	cmd.Flags().StringVarP(&user, "username", "u", "", "log docker in with this user name (admin user, token, service principal) instead")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password for --username (prefer --password-stdin or the prompt)")
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password of --username from stdin")
	return cmd
}

// dockerLogin stores credentials with `$DOCKER_COMMAND login --password-stdin`.
func (a *app) dockerLogin(ctx context.Context, scheme, loginServer, user, password string) error {
	tool := a.getenv("DOCKER_COMMAND")
	if tool == "" {
		tool = "docker"
	}
	path, err := exec.LookPath(tool)
	if err != nil {
		return &azError{"DOCKER_COMMAND_ERROR", fmt.Sprintf("Please verify if %s client is installed and running (%v). "+
			"To get a token without docker, use 'berth login -n REGISTRY --expose-token'", tool, err)}
	}
	args := []string{"login", "--username", user, "--password-stdin"}
	if strings.Contains(tool, "podman") && scheme == "http" {
		args = append(args, "--tls-verify=false")
	}
	args = append(args, loginServer)
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(password)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = a.stdout, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("Login failed: %s %s: %v: %s", tool, strings.Join(args[:len(args)-1], " "), err, strings.TrimSpace(errb.String()))
	}
	// docker warns that credentials are stored unencrypted; pass that on, drop the rest.
	for _, line := range strings.Split(errb.String(), "\n") {
		if (strings.Contains(line, "unencrypted") || strings.Contains(line, "credential helper")) && !a.onlyErrors {
			fmt.Fprintln(a.stderr, line)
		}
	}
	return nil
}

// ssoLogin is berth auth login --sso: the sign-in as a person, then the session saved as any.
func (a *app) ssoLogin(ctx context.Context, s session, server, idp string, device bool) error {
	if server == "" || idp == "" {
		return errors.New("usage: berth auth login --server URL --sso --identity-provider NAME [--use-device-code]")
	}
	if !strings.Contains(server, "://") {
		server = "https://" + server
	}
	s.TLS = tlsOptions{}
	s.TLS = a.tlsFor(s)
	c, err := a.newClient(s, server, "")
	if err != nil {
		return err
	}
	tok, err := a.ssoSignIn(ctx, c, server, idp, device)
	if err != nil {
		return transportHint(fmt.Errorf("single sign-on to %s failed: %w", server, err), server)
	}
	c2, err := a.newClient(s, server, tok.AccessToken)
	if err != nil {
		return err
	}
	me, err := c2.Me(ctx)
	if err != nil {
		return err
	}
	s = session{Server: strings.TrimRight(server, "/"), User: me.Name, Type: "user", AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		ExpiresOn: time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second).UTC().Format(time.RFC3339), TLS: s.TLS}
	if err := a.saveSession(s); err != nil {
		return err
	}
	return a.print(map[string]any{"server": s.Server, "user": map[string]string{"name": me.Name, "type": "user"}, "tenant": "berth", "expiresOn": s.ExpiresOn})
}
