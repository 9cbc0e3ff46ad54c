// Package checkhealth is `berth check-health`, run on the client side: the checks of `az acr check-health`, in its order and
// with its error codes, adapted to berth — the container tool (DOCKER_COMMAND: docker or podman)
// and its daemon, the login server, DNS, TLS, the challenge, the refresh and access tokens,
// helm — and the checks ACR lacks: clock skew, stored credentials that are expired, invalid or
// in the way of anonymous pull, an upper-case registry name, and a pull from the registry
// itself.
package checkhealth

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/oci"
)

// Status of a check.
type Status string

// The statuses.
const (
	StatusOK      Status = "ok"
	StatusError   Status = "error"
	StatusWarning Status = "warning"
	StatusSkipped Status = "skipped"
)

// Result is one check's outcome.
type Result struct {
	Check   string `json:"check"`
	Status  Status `json:"status"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
	// Detail is what the tool or the server said, when it says more than the message.
	Detail string `json:"detail,omitempty"`
}

// DocsURL is where every code is explained, with its fix.
const DocsURL = "https://github.com/berth-registry/berth/blob/main/docs/troubleshooting.md"

// code is an error code's message (with {server} for the login server) and fix.
type code struct{ message, fix string }

// Codes are the error codes: ACR's (reference §7.3), then berth's own.
var Codes = map[string]code{
	"DOCKER_COMMAND_ERROR": {"Please verify if {tool} client is installed and running.",
		"Install docker or podman and put it on PATH; set DOCKER_COMMAND=podman to use podman."},
	"DOCKER_DAEMON_ERROR": {"Please verify if {tool} daemon is running, or try restarting it.",
		"Start the daemon (systemctl start docker), or use a daemonless tool (DOCKER_COMMAND=podman, crane, oras, skopeo)."},
	"DOCKER_VERSION_ERROR": {"An error occurred while retrieving {tool} version. Please try verifying it manually.",
		"Run '{tool} version' yourself and update the client."},
	"LOGIN_SERVER_ERROR": {"An error occurred while retrieving the login server for registry '{server}'. Please check if the spelling is correct, and that you are signed in to the right berth server with a role on the registry.",
		"Check the name with 'berth registry list'; sign in with 'berth auth login'."},
	"REGISTRY_NAME_UPPERCASE_ERROR": {"Uppercase characters are detected in the registry name '{server}'. When using its server url in docker commands, to avoid authentication errors, use all lowercase.",
		"Use the lower-case login server everywhere: docker stores credentials under the exact name typed."},
	"CONNECTIVITY_DNS_ERROR": {"Failed to reach DNS for registry '{server}'. Please check if the spelling is correct and your network connectivity.",
		"Check the login server's spelling and your DNS (nslookup)."},
	"CONNECTIVITY_SSL_ERROR": {"Unable to establish a secure connection to the registry '{server}'. Are you using a proxy server?",
		"Trust the registry's certificate authority (or its proxy's), or use --plain-http for a registry without TLS."},
	"CERTIFICATE_EXPIRY_ERROR": {"The TLS certificate of registry '{server}' expires within 30 days.",
		"Renew the certificate (tls.cert) and restart berth."},
	"CONNECTIVITY_FORBIDDEN_ERROR": {"Looks like you don't have access to registry '{server}'. To see configured network rules, run 'berth registry show -n {registry} --query networkRuleSet' and 'berth network-rule list -n {registry}'.",
		"Add your address with 'berth network-rule add', or enable public network access (the registry's owner)."},
	"CONNECTIVITY_CHALLENGE_ERROR": {"Registry '{server}' did not issue a challenge.",
		"Check that the login server is a berth (or OCI) registry and reachable: curl -i <scheme>://{server}/v2/."},
	"CONNECTIVITY_AAD_LOGIN_ERROR": {"Registry '{server}' does not support directory sign-in.",
		"Log in with a user name and password instead (admin user or token)."},
	"CLOCK_SKEW_ERROR": {"This machine's clock differs from registry '{server}' by more than 2 minutes.",
		"Synchronise the clock (timedatectl set-ntp true): certificates and token expiry are judged by it."},
	"CONNECTIVITY_REFRESH_TOKEN_ERROR": {"Access to registry '{server}' was denied. Response code: {status}. Please try running 'berth auth login' again to refresh permissions.",
		"Sign in again; ask for a role on the registry ('berth explain' shows what is missing)."},
	"CONNECTIVITY_ACCESS_TOKEN_ERROR": {"Access to registry '{server}' was denied. Response code: {status}. Please try running 'berth auth login' again to refresh permissions.",
		"Sign in again; ask for a role on the registry ('berth explain' shows what is missing)."},
	"CONNECTIVITY_TOOMANYREQUESTS_ERROR": {"Sign-ins to registry '{server}' are throttled after too many failures.",
		"Wait for the time in Retry-After, then fix the credentials that fail ('berth logs login-events --result failure')."},
	"STORED_CREDENTIALS_EXPIRED_ERROR": {"The credentials stored for '{server}' have expired.",
		"Run 'berth login -n {registry}' again, or '{tool} logout {server}'."},
	"STORED_CREDENTIALS_INVALID_ERROR": {"The credentials stored for '{server}' are refused by the registry.",
		"Log in again with valid credentials, or '{tool} logout {server}'."},
	"STORED_CREDENTIALS_ANONYMOUS_PULL_ERROR": {"The registry '{server}' allows anonymous pull, but the credentials stored for it are refused, and clients send them instead of pulling anonymously.",
		"Run '{tool} logout {server}' (and 'helm registry logout {server}') to pull anonymously."},
	"CONNECTIVITY_PULL_ERROR": {"An error occurred while pulling from registry '{server}'.",
		"Check the repository and tag, and the identity's permissions: 'berth explain -n {registry} --identity … --repository … --action pull'."},
	"HELM_COMMAND_ERROR": {"Please verify if Helm is installed.", "Install helm 3.8 or later and put it on PATH."},
	"HELM_VERSION_ERROR": {"An error occurred while retrieving Helm version. Please make sure that you are using the recommended Helm version.",
		"Run 'helm version' yourself; use helm 3.8 or later (OCI registries)."},
	"FEDERATION_ISSUER_ERROR": {"The berth server cannot reach the keys of a trusted OpenID Connect issuer: federated sign-ins with its tokens fail.",
		"Let the server reach the issuer (DNS, proxy, outbound.allowed_networks for a private one), fix federation.issuers, or give the credentials a static key set (--jwks-file)."},
	"UNEXPECTED_ERROR": {"An unexpected error occurred.", "Run again with --ignore-errors and report the detail."},
}

// Options configure a run.
type Options struct {
	// Name is the registry name, or its login server (host[:port]) as typed.
	Name string
	// PlainHTTP talks to the login server over http instead of https.
	PlainHTTP bool
	// Repository, if set, is pulled from (REPO or REPO:TAG, default tag latest).
	Repository string
	// IgnoreErrors runs every check instead of stopping at the first error.
	IgnoreErrors bool
	// Yes skips the confirmation of the pull check.
	Yes bool
	// Confirm asks a yes/no question; nil means no one can be asked.
	Confirm func(question string) bool
	// Session is a client signed in to the berth server, or nil.
	Session *client.Client
	// Getenv reads the environment (DOCKER_COMMAND, DOCKER_CONFIG, HOME …).
	Getenv func(string) string
	// Version is berth's own version.
	Version string
	// Report receives each result as it is known.
	Report func(Result)
	// HTTP is the client for the registry; nil means a default with a 30 s timeout.
	HTTP *http.Client
	// Now is the local clock; nil means time.Now.
	Now func() time.Time
}

// errStop ends a run at the first error (without IgnoreErrors).
type errStop struct{ Result }

func (e errStop) Error() string { return e.Code }

// run is one check-health run.
type run struct {
	Options
	ctx         context.Context
	results     []Result
	tool        string // docker or podman (DOCKER_COMMAND)
	registry    string // the registry's name, for messages
	loginServer string
	scheme      string
	realm       string
	service     string
	refresh     string      // from the refresh-token check
	anonymous   *bool       // whether the registry allows anonymous pull, when known
	pullAuth    *credential // what the pull check signs in with
	unreachable bool        // DNS failed
}

// Run runs the checks and returns their results; the error is non-nil when any check failed.
func Run(ctx context.Context, o Options) ([]Result, error) {
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Report == nil {
		o.Report = func(Result) {}
	}
	if repo, ref := splitRepository(o.Repository); repo != "" {
		if err := oci.ValidateName(repo); err != nil {
			return nil, fmt.Errorf("--repository %q: %w", o.Repository, err)
		}
		if _, err := oci.ParseReference(ref); err != nil {
			return nil, fmt.Errorf("--repository %q: %w", o.Repository, err)
		}
	}
	r := &run{Options: o, ctx: ctx, tool: o.Getenv("DOCKER_COMMAND"), scheme: "https"}
	if r.tool == "" {
		r.tool = "docker"
	}
	if o.PlainHTTP {
		r.scheme = "http"
	}
	err := r.all()
	var stop errStop
	failed := 0
	for _, res := range r.results {
		if res.Status == StatusError {
			failed++
		}
	}
	switch {
	case err != nil && !asStop(err, &stop):
		return r.results, err
	case failed > 0:
		return r.results, fmt.Errorf("check-health found %d error(s); see %s", failed, DocsURL)
	}
	return r.results, nil
}

func asStop(err error, s *errStop) bool {
	st, ok := err.(errStop)
	if ok {
		*s = st
	}
	return ok
}

// all runs the checks in ACR's order: the container tool, berth, the login server, DNS, the
// challenge (TLS, clock), the tokens, the stored credentials, the pull, helm.
func (r *run) all() error {
	for _, step := range []func() error{r.containerTool, r.berthVersion, r.resolveLoginServer, r.dns, r.challenge,
		r.refreshToken, r.accessToken, r.storedCredentials, r.pull, r.helm, r.federation} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) ok(check, format string, args ...any) {
	r.add(Result{Check: check, Status: StatusOK, Message: fmt.Sprintf(format, args...)})
}

func (r *run) skip(check, format string, args ...any) {
	r.add(Result{Check: check, Status: StatusSkipped, Message: fmt.Sprintf(format, args...)})
}

func (r *run) warn(check, format string, args ...any) {
	r.add(Result{Check: check, Status: StatusWarning, Message: fmt.Sprintf(format, args...)})
}

func (r *run) add(res Result) {
	r.results = append(r.results, res)
	r.Report(res)
}

// fail records an error with its code; it returns errStop unless errors are ignored. status is
// the HTTP status for the codes that print one.
func (r *run) fail(check, codeName, detail string, status int) error {
	c, ok := Codes[codeName]
	if !ok {
		c = Codes["UNEXPECTED_ERROR"]
	}
	ls := r.loginServer
	if ls == "" {
		ls = r.Name
	}
	fill := strings.NewReplacer("{server}", ls, "{tool}", r.tool, "{registry}", r.registryName(), "{status}", strconv.Itoa(status))
	res := Result{Check: check, Status: StatusError, Code: codeName, Message: fill.Replace(c.message), Fix: fill.Replace(c.fix),
		Detail: strings.TrimSpace(detail)}
	r.add(res)
	if r.IgnoreErrors {
		return nil
	}
	return errStop{res}
}

func (r *run) registryName() string {
	if r.registry != "" {
		return r.registry
	}
	return strings.ToLower(r.Name)
}

// federation asks the signed-in server whether it reaches the discovery document and key set of
// each issuer it trusts (federation.issuers): a federated sign-in fails when it does not.
func (r *run) federation() error {
	const check = "federated sign-in issuers"
	if r.Session == nil {
		r.skip(check, "not signed in to the berth server: the issuers it trusts are not checked")
		return nil
	}
	list, err := r.Session.FederationIssuers(r.ctx)
	switch {
	case client.IsStatus(err, http.StatusForbidden):
		r.skip(check, "reading the server's issuers needs directory/read")
		return nil
	case client.IsStatus(err, http.StatusNotFound):
		r.skip(check, "the server has no federated sign-in")
		return nil
	case err != nil:
		r.warn(check, "could not ask the server about its issuers: %v", err)
		return nil
	case len(list) == 0:
		r.skip(check, "the server trusts no issuer (federation.issuers)")
		return nil
	}
	var bad []string
	for _, is := range list {
		if !is.Reachable {
			bad = append(bad, fmt.Sprintf("%s: %s", is.Issuer, is.Error))
		}
	}
	if len(bad) > 0 {
		return r.fail(check, "FEDERATION_ISSUER_ERROR", strings.Join(bad, "; "), 0)
	}
	r.ok(check, "the server reaches the keys of its %d trusted issuer(s)", len(list))
	return nil
}

func (r *run) berthVersion() error {
	r.ok("berth version", "berth version: %s", r.Version)
	return nil
}
