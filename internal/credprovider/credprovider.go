// Package credprovider is berth-credential-provider: a kubelet image credential provider
// (credentialprovider.kubelet.k8s.io/v1, with the upstream types). The kubelet runs it for the
// images its configuration matches, with a CredentialProviderRequest on stdin; it answers a
// CredentialProviderResponse on stdout with a registry refresh token for the image's login
// server, cached by the kubelet for just under the token's lifetime. It signs in as a service
// principal: with its secret, or — keyless, berth's stand-in for a managed identity — with the
// pod's service-account token the kubelet passes (its credential provider's service-account
// token mode), exchanged through a federated credential whose subject is
// system:serviceaccount:NAMESPACE:NAME.
package credprovider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	credv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"

	"github.com/berth-registry/berth/client"
)

// ClientIDAnnotation on a service account names the service principal its pods pull as (the
// kubelet passes it when its configuration lists it under requiredServiceAccountAnnotationKeys
// or optionalServiceAccountAnnotationKeys); --client-id is the default.
const ClientIDAnnotation = "berth.io/client-id"

const nullGUID = "00000000-0000-0000-0000-000000000000"

// margin is how much before a credential's expiry the kubelet stops using it.
const margin = 5 * time.Minute

// Options are the provider's settings: its arguments and environment in the kubelet's
// CredentialProviderConfig.
type Options struct {
	// Server is the berth server's URL (--server, BERTH_SERVER); the image's host is the login
	// server.
	Server string
	// ClientID is the service principal (--client-id, BERTH_CLIENT_ID).
	ClientID string
	// Secret (BERTH_CLIENT_SECRET) or SecretFile (--client-secret-file): the principal's secret,
	// when no service-account token comes with the request.
	Secret, SecretFile string
	// PlainHTTP reaches login servers over http (a lab).
	PlainHTTP bool
	HTTP      *http.Client
	Now       func() time.Time
}

// Run is the provider's main: args and getenv as the kubelet gives them, the request on stdin,
// the response on stdout. A refusal is an error, which the caller prints on stderr.
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	o := Options{Server: getenv("BERTH_SERVER"), ClientID: getenv("BERTH_CLIENT_ID"), Secret: getenv("BERTH_CLIENT_SECRET")}
	fs := flag.NewFlagSet("berth-credential-provider", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.Server, "server", o.Server, "the berth server's URL")
	fs.StringVar(&o.ClientID, "client-id", o.ClientID, "the service principal's client id (a service account's "+ClientIDAnnotation+" annotation wins)")
	fs.StringVar(&o.SecretFile, "client-secret-file", "", "a file holding the service principal's secret (without a service-account token)")
	fs.BoolVar(&o.PlainHTTP, "plain-http", false, "reach login servers over http (a lab)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("arguments: %w (--server URL --client-id APPID [--client-secret-file F] [--plain-http])", err)
	}
	if o.Server == "" {
		return errors.New("no berth server: give --server URL (or BERTH_SERVER) in the kubelet's credential provider configuration")
	}
	var req credv1.CredentialProviderRequest
	dec := json.NewDecoder(io.LimitReader(stdin, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("the request on stdin is not a CredentialProviderRequest: %w", err)
	}
	if req.APIVersion != credv1.SchemeGroupVersion.String() || req.Kind != "CredentialProviderRequest" {
		return fmt.Errorf("the request is %s %s: this provider speaks %s CredentialProviderRequest", req.APIVersion, req.Kind, credv1.SchemeGroupVersion)
	}
	resp, err := o.Provide(ctx, req)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(resp)
}

