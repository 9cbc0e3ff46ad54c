package distribution_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registrytest"
)

// TestBadInput sends malformed and impossible requests and checks each gets the right OCI
// error code and status: never a 500.
func TestBadInput(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	_, md := c.pushImage("good/repo", "v1", []byte("layer"))
	absent := oci.FromBytes(oci.SHA256, []byte("absent"))
	layer := oci.FromBytes(oci.SHA256, []byte("layer")) // 5 bytes, in good/repo
	ct := map[string]string{"Content-Type": oci.MediaTypeImageManifest}
	manifest := func(layerDigest oci.Digest) []byte {
		return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},"layers":[]}`, oci.MediaTypeImageManifest, layerDigest))
	}
	upload := c.must(c.do("POST", "/v2/good/repo/blobs/uploads/", nil, nil), 202, "start upload").Header.Get("Location")

	tests := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		body   []byte
		status int
		code   string
	}{
		{"upper-case name", "GET", "/v2/Bad/manifests/latest", nil, nil, 400, "NAME_INVALID"},
		{"double slash in name", "GET", "/v2/a//b/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"trailing separator", "GET", "/v2/a-/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"name too long", "GET", "/v2/" + strings.Repeat("a", 256) + "/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"unknown endpoint", "GET", "/v2/a/whatever", nil, nil, 404, "NAME_INVALID"},
		{"path too long", "GET", "/v2/" + strings.Repeat("a/", 600) + "tags/list", nil, nil, 404, "NAME_INVALID"},
		{"unknown repository tags", "GET", "/v2/no/such/tags/list", nil, nil, 404, "NAME_UNKNOWN"},
		{"unknown repository manifest", "GET", "/v2/no/such/manifests/latest", nil, nil, 404, "NAME_UNKNOWN"},
		{"unknown tag", "GET", "/v2/good/repo/manifests/nope", nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"unknown manifest digest", "GET", "/v2/good/repo/manifests/" + string(absent), nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"bad manifest digest", "GET", "/v2/good/repo/manifests/sha256:abc", nil, nil, 400, "DIGEST_INVALID"},
		{"unsupported algorithm", "GET", "/v2/good/repo/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", nil, nil, 400, "DIGEST_INVALID"},
		{"upper-case hex", "GET", "/v2/good/repo/blobs/sha256:" + strings.ToUpper(absent.Encoded()), nil, nil, 400, "DIGEST_INVALID"},
		{"unknown blob", "GET", "/v2/good/repo/blobs/" + string(absent), nil, nil, 404, "BLOB_UNKNOWN"},
		{"unknown blob head", "HEAD", "/v2/good/repo/blobs/" + string(absent), nil, nil, 404, ""},
		{"delete unknown blob", "DELETE", "/v2/good/repo/blobs/" + string(absent), nil, nil, 404, "BLOB_UNKNOWN"},
		{"delete unknown manifest", "DELETE", "/v2/good/repo/manifests/" + string(absent), nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"delete unknown tag", "DELETE", "/v2/good/repo/manifests/nope", nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"bad tag in reference", "PUT", "/v2/good/repo/manifests/-bad", ct, manifest(absent), 400, "MANIFEST_INVALID"},
		{"manifest not JSON", "PUT", "/v2/good/repo/manifests/v2", ct, []byte("{not json"), 400, "MANIFEST_INVALID"},
		{"manifest trailing data", "PUT", "/v2/good/repo/manifests/v2", ct, []byte(`{"schemaVersion":2} {}`), 400, "MANIFEST_INVALID"},
		{"manifest wrong schema", "PUT", "/v2/good/repo/manifests/v2", ct, []byte(`{"schemaVersion":1,"mediaType":"` + oci.MediaTypeImageManifest + `","config":{}}`), 400, "MANIFEST_INVALID"},
		{"manifest type mismatch", "PUT", "/v2/good/repo/manifests/v2", map[string]string{"Content-Type": oci.MediaTypeImageIndex}, manifest(absent), 400, "MANIFEST_INVALID"},
		{"manifest unknown type", "PUT", "/v2/good/repo/manifests/v2", map[string]string{"Content-Type": "text/plain"}, []byte(`{"schemaVersion":2}`), 400, "MANIFEST_INVALID"},
		{"schema 1 manifest", "PUT", "/v2/good/repo/manifests/v2", map[string]string{"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"}, []byte(`{"schemaVersion":1,"fsLayers":[]}`), 400, "MANIFEST_INVALID"},
		{"manifest bad descriptor digest", "PUT", "/v2/good/repo/manifests/v2", ct, []byte(`{"schemaVersion":2,"mediaType":"` + oci.MediaTypeImageManifest + `","config":{"mediaType":"a/b","digest":"sha256:zz","size":1},"layers":[]}`), 400, "MANIFEST_INVALID"},
		{"manifest negative size", "PUT", "/v2/good/repo/manifests/v2", ct, []byte(`{"schemaVersion":2,"mediaType":"` + oci.MediaTypeImageManifest + `","config":{"mediaType":"a/b","digest":"` + string(absent) + `","size":-1},"layers":[]}`), 400, "MANIFEST_INVALID"},
		{"manifest missing blob", "PUT", "/v2/good/repo/manifests/v2", ct, manifest(absent), 400, "MANIFEST_BLOB_UNKNOWN"},
		{"index missing child", "PUT", "/v2/good/repo/manifests/v2", map[string]string{"Content-Type": oci.MediaTypeImageIndex},
			[]byte(`{"schemaVersion":2,"mediaType":"` + oci.MediaTypeImageIndex + `","manifests":[{"mediaType":"` + oci.MediaTypeImageManifest + `","digest":"` + string(absent) + `","size":10}]}`), 400, "MANIFEST_BLOB_UNKNOWN"},
		{"manifest digest mismatch", "PUT", "/v2/good/repo/manifests/" + string(absent), ct, manifest(absent), 400, "DIGEST_INVALID"},
		{"manifest too large", "PUT", "/v2/good/repo/manifests/big", ct, []byte(`{"a":"` + strings.Repeat("x", 4<<20) + `"}`), 413, "MANIFEST_INVALID"},
		{"bad tag parameter", "PUT", "/v2/good/repo/manifests/" + string(md) + "?tag=%2Fx", ct, nil, 400, "MANIFEST_INVALID"},
		{"blob put without digest", "PUT", upload, nil, nil, 400, "DIGEST_INVALID"},
		{"blob put bad digest", "PUT", upload + "?digest=sha256:123", nil, nil, 400, "DIGEST_INVALID"},
		{"monolithic digest mismatch", "POST", "/v2/good/repo/blobs/uploads/?digest=" + string(absent), nil, []byte("other content"), 400, "DIGEST_INVALID"},
		{"monolithic bad digest", "POST", "/v2/good/repo/blobs/uploads/?digest=nope", nil, []byte("x"), 400, "DIGEST_INVALID"},
		{"mount bad digest", "POST", "/v2/good/repo/blobs/uploads/?mount=sha256:1&from=other", nil, nil, 400, "DIGEST_INVALID"},
		{"mount bad source", "POST", "/v2/good/repo/blobs/uploads/?mount=" + string(absent) + "&from=Bad", nil, nil, 400, "NAME_INVALID"},
		{"unknown upload", "PATCH", "/v2/good/repo/blobs/uploads/doesnotexist", nil, []byte("x"), 404, "BLOB_UPLOAD_UNKNOWN"},
		{"unknown upload status", "GET", "/v2/good/repo/blobs/uploads/doesnotexist", nil, nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"unknown upload cancel", "DELETE", "/v2/good/repo/blobs/uploads/doesnotexist", nil, nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"upload of another repository", "GET", strings.Replace(upload, "good/repo", "other/repo", 1), nil, nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"chunk out of order", "PATCH", upload, map[string]string{"Content-Range": "5-9"}, []byte("12345"), 416, "RANGE_INVALID"},
		{"chunk range malformed", "PATCH", upload, map[string]string{"Content-Range": "abc"}, []byte("12345"), 416, "RANGE_INVALID"},
		{"chunk range backwards", "PATCH", upload, map[string]string{"Content-Range": "9-5"}, []byte("12345"), 416, "RANGE_INVALID"},
		{"chunk length mismatch", "PATCH", upload, map[string]string{"Content-Range": "0-9"}, []byte("12345"), 400, "SIZE_INVALID"},
		{"blob range past end", "GET", "/v2/good/repo/blobs/" + string(layer), map[string]string{"Range": "bytes=10-20"}, nil, 416, "RANGE_INVALID"},
		{"blob range backwards", "GET", "/v2/good/repo/blobs/" + string(layer), map[string]string{"Range": "bytes=3-1"}, nil, 416, "RANGE_INVALID"},
		{"blob range of another unit (ignored: RFC 9110)", "GET", "/v2/good/repo/blobs/" + string(layer), map[string]string{"Range": "items=0-1"}, nil, 200, ""},
		{"unsupported method", "POST", "/v2/good/repo/manifests/v1", nil, nil, 405, "UNSUPPORTED"},
		{"delete by a malformed digest", "DELETE", "/v2/good/repo/manifests/sha256:xyz", nil, nil, 400, "DIGEST_INVALID"},
		{"delete by a malformed tag", "DELETE", "/v2/good/repo/manifests/-bad", nil, nil, 400, "MANIFEST_INVALID"},
		{"unsupported method on blobs", "PUT", "/v2/good/repo/blobs/" + string(absent), nil, nil, 405, "UNSUPPORTED"},
		{"tags n not a number", "GET", "/v2/good/repo/tags/list?n=abc", nil, nil, 400, "PAGINATION_NUMBER_INVALID"},
		{"tags n negative", "GET", "/v2/good/repo/tags/list?n=-1", nil, nil, 400, "PAGINATION_NUMBER_INVALID"},
		{"catalog n negative", "GET", "/v2/_catalog?n=-5", nil, nil, 400, "PAGINATION_NUMBER_INVALID"},
		{"referrers bad digest", "GET", "/v2/good/repo/referrers/latest", nil, nil, 400, "DIGEST_INVALID"},
		{"outside /v2", "GET", "/nothing/here", nil, nil, 404, "UNSUPPORTED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, s)
			r := c.do(tc.method, tc.path, tc.hdr, tc.body)
			if r.StatusCode != tc.status {
				t.Fatalf("%s %s: status %d, want %d; body %s", tc.method, truncate(tc.path), r.StatusCode, tc.status, r.body)
			}
			if got := r.code(); got != tc.code {
				t.Errorf("%s %s: code %q, want %q; body %s", tc.method, truncate(tc.path), got, tc.code, r.body)
			}
			if tc.code != "" && r.message() == "" {
				t.Errorf("%s %s: error without a message: %s", tc.method, truncate(tc.path), r.body)
			}
			if r.Header.Get("X-Correlation-Id") == "" {
				t.Errorf("reply has no X-Correlation-Id")
			}
			if strings.HasPrefix(tc.path, "/v2/") && r.Header.Get("Docker-Distribution-Api-Version") != "registry/2.0" {
				t.Errorf("reply has no Docker-Distribution-Api-Version")
			}
		})
	}

	// The upload survived the refused chunks: it is still at 0 and accepts the right one.
	r := c.must(c.do("GET", upload, nil, nil), http.StatusNoContent, "upload status after refusals")
	if got := r.Header.Get("Range"); got != "0-0" {
		t.Errorf("Range after refused chunks = %q, want 0-0", got)
	}
	c.must(c.do("PATCH", upload, map[string]string{"Content-Range": "0-4"}, []byte("12345")), 202, "in-order chunk")
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
