package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-registry/berth/client"
)

// docker-credential-berth: docker's credential helper protocol (get, store, erase, list; the
// action as the only argument, the input on stdin), for the login servers `berth login
// --credential-helper` registered. Every get hands out a fresh registry refresh token (user
// 00000000-0000-0000-0000-000000000000, as az acr login's), minted with:
//   - BERTH_FEDERATED_TOKEN_FILE and BERTH_CLIENT_ID: the service principal's federated sign-in
//     with the token in the file, read afresh each time (CI systems and Kubernetes project and
//     renew it);
//   - BERTH_CLIENT_ID and BERTH_CLIENT_SECRET: the service principal's secret;
//   - otherwise the berth CLI's own sign-in (berth auth login), renewed as the CLI renews it.

// HelperName is the name docker knows the helper by (docker-credential-<name>).
const HelperName = "berth"

// helperConfig is $BERTH_CONFIG_DIR/credential-helper.json: the login servers the helper
// answers for, each with its berth server and registry.
type helperConfig struct {
	Servers map[string]helperServer `json:"servers"`
}

type helperServer struct {
	Server   string `json:"server"`   // the berth server's URL (its management API)
	Registry string `json:"registry"` // the registry's name
	Scheme   string `json:"scheme"`   // of the login server: https, or http for a lab
}

func (a *app) helperConfigPath() (string, error) {
	dir, err := a.configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "credential-helper.json"), nil
}

func (a *app) loadHelperConfig() (helperConfig, error) {
	c := helperConfig{Servers: map[string]helperServer{}}
	p, err := a.helperConfigPath()
	if err != nil {
		return c, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", p, err)
	}
	if c.Servers == nil {
		c.Servers = map[string]helperServer{}
	}
	return c, nil
}

func (a *app) saveHelperConfig(c helperConfig) error {
	p, err := a.helperConfigPath()
	if err != nil {
		return err
	}
	return writeJSONFile(p, c)
}

// writeJSONFile writes v to p (0600, its folder 0700) through a temporary file.
func writeJSONFile(p string, v any) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// errCredentialsNotFound is the protocol's answer for a server the helper does not know.
var errCredentialsNotFound = errors.New("credentials not found in native keychain")

// serverKey reads a server as docker passes it (host, host:port, or a URL) as a login server.
func serverKey(s string) string {
	s = strings.TrimSpace(s)
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		s = u.Host
	}
	return strings.ToLower(strings.TrimSuffix(s, "/"))
}

// CredentialHelper runs docker-credential-berth with args (the action).
func CredentialHelper(ctx context.Context, env Env, args []string) error {
	a := &app{stdin: env.Stdin, stdout: env.Stdout, stderr: env.Stderr, getenv: env.Getenv}
	if len(args) != 1 {
		return errors.New("usage: docker-credential-berth get|store|erase|list (the input on stdin), as docker's credential helpers")
	}
	in, err := io.ReadAll(io.LimitReader(a.stdin, 64<<10))
	if err != nil {
		return err
	}
	cfg, err := a.loadHelperConfig()
	if err != nil {
		return err
	}
	switch args[0] {
	case "get":
		key := serverKey(string(in))
		hs, ok := cfg.Servers[key]
		if !ok {
			return errCredentialsNotFound
		}
		refresh, err := a.helperToken(ctx, key, hs)
		if err != nil {
			return err
		}
		return json.NewEncoder(a.stdout).Encode(map[string]string{"ServerURL": key, "Username": nullGUID, "Secret": refresh})
	case "store":
		// docker login with the helper configured: the helper mints its own credentials, so what
		// docker hands over is not kept.
		var c struct{ ServerURL string }
		if err := json.Unmarshal(in, &c); err != nil {
			return fmt.Errorf("store: the input is not docker's credentials JSON: %w", err)
		}
		if _, ok := cfg.Servers[serverKey(c.ServerURL)]; !ok {
			return fmt.Errorf("%s is not a berth login server this helper knows: run 'berth login -n REGISTRY --credential-helper'", serverKey(c.ServerURL))
		}
		return nil
	case "erase":
		key := serverKey(string(in))
		if _, ok := cfg.Servers[key]; !ok {
			return errCredentialsNotFound
		}
		delete(cfg.Servers, key)
		return a.saveHelperConfig(cfg)
	case "list":
		out := map[string]string{}
		for k := range cfg.Servers {
			out[k] = nullGUID
		}
		return json.NewEncoder(a.stdout).Encode(out)
	}
	return fmt.Errorf("unknown action %q: get, store, erase or list", args[0])
}

