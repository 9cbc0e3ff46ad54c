package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	ggauthn "github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
)

// call sends one request with a correlation id of the test's choosing and returns the status and
// body; the reply must carry the same id back.
func call(t *testing.T, method, u, corr string, set func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Correlation-Id", corr)
	if set != nil {
		set(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if got := resp.Header.Get("X-Correlation-Id"); got != corr {
		t.Errorf("%s %s: X-Correlation-Id %q, want the client's %q", method, u, got, corr)
	}
	if resp.StatusCode >= 400 && !strings.Contains(string(b), "; correlation id: "+corr+`"`) {
		t.Errorf("%s %s: the error message does not end with the correlation id: %s", method, u, b)
	}
	return resp.StatusCode, string(b)
}

func basic(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// loginEvent waits for the login event of a correlation id (events are written off the request
// path) and returns it.
func loginEvent(t *testing.T, s *registrytest.Server, owner, corr string) client.LoginEvent {
	t.Helper()
	var evs []client.LoginEvent
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		evs = nil
		if st := s.MgmtAs(t, owner, "GET", "/mgmt/v1/events/login?correlationId="+corr, nil, &evs); st != http.StatusOK {
			t.Fatalf("events: %d", st)
		}
		if len(evs) > 0 {
			if len(evs) != 1 {
				t.Fatalf("%d login events for %s, want 1: %+v", len(evs), corr, evs)
			}
			return evs[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no login event for correlation id %s", corr)
	return client.LoginEvent{}
}

type jsonEvent = map[string]any

// TestLoginEvents drives every sign-in path to success and to each kind of failure, and checks
// the login event each attempt leaves: operation, identity, status, result, reason, scopes, jti.
func TestLoginEvents(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Auth.MaxFailures = 3 }})
	owner := s.OwnerToken(t)
	admin, adminPwd := s.Admin(t)
	var sp struct{ AppID, Password string }
	if st := s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals", map[string]string{"displayName": "puller"}, &sp); st != http.StatusCreated {
		t.Fatalf("create sp: %d", st)
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": sp.AppID, "role": "AcrPull", "scope": "/registries/default"}, nil); st != http.StatusCreated {
		t.Fatalf("assign: %d", st)
	}
	var tok struct {
		Credentials struct {
			Passwords []struct{ Name, Value string }
		}
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries/default/tokens", map[string]any{"name": "ci-token", "repositories": []map[string]any{{"repository": "app", "actions": []string{"content/read"}}}}, &tok); st != http.StatusCreated {
		t.Fatalf("create token: %d", st)
	}
	tokPwd := tok.Credentials.Passwords[0].Value
	tokenURL := func(scope string) string {
		return s.URL + "/oauth2/token?service=" + url.QueryEscape(s.Host) + "&scope=" + url.QueryEscape(scope)
	}
	type want struct {
		status            int
		op, identity      string
		kind, result      string
		reason            string
		granted, refused  string
		jti               bool
		registry, message string
	}
	check := func(t *testing.T, corr string, w want) client.LoginEvent {
		t.Helper()
		e := loginEvent(t, s, owner, corr)
		if w.registry == "" {
			w.registry = "default"
		} else if w.registry == "-" {
			w.registry = ""
		}
		got := want{e.Status, e.Operation, e.Identity, e.IdentityKind, e.Result, e.Reason, strings.Join(e.Granted, " "), strings.Join(e.Refused, " "),
			e.TokenID != "", e.Registry, w.message}
		if w.message != "" && !strings.Contains(e.Message, w.message) {
			t.Errorf("message %q does not contain %q", e.Message, w.message)
		}
		if got != w {
			t.Errorf("event %+v\n got %+v\nwant %+v", e, got, w)
		}
		if e.IP != "127.0.0.1" || e.UserAgent == "" || e.Time == "" || e.DurationMs < 0 {
			t.Errorf("caller fields: %+v", e)
		}
		return e
	}

	t.Run("token: admin password", func(t *testing.T) {
		call(t, "GET", tokenURL("repository:app:pull,push"), "c-admin-ok", basic(admin, adminPwd))
		check(t, "c-admin-ok", want{status: 200, op: "token", identity: "default", kind: "admin", result: "success", granted: "repository:app:pull,push", refused: "", jti: true})
	})
	t.Run("token: bad password", func(t *testing.T) {
		call(t, "GET", tokenURL("repository:app:pull"), "c-bad-pw", basic(admin, "wrong"))
		check(t, "c-bad-pw", want{status: 401, op: "token", identity: "default", result: "failure", reason: "bad_password"})
	})
	t.Run("token: unknown identity", func(t *testing.T) {
		call(t, "GET", tokenURL("repository:app:pull"), "c-ghost", basic("ghost", "x"))
		check(t, "c-ghost", want{status: 401, op: "token", identity: "ghost", result: "failure", reason: "unknown_identity"})
	})
	t.Run("token: unknown service principal", func(t *testing.T) {
		call(t, "GET", tokenURL("repository:app:pull"), "c-ghost-sp", basic("11111111-2222-3333-4444-555555555555", "x"))
		check(t, "c-ghost-sp", want{status: 401, op: "token", identity: "11111111-2222-3333-4444-555555555555", result: "failure", reason: "unknown_identity",
			message: "application not registered"})
	})
	t.Run("token: partial grant", func(t *testing.T) {
		call(t, "GET", tokenURL("repository:app:pull,push"), "c-sp-push", basic(sp.AppID, sp.Password))
		check(t, "c-sp-push", want{status: 200, op: "token", identity: sp.AppID, kind: "sp", result: "success", reason: "insufficient_scope",
			granted: "repository:app:pull", refused: "repository:app:push", jti: true, message: "no role assignment gives"})
	})
	t.Run("token: anonymous", func(t *testing.T) {
		call(t, "GET", tokenURL("repository:app:pull"), "c-anon", nil)
		check(t, "c-anon", want{status: 200, op: "token", kind: "anonymous", result: "success", reason: "insufficient_scope", refused: "repository:app:pull", jti: true})
	})
	t.Run("token: scope-map token disabled", func(t *testing.T) {
		if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default/tokens/ci-token", map[string]string{"status": "disabled"}, nil); st != http.StatusOK {
			t.Fatalf("disable token: %d", st)
		}
		call(t, "GET", tokenURL("repository:app:pull"), "c-tok-off", basic("ci-token", tokPwd))
		check(t, "c-tok-off", want{status: 401, op: "token", identity: "ci-token", result: "failure", reason: "token_disabled"})
	})
	t.Run("registry API: Basic credentials", func(t *testing.T) {
		call(t, "GET", s.URL+"/v2/", "c-v2-basic", basic(admin, adminPwd))
		check(t, "c-v2-basic", want{status: 200, op: "registry", identity: "default", kind: "admin", result: "success"})
		call(t, "GET", s.URL+"/v2/", "c-v2-bad", basic(admin, "nope"))
		check(t, "c-v2-bad", want{status: 401, op: "registry", identity: "default", result: "failure", reason: "bad_password"})
		call(t, "GET", s.URL+"/v2/app/tags/list", "c-v2-garbage", bearer("not-a-token"))
		check(t, "c-v2-garbage", want{status: 401, op: "registry", result: "failure", reason: "invalid_token"})
	})
	t.Run("directory and exchange", func(t *testing.T) {
		st, _ := call(t, "POST", s.URL+"/mgmt/v1/token?grant_type=password&username=owner&password=wrong", "c-dir-bad", nil)
		if st != 401 {
			t.Fatalf("status %d", st)
		}
		check(t, "c-dir-bad", want{status: 401, op: "directory", identity: "owner", result: "failure", reason: "bad_password", registry: "-"})
		call(t, "POST", s.URL+"/oauth2/exchange?grant_type=access_token&service="+url.QueryEscape(s.Host)+"&access_token="+owner, "c-exchange", nil)
		check(t, "c-exchange", want{status: 200, op: "exchange", identity: "owner", kind: "user", result: "success", jti: true})
	})
	t.Run("mode changed", func(t *testing.T) {
		_, body := call(t, "GET", tokenURL("repository:app:pull"), "c-mode-tok", basic(sp.AppID, sp.Password))
		access := between(body, `"access_token":"`, `"`)
		if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"roleAssignmentMode": "rbac-abac"}, nil); st != http.StatusOK {
			t.Fatalf("mode: %d", st)
		}
		defer s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"roleAssignmentMode": "rbac"}, nil)
		time.Sleep(1100 * time.Millisecond) // the mode reaches the token check with the next policy refresh
		call(t, "GET", s.URL+"/v2/app/tags/list", "c-mode", bearer(access))
		check(t, "c-mode", want{status: 401, op: "registry", identity: sp.AppID, result: "failure", reason: "mode_changed"})
		// The client is told its token is no good (not merely that it needs one), so it signs in again.
		req, _ := http.NewRequest("GET", s.URL+"/v2/app/tags/list", nil)
		bearer(access)(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_token"`) {
			t.Errorf("challenge for a token of the old mode: %q", ch)
		}
	})
	t.Run("network", func(t *testing.T) {
		if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"networkRuleSet": map[string]string{"defaultAction": "Deny"}}, nil); st != http.StatusOK {
			t.Fatalf("deny: %d", st)
		}
		call(t, "GET", s.URL+"/v2/", "c-ip-v2", basic(admin, adminPwd))
		check(t, "c-ip-v2", want{status: 403, op: "registry", identity: "default", result: "failure", reason: "ip_denied", message: "127.0.0.1"})
		call(t, "GET", tokenURL("repository:app:pull"), "c-ip-token", basic(admin, adminPwd))
		check(t, "c-ip-token", want{status: 403, op: "token", identity: "default", result: "failure", reason: "ip_denied"})
		if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"publicNetworkAccess": "Disabled", "networkRuleSet": map[string]string{"defaultAction": "Allow"}}, nil); st != http.StatusOK {
			t.Fatalf("public off: %d", st)
		}
		call(t, "GET", tokenURL("repository:app:pull"), "c-public-off", basic(admin, adminPwd))
		check(t, "c-public-off", want{status: 403, op: "token", identity: "default", result: "failure", reason: "public_access_disabled"})
		if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"publicNetworkAccess": "Enabled"}, nil); st != http.StatusOK {
			t.Fatalf("public on: %d", st)
		}
	})
	t.Run("throttled", func(t *testing.T) {
		for i := range 3 {
			call(t, "GET", tokenURL("repository:app:pull"), fmt.Sprintf("c-thr-%d", i), basic("hammer", "x"))
		}
		call(t, "GET", tokenURL("repository:app:pull"), "c-thr-blocked", basic("hammer", "x"))
		check(t, "c-thr-blocked", want{status: 429, op: "token", identity: "hammer", result: "failure", reason: "throttled"})
	})
	t.Run("admin disabled", func(t *testing.T) {
		if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"adminUserEnabled": false}, nil); st != http.StatusOK {
			t.Fatalf("disable admin: %d", st)
		}
		call(t, "GET", tokenURL("repository:app:pull"), "c-admin-off", basic(admin, adminPwd))
		check(t, "c-admin-off", want{status: 401, op: "token", identity: "default", result: "failure", reason: "admin_disabled"})
	})
	t.Run("correlation ids on management and OAuth errors", func(t *testing.T) {
		// call checks the header and the end of the message of each.
		if st, _ := call(t, "GET", s.URL+"/mgmt/v1/registries/nosuch", "c-mgmt-404", bearer(owner)); st != http.StatusNotFound {
			t.Errorf("status %d", st)
		}
		if st, _ := call(t, "POST", s.URL+"/oauth2/token?grant_type=magic", "c-oauth-400", nil); st != http.StatusBadRequest {
			t.Errorf("status %d", st)
		}
		if st, _ := call(t, "GET", s.URL+"/v2/UPPER/name/tags/list", "c-oci-400", nil); st < 400 {
			t.Errorf("status %d", st)
		}
	})
	t.Run("filters and export", func(t *testing.T) {
		var evs []client.LoginEvent
		s.MgmtAs(t, owner, "GET", "/mgmt/v1/registries/default/events/login?reason=bad_password&result=failure&identity=DEFAULT", nil, &evs)
		if len(evs) != 2 { // c-bad-pw and c-v2-bad
			t.Errorf("%d bad_password events of the admin user, want 2: %+v", len(evs), evs)
		}
		evs = nil
		s.MgmtAs(t, owner, "GET", "/mgmt/v1/registries/default/events/login?operation=registry&limit=2", nil, &evs)
		if len(evs) != 2 || evs[0].ID < evs[1].ID {
			t.Errorf("limit 2, newest first: %+v", evs)
		}
		for _, bad := range []string{"?result=maybe", "?since=yesterday", "?limit=0", "?ip=300.1.1.1", "?colour=red", "?format=xml"} {
			if st := s.MgmtAs(t, owner, "GET", "/mgmt/v1/events/login"+bad, nil, nil); st != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", bad, st)
			}
		}
		req, _ := http.NewRequest("GET", s.URL+"/mgmt/v1/events/login?format=jsonl&identity=hammer", nil)
		req.Header.Set("Authorization", "Bearer "+owner)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		lines := 0
		for sc := bufio.NewScanner(resp.Body); sc.Scan(); lines++ {
			if !strings.HasPrefix(sc.Text(), "{") || !strings.Contains(sc.Text(), `"identity":"hammer"`) {
				t.Errorf("line %q", sc.Text())
			}
		}
		if lines != 4 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Errorf("%d lines (%s), want 4", lines, resp.Header.Get("Content-Type"))
		}
	})
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}

