package cli

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/client"
)

const colsIDP = `{Name: name, Issuer: issuer, "Client id": clientId, "Create users": createUsers, Callback: endpoints.callback}`

// identityProviderCmd is berth identity-provider: the OpenID Connect providers people sign in
// with (single sign-on).
func (a *app) identityProviderCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "identity-provider", Short: "Manage the OpenID Connect providers people sign in with (single sign-on)"}
	var name, issuer, clientID, usernameClaim, emailClaim, groupsClaim, redirect string
	var scopes []string
	var secretStdin, createUsers bool
	nameFlag := func(c *cobra.Command) {
		c.Flags().StringVarP(&name, "name", "n", "", "the identity provider's name (lower case)")
	}
	fields := func(c *cobra.Command) {
		c.Flags().StringVar(&issuer, "issuer", "", "the provider's issuer URL (its ID tokens' iss)")
		c.Flags().StringVar(&clientID, "client-id", "", "the client registered with the provider for berth")
		c.Flags().BoolVar(&secretStdin, "client-secret-stdin", false, "read the client's secret from stdin (kept sealed; never shown again)")
		c.Flags().StringVar(&usernameClaim, "username-claim", "", "the claim that names the berth user (default preferred_username; email works too)")
		c.Flags().StringVar(&emailClaim, "email-claim", "", "the e-mail claim (default email)")
		c.Flags().StringVar(&groupsClaim, "groups-claim", "", "the claim listing the person's groups, mapped to directory groups of the same names (default groups)")
		c.Flags().StringSliceVar(&scopes, "scopes", nil, "scopes asked for (default openid profile email)")
		c.Flags().BoolVar(&createUsers, "create-users", false, "create a directory user on a person's first sign-in")
		c.Flags().StringVar(&redirect, "redirect-uri", "", "berth's callback as registered with the provider, when clients reach berth by another address (default: as reached, …/mgmt/v1/sso/callback)")
	}
	secret := func() (string, error) {
		if !secretStdin {
			return "", nil
		}
		b, err := io.ReadAll(io.LimitReader(a.stdin, 4096))
		return strings.TrimRight(string(b), "\r\n"), err
	}
	create := &cobra.Command{Use: "create", Short: "Add an identity provider", Args: cobra.NoArgs, Annotations: table(colsIDP),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := errors.Join(need(name, "--name"), need(issuer, "--issuer"), need(clientID, "--client-id")); err != nil {
				return nil, err
			}
			s, err := secret()
			if err != nil {
				return nil, err
			}
			return c.CreateIdentityProvider(ctx, client.IdentityProvider{Name: name, Issuer: issuer, ClientID: clientID, ClientSecret: s,
				Claims: client.IdentityClaims{Username: usernameClaim, Email: emailClaim, Groups: groupsClaim}, Scopes: scopes, CreateUsers: createUsers, RedirectURI: redirect})
		})}
	nameFlag(create)
	fields(create)
	update := &cobra.Command{Use: "update", Short: "Change an identity provider (what is given)", Args: cobra.NoArgs, Annotations: table(colsIDP)}
	update.RunE = a.run(func(ctx context.Context, c *client.Client) (any, error) {
		if err := need(name, "--name"); err != nil {
			return nil, err
		}
		var u client.IdentityProviderUpdate
		f := update.Flags()
		str := func(flag string, v string) *string {
			if f.Changed(flag) {
				return &v
			}
			return nil
		}
		u.Issuer, u.ClientID, u.RedirectURI = str("issuer", issuer), str("client-id", clientID), str("redirect-uri", redirect)
		if secretStdin {
			s, err := secret()
			if err != nil {
				return nil, err
			}
			u.ClientSecret = &s
		}
		if f.Changed("username-claim") || f.Changed("email-claim") || f.Changed("groups-claim") {
			u.Claims = &client.IdentityClaims{Username: usernameClaim, Email: emailClaim, Groups: groupsClaim}
		}
		if f.Changed("scopes") {
			u.Scopes = &scopes
		}
		if f.Changed("create-users") {
			u.CreateUsers = &createUsers
		}
		return c.UpdateIdentityProvider(ctx, name, u)
	})
	nameFlag(update)
	fields(update)
	show := &cobra.Command{Use: "show", Short: "Show an identity provider, with berth's callback to register with it", Args: cobra.NoArgs, Annotations: table(colsIDP),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			return c.IdentityProvider(ctx, name)
		})}
	nameFlag(show)
	list := &cobra.Command{Use: "list", Short: "List the identity providers", Args: cobra.NoArgs, Annotations: table(colsIDP),
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) { return c.IdentityProviders(ctx) })}
	del := &cobra.Command{Use: "delete", Short: "Remove an identity provider (its users stay, unlinked)", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client) (any, error) {
			if err := need(name, "--name"); err != nil {
				return nil, err
			}
			return nil, c.DeleteIdentityProvider(ctx, name)
		})}
	nameFlag(del)
	cmd.AddCommand(create, update, show, list, del)
	return cmd
}

