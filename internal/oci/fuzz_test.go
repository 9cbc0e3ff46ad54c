package oci

import (
	"strings"
	"testing"
)

func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{"sha256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("0", 128), "sha256:", ":", "a+b:c", "sha256:ZZ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			return
		}
		// A valid digest round-trips and names an algorithm berth can compute.
		if string(d) != s || !d.Algorithm().Available() {
			t.Fatalf("ParseDigest(%q) = %q (algorithm %q)", s, d, d.Algorithm())
		}
		if again, err := ParseDigest(d.String()); err != nil || again != d {
			t.Fatalf("re-parse of %q: %q, %v", d, again, err)
		}
	})
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"latest", "v1.0", "sha256:" + strings.Repeat("b", 64), "-x", strings.Repeat("t", 129), "a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseReference(s)
		if err != nil {
			return
		}
		if (ref.Tag == "") == (ref.Digest == "") {
			t.Fatalf("ParseReference(%q) = %+v: exactly one of tag and digest must be set", s, ref)
		}
		if ref.String() != s {
			t.Fatalf("ParseReference(%q).String() = %q", s, ref.String())
		}
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"library/ubuntu", "a/b/c", "a__b", "a---b", "A", "a//b", strings.Repeat("a", 256)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateName(s) != nil {
			return
		}
		if len(s) > MaxNameLength || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.Contains(s, "//") || strings.ToLower(s) != s {
			t.Fatalf("ValidateName accepted %q", s)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	dg := string(FromBytes(SHA256, []byte("x")))
	f.Add(MediaTypeImageManifest, `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"`+dg+`","size":1},"layers":[]}`)
	f.Add(MediaTypeImageIndex, `{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"`+dg+`","size":1}]}`)
	f.Add(MediaTypeArtifactManifest, `{"mediaType":"`+MediaTypeArtifactManifest+`","blobs":[]}`)
	f.Add("", `{"schemaVersion":2,"subject":{"mediaType":"a/b","digest":"`+dg+`","size":1,"data":"eA=="}}`)
	f.Add("application/json", `{"fsLayers":[]}`)
	f.Fuzz(func(t *testing.T, ct, body string) {
		m, err := ParseManifest(ct, []byte(body))
		if err != nil {
			return
		}
		if !IsManifestMediaType(m.MediaType) {
			t.Fatalf("accepted manifest of type %q", m.MediaType)
		}
		for _, d := range append(m.Blobs, m.Manifests...) {
			if _, err := ParseDigest(string(d)); err != nil {
				t.Fatalf("accepted manifest references invalid digest %q", d)
			}
		}
	})
}

func FuzzParsePlatform(f *testing.F) {
	for _, s := range []string{`{"architecture":"amd64","os":"linux"}`, `{"architecture":7}`, `{"os":"\u0000"}`, `[]`, `null`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePlatform(b)
		if err != nil {
			if p != (Platform{}) {
				t.Fatalf("ParsePlatform(%q) = %+v with error %v", b, p, err)
			}
			return
		}
		// What is kept is short, printable, and what the config says.
		for _, s := range []string{p.Architecture, p.OS} {
			if len(s) > maxPlatformField || !printable(s) || !strings.Contains(string(b), s) && !strings.Contains(string(b), `\u`) && !strings.Contains(string(b), `\`) {
				t.Fatalf("ParsePlatform(%q) = %+v", b, p)
			}
		}
	})
}
