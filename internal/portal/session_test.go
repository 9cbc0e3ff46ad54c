package portal_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
)

// renewals counts sign-ins renewed with a refresh token (the portal's renewals of its sessions).
func renewals(t *testing.T, s *registrytest.Server, user string) int {
	t.Helper()
	s.SettleEvents(t)
	var evs []client.LoginEvent
	s.Mgmt(t, "GET", "/mgmt/v1/events/login?operation=directory&identity="+user, nil, &evs)
	n := 0
	for _, e := range evs {
		if e.Result == "success" && e.TokenID != "" && strings.Contains(e.UserAgent, "berth-portal") {
			n++
		}
	}
	return n - 1 // the sign-in itself
}

// TestRenewal: a session's directory token is renewed once when it nears its end, by one of many
// requests at once (the others use the token they have, or wait for the new one); not before, and
// not again after; a session whose user is gone ends at its renewal.
func TestRenewal(t *testing.T) {
	clock := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clock.Now, Config: func(c *config.Config) {
		c.Portal.IdleTimeout, c.Portal.AbsoluteTimeout = 3*time.Hour, 12*time.Hour
	}})
	withUser(t, s, "erin", "Erin-Pass-123", "Reader")
	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	e := newBrowser(t, s.URL)
	e.signIn("erin", "Erin-Pass-123")
	for range 3 {
		if resp, _ := b.get("/portal/r/default/"); resp.StatusCode != http.StatusOK {
			t.Fatal(resp.StatusCode)
		}
	}
	if n := renewals(t, s, "owner"); n != 0 {
		t.Fatalf("%d renewals of a fresh session", n)
	}
	// Half a minute before the hour's token ends: every request needs the new one.
	clock.Add(59*time.Minute + 30*time.Second)
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := b.c.Get(s.URL + "/portal/r/default/")
			if err == nil {
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}
		}()
	}
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusOK {
			t.Errorf("request %d at the renewal: %d", i, st)
		}
	}
	if n := renewals(t, s, "owner"); n != 1 {
		t.Errorf("%d renewals for 8 requests at once, want 1", n)
	}
	clock.Add(30 * time.Minute)
	for range 3 {
		b.get("/portal/r/default/")
	}
	if n := renewals(t, s, "owner"); n != 1 {
		t.Errorf("%d renewals half an hour after the renewal, want still 1", n)
	}
	// erin's user is deleted; her session ends when it tries to renew.
	s.Mgmt(t, "DELETE", "/mgmt/v1/users/erin", nil, nil)
	clock.Add(35 * time.Minute)
	if resp, _ := e.get("/portal/r/default/"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/portal/signin") {
		t.Errorf("a deleted user's session at its renewal: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestSignOutAndNext: sign-out needs the session's CSRF token and clears the cookie; the sign-in
// page returns only to the portal's own pages.
func TestSignOutAndNext(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	b.get("/portal/r/default/")
	if resp, _ := b.post("/portal/signout", url.Values{"csrf": {"WRONG"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without the token: %d", resp.StatusCode)
	}
	if resp, _ := b.get("/portal/r/default/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the session after a refused sign-out: %d", resp.StatusCode)
	}
	resp, _ := b.post("/portal/signout", nil)
	if set := strings.Join(resp.Header.Values("Set-Cookie"), "\n"); resp.StatusCode != http.StatusSeeOther || !regexp.MustCompile(`berth_portal=; Path=/; Max-Age=0`).MatchString(set) {
		t.Errorf("sign-out: %d %s", resp.StatusCode, set)
	}
	for next, want := range map[string]string{
		"/portal/r/default/keys":               "/portal/r/default/keys",
		"//evil.example/portal/":               "/portal/",
		"https://evil.example/portal/":         "/portal/",
		"/portal/x\r\nSet-Cookie: a=b":         "/portal/",
		"/elsewhere":                           "/portal/",
		"/portal/" + strings.Repeat("a", 1000): "/portal/",
	} {
		c := newBrowser(t, s.URL)
		c.get("/portal/signin")
		resp, page := c.post("/portal/signin", url.Values{"username": {"owner"}, "password": {registrytest.OwnerPassword}, "next": {next}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("next %q: %d %q, want %q %s", next, resp.StatusCode, resp.Header.Get("Location"), want, errorText(page))
		}
	}
	// A sign-in form that cannot be read.
	c := newBrowser(t, s.URL)
	req, _ := http.NewRequest("POST", s.URL+"/portal/signin", strings.NewReader("csrf=%zz"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := c.c.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a garbled sign-in form: %v %v", resp, err)
	}
}