// ssoSignIn signs in with single sign-on at idp: the authorization code flow with PKCE through
// the browser and a loopback listener, or with device, the device flow (a code to enter on
// another machine).
func (a *app) ssoSignIn(ctx context.Context, c *client.Client, server, idp string, device bool) (client.DirectoryToken, error) {
	if device {
		d, err := c.StartDeviceSignIn(ctx, idp)
		if err != nil {
			return client.DirectoryToken{}, err
		}
		fmt.Fprintf(a.stderr, "To sign in, open %s and enter the code %s\n", d.VerificationURI, d.UserCode)
		if d.VerificationURIComplete != "" {
			fmt.Fprintf(a.stderr, "(or open %s)\n", d.VerificationURIComplete)
		}
		deadline := time.Now().Add(time.Duration(d.ExpiresIn) * time.Second)
		interval := time.Duration(max(d.Interval, 1)) * time.Second
		for time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return client.DirectoryToken{}, ctx.Err()
			case <-time.After(interval):
			}
			tok, err := c.PollDeviceSignIn(ctx, d.DeviceCode)
			switch {
			case client.IsCode(err, "AUTHORIZATION_PENDING"):
				continue
			case client.IsCode(err, "SLOW_DOWN"):
				interval += 5 * time.Second
				continue
			}
			return tok, err
		}
		return client.DirectoryToken{}, errors.New("the device sign-in expired: run berth auth login --sso --use-device-code again")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return client.DirectoryToken{}, fmt.Errorf("a loopback listener for the sign-in's answer: %w", err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/callback"
	b := make([]byte, 32)
	rand.Read(b)
	verifier := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	rand.Read(b)
	state := base64.RawURLEncoding.EncodeToString(b[:16])
	q := url.Values{"redirect_uri": {redirect}, "state": {state}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	start := strings.TrimRight(server, "/") + "/mgmt/v1/sso/" + url.PathEscape(idp) + "/login?" + q.Encode()
	type answer struct {
		code string
		err  error
	}
	got := make(chan answer, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		var ans answer
		switch {
		case q.Get("state") != state:
			ans.err = errors.New("the sign-in's answer does not carry its state: start again")
		case q.Get("error") != "":
			ans.err = fmt.Errorf("single sign-on refused: %s", q.Get("error_description"))
		default:
			ans.code = q.Get("code")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ans.err != nil {
			fmt.Fprintf(w, "berth: %v\n", ans.err)
		} else {
			io.WriteString(w, "berth: signed in. You may close this window.\n")
		}
		select {
		case got <- ans:
		default:
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Fprintf(a.stderr, "Opening a browser to sign in; if none opens, go to:\n%s\n", start)
	a.openURL(start)
	select {
	case ans := <-got:
		if ans.err != nil {
			return client.DirectoryToken{}, ans.err
		}
		return c.RedeemSignIn(ctx, ans.code, verifier, redirect)
	case <-time.After(5 * time.Minute):
		return client.DirectoryToken{}, errors.New("no sign-in within 5 minutes: on a machine without a browser, use --use-device-code")
	case <-ctx.Done():
		return client.DirectoryToken{}, ctx.Err()
	}
}

// openBrowser tries $BROWSER, else the desktop's opener; the URL is printed in any case.
func openBrowser(browser, u string) {
	var cmd *exec.Cmd
	switch {
	case browser != "":
		cmd = exec.Command(browser, u)
	case runtime.GOOS == "darwin":
		cmd = exec.Command("open", u)
	case runtime.GOOS == "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if cmd.Start() == nil {
		go cmd.Wait()
	}
}
