package metrics

import "testing"

func TestRoute(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/v2/", "/v2/"},
		{"/v2", "/v2/"},
		{"/v2/_catalog", "/v2/_catalog"},
		{"/v2/a/b/manifests/v1", "/v2/*/manifests"},
		{"/v2/a/manifests/sha256:abc", "/v2/*/manifests"},
		{"/v2/a/b/c/blobs/sha256:abc", "/v2/*/blobs"},
		{"/v2/a/blobs/uploads/", "/v2/*/blobs/uploads/"},
		{"/v2/a/b/blobs/uploads/XyZ123", "/v2/*/blobs/uploads/*"},
		{"/v2/a/tags/list", "/v2/*/tags"},
		{"/v2/a/referrers/sha256:abc", "/v2/*/referrers"},
		{"/v2/x", "/v2/other"},
		{"/oauth2/token", "/oauth2/token"},
		{"/mgmt/v1/token", "/mgmt/v1/token"},
		{"/mgmt/v1/registries/default/events/login", "/mgmt/v1/*"},
		{"/metrics", "/metrics"},
		{"/favicon.ico", "other"},
		{"/v2/" + string(make([]byte, 300)), "/v2/other"},
	} {
		if got := Route(tc.path); got != tc.want {
			t.Errorf("Route(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
