package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/store"
)

// smoke is a run small enough for every test run: every section, tiny sizes.
func smoke(url, user, pass string) Config {
	c := Defaults()
	c.URL, c.Username, c.Password, c.Target = url, user, pass, "berth"
	c.Images, c.Layers, c.LayerSize = 2, 2, 1<<20
	c.BigLayers, c.BigSize = 1, 1<<20
	c.PeakPushes, c.PeakSize = 4, 256<<10
	c.Clients, c.Duration = []int{1, 4}, 150*time.Millisecond
	c.Repos, c.Tags, c.PageSize = 30, 30, 10
	return c
}

// TestRunAgainstBerth runs every section against a real berth through a real socket, as the
// admin user (so bearer tokens, token issuance and the catalog scope are exercised), with this
// process as the "server" whose /proc is read.
func TestRunAgainstBerth(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	user, pass := s.Admin(t)
	cfg := smoke(s.URL, user, pass)
	cfg.RefreshToken = refreshToken(t, s)
	cfg.PID = os.Getpid()
	cfg.LimitDir = t.TempDir()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"sha256 (one core)", "sha256+write limit (one core)", "sha256+write+fsync limit, 1MiB blobs (one core)",
		"loopback TCP copy (one stream)", "server RSS idle", "push 2×2×1MiB sequential, server CPU",
		"push 2×2×1MiB sequential", "pull 2×2×1MiB 4 concurrent", "push 2×2×1MiB sequential / sha256+write limit",
		"push 2×2×1MiB sequential / sha256+write+fsync limit, 1MiB blobs",
		"push 1×1MiB sequential", "pull 1×1MiB 4 concurrent",
		"manifest HEAD, 4 clients", "manifest GET, 1 clients, p99",
		"token issuance, Basic, 8 clients", "token issuance, refresh token, 8 clients, per server core",
		"catalog page (n=10, 30 repositories), p50", "tag list page (n=10, 30 tags), p99",
		"push 4×256KiB all at once", "server RSS peak, 4 concurrent pushes", "server RSS peak (whole run)",
	} {
		m, ok := res.Get(name)
		if !ok {
			t.Errorf("no metric %q", name)
			continue
		}
		if m.Value <= 0 {
			t.Errorf("%s = %v %s, want > 0", name, m.Value, m.Unit)
		}
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, res); err != nil || !strings.Contains(buf.String(), "manifest HEAD, 1 clients") {
		t.Errorf("table: %v\n%s", err, buf.String())
	}
	// The seeding happened: the catalog and the tag list hold what was created.
	seeded := func() (repos, tags int) {
		var cat struct{ Repositories []string }
		getJSON(t, s.URL+"/v2/_catalog?n=1000", user, pass, &cat)
		for _, r := range cat.Repositories {
			if strings.HasPrefix(r, cfg.Repository+"/cat/") {
				repos++
			}
		}
		var tl struct{ Tags []string }
		getJSON(t, s.URL+"/v2/"+cfg.Repository+"/tagged/tags/list?n=1000", user, pass, &tl)
		return repos, len(tl.Tags)
	}
	if r, tg := seeded(); r != cfg.Repos || tg != cfg.Tags {
		t.Errorf("seeded %d repositories and %d tags; want %d and %d", r, tg, cfg.Repos, cfg.Tags)
	}
	// A second run finds the repositories and tags there and does not create them again: no
	// manifest is pushed (the seed blob is checked, and uploaded only when missing).
	pushes := func() int {
		time.Sleep(100 * time.Millisecond) // events are written in batches
		evs, err := s.Meta().RepositoryEvents(context.Background(), store.EventFilter{Operation: "push", Limit: 100000})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	before := pushes()
	if before < cfg.Repos+cfg.Tags {
		t.Fatalf("%d push events after seeding %d repositories and %d tags", before, cfg.Repos, cfg.Tags)
	}
	cfg.Sections = []string{SectionLists}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if after := pushes(); after != before {
		t.Errorf("the second run pushed %d more times; the seeding was repeated", after-before)
	}
	if r, tg := seeded(); r != cfg.Repos || tg != cfg.Tags {
		t.Errorf("after the second run: %d repositories and %d tags; want %d and %d", r, tg, cfg.Repos, cfg.Tags)
	}
}

func getJSON(t *testing.T, u, user, pass string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// refreshToken exchanges the owner's directory token for a refresh token of the default
// registry, as `berth login` does.
func refreshToken(t *testing.T, s *registrytest.Server) string {
	resp, err := http.PostForm(s.URL+"/oauth2/exchange", url.Values{"grant_type": {"access_token"},
		"access_token": {s.OwnerToken(t)}, "service": {s.Host}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.RefreshToken == "" {
		t.Fatalf("exchange: %s, %v", resp.Status, err)
	}
	return body.RefreshToken
}

func TestRunRefusesWhatItCannotMeasure(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"bad url", Config{URL: "ftp://x"}, "must be http://"},
		{"a path", smoke(s.URL+"/nothing", "", ""), "must be http://host:port"},
		{"not a registry", smoke(web.URL, "", ""), "answered 404 Not Found: is " + web.URL + " a registry?"},
		{"unknown section", func() Config { c := smoke(s.URL, "", ""); c.Sections = []string{"everything"}; return c }(), `unknown section "everything"`},
		{"no images", func() Config { c := smoke(s.URL, "", ""); c.Images = 0; return c }(), "images must be positive"},
		{"no clients", func() Config { c := smoke(s.URL, "", ""); c.Clients = []int{8, 0}; return c }(), "clients must be"},
		{"wrong password", func() Config { c := smoke(s.URL, "default", "wrong"); c.Sections = []string{SectionManifest}; return c }(), "UNAUTHORIZED"},
		{"tokens without credentials", func() Config { c := smoke(s.URL, "", ""); c.Sections = []string{SectionToken}; return c }(), "needs credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

// TestExtraSections runs the hostile and soak sections briefly against a real berth (they run
// only when named): both finish and report what they measure, the soak with no failed request.
func TestExtraSections(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	user, pass := s.Admin(t)
	cfg := smoke(s.URL, user, pass)
	cfg.Sections, cfg.Duration, cfg.PID = []string{SectionHostile, SectionSoak}, 2*time.Second, os.Getpid()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"hostile: honest pulls, p99 without the attack", "hostile: p99 during / without",
		"hostile: server RSS peak during the attack", "soak requests", "soak failed requests"} {
		if _, ok := res.Get(name); !ok {
			t.Errorf("no metric %q", name)
		}
	}
	if m, _ := res.Get("soak failed requests"); m.Value != 0 {
		t.Errorf("%v requests of the soak failed", m.Value)
	}
	if m, _ := res.Get("soak requests"); m.Value < 10 {
		t.Errorf("the soak made %v requests", m.Value)
	}
}
