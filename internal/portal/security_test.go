package portal_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/store"
)

func adminEnabled(t *testing.T, s *registrytest.Server) bool {
	t.Helper()
	var reg struct{ AdminUserEnabled bool }
	if st := s.Mgmt(t, "GET", "/mgmt/v1/registries/default", nil, &reg); st != http.StatusOK {
		t.Fatalf("show registry: %d", st)
	}
	return reg.AdminUserEnabled
}

// TestHeaders: every reply carries the CSP, refuses framing and sniffing and is not cached; the
// session cookie is HttpOnly and SameSite=Strict, and Secure with the __Host- prefix (and HSTS)
// when the browser came over HTTPS through a trusted proxy.
func TestHeaders(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Network.TrustedProxies = []string{"127.0.0.1/32"} }})
	b := newBrowser(t, s.URL)
	for path, status := range map[string]int{"/portal/signin": http.StatusOK, "/portal/": http.StatusSeeOther, "/portal/nowhere": http.StatusNotFound} {
		resp, page := b.get(path)
		if resp.StatusCode != status || status == http.StatusNotFound && !strings.Contains(page, "There is no such page") {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, status)
		}
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "same-origin" ||
			h.Get("Cross-Origin-Opener-Policy") != "same-origin" || !strings.Contains(h.Get("Permissions-Policy"), "camera=()") {
			t.Errorf("%s: headers %v", path, h)
		}
	}
	b.signIn("owner", registrytest.OwnerPassword)
	resp, _ := b.get("/portal/r/default/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("overview: %d", resp.StatusCode)
	}
	// The cookie as set over plain HTTP.
	b2 := newBrowser(t, s.URL)
	b2.get("/portal/signin")
	resp, _ = b2.post("/portal/signin", url.Values{"username": {"owner"}, "password": {registrytest.OwnerPassword}})
	set := strings.Join(resp.Header.Values("Set-Cookie"), "\n")
	if !strings.Contains(set, "berth_portal=") || !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Strict") || strings.Contains(set, "Secure") {
		t.Errorf("cookie over http: %s", set)
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS over http")
	}
	// Over HTTPS (a TLS-terminating proxy at 127.0.0.1, trusted).
	b3 := newBrowser(t, s.URL)
	b3.hdr.Set("X-Forwarded-Proto", "https")
	b3.hdr.Set("X-Forwarded-For", "192.0.2.7")
	b3.get("/portal/signin")
	form := url.Values{"username": {"owner"}, "password": {registrytest.OwnerPassword}, "csrf": {b3.csrf}}
	req, _ := http.NewRequest("POST", s.URL+"/portal/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-For", "192.0.2.7")
	req.AddCookie(&http.Cookie{Name: "__Host-berth_portal_signin", Value: b3.csrf})
	resp, err := b3.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	set = strings.Join(resp.Header.Values("Set-Cookie"), "\n")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(set, "__Host-berth_portal=") || !strings.Contains(set, "Secure") || !strings.Contains(set, "Path=/;") {
		t.Errorf("cookie over https: %d %s", resp.StatusCode, set)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS over https")
	}
	// The API saw the browser's address (the proxy's X-Forwarded-For), not the proxy's.
	s.SettleEvents(t)
	var evs []client.LoginEvent
	s.Mgmt(t, "GET", "/mgmt/v1/events/login?operation=directory&ip=192.0.2.7", nil, &evs)
	if len(evs) == 0 || !strings.HasPrefix(evs[0].UserAgent, "berth-portal (") {
		t.Errorf("the portal's sign-in from 192.0.2.7: %+v", evs)
	}
}

