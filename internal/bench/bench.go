// Package bench is berth's load generator: it measures any OCI registry the way its users feel
// it — push and pull of large layers through go-containerregistry's remote package, small
// authenticated requests at several concurrencies, token issuance, catalog and tag list pages,
// and the server's memory and CPU read from /proc — and prints a table and JSON. Compare puts
// the results of several runs against several registries side by side (medians and ratios).
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/berth-registry/berth/client"
)

// Sections a run may do, in the order they run.
const (
	SectionLimit    = "limit"    // sha256 and sha256+write speed of one core on this machine
	SectionIdle     = "idle"     // the server's RSS before any load
	SectionBlobs    = "blobs"    // push and pull of many 8 MiB layers, sequential and concurrent
	SectionBig      = "big"      // push and pull of 256 MiB layers
	SectionManifest = "manifest" // manifest HEAD and GET at several concurrencies
	SectionToken    = "token"    // token issuance (Basic and refresh), bearer registries only
	SectionLists    = "lists"    // catalog and tag list pages
	SectionPeak     = "peak"     // many concurrent pushes, the server's peak RSS
	SectionSoak     = "soak"     // mixed load for Duration: failed requests and RSS over time
	SectionHostile  = "hostile"  // honest pulls beside slow bodies and attacking sign-ins
)

// AllSections lists every section a run does unless told which, in run order.
var AllSections = []string{SectionLimit, SectionIdle, SectionBlobs, SectionBig, SectionManifest, SectionToken, SectionLists, SectionPeak}

// ExtraSections run only when named, after the others.
var ExtraSections = []string{SectionSoak, SectionHostile} // the hostile section leaves its address throttled: last

// Config is one run against one registry.
type Config struct {
	// URL is the registry's base, http://host:port or https://host:port.
	URL string
	// Username and Password, when set, are sent as a client would: Basic to a registry that
	// challenges Basic, exchanged for a bearer token where it challenges Bearer.
	Username, Password string
	// RefreshToken, when set, is exchanged for access tokens by the token section
	// (grant_type=refresh_token), as a client that signed in through the directory does.
	RefreshToken string
	// FederatedUser and FederatedToken, when set, are a service principal's client id and an
	// external OpenID Connect token one of its federated credentials trusts: the token section
	// also measures tokens for them (the token verified against the issuer's cached keys on
	// each request, as docker login -u APPID -p TOKEN does).
	FederatedUser, FederatedToken string
	// Target labels the results (berth, distribution-3, …).
	Target string
	// Repository is the prefix of every repository the run writes.
	Repository string
	// PID, when set, is the server process: its RSS and CPU time are read from /proc.
	PID int
	// Sections to run; empty means all.
	Sections []string

	// Images × Layers × LayerSize for the blobs section; Concurrency images at a time for its
	// concurrent half.
	Images, Layers int
	LayerSize      int64
	Concurrency    int
	// BigLayers of BigSize, one per image, for the big section.
	BigLayers int
	BigSize   int64
	// PeakPushes concurrent pushes of one PeakSize layer each, for the peak section.
	PeakPushes int
	PeakSize   int64

	// Clients are the concurrencies of the manifest section; Duration is how long each point
	// (and each token and list measurement) lasts.
	Clients  []int
	Duration time.Duration

	// Repos repositories and Tags tags are created (once: a later run finds them) for the lists
	// section; PageSize is the n of each page.
	Repos, Tags, PageSize int

	// LimitDir is where the sha256+write limit writes its file (the server's disk, ideally).
	LimitDir string
	// S3Limit, an s3:// storage URL as berth takes it (credentials from the environment), adds
	// to the limit section the rate of plain uploads to that bucket: the registry's S3 limit.
	S3Limit string

	Log *slog.Logger
}

// Defaults are the workload of the side-by-side comparison (docs/benchmarks.md).
func Defaults() Config {
	return Config{
		Target: "registry", Repository: "bench",
		Images: 20, Layers: 3, LayerSize: 8 << 20, Concurrency: 4,
		BigLayers: 3, BigSize: 256 << 20,
		PeakPushes: 64, PeakSize: 8 << 20,
		Clients: []int{1, 8, 64}, Duration: 3 * time.Second,
		Repos: 10000, Tags: 10000, PageSize: 100,
	}
}

// validate refuses sizes and counts a section could not measure with.
func (c Config) validate() error {
	for _, v := range []struct {
		name string
		n    int64
	}{
		{"images", int64(c.Images)}, {"layers", int64(c.Layers)}, {"layer-size", c.LayerSize},
		{"big-layers", int64(c.BigLayers)}, {"big-size", c.BigSize}, {"peak-pushes", int64(c.PeakPushes)},
		{"peak-size", c.PeakSize}, {"repos", int64(c.Repos)}, {"tags", int64(c.Tags)}, {"duration", int64(c.Duration)},
	} {
		if v.n <= 0 {
			return fmt.Errorf("bench: %s must be positive, not %d", v.name, v.n)
		}
	}
	if len(c.Clients) == 0 || slices.Min(c.Clients) < 1 {
		return fmt.Errorf("bench: clients must be one or more counts of at least 1, not %v", c.Clients)
	}
	return nil
}

