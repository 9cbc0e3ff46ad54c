package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// latencies is what a load measured.
type latencies struct {
	count    int
	wall     time.Duration
	p50, p99 time.Duration
}

func (l latencies) rate() float64 { return float64(l.count) / l.wall.Seconds() }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// load runs do on clients goroutines for d and returns the rate and latency percentiles. Any
// failed request stops it: a rate of errors is no rate.
func load(ctx context.Context, clients int, d time.Duration, do func(ctx context.Context, client, i int) error) (latencies, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	deadline := time.Now().Add(d)
	all := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				t := time.Now()
				if !t.Before(deadline) {
					return
				}
				if err := do(ctx, c, i); err != nil {
					cancel(err)
					return
				}
				all[c] = append(all[c], time.Since(t))
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return latencies{}, err
	}
	var flat []time.Duration
	for _, a := range all {
		flat = append(flat, a...)
	}
	if len(flat) == 0 {
		return latencies{}, fmt.Errorf("no request completed in %s", d)
	}
	slices.Sort(flat)
	pct := func(p float64) time.Duration { return flat[min(len(flat)-1, int(p*float64(len(flat))))] }
	return latencies{count: len(flat), wall: time.Since(start), p50: pct(0.50), p99: pct(0.99)}, nil
}

// client returns an HTTP client that authenticates as a real client does for scopes: it pings,
// exchanges the credentials for a bearer token once where the registry challenges Bearer, or
// sends them Basic on every request.
func (r *runner) client(ctx context.Context, scopes ...string) (*http.Client, error) {
	rt, err := transport.NewWithContext(ctx, r.reg, r.auth, r.tr, scopes)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// do sends a request and drains the reply; it fails on any status but want.
func do(ctx context.Context, c *http.Client, method, u string, body io.Reader, want int, hdr ...string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return nil, errStatus(method+" "+req.URL.Path, resp)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 4<<20))
}

const manifestAccept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"

// manifests measures manifest HEAD and GET of one tag at each concurrency of cfg.Clients.
func (r *runner) manifests(ctx context.Context, res *Result) error {
	imgs, err := images(1, 1, 1024)
	if err != nil {
		return err
	}
	if _, err := r.push(ctx, "small", imgs, 1); err != nil {
		return err
	}
	repo := r.reg.Repo(r.cfg.Repository, "small")
	c, err := r.client(ctx, repo.Scope(transport.PullScope))
	if err != nil {
		return err
	}
	u := r.base() + "/v2/" + repo.RepositoryStr() + "/manifests/0"
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		for _, n := range r.cfg.Clients {
			l, err := load(ctx, n, r.cfg.Duration, func(ctx context.Context, _, _ int) error {
				_, err := do(ctx, c, method, u, nil, http.StatusOK, "Accept", manifestAccept)
				return err
			})
			if err != nil {
				return fmt.Errorf("manifest %s, %d clients: %w", method, n, err)
			}
			what := fmt.Sprintf("manifest %s, %d clients", method, n)
			res.add(what, l.rate(), "req/s", false)
			res.add(what+", p50", ms(l.p50), "ms", true)
			res.add(what+", p99", ms(l.p99), "ms", true)
		}
	}
	return nil
}

// tokenClients is how many clients ask for tokens at once.
const tokenClients = 8

// tokens measures the token endpoint: tokens for Basic credentials (docker login, every pull
// of a CI job), and, when cfg.RefreshToken is set, for a refresh token (what a client that
// signed in through the directory, like az acr login, uses).
func (r *runner) tokens(ctx context.Context, res *Result) error {
	if r.challenge != "bearer" {
		r.log.Warn("no token endpoint: the registry challenges Basic", "target", r.cfg.Target)
		return nil
	}
	if r.cfg.Username == "" {
		return fmt.Errorf("token issuance needs credentials")
	}
	scope := "repository:" + r.cfg.Repository + "/small:pull"
	realm, err := url.Parse(r.realm)
	if err != nil {
		return fmt.Errorf("realm %q: %w", r.realm, err)
	}
	q := url.Values{"service": {r.service}, "scope": {scope}}
	basic := &http.Client{Transport: r.tr}
	get := func(ctx context.Context) (tokenReply, error) {
		u := *realm
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return tokenReply{}, err
		}
		req.SetBasicAuth(r.cfg.Username, r.cfg.Password)
		return r.token(basic, req)
	}
	refresh := func(ctx context.Context) (tokenReply, error) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.cfg.RefreshToken}, "service": {r.service},
			"scope": {scope}, "client_id": {"berth-bench"}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.realm, strings.NewReader(form.Encode()))
		if err != nil {
			return tokenReply{}, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r.token(basic, req)
	}
	type kind struct {
		name string
		f    func(ctx context.Context) (tokenReply, error)
	}
	federated := func(ctx context.Context) (tokenReply, error) {
		u := *realm
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return tokenReply{}, err
		}
		req.SetBasicAuth(r.cfg.FederatedUser, r.cfg.FederatedToken)
		return r.token(basic, req)
	}
	kinds := []kind{{"Basic", get}}
	if r.cfg.RefreshToken != "" {
		kinds = append(kinds, kind{"refresh token", refresh})
	} else {
		r.log.Warn("no refresh token given: token issuance for a refresh token is not measured")
	}
	if r.cfg.FederatedUser != "" && r.cfg.FederatedToken != "" {
		kinds = append(kinds, kind{"federated OIDC token", federated})
	}
	for _, k := range kinds {
		cpu := r.proc.meter()
		l, err := load(ctx, tokenClients, r.cfg.Duration, func(ctx context.Context, _, _ int) error {
			_, err := k.f(ctx)
			return err
		})
		if err != nil {
			return fmt.Errorf("token (%s): %w", k.name, err)
		}
		what := fmt.Sprintf("token issuance, %s, %d clients", k.name, tokenClients)
		res.add(what, l.rate(), "tokens/s", false)
		res.add(what+", p50", ms(l.p50), "ms", true)
		if cores := cpu.cores(); cores > 0 {
			res.add(what+", per server core", l.rate()/cores, "tokens/s", false)
		}
	}
	return nil
}

type tokenReply struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func (r *runner) token(c *http.Client, req *http.Request) (tokenReply, error) {
	resp, err := c.Do(req)
	if err != nil {
		return tokenReply{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return tokenReply{}, errStatus("token", resp)
	}
	var t tokenReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&t); err != nil {
		return tokenReply{}, fmt.Errorf("token reply: %w", err)
	}
	if t.Token == "" && t.AccessToken == "" {
		return tokenReply{}, fmt.Errorf("token reply holds no token")
	}
	return t, nil
}
