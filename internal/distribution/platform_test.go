package distribution_test

import (
	"fmt"
	"strings"
	"testing"

	wire "github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registrytest"
)

// TestManifestPlatform (issue 19): az acr manifest list-metadata shows an image's config media
// type, architecture and os; berth reads them from the config at push, bounded (a config over
// oci.MaxConfigSize, one that is not JSON or not an image config leaves the platform unknown and
// the push unharmed), keeps them through soft delete and restore, and shows none for an index.
func TestManifestPlatform(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"policies": map[string]any{"softDeletePolicy": map[string]any{"status": "enabled", "retentionDays": 7}}}, nil); st != 200 {
		t.Fatalf("soft delete on: %d", st)
	}
	huge := `{"architecture":"amd64","os":"linux","pad":"` + strings.Repeat("x", oci.MaxConfigSize) + `"}`
	for _, tc := range []struct {
		name, configType, config string
		arch, os                 string
	}{
		{"oci", oci.MediaTypeImageConfig, `{"architecture":"arm64","os":"linux","variant":"v8"}`, "arm64", "linux"},
		{"docker", oci.MediaTypeDockerImageConfig, `{"architecture":"amd64","os":"windows"}`, "amd64", "windows"},
		{"not-strings", oci.MediaTypeImageConfig, `{"architecture":7,"os":{"x":1}}`, "", ""},
		{"control-chars", oci.MediaTypeImageConfig, `{"architecture":"amd64\n","os":"linux"}`, "", "linux"},
		{"too-long", oci.MediaTypeImageConfig, `{"architecture":"` + strings.Repeat("a", 65) + `","os":"linux"}`, "", "linux"},
		{"not-json", oci.MediaTypeImageConfig, `not json`, "", ""},
		{"helm-chart", "application/vnd.cncf.helm.config.v1+json", `{"architecture":"amd64","os":"linux","name":"chart"}`, "", ""},
		{"huge", oci.MediaTypeImageConfig, huge, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cd := c.pushBlob("plat/"+tc.name, []byte(tc.config))
			ld := c.pushBlob("plat/"+tc.name, []byte(tc.name))
			m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
				oci.MediaTypeImageManifest, tc.configType, cd, len(tc.config), ld, len(tc.name))
			c.must(c.do("PUT", "/v2/plat/"+tc.name+"/manifests/v1", map[string]string{"Content-Type": oci.MediaTypeImageManifest}, []byte(m)), 201, "push")
			var one wire.ManifestReply
			decode(t, c.must(c.do("GET", "/acr/v1/plat/"+tc.name+"/_manifests/v1", nil, nil), 200, "show-metadata").body, &one)
			if one.Manifest.ConfigMediaType != tc.configType || one.Manifest.Architecture != tc.arch || one.Manifest.OS != tc.os {
				t.Errorf("config %q, platform %q/%q; want %q, %q/%q", one.Manifest.ConfigMediaType, one.Manifest.Architecture, one.Manifest.OS, tc.configType, tc.arch, tc.os)
			}
		})
	}

	// An index lists platforms but has none of its own, and no config.
	_, d1 := c.pushImage("plat/multi", "amd", randomBytes(t, 10))
	idx := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":1,"platform":{"architecture":"amd64","os":"linux"}}]}`,
		oci.MediaTypeImageIndex, oci.MediaTypeImageManifest, d1)
	c.must(c.do("PUT", "/v2/plat/multi/manifests/latest", map[string]string{"Content-Type": oci.MediaTypeImageIndex}, []byte(idx)), 201, "push index")
	var ms wire.ManifestList
	decode(t, c.must(c.do("GET", "/acr/v1/plat/multi/_manifests", nil, nil), 200, "list-metadata").body, &ms)
	for _, m := range ms.Manifests {
		image := m.Digest == string(d1)
		if image != (m.Architecture == "amd64" && m.OS == "linux" && m.ConfigMediaType == oci.MediaTypeImageConfig) ||
			!image && (m.Architecture != "" || m.OS != "" || m.ConfigMediaType != "") {
			t.Errorf("list-metadata: %+v", m)
		}
	}

	// Soft deleted and restored, the manifest keeps what was read at push.
	c.must(c.do("DELETE", "/v2/plat/oci/manifests/v1", nil, nil), 202, "untag")
	var tagged wire.ManifestList
	decode(t, c.must(c.do("GET", "/acr/v1/plat/oci/_manifests", nil, nil), 200, "list").body, &tagged)
	if len(tagged.Manifests) != 1 {
		t.Fatalf("manifests of plat/oci: %+v", tagged)
	}
	d := tagged.Manifests[0].Digest
	c.must(c.do("DELETE", "/v2/plat/oci/manifests/"+d, nil, nil), 202, "delete")
	c.must(c.do("POST", "/acr/v1/_deleted/plat/oci/_manifests/"+d, map[string]string{"Content-Type": "application/json"}, []byte(`{"tag":"back"}`)), 200, "restore")
	var one wire.ManifestReply
	decode(t, c.must(c.do("GET", "/acr/v1/plat/oci/_manifests/back", nil, nil), 200, "restored").body, &one)
	if one.Manifest.Architecture != "arm64" || one.Manifest.OS != "linux" || one.Manifest.ConfigMediaType != oci.MediaTypeImageConfig {
		t.Errorf("restored manifest: %+v", one.Manifest)
	}
}