// TestEventsAccess: events need a reader role on their registry (at "/" for every registry's).
func TestEventsAccess(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	var u struct{ Password string }
	if st := s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": "auditor"}, &u); st != http.StatusCreated {
		t.Fatalf("user: %d", st)
	}
	sign := func() string {
		resp, err := http.PostForm(s.URL+"/mgmt/v1/token", url.Values{"grant_type": {"password"}, "username": {"auditor"}, "password": {u.Password}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return between(string(b), `"access_token":"`, `"`)
	}
	tok := sign()
	if st := s.MgmtAs(t, tok, "GET", "/mgmt/v1/registries/default/events/login", nil, nil); st != http.StatusNotFound {
		t.Errorf("no role: %d, want 404", st)
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": "auditor", "role": "Reader", "scope": "/registries/default"}, nil); st != http.StatusCreated {
		t.Fatalf("assign: %d", st)
	}
	time.Sleep(1100 * time.Millisecond)
	if st := s.MgmtAs(t, tok, "GET", "/mgmt/v1/registries/default/events/repository", nil, nil); st != http.StatusOK {
		t.Errorf("Reader on the registry: %d, want 200", st)
	}
	if st := s.MgmtAs(t, tok, "GET", "/mgmt/v1/events/login", nil, nil); st != http.StatusForbidden {
		t.Errorf("Reader on one registry, all events: %d, want 403", st)
	}
	if st := s.MgmtAs(t, tok, "GET", "/mgmt/v1/registries/default/events/other", nil, nil); st != http.StatusNotFound {
		t.Errorf("unknown kind: %d, want 404", st)
	}
}

// TestEventsUnderLoad: concurrent sign-ins through a queue of two events each leave their login
// event; none is dropped. Then the retention purge removes events past their age.
func TestEventsUnderLoad(t *testing.T) {
	clock := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clock.Now, Config: func(c *config.Config) {
		c.Events.Queue = 2
		c.Events.AggregateWindow = 0 // every failure an event: the writer under load is measured
		c.Auth.MaxFailures, c.Auth.AddressMaxFailures = 100000, 100000
	}})
	owner := s.OwnerToken(t)
	const clients, each = 16, 25
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				req, _ := http.NewRequest("GET", s.URL+"/oauth2/token?service="+url.QueryEscape(s.Host), nil)
				req.SetBasicAuth(fmt.Sprintf("load-%d", c), "x")
				req.Header.Set("X-Correlation-Id", fmt.Sprintf("load-%d-%d", c, i))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	count := func() int {
		n := 0
		req, _ := http.NewRequest("GET", s.URL+"/mgmt/v1/events/login?format=jsonl&reason=unknown_identity", nil)
		req.Header.Set("Authorization", "Bearer "+owner)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("export: status %d", resp.StatusCode)
		}
		for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
			n++
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for count() < clients*each && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := count(); n != clients*each {
		t.Fatalf("%d login events for %d sign-ins", n, clients*each)
	}
	clock.Add(91 * 24 * time.Hour)
	owner = s.OwnerToken(t) // the old one expired with the clock
	n, err := s.PurgeEvents(t.Context())
	if err != nil || n < clients*each {
		t.Fatalf("purged %d (%v), want at least %d", n, err, clients*each)
	}
	if left := count(); left != 0 {
		var evs []client.LoginEvent
		s.MgmtAs(t, owner, "GET", "/mgmt/v1/events/login?reason=unknown_identity", nil, &evs)
		t.Fatalf("%d events left after the purge: %+v", left, evs)
	}
}