// helperToken mints a registry refresh token for a login server.
func (a *app) helperToken(ctx context.Context, loginServer string, hs helperServer) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var c *client.Client
	appID, tokenFile, secret := a.getenv("BERTH_CLIENT_ID"), a.getenv("BERTH_FEDERATED_TOKEN_FILE"), a.getenv("BERTH_CLIENT_SECRET")
	switch {
	case appID != "" && (tokenFile != "" || secret != ""):
		s, err := a.loadSession()
		if err != nil {
			return "", err
		}
		base, err := a.newClient(s, hs.Server, "")
		if err != nil {
			return "", err
		}
		var tok client.DirectoryToken
		if tokenFile != "" {
			b, err := os.ReadFile(tokenFile)
			if err != nil {
				return "", fmt.Errorf("BERTH_FEDERATED_TOKEN_FILE: %w", err)
			}
			tok, err = base.SignInFederated(ctx, appID, strings.TrimSpace(string(b)))
			if err != nil {
				return "", fmt.Errorf("federated sign-in of %s: %w", appID, err)
			}
		} else if tok, err = base.SignInServicePrincipal(ctx, appID, secret); err != nil {
			return "", fmt.Errorf("sign-in of service principal %s: %w", appID, err)
		}
		if c, err = a.newClient(s, hs.Server, tok.AccessToken); err != nil {
			return "", err
		}
	default:
		s, err := a.loadSession()
		if err != nil {
			return "", err
		}
		if s.Server == "" || s.AccessToken == "" {
			return "", fmt.Errorf("not signed in to %s: run 'berth auth login --server %s', or set BERTH_CLIENT_ID with BERTH_CLIENT_SECRET or BERTH_FEDERATED_TOKEN_FILE", hs.Server, hs.Server)
		}
		if strings.TrimRight(s.Server, "/") != strings.TrimRight(hs.Server, "/") {
			return "", fmt.Errorf("the berth CLI is signed in to %q, not to %s's server %s: run 'berth auth login --server %s'", s.Server, loginServer, hs.Server, hs.Server)
		}
		if c, s, err = a.client(); err != nil {
			return "", err
		}
		refresh, err := a.exchangeFor(ctx, c, hs, loginServer)
		if client.IsStatus(err, http.StatusUnauthorized) && s.RefreshToken != "" {
			if s, err = a.renew(ctx, s); err != nil {
				return "", err
			}
			if c, err = a.newClient(s, s.Server, s.AccessToken); err != nil {
				return "", err
			}
			refresh, err = a.exchangeFor(ctx, c, hs, loginServer)
		}
		return refresh, err
	}
	return a.exchangeFor(ctx, c, hs, loginServer)
}

// exchangeFor trades c's directory token for a refresh token of the registry at loginServer.
func (a *app) exchangeFor(ctx context.Context, c *client.Client, hs helperServer, loginServer string) (string, error) {
	ch, err := probe(ctx, c.HTTP, hs.Scheme, loginServer, hs.Registry)
	if err != nil {
		return "", err
	}
	ru, err := url.Parse(ch.realm)
	if err != nil {
		return "", fmt.Errorf("the challenge's realm %q is not a URL: %w", ch.realm, err)
	}
	return c.Exchange(ctx, ru.Scheme+"://"+ru.Host, ch.service)
}

// registerHelper is berth login --credential-helper: the helper answers for the login server,
// and docker's config (credHelpers) and the containers' auth file (podman, skopeo, buildah) name
// it for that server instead of storing a credential.
func (a *app) registerHelper(ctx context.Context, s session, reg client.Registry, scheme string) error {
	cfg, err := a.loadHelperConfig()
	if err != nil {
		return err
	}
	key := serverKey(reg.LoginServer)
	cfg.Servers[key] = helperServer{Server: strings.TrimRight(s.Server, "/"), Registry: reg.Name, Scheme: scheme}
	if err := a.saveHelperConfig(cfg); err != nil {
		return err
	}
	var files []string
	dockerDir := a.getenv("DOCKER_CONFIG")
	if dockerDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		dockerDir = filepath.Join(home, ".docker")
	}
	files = append(files, filepath.Join(dockerDir, "config.json"))
	if f := a.getenv("REGISTRY_AUTH_FILE"); f != "" {
		files = append(files, f)
	} else if d := a.getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, filepath.Join(d, "containers", "auth.json"))
	}
	// helm keeps its own docker-format file (oras uses docker's).
	if f := a.getenv("HELM_REGISTRY_CONFIG"); f != "" {
		files = append(files, f)
	} else if d := a.getenv("XDG_CONFIG_HOME"); d != "" {
		files = append(files, filepath.Join(d, "helm", "registry", "config.json"))
	} else if home, err := os.UserHomeDir(); err == nil {
		files = append(files, filepath.Join(home, ".config", "helm", "registry", "config.json"))
	}
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f] {
			continue
		}
		seen[f] = true
		if err := setCredHelper(f, key); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	// Mint one now: a helper that cannot sign in should fail here, not at the next pull.
	if _, err := a.helperToken(ctx, key, cfg.Servers[key]); err != nil {
		return fmt.Errorf("the credential helper cannot get a token for %s: %w", key, err)
	}
	return nil
}

// setCredHelper names the berth helper for loginServer in a docker-format config file, and drops
// a credential stored for it there.
func setCredHelper(path, loginServer string) error {
	doc := map[string]json.RawMessage{}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &doc); err != nil {
			return err
		}
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	helpers := map[string]string{}
	if raw, ok := doc["credHelpers"]; ok {
		if err := json.Unmarshal(raw, &helpers); err != nil {
			return err
		}
	}
	helpers[loginServer] = HelperName
	if doc["credHelpers"], err = json.Marshal(helpers); err != nil {
		return err
	}
	if raw, ok := doc["auths"]; ok {
		auths := map[string]json.RawMessage{}
		if err := json.Unmarshal(raw, &auths); err != nil {
			return err
		}
		delete(auths, loginServer)
		if doc["auths"], err = json.Marshal(auths); err != nil {
			return err
		}
	}
	return writeJSONFile(path, doc)
}