// TestCSRF: a change without the session's token, with another's, or sent from another site is
// refused and changes nothing; the sign-in form needs its own cookie's token.
func TestCSRF(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	b.get("/portal/r/default/keys")
	good := b.csrf
	other := newBrowser(t, s.URL)
	other.signIn("owner", registrytest.OwnerPassword)
	other.get("/portal/r/default/keys")
	for name, form := range map[string]url.Values{
		"no token":        {"csrf": {""}, "enabled": {"true"}},
		"a wrong token":   {"csrf": {strings.Repeat("A", len(good))}, "enabled": {"true"}},
		"another session": {"csrf": {other.csrf}, "enabled": {"true"}},
	} {
		resp, page := b.post("/portal/r/default/keys/admin", form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "CSRF") {
			t.Errorf("%s: %d %s", name, resp.StatusCode, errorText(page))
		}
	}
	// The right token, from another site (a browser says so).
	b.hdr.Set("Origin", "http://evil.example")
	resp, _ := b.post("/portal/r/default/keys/admin", url.Values{"csrf": {good}, "enabled": {"true"}})
	b.hdr.Del("Origin")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin post: %d", resp.StatusCode)
	}
	b.hdr.Set("Sec-Fetch-Site", "cross-site")
	resp, _ = b.post("/portal/r/default/keys/admin", url.Values{"csrf": {good}, "enabled": {"true"}})
	b.hdr.Del("Sec-Fetch-Site")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site post: %d", resp.StatusCode)
	}
	b.hdr.Set("Origin", "null") // a sandboxed frame's, without a browser's word that it is same-origin
	resp, _ = b.post("/portal/r/default/keys/admin", url.Values{"csrf": {good}, "enabled": {"true"}})
	b.hdr.Del("Origin")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a post with Origin null: %d", resp.StatusCode)
	}
	if adminEnabled(t, s) {
		t.Fatal("a refused form enabled the admin user")
	}
	// Origin null passes with the browser's word that the request is same-origin (what Chromium
	// sends under a no-referrer policy), and the form then works.
	b.hdr.Set("Origin", "null")
	b.hdr.Set("Sec-Fetch-Site", "same-origin")
	resp, _ = b.post("/portal/r/default/keys/admin", url.Values{"csrf": {good}, "enabled": {"false"}, "back": {"/portal/r/default/keys"}})
	b.hdr.Del("Origin")
	b.hdr.Del("Sec-Fetch-Site")
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("Origin null, same-origin: %d", resp.StatusCode)
	}
	// A change goes back only to a page of the portal.
	for back, want := range map[string]string{
		"/portal/r/default/tokens":          "/portal/r/default/tokens?done=admin-off",
		"https://evil.example/portal/":      "/portal/r/default/?done=admin-off",
		"//evil.example/portal/":            "/portal/r/default/?done=admin-off",
		"/elsewhere":                        "/portal/r/default/?done=admin-off",
		"/portal/r/default/keys?x=1&done=y": "/portal/r/default/keys?done=admin-off&x=1",
	} {
		resp, _ := b.post("/portal/r/default/keys/admin", url.Values{"csrf": {good}, "enabled": {"false"}, "back": {back}})
		if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != want {
			t.Errorf("back %q: %d %q, want %q", back, resp.StatusCode, got, want)
		}
	}
	// A form that cannot be read.
	req, _ := http.NewRequest("POST", s.URL+"/portal/r/default/keys/admin", strings.NewReader("csrf=%zz"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := b.c.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a garbled form: %v %v", resp, err)
	}
	// The same form, as the page sends it, works.
	if resp, page := b.post("/portal/r/default/keys/admin", url.Values{"csrf": {good}, "enabled": {"true"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the page's own form: %d %s", resp.StatusCode, errorText(page))
	}
	if !adminEnabled(t, s) {
		t.Fatal("the form did not enable the admin user")
	}
	// Without a session, a form is refused, not redirected to the sign-in page (where its data
	// would be lost without a word).
	if resp, page := newBrowser(t, s.URL).post("/portal/r/default/keys/admin", url.Values{"csrf": {good}, "enabled": {"false"}}); resp.StatusCode != http.StatusForbidden ||
		!strings.Contains(page, "Your session has ended") || !adminEnabled(t, s) {
		t.Errorf("a form without a session: %d %s", resp.StatusCode, errorText(page))
	}
	// Sign-in: a token that is not the cookie's.
	c := newBrowser(t, s.URL)
	c.get("/portal/signin")
	wrong := "X" + c.csrf[1:]
	if wrong == c.csrf {
		wrong = "Y" + c.csrf[1:]
	}
	resp, _ = c.post("/portal/signin", url.Values{"csrf": {wrong}, "username": {"owner"}, "password": {registrytest.OwnerPassword}})
	if resp.StatusCode != http.StatusForbidden || c.cookie("berth_portal") != "" {
		t.Errorf("sign-in with a wrong token: %d", resp.StatusCode)
	}
}

// TestSessionFixation: a session id the browser had before signing in is never the one after;
// an id nobody issued signs nobody in; signing out ends the session for whoever holds its cookie.
func TestSessionFixation(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	planted := "ATTACKERCHOSENSESSIONVALUE0000000000000000000000000000"
	b := newBrowser(t, s.URL)
	u, _ := url.Parse(s.URL + "/portal/")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "berth_portal", Value: planted, Path: "/"}})
	if resp, _ := b.get("/portal/r/default/"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/portal/signin") {
		t.Fatalf("a planted session id: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	b.signIn("owner", registrytest.OwnerPassword)
	got := b.cookie("berth_portal")
	if got == "" || got == planted {
		t.Fatalf("the session id after sign-in is %q", got)
	}
	attacker := newBrowser(t, s.URL)
	attacker.c.Jar.SetCookies(u, []*http.Cookie{{Name: "berth_portal", Value: planted, Path: "/"}})
	if resp, _ := attacker.get("/portal/r/default/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the planted id after the victim signed in: %d", resp.StatusCode)
	}
	// A stolen cookie stops working at sign-out.
	thief := newBrowser(t, s.URL)
	thief.c.Jar.SetCookies(u, []*http.Cookie{{Name: "berth_portal", Value: got, Path: "/"}})
	if resp, _ := thief.get("/portal/r/default/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the cookie before sign-out: %d", resp.StatusCode)
	}
	b.get("/portal/r/default/")
	if resp, _ := b.post("/portal/signout", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if resp, _ := thief.get("/portal/r/default/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the cookie after sign-out: %d", resp.StatusCode)
	}
}