// TestRepositoryEvents pushes, pulls, untags and deletes with go-containerregistry and checks the
// repository event of each, then a refused push; and that /metrics counts what happened.
func TestRepositoryEvents(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	owner := s.OwnerToken(t)
	user, pwd := s.Admin(t)
	auth := remote.WithAuth(&ggauthn.Basic{Username: user, Password: pwd})
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(s.Host+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, auth); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	size, _ := img.Size()
	mt, _ := img.MediaType()
	if _, err := remote.Get(tag, auth); err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(tag.Context().Tag("v2"), img, auth); err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(tag.Context().Tag("v2"), auth); err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(tag.Context().Digest(digest.String()), auth); err != nil {
		t.Fatal(err)
	}
	// A push refused by the token's scope: an access token for pull only.
	resp, err := http.Get(s.URL + "/oauth2/token?service=" + url.QueryEscape(s.Host) + "&scope=repository:team/app:pull")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	access := between(string(b), `"access_token":"`, `"`)
	req, _ := http.NewRequest("PUT", s.URL+"/v2/team/app/manifests/v3", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("X-Correlation-Id", "c-refused-push")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	type row struct {
		op, tag, digest, media string
		size                   int64
		status                 int
		result, reason         string
	}
	want := []row{ // oldest first
		{"push", "v1", digest.String(), string(mt), size, 201, "success", ""},
		{"pull", "v1", digest.String(), string(mt), size, 200, "success", ""},
		{"push", "v2", digest.String(), string(mt), size, 201, "success", ""},
		{"untag", "v2", "", "", 0, 202, "success", ""},
		{"delete", "", digest.String(), "", 0, 202, "success", ""},
		{"push", "v3", "", "", 0, 401, "failure", ""},
	}
	var evs []client.RepositoryEvent
	deadline := time.Now().Add(5 * time.Second)
	for len(evs) < len(want) && time.Now().Before(deadline) {
		evs = nil
		s.MgmtAs(t, owner, "GET", "/mgmt/v1/registries/default/events/repository?repository=team/app", nil, &evs)
		time.Sleep(20 * time.Millisecond)
	}
	if len(evs) != len(want) {
		t.Fatalf("%d repository events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, w := range want {
		e := evs[len(evs)-1-i]
		got := row{e.Operation, e.Tag, e.Digest, e.MediaType, e.Size, e.Status, e.Result, ""}
		if got != w {
			t.Errorf("event %d: got %+v, want %+v", i, got, w)
		}
		if e.Repository != "team/app" || e.IP != "127.0.0.1" || e.CorrelationID == "" || (e.Result == "success" && e.Identity != "default") {
			t.Errorf("event %d: %+v", i, e)
		}
	}
	if refused := evs[0]; refused.Identity != "" || refused.IdentityKind != "anonymous" || refused.CorrelationID != "c-refused-push" ||
		refused.Reason != "anonymous" || !strings.Contains(refused.Message, "may only pull") {
		t.Errorf("refused push: %+v", refused)
	}

	// Metrics reflect the same traffic.
	resp, err = http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{
		`berth_http_requests_total{method="PUT",route="/v2/*/manifests",status="201"} 2`,
		`berth_http_requests_total{method="DELETE",route="/v2/*/manifests",status="202"} 2`,
		`berth_signins_total{operation="token",reason="",result="success"}`,
		`berth_tokens_issued_total{operation="token"}`,
		`berth_upload_duration_seconds_count`,
		`berth_event_queue_depth`,
		`berth_policy_snapshot_version`,
		`berth_http_request_bytes_total{route="/v2/*/blobs/uploads/*"}`,
		`berth_http_response_bytes_total{route="/v2/*/manifests"}`,
	} {
		if !strings.Contains(string(m), line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

// TestAccessLog: one request line per request with its correlation id and identity; no
// password, secret or token anywhere in the log.
func TestAccessLog(t *testing.T) {
	var log lockedBuffer
	s := registrytest.New(t, registrytest.Options{Log: &log})
	owner := s.OwnerToken(t)
	user, pwd := s.Admin(t)
	_, body := call(t, "GET", s.URL+"/oauth2/token?service="+url.QueryEscape(s.Host)+"&scope=repository:a:pull", "log-token", basic(user, pwd))
	access := between(body, `"access_token":"`, `"`)
	call(t, "GET", s.URL+"/v2/", "log-v2", bearer(access))
	call(t, "GET", s.URL+"/v2/", "log-basic-bad", basic(user, pwd+"x"))
	s.Stop()
	out := log.String()
	for _, secret := range []string{pwd, owner, access, registrytest.OwnerPassword} {
		if strings.Contains(out, secret) {
			t.Fatalf("the log holds a secret (%.8s…)", secret)
		}
	}
	for _, want := range []string{
		`msg=request method=GET path=/oauth2/token`, `status=200`, `correlation_id=log-token`, `identity=default`,
		`correlation_id=log-v2 identity="the admin user of registry \"default\""`,
		`correlation_id=log-basic-bad identity=default reason=bad_password`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	if n := strings.Count(out, "msg=request "); n < 6 {
		t.Errorf("%d request lines", n)
	}
}

// TestAuditCannotBeFlooded (issue 16, finding 6): sign-ins that name no verified identity (here
// garbage bearer tokens, from one address) are written one by one only for the first few of each
// kind in an interval, the rest as one event with their number: every attempt is accounted for,
// in a handful of rows. Failures at an identity that exists stay one event each.
func TestAuditCannotBeFlooded(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Events.AggregateWindow = time.Second
		c.Auth.MaxFailures, c.Auth.AddressMaxFailures, c.Auth.IdentityMaxFailures = 100000, 100000, 100000
	}})
	owner := s.OwnerToken(t)
	admin, _ := s.Admin(t)
	const garbage = 500
	var wg sync.WaitGroup
	start := time.Now()
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range garbage / 4 {
				req, _ := http.NewRequest("GET", s.URL+"/v2/", nil)
				req.Header.Set("Authorization", fmt.Sprintf("Bearer garbage-%d-%d", c, i))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	// Each one-second interval the flood spans writes at most the first few (10) and one event
	// counting the rest: 500 attempts in one or two intervals are at most 22 events, however slow
	// the machine (the race detector on two cores spreads them over three or four).
	intervals := int(time.Since(start)/time.Second) + 2
	for range 3 {
		req, _ := http.NewRequest("GET", s.URL+"/v2/", nil)
		req.SetBasicAuth(admin, "wrong")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var evs []client.LoginEvent
	attempts := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		evs = nil
		s.MgmtAs(t, owner, "GET", "/mgmt/v1/events/login?reason=invalid_token", nil, &evs)
		attempts = 0
		for _, e := range evs {
			attempts += e.Attempts
		}
		if attempts >= garbage {
			break
		}
	}
	if attempts != garbage || len(evs) > 11*intervals || len(evs) > garbage/10 {
		t.Errorf("%d garbage tokens left %d events standing for %d attempts; want at most %d (11 for each of %d intervals) for all %d", garbage, len(evs), attempts, 11*intervals, intervals, garbage)
	}
	var bad []client.LoginEvent
	// The events are written in batches: wait for the three (a loaded machine writes them later).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		bad = nil
		if s.MgmtAs(t, owner, "GET", "/mgmt/v1/events/login?reason=bad_password", nil, &bad); len(bad) >= 3 {
			break
		}
	}
	if len(bad) != 3 {
		t.Errorf("%d events for 3 wrong passwords of the admin user; want 3", len(bad))
	}
	for _, e := range bad {
		if e.Attempts != 1 {
			t.Errorf("a wrong password of an identity stands for %d attempts", e.Attempts)
		}
	}
}