// Metric is one figure of a run.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Lower is set when a smaller value is better (latencies, memory).
	Lower bool `json:"lower,omitempty"`
}

// Result is the outcome of one run.
type Result struct {
	Target  string    `json:"target"`
	URL     string    `json:"url"`
	Started time.Time `json:"started"`
	Metrics []Metric  `json:"metrics"`
}

func (r *Result) add(name string, value float64, unit string, lower bool) {
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: value, Unit: unit, Lower: lower})
}

// Get returns the metric called name.
func (r *Result) Get(name string) (Metric, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// runner carries what every section shares.
type runner struct {
	cfg    Config
	reg    name.Registry
	scheme string
	auth   authn.Authenticator
	tr     *http.Transport
	proc   *proc
	log    *slog.Logger
	// peakBefore is the peak RSS before the peak section reset it.
	peakBefore float64
	// challenge is the scheme the registry challenges with ("bearer", "basic" or "" when open)
	// and the realm and service of a bearer challenge.
	challenge, realm, service string
}

// Run measures the registry of cfg and returns the figures. A section that fails stops the run:
// a benchmark that quietly skips what broke would compare unlike things.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	r, err := newRunner(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer r.tr.CloseIdleConnections()
	res := &Result{Target: cfg.Target, URL: cfg.URL, Started: time.Now().UTC()}
	sections := cfg.Sections
	if len(sections) == 0 {
		sections = AllSections
	}
	known := append(slices.Clone(AllSections), ExtraSections...)
	for _, s := range sections {
		if !slices.Contains(known, s) {
			return nil, fmt.Errorf("bench: unknown section %q (have %s)", s, strings.Join(known, ", "))
		}
	}
	for _, s := range known {
		if !slices.Contains(sections, s) {
			continue
		}
		r.log.Info("section", "name", s, "target", cfg.Target)
		var err error
		switch s {
		case SectionLimit:
			err = r.limit(res)
			if err == nil && cfg.S3Limit != "" {
				err = r.s3Limit(ctx, res)
			}
		case SectionIdle:
			err = r.idle(res)
		case SectionBlobs:
			err = r.blobs(ctx, res)
		case SectionBig:
			err = r.big(ctx, res)
		case SectionManifest:
			err = r.manifests(ctx, res)
		case SectionToken:
			err = r.tokens(ctx, res)
		case SectionLists:
			err = r.lists(ctx, res)
		case SectionPeak:
			err = r.peak(ctx, res)
		case SectionSoak:
			err = r.soak(ctx, res)
		case SectionHostile:
			err = r.hostile(ctx, res)
		}
		if err != nil {
			return res, fmt.Errorf("bench: %s: %w", s, err)
		}
	}
	if r.proc != nil {
		if hwm, err := r.proc.status("VmHWM"); err == nil {
			res.add("server RSS peak (whole run)", max(hwm, r.peakBefore), "MiB", true)
		}
	}
	return res, nil
}

func newRunner(ctx context.Context, cfg Config) (*runner, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("bench: the registry URL must be http://host:port or https://host:port, not %q", cfg.URL)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Repository == "" {
		cfg.Repository = "bench"
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.PageSize < 1 {
		cfg.PageSize = 100
	}
	opts := []name.Option{name.StrictValidation}
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	r := &runner{cfg: cfg, reg: reg, scheme: u.Scheme, auth: authn.Anonymous, log: cfg.Log,
		tr: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   false,
		}}
	if cfg.Username != "" {
		r.auth = authn.FromConfig(authn.AuthConfig{Username: cfg.Username, Password: cfg.Password})
	}
	if cfg.PID > 0 {
		r.proc = &proc{pid: cfg.PID}
		if _, err := r.proc.status("VmRSS"); err != nil {
			return nil, fmt.Errorf("bench: server process %d: %w", cfg.PID, err)
		}
	}
	if err := r.ping(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// ping reads the registry's challenge from GET /v2/.
func (r *runner) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := r.tr.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized:
	default:
		return fmt.Errorf("bench: GET /v2/ answered %s: is %s a registry?", resp.Status, r.cfg.URL)
	}
	h := resp.Header.Get("WWW-Authenticate")
	scheme, params := client.ParseChallenge(h)
	r.challenge, r.realm, r.service = scheme, params["realm"], params["service"]
	if r.challenge != "basic" && r.challenge != "bearer" {
		return fmt.Errorf("bench: GET /v2/ challenges with %q, neither Basic nor Bearer", h)
	}
	return nil
}

func (r *runner) base() string { return r.scheme + "://" + r.reg.RegistryStr() }

// WriteJSON writes res as indented JSON.
func WriteJSON(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// WriteTable writes res as an aligned table.
func WriteTable(w io.Writer, res *Result) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s (%s)\t\t\t\n", res.Target, res.URL)
	for _, m := range res.Metrics {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", m.Name, format(m.Value), m.Unit)
	}
	return tw.Flush()
}

func format(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// errStatus is a reply the benchmark did not expect.
func errStatus(what string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("%s: %s: %s", what, resp.Status, strings.TrimSpace(string(body)))
}
