package distribution_test

import (
	"net/http"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
)

// tokenClient creates a repository-scoped token of the default registry with the given
// repository → actions rules and returns a client signed in with it (Basic).
func tokenClient(t *testing.T, s *registrytest.Server, name string, rules map[string][]string) *client {
	t.Helper()
	var repos []map[string]any
	for r, acts := range rules {
		repos = append(repos, map[string]any{"repository": r, "actions": acts})
	}
	var tok struct {
		Credentials struct{ Passwords []struct{ Value string } }
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries/default/tokens", map[string]any{"name": name, "repositories": repos}, &tok); st != http.StatusCreated {
		t.Fatalf("create token %s: %d", name, st)
	}
	return &client{t: t, base: s.URL, user: name, pass: tok.Credentials.Passwords[0].Value}
}

// TestMountNeedsPullOnTheSource checks that a cross-repository mount only links a blob the
// caller may pull from its source: otherwise it is as if the source did not have it (a new
// upload session, 202), and the blob stays out of reach.
func TestMountNeedsPullOnTheSource(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	admin := newClient(t, s)
	secret := randomBytes(t, 512)
	d := admin.pushBlob("private/app", secret)

	pushOnly := tokenClient(t, s, "push-only", map[string][]string{"team/*": {"content/read", "content/write"}})
	for _, tc := range []struct{ name, query string }{
		{"named source", "?mount=" + string(d) + "&from=private/app"},
		{"any source", "?mount=" + string(d)},
	} {
		r := pushOnly.do("POST", "/v2/team/app/blobs/uploads/"+tc.query, nil, nil)
		if r.StatusCode != http.StatusAccepted {
			t.Errorf("%s: mount without pull on the source: %d %s; want 202 (a new upload)", tc.name, r.StatusCode, r.body)
		}
		if r := pushOnly.do("GET", "/v2/team/app/blobs/"+string(d), nil, nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s: the blob is readable through the mount target: %d", tc.name, r.StatusCode)
		}
		if r := pushOnly.do("GET", "/v2/private/app/blobs/"+string(d), nil, nil); r.StatusCode != http.StatusForbidden {
			t.Errorf("%s: the source is readable: %d", tc.name, r.StatusCode)
		}
	}

	// With pull on the source, the same mounts link the blob.
	reader := tokenClient(t, s, "reader", map[string][]string{"team/*": {"content/read", "content/write"}, "private/*": {"content/read"}})
	for i, q := range []string{"?mount=" + string(d) + "&from=private/app", "?mount=" + string(d)} {
		target := []string{"team/named", "team/any"}[i]
		reader.must(reader.do("POST", "/v2/"+target+"/blobs/uploads/"+q, nil, nil), http.StatusCreated, "mount with pull on the source")
		if got := mustGet(reader, "/v2/"+target+"/blobs/"+string(d)); string(got) != string(secret) {
			t.Errorf("%s: mounted blob differs", target)
		}
	}
	// Pull alone on the target is not enough to mount into it.
	pullOnly := tokenClient(t, s, "pull-only", map[string][]string{"*": {"content/read"}})
	if r := pullOnly.do("POST", "/v2/team/other/blobs/uploads/?mount="+string(d)+"&from=private/app", nil, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("mount without push on the target: %d %s", r.StatusCode, r.body)
	}
	if r := admin.do("HEAD", "/v2/team/other/blobs/"+string(d), nil, nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("the blob reached a repository the caller may not push to: %d", r.StatusCode)
	}
}