// Provide answers one request.
func (o Options) Provide(ctx context.Context, req credv1.CredentialProviderRequest) (credv1.CredentialProviderResponse, error) {
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	host, err := loginServer(req.Image)
	if err != nil {
		return credv1.CredentialProviderResponse{}, err
	}
	appID := o.ClientID
	if a := req.ServiceAccountAnnotations[ClientIDAnnotation]; a != "" {
		appID = a
	}
	if appID == "" {
		return credv1.CredentialProviderResponse{}, fmt.Errorf("no service principal: give --client-id or annotate the service account with %s", ClientIDAnnotation)
	}
	c := client.New(strings.TrimRight(o.Server, "/"), "")
	c.HTTP = o.HTTP
	var tok client.DirectoryToken
	if req.ServiceAccountToken != "" {
		if tok, err = c.SignInFederated(ctx, appID, req.ServiceAccountToken); err != nil {
			return credv1.CredentialProviderResponse{}, fmt.Errorf("the service account's token for service principal %s: %w", appID, err)
		}
	} else {
		secret := o.Secret
		if o.SecretFile != "" {
			b, err := os.ReadFile(o.SecretFile)
			if err != nil {
				return credv1.CredentialProviderResponse{}, fmt.Errorf("--client-secret-file: %w", err)
			}
			secret = strings.TrimSpace(string(b))
		}
		if secret == "" {
			return credv1.CredentialProviderResponse{}, errors.New("no credential: the request carries no service-account token (set tokenAttributes in the kubelet's configuration), and no secret is given (BERTH_CLIENT_SECRET, --client-secret-file)")
		}
		if tok, err = c.SignInServicePrincipal(ctx, appID, secret); err != nil {
			return credv1.CredentialProviderResponse{}, fmt.Errorf("service principal %s: %w", appID, err)
		}
	}
	scheme := "https"
	if o.PlainHTTP {
		scheme = "http"
	}
	realm, service, err := challenge(ctx, o.HTTP, scheme, host)
	if err != nil {
		return credv1.CredentialProviderResponse{}, err
	}
	c.AuthToken = tok.AccessToken
	refresh, err := c.Exchange(ctx, realm, service)
	if err != nil {
		return credv1.CredentialProviderResponse{}, fmt.Errorf("a refresh token for %s: %w", host, err)
	}
	life := 3 * time.Hour
	if exp, ok := expiry(refresh); ok {
		life = exp.Sub(o.Now())
	}
	cache := max(life-margin, 0)
	return credv1.CredentialProviderResponse{
		TypeMeta:      metav1.TypeMeta{APIVersion: credv1.SchemeGroupVersion.String(), Kind: "CredentialProviderResponse"},
		CacheKeyType:  credv1.RegistryPluginCacheKeyType,
		CacheDuration: &metav1.Duration{Duration: cache},
		Auth:          map[string]credv1.AuthConfig{host: {Username: nullGUID, Password: refresh}},
	}, nil
}

// loginServer is an image reference's registry host[:port].
func loginServer(image string) (string, error) {
	first, rest, ok := strings.Cut(image, "/")
	if !ok || rest == "" || !(strings.ContainsAny(first, ".:") || first == "localhost") {
		return "", fmt.Errorf("image %q names no registry host", image)
	}
	return strings.ToLower(first), nil
}

// challenge reads the login server's token realm (its base URL) and service.
func challenge(ctx context.Context, hc *http.Client, scheme, host string) (realmBase, service string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/v2/", nil)
	if err != nil {
		return "", "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("login server %s: %w", host, err)
	}
	resp.Body.Close()
	sch, params := client.ParseChallenge(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || sch != "bearer" || params["realm"] == "" {
		return "", "", fmt.Errorf("login server %s is no berth registry: /v2/ answered %d without a bearer challenge", host, resp.StatusCode)
	}
	u, err := url.Parse(params["realm"])
	if err != nil || u.Host == "" {
		return "", "", fmt.Errorf("login server %s: the challenge's realm %q is not a URL", host, params["realm"])
	}
	return u.Scheme + "://" + u.Host, params["service"], nil
}

// expiry reads a JWT's exp without verifying it (the registry verifies it; this only sizes the
// kubelet's cache).
func expiry(jwt string) (time.Time, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil || c.Exp == 0 {
		return time.Time{}, false
	}
	return time.Unix(c.Exp, 0), true
}
