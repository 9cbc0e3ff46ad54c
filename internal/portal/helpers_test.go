package portal_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
)

// browser is a cookie-keeping HTTP client of the portal over a real socket, that does not follow
// redirects (the tests look at them) and remembers the last page's CSRF token.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
	csrf string
	hdr  http.Header // sent with every request
}

func newBrowser(t testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, hdr: http.Header{}, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// do sends a request and returns the reply with its body read.
func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range b.hdr {
		req.Header[k] = v
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	page := string(raw)
	if m := csrfField.FindStringSubmatch(page); m != nil {
		b.csrf = m[1]
	}
	return resp, page
}

func (b *browser) get(path string) (*http.Response, string) { return b.do(http.MethodGet, path, nil) }

// post sends a form with the last page's CSRF token (unless the form sets its own).
func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if !form.Has("csrf") {
		form.Set("csrf", b.csrf)
	}
	return b.do(http.MethodPost, path, form)
}

// change posts a form and follows its redirect (a change that worked is a 303 back to its
// blade), failing the test unless the blade then shows notice; it returns that page.
func (b *browser) change(path string, form url.Values, notice string) string {
	b.t.Helper()
	resp, page := b.post(path, form)
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("%s: %d %s", path, resp.StatusCode, errorText(page))
	}
	_, page = b.get(resp.Header.Get("Location"))
	if !strings.Contains(page, `<p class="notice" role="status">`+notice+`</p>`) {
		b.t.Fatalf("%s: the blade does not say %q: %s", path, notice, errorText(page))
	}
	return page
}

// signIn signs in through the sign-in form and fails the test unless it succeeds.
func (b *browser) signIn(user, password string) {
	b.t.Helper()
	b.get("/portal/signin")
	resp, page := b.post("/portal/signin", url.Values{"username": {user}, "password": {password}, "next": {"/portal/"}})
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign-in as %s: %d %s", user, resp.StatusCode, errorText(page))
	}
}

// cookie is the value of the browser's cookie name for the portal, or "".
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.base + "/portal/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

var errorBlock = regexp.MustCompile(`(?s)<div class="error" role="alert">(.*?)</div>`)

func errorText(page string) string {
	if m := errorBlock.FindStringSubmatch(page); m != nil {
		return strings.TrimSpace(m[1])
	}
	if len(page) > 300 {
		return page[:300]
	}
	return page
}

// withUser creates a directory user with a role at the default registry.
func withUser(t *testing.T, s *registrytest.Server, name, password, role string) {
	t.Helper()
	if st := s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": name, "password": password}, nil); st != http.StatusCreated {
		t.Fatalf("create user %s: %d", name, st)
	}
	if role == "" {
		return
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": name, "role": role, "scope": "/registries/default"}, nil); st != http.StatusCreated {
		t.Fatalf("assign %s to %s: %d", role, name, st)
	}
}
