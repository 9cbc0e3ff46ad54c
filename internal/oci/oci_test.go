package oci

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDigest(t *testing.T) {
	sha256Hex := strings.Repeat("a", 64)
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"sha256:" + sha256Hex, false},
		{"sha512:" + strings.Repeat("0", 128), false},
		{"sha256:" + strings.Repeat("A", 64), true},
		{"sha256:" + sha256Hex[:63], true},
		{"sha256:" + sha256Hex + "0", true},
		{"sha256", true},
		{"", true},
		{":" + sha256Hex, true},
		{"md5:d41d8cd98f00b204e9800998ecf8427e", true},
		{"Sha256:" + sha256Hex, true},
		{"sha256:" + strings.Repeat("g", 64), true},
		{"sha256+b64u:abc", true},
	}
	for _, tc := range tests {
		d, err := ParseDigest(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseDigest(%q) err = %v, wantErr %v", tc.in, err, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrDigestInvalid) {
			t.Errorf("ParseDigest(%q) err = %v, not ErrDigestInvalid", tc.in, err)
		}
		if err == nil && string(d) != tc.in {
			t.Errorf("ParseDigest(%q) = %q", tc.in, d)
		}
	}
	d := FromBytes(SHA256, nil)
	if d != "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("FromBytes(empty) = %s", d)
	}
	if d.Algorithm() != SHA256 || len(d.Encoded()) != 64 {
		t.Errorf("Algorithm/Encoded of %s = %s/%s", d, d.Algorithm(), d.Encoded())
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"library/ubuntu", true},
		{"a.b_c__d---e/f0", true},
		{"conformance/repo1", true},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
		{"", false},
		{"A", false},
		{"a/", false},
		{"/a", false},
		{"a//b", false},
		{"a..b", false},
		{"a___b", false},
		{"-a", false},
		{"a-", false},
		{"a b", false},
		{"a/_b", false},
		{"ü", false},
	}
	for _, tc := range tests {
		err := ValidateName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v; want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestParseReference(t *testing.T) {
	tests := []struct {
		in      string
		tag     string
		wantErr bool
	}{
		{"latest", "latest", false},
		{"v1.0-rc_1", "v1.0-rc_1", false},
		{"_x", "_x", false},
		{strings.Repeat("t", 128), strings.Repeat("t", 128), false},
		{strings.Repeat("t", 129), "", true},
		{".x", "", true},
		{"-x", "", true},
		{"a/b", "", true},
		{"sha256:abc", "", true},
	}
	for _, tc := range tests {
		ref, err := ParseReference(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseReference(%q) err = %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if ref.Tag != tc.tag {
			t.Errorf("ParseReference(%q).Tag = %q, want %q", tc.in, ref.Tag, tc.tag)
		}
	}
}

func TestParseManifest(t *testing.T) {
	dg := string(FromBytes(SHA256, []byte("x")))
	desc := `{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + dg + `","size":1}`
	cfg := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + dg + `","size":1}`
	tests := []struct {
		name, ct, body string
		wantType       string
		wantArtifact   string
		wantBlobs      int
		wantManifests  int
		wantErr        bool
	}{
		{"oci image", MediaTypeImageManifest, `{"schemaVersion":2,"mediaType":"` + MediaTypeImageManifest + `","config":` + cfg + `,"layers":[` + desc + `]}`, MediaTypeImageManifest, "application/vnd.oci.image.config.v1+json", 2, 0, false},
		{"no mediaType, from header", MediaTypeImageManifest, `{"schemaVersion":2,"config":` + cfg + `,"layers":[]}`, MediaTypeImageManifest, "application/vnd.oci.image.config.v1+json", 1, 0, false},
		{"no mediaType, no header", "", `{"schemaVersion":2,"config":` + cfg + `,"layers":[]}`, MediaTypeImageManifest, "application/vnd.oci.image.config.v1+json", 1, 0, false},
		{"artifactType wins", MediaTypeImageManifest, `{"schemaVersion":2,"artifactType":"a/b","config":` + cfg + `,"layers":[]}`, MediaTypeImageManifest, "a/b", 1, 0, false},
		{"docker v2", MediaTypeDockerManifest, `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `","config":` + cfg + `,"layers":[` + desc + `]}`, MediaTypeDockerManifest, "", 2, 0, false},
		{"foreign layer", MediaTypeDockerManifest, `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `","config":` + cfg + `,"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"` + dg + `","size":1,"urls":["https://example.com/l"]}]}`, MediaTypeDockerManifest, "", 1, 0, false},
		{"index", MediaTypeImageIndex, `{"schemaVersion":2,"mediaType":"` + MediaTypeImageIndex + `","manifests":[` + desc + `]}`, MediaTypeImageIndex, "", 0, 1, false},
		{"docker list", MediaTypeDockerManifestList, `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifestList + `","manifests":[]}`, MediaTypeDockerManifestList, "", 0, 0, false},
		{"artifact manifest", MediaTypeArtifactManifest, `{"mediaType":"` + MediaTypeArtifactManifest + `","artifactType":"x/y","blobs":[` + desc + `]}`, MediaTypeArtifactManifest, "x/y", 1, 0, false},
		{"charset parameter", MediaTypeImageManifest + "; charset=utf-8", `{"schemaVersion":2,"mediaType":"` + MediaTypeImageManifest + `","config":` + cfg + `}`, MediaTypeImageManifest, "application/vnd.oci.image.config.v1+json", 1, 0, false},
		{"data field matches", MediaTypeImageManifest, `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"` + dg + `","size":1,"data":"eA=="}}`, MediaTypeImageManifest, "a/b", 1, 0, false},
		{"data field mismatch", MediaTypeImageManifest, `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"` + dg + `","size":1,"data":"eQ=="}}`, "", "", 0, 0, true},
		{"image without config", MediaTypeImageManifest, `{"schemaVersion":2,"layers":[]}`, "", "", 0, 0, true},
		{"index with layers", MediaTypeImageIndex, `{"schemaVersion":2,"manifests":[],"layers":[]}`, "", "", 0, 0, true},
		{"descriptor without media type", MediaTypeImageManifest, `{"schemaVersion":2,"config":{"digest":"` + dg + `","size":1}}`, "", "", 0, 0, true},
		{"bad media type", MediaTypeImageManifest, `{"schemaVersion":2,"config":{"mediaType":"nope","digest":"` + dg + `","size":1}}`, "", "", 0, 0, true},
		{"wrong field type", MediaTypeImageManifest, `{"schemaVersion":"2"}`, "", "", 0, 0, true},
		{"array", MediaTypeImageManifest, `[]`, "", "", 0, 0, true},
		{"empty", MediaTypeImageManifest, ``, "", "", 0, 0, true},
		{"bad subject", MediaTypeImageManifest, `{"schemaVersion":2,"config":` + cfg + `,"subject":{"mediaType":"a/b","digest":"x","size":1}}`, "", "", 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest(tc.ct, []byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseManifest err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrManifestInvalid) {
					t.Errorf("err %v is not ErrManifestInvalid", err)
				}
				return
			}
			if m.MediaType != tc.wantType || m.ArtifactType != tc.wantArtifact || len(m.Blobs) != tc.wantBlobs || len(m.Manifests) != tc.wantManifests {
				t.Errorf("ParseManifest = type %q artifact %q blobs %d manifests %d; want %q %q %d %d",
					m.MediaType, m.ArtifactType, len(m.Blobs), len(m.Manifests), tc.wantType, tc.wantArtifact, tc.wantBlobs, tc.wantManifests)
			}
		})
	}
}