// TestTimeouts: a session ends after the idle timeout unused, and at the absolute timeout however
// busy; its directory token is renewed on the way (it lasts an hour).
func TestTimeouts(t *testing.T) {
	clock := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clock.Now, Config: func(c *config.Config) {
		c.Portal.IdleTimeout, c.Portal.AbsoluteTimeout = 30*time.Minute, 3*time.Hour
	}})
	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	// Busy: a page every 20 minutes for 2h40m, past the directory token's hour.
	for i := range 8 {
		clock.Add(20 * time.Minute)
		if resp, page := b.get("/portal/r/default/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("after %d×20m of use: %d %s", i+1, resp.StatusCode, errorText(page))
		}
	}
	clock.Add(21 * time.Minute) // 3h01m after the sign-in
	if resp, _ := b.get("/portal/r/default/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("past the absolute timeout: %d", resp.StatusCode)
	}
	b.signIn("owner", registrytest.OwnerPassword)
	clock.Add(29 * time.Minute)
	if resp, _ := b.get("/portal/r/default/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("29 minutes idle: %d", resp.StatusCode)
	}
	clock.Add(31 * time.Minute)
	if resp, _ := b.get("/portal/r/default/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("31 minutes idle: %d", resp.StatusCode)
	}
}

// TestPortalOff: portal.enabled=false leaves /portal/ unserved; network.management_allow keeps it
// from addresses outside the list, as it does /mgmt/v1/.
func TestPortalOff(t *testing.T) {
	off := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Portal.Enabled = false }})
	if resp, _ := newBrowser(t, off.URL).get("/portal/signin"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("portal off: %d", resp.StatusCode)
	}
	fenced := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Network.ManagementAllow = []string{"10.0.0.0/8"} }})
	if resp, _ := newBrowser(t, fenced.URL).get("/portal/signin"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("outside network.management_allow: %d", resp.StatusCode)
	}
}

// TestBounds: one identity keeps at most store.MaxPortalSessionsPerPrincipal sessions (a new
// sign-in ends its oldest), and a form is at most 64 KiB.
func TestBounds(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	var browsers []*browser
	for range store.MaxPortalSessionsPerPrincipal + 1 {
		b := newBrowser(t, s.URL)
		b.signIn("owner", registrytest.OwnerPassword)
		browsers = append(browsers, b)
	}
	if resp, _ := browsers[0].get("/portal/r/default/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the oldest of %d sessions: %d, want ended", len(browsers), resp.StatusCode)
	}
	for i, b := range browsers[1:] {
		if resp, _ := b.get("/portal/r/default/"); resp.StatusCode != http.StatusOK {
			t.Errorf("session %d: %d", i+1, resp.StatusCode)
		}
	}
	b := browsers[1]
	b.get("/portal/r/default/keys")
	if resp, _ := b.post("/portal/r/default/keys/admin", url.Values{"enabled": {"true"}, "pad": {strings.Repeat("x", 64<<10)}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a form over 64 KiB: %d", resp.StatusCode)
	}
	if adminEnabled(t, s) {
		t.Error("an oversized form changed something")
	}
}
