package portal_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/registrytest"
)

// exchanges counts the owner's sign-ins at /oauth2/exchange (the portal's data-plane sign-ins).
func exchanges(t *testing.T, s *registrytest.Server) int {
	t.Helper()
	s.SettleEvents(t)
	var evs []client.LoginEvent
	s.Mgmt(t, "GET", "/mgmt/v1/events/login?operation=exchange&identity=owner", nil, &evs)
	return len(evs)
}

// TestContentBlades: the data plane is signed in to once per session for ten minutes (one
// exchange, not one per page); the catalog is paged; a refusal of the data plane (the Owner's
// role is not honoured in mode rbac-abac) is a page that says so, not a sign-out.
func TestContentBlades(t *testing.T) {
	clock := registrytest.NewClock()
	s := seeded(t, registrytest.Options{Now: clock.Now}, 101, 0)
	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	_, page := b.get("/portal/r/default/repositories")
	if n := strings.Count(page, `<li><a href="/portal/r/default/repository?name=`); n != 100 || !strings.Contains(page, `rel="next"`) {
		t.Fatalf("the first page lists %d repositories", n)
	}
	if !strings.Contains(page, `href="/portal/r/default/repositories?last=`) {
		t.Fatal("no link to the next page")
	}
	next := page[strings.Index(page, `href="/portal/r/default/repositories?last=`)+len(`href="`):]
	next = strings.ReplaceAll(next[:strings.Index(next, `"`)], "&amp;", "&")
	_, page = b.get(next)
	if n := strings.Count(page, `<li><a href="/portal/r/default/repository?name=`); n != 1 || strings.Contains(page, `rel="next"`) {
		t.Errorf("the second page (%s) lists %d repositories", next, n)
	}
	b.get("/portal/r/default/repository?name=team00%2Fapp00000")
	if n := exchanges(t, s); n != 1 {
		t.Errorf("%d exchanges for three content pages, want 1", n)
	}
	clock.Add(11 * time.Minute)
	b.get("/portal/r/default/repositories")
	if n := exchanges(t, s); n != 2 {
		t.Errorf("%d exchanges after eleven minutes, want 2", n)
	}
	s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"roleAssignmentMode": "rbac-abac"}, nil)
	resp, page := b.get("/portal/r/default/repository?name=team00%2Fapp00000")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "not honoured in mode rbac-abac") {
		t.Errorf("the Owner in mode rbac-abac: %d %s", resp.StatusCode, errorText(page))
	}
	// A change too: its sign-in is renewed, then it is refused on the blade.
	if resp, page := b.post("/portal/r/default/repository/untag", url.Values{"repository": {"team00/app00000"}, "tag": {"v1"}}); resp.StatusCode != http.StatusForbidden ||
		!strings.Contains(page, "not honoured in mode rbac-abac") {
		t.Errorf("untag in mode rbac-abac: %d %s", resp.StatusCode, errorText(page))
	}
	if resp, _ := b.get("/portal/r/default/keys"); resp.StatusCode != http.StatusOK {
		t.Errorf("a refusal of the data plane ended the session: %d", resp.StatusCode)
	}
}

// TestManifestBody: a manifest's own JSON is shown when it is at most 64 KiB.
func TestManifestBody(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	user, pass := s.Admin(t)
	length := func(digest string) int {
		req, _ := http.NewRequest("HEAD", s.URL+"/v2/team/big/manifests/"+digest, nil)
		req.SetBasicAuth(user, pass)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return int(resp.ContentLength)
	}
	// Tags of one length, so that only the annotation's padding changes the manifest's length.
	base := length(pushManifest(t, s, "team/big", "a00000", map[string]string{"pad": ""}))
	for _, size := range []int{64 << 10, 64<<10 + 1} {
		digest := pushManifest(t, s, "team/big", fmt.Sprintf("a%05d", size%100000), map[string]string{"pad": strings.Repeat("x", size-base)})
		if n := length(digest); n != size {
			t.Fatalf("the manifest is %d bytes, want %d", n, size)
		}
		_, page := b.get("/portal/r/default/manifest?" + url.Values{"repository": {"team/big"}, "reference": {digest}}.Encode())
		if shown := strings.Contains(page, "<summary>Manifest</summary>"); shown != (size <= 64<<10) {
			t.Errorf("a manifest of %d bytes: shown %v", size, shown)
		}
	}
}
