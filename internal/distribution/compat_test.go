package distribution_test

import (
	"slices"
	"strings"
	"testing"

	ggauthn "github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-registry/berth/internal/registrytest"
)

// TestGoContainerRegistry pushes and pulls images and an index with go-containerregistry's
// remote package, a real client, and validates what comes back.
func TestGoContainerRegistry(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	img, err := random.Image(256<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(s.Host+"/compat/image:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("anonymous remote.Write = %v; want a 401 refusal", err)
	}
	user, pass := s.Admin(t)
	auth := remote.WithAuth(&ggauthn.Basic{Username: user, Password: pass})
	if err := remote.Write(ref, img, auth); err != nil {
		t.Fatalf("remote.Write: %v", err)
	}
	got, err := remote.Image(ref, auth)
	if err != nil {
		t.Fatalf("remote.Image: %v", err)
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("pulled image does not validate: %v", err)
	}
	wantDigest, _ := img.Digest()
	if d, _ := got.Digest(); d != wantDigest {
		t.Errorf("pulled digest %s, pushed %s", d, wantDigest)
	}

	idx, err := random.Index(64<<10, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	iref, _ := name.ParseReference(s.Host+"/compat/index:multi", name.Insecure)
	if err := remote.WriteIndex(iref, idx, auth); err != nil {
		t.Fatalf("remote.WriteIndex: %v", err)
	}
	gotIdx, err := remote.Index(iref, auth)
	if err != nil {
		t.Fatalf("remote.Index: %v", err)
	}
	if err := validate.Index(gotIdx); err != nil {
		t.Errorf("pulled index does not validate: %v", err)
	}

	// Cross-repository mount, as remote.Write does it when told the source.
	layers, _ := img.Layers()
	dst, _ := name.ParseReference(s.Host+"/compat/other:v1", name.Insecure)
	ml, err := remote.Layer(ref.Context().Digest(mustDigest(t, layers[0]).String()), auth)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(dst.Context(), ml, auth); err != nil {
		t.Fatalf("WriteLayer (mount): %v", err)
	}
	tags, err := remote.List(ref.Context(), auth)
	if err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Errorf("remote.List = %v, %v", tags, err)
	}
	cat, err := remote.Catalog(t.Context(), ref.Context().Registry, auth)
	// compat/other holds the mounted layer only, no manifest: not in the catalog.
	if err != nil || !slices.Equal(cat, []string{"compat/image", "compat/index"}) {
		t.Errorf("remote.Catalog = %v, %v; want the two repositories with manifests", cat, err)
	}
	if err := remote.Delete(ref, auth); err != nil {
		t.Errorf("remote.Delete: %v", err)
	}
	if _, err := remote.Image(ref, auth); err == nil {
		t.Error("image still pullable after delete")
	}
}

func mustDigest(t *testing.T, l v1.Layer) v1.Hash {
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
