package distribution

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseV2Path(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		path    string
		want    route
		wantErr bool
	}{
		{"/v2/", route{kind: kindBase}, false},
		{"/v2", route{kind: kindBase}, false},
		{"/v2/_catalog", route{kind: kindCatalog}, false},
		{"/v2/a/b/tags/list", route{kind: kindTags, name: "a/b"}, false},
		{"/v2/a/manifests/latest", route{kind: kindManifest, name: "a", ref: "latest"}, false},
		{"/v2/a/b/c/manifests/" + d, route{kind: kindManifest, name: "a/b/c", ref: d}, false},
		{"/v2/blobs/blobs/" + d, route{kind: kindBlob, name: "blobs", ref: d}, false},
		{"/v2/x/manifests/blobs/" + d, route{kind: kindBlob, name: "x/manifests", ref: d}, false},
		{"/v2/a/blobs/uploads/", route{kind: kindUploads, name: "a"}, false},
		{"/v2/a/blobs/uploads", route{kind: kindUploads, name: "a"}, false},
		{"/v2/a/b/blobs/uploads/abc-_1", route{kind: kindUpload, name: "a/b", ref: "abc-_1"}, false},
		{"/v2/a/referrers/" + d, route{kind: kindReferrers, name: "a", ref: d}, false},
		{"/v2/tags/list", route{}, true},
		{"/v2/manifests/latest", route{}, true},
		{"/v2/a/unknown/x", route{}, true},
		{"/v2/a/manifests/", route{}, true},
		{"/v3/a/manifests/x", route{}, true},
		{"/v2/" + strings.Repeat("a/", 600) + "tags/list", route{}, true},
		{"/v2/a/uploads/abc", route{}, true},      // uploads live under blobs/
		{"/v2//blobs/uploads/abc", route{}, true}, // no name
		// The longest path is 1024 bytes.
		{"/v2/" + strings.Repeat("a", 1024-len("/v2//tags/list")) + "/tags/list", route{kind: kindTags, name: strings.Repeat("a", 1024-len("/v2//tags/list"))}, false},
		{"/v2/" + strings.Repeat("a", 1025-len("/v2//tags/list")) + "/tags/list", route{}, true},
	}
	for _, tc := range tests {
		got, err := parseV2Path(tc.path)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseV2Path(%q) err = %v, wantErr %v", tc.path, err, tc.wantErr)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(route{})); diff != "" {
			t.Errorf("parseV2Path(%q) mismatch (-want +got):\n%s", tc.path, diff)
		}
	}
}

func FuzzParseV2Path(f *testing.F) {
	for _, p := range []string{"/v2/", "/v2/_catalog", "/v2/a/b/tags/list", "/v2/a/manifests/v1", "/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/id", "/v2/a/referrers/sha256:x", "/v2//blobs/x"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, err := parseV2Path(p)
		if err != nil {
			return
		}
		if !strings.HasPrefix(p, "/v2") {
			t.Fatalf("parseV2Path(%q) accepted a path outside /v2", p)
		}
		switch rt.kind {
		case kindBase, kindCatalog:
			if rt.name != "" {
				t.Fatalf("parseV2Path(%q) = %+v: base and catalog have no name", p, rt)
			}
		case kindTags, kindUploads:
			if rt.name == "" || !strings.Contains(p, rt.name) {
				t.Fatalf("parseV2Path(%q) = %+v: missing name", p, rt)
			}
		case kindManifest, kindBlob, kindUpload, kindReferrers:
			if rt.name == "" || rt.ref == "" || strings.Contains(rt.ref, "/") {
				t.Fatalf("parseV2Path(%q) = %+v: missing name or ref", p, rt)
			}
			if !strings.HasSuffix(p, "/"+rt.ref) {
				t.Fatalf("parseV2Path(%q) = %+v: ref is not the last element", p, rt)
			}
		default:
			t.Fatalf("parseV2Path(%q) = unknown kind %d", p, rt.kind)
		}
	})
}
