package portal_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/store"
)

// seeded is a server over a data folder's SQLite database (whatever BERTH_TEST_BACKEND says: the
// seed writes SQLite) seeded with repositories and events.
func seeded(tb testing.TB, opts registrytest.Options, repos, events int) *registrytest.Server {
	tb.Helper()
	opts.Dir = tb.TempDir()
	seed(tb, opts.Dir, repos, events)
	edit := opts.Config
	opts.Config = func(c *config.Config) {
		c.Database = "sqlite:" + filepath.Join(opts.Dir, "berth.db")
		if edit != nil {
			edit(c)
		}
	}
	return registrytest.New(tb, opts)
}

// seed fills a data folder's database with repositories (one tagged manifest each) and login
// and repository events, before a server opens it.
func seed(tb testing.TB, dir string, repos, events int) {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "berth.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	reg, err := st.EnsureDefaultRegistry(ctx, "default")
	if err != nil {
		tb.Fatal(err)
	}
	for i := range repos {
		d := oci.Digest(fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(fmt.Sprint(i)))))
		m := store.Manifest{Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 500, CreatedAt: time.Now(), Architecture: "amd64", OS: "linux"}
		if err := st.PutManifest(ctx, reg.ID, fmt.Sprintf("team%02d/app%05d", i%50, i), m, nil, nil, []string{"v1"}); err != nil {
			tb.Fatal(err)
		}
	}
	const batch = 2000
	for i := 0; i < events; i += batch {
		var logins []store.LoginEvent
		var repoEvents []store.RepositoryEvent
		for j := i; j < i+batch && j < events; j++ {
			when := time.Now().Add(-time.Duration(events-j) * time.Second)
			result := "success"
			if j%7 == 0 {
				result = "failure"
			}
			logins = append(logins, store.LoginEvent{Time: when, Registry: "default", LoginServer: "bench", Operation: "token", Identity: fmt.Sprintf("user%03d", j%300),
				IdentityKind: "user", IP: "192.0.2.1", UserAgent: "bench", Status: 200, Result: result, CorrelationID: fmt.Sprintf("C%015d", j)})
			repoEvents = append(repoEvents, store.RepositoryEvent{Time: when, Registry: "default", LoginServer: "bench", Operation: "pull", Repository: "team00/app00000",
				Identity: "ci", IdentityKind: "token", Status: 200, Result: "success", CorrelationID: fmt.Sprintf("R%015d", j)})
		}
		if err := st.InsertEvents(ctx, logins, repoEvents); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkPages renders every blade, signed in as the Owner, over a registry of 10 000
// repositories and 100 000 login and 100 000 repository events (issue 22: each ≤ 50 ms
// server-side). BERTH_PORTAL_BENCH_SCALE=small seeds 100 repositories and 1 000 events (CI).
func BenchmarkPages(b *testing.B) {
	repos, events := 10_000, 100_000
	if small() {
		repos, events = 100, 1_000
	}
	start := time.Now()
	s := seeded(b, registrytest.Options{}, repos, events)
	b.Logf("seeded %d repositories and %d events of each kind in %s", repos, events, time.Since(start).Round(time.Millisecond))
	br := newBrowser(b, s.URL)
	br.signIn("owner", registrytest.OwnerPassword)
	digest := pushManifest(b, s, "team00/pushed", "v1", map[string]string{"org.opencontainers.image.source": "https://example.com/app"})
	for _, p := range []struct{ name, path string }{
		{"overview", "/portal/r/default/"},
		{"usage", "/portal/r/default/usage"},
		{"repositories", "/portal/r/default/repositories"},
		{"repositories-last-page", "/portal/r/default/repositories?last=team49%2Fapp09899"},
		{"repository", "/portal/r/default/repository?name=team00%2Fapp00000"},
		{"manifest", "/portal/r/default/manifest?" + url.Values{"repository": {"team00/pushed"}, "reference": {digest}}.Encode()},
		{"keys", "/portal/r/default/keys"},
		{"tokens", "/portal/r/default/tokens"},
		{"access", "/portal/r/default/access"},
		{"check-access", "/portal/r/default/access/check?identity=owner&repository=team00%2Fapp00000&action=pull"},
		{"network", "/portal/r/default/network"},
		{"webhooks", "/portal/r/default/webhooks"},
		{"policies", "/portal/r/default/policies"},
		{"events", "/portal/r/default/events"},
		{"events-identity-failures", "/portal/r/default/events?identity=user042&result=failure"},
		{"events-correlation", "/portal/r/default/events?correlationId=C000000000050000"},
		{"repository-events", "/portal/r/default/events?kind=repository"},
		{"directory", "/portal/directory"},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				if resp, page := br.get(p.path); resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d %s", p.path, resp.StatusCode, errorText(page))
				}
			}
		})
	}
}

func small() bool { return strings.EqualFold(os.Getenv("BERTH_PORTAL_BENCH_SCALE"), "small") }

var assetRef = regexp.MustCompile(`(?:src|href)="(/portal/static/[^"]+)"`)

// TestFirstLoad: the sign-in page and a blade, with every script and the stylesheet they load,
// are at most 200 KB (issue 22), as served (no compression).
func TestFirstLoad(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	b := newBrowser(t, s.URL)
	total := 0
	_, signin := b.get("/portal/signin")
	b.signIn("owner", registrytest.OwnerPassword)
	_, overview := b.get("/portal/r/default/")
	total += len(signin) + len(overview)
	assets := map[string]bool{}
	for _, page := range []string{signin, overview} {
		for _, m := range assetRef.FindAllStringSubmatch(page, -1) {
			assets[m[1]] = true
		}
	}
	if len(assets) < 3 {
		t.Fatalf("the pages load %v", assets)
	}
	for a := range assets {
		resp, err := http.Get(s.URL + a)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "public, max-age=86400" || n < 500 {
			t.Errorf("%s: %d %q", a, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
		total += int(n)
	}
	t.Logf("first load: %d bytes (%d assets)", total, len(assets))
	if total > 200<<10 {
		t.Errorf("the first load is %d bytes, over 200 KB", total)
	}
}
