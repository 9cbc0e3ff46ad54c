package distribution_test

import (
	"bytes"
	"testing"
	"time"

	wire "github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
)

// TestImportBetweenBerths (issue 19): an import from another berth (its token flow) brings the
// image whole: the manifest with its digest, config and layer, the tag, the platform read at
// push; the operation counts what it copied. (test/e2e imports from Distribution 3.)
func TestImportBetweenBerths(t *testing.T) {
	src := registrytest.New(t, registrytest.Options{})
	sc := newClient(t, src)
	layer := randomBytes(t, 5000)
	m, d := sc.pushImage("from/app", "v1", layer)

	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Outbound.AllowedNetworks = []string{"127.0.0.0/8"} }})
	c := newClient(t, s)
	user, pass := src.Admin(t)
	var op wire.ImportOperation
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries/default/import", wire.ImportRequest{Source: src.Host + "/from/app:v1", Image: "to/app:v1",
		Username: user, Password: pass, PlainHTTP: true}, &op); st != 202 && st != 200 {
		t.Fatalf("import: %d", st)
	}
	for deadline := time.Now().Add(30 * time.Second); op.Status == "Running" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		s.Mgmt(t, "GET", "/mgmt/v1/registries/default/imports/"+op.ID, nil, &op)
	}
	if op.Status != "Succeeded" || op.Manifests != 1 || op.Blobs != 2 || op.Bytes < int64(len(layer)) || op.Target != "to/app:v1" {
		t.Fatalf("import: %+v", op)
	}
	got := c.must(c.do("GET", "/v2/to/app/manifests/v1", map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}, nil), 200, "the imported manifest")
	if !bytes.Equal(got.body, m) || got.Header.Get("Docker-Content-Digest") != string(d) {
		t.Errorf("imported manifest %s differs from the source's %s", got.Header.Get("Docker-Content-Digest"), d)
	}
	if b := c.must(c.do("GET", "/v2/to/app/blobs/"+string(sc.pushBlob("from/app", layer)), nil, nil), 200, "the imported layer"); !bytes.Equal(b.body, layer) {
		t.Error("the imported layer differs")
	}
	var one wire.ManifestReply
	decode(t, c.must(c.do("GET", "/acr/v1/to/app/_manifests/v1", nil, nil), 200, "show-metadata").body, &one)
	if one.Manifest.Architecture != "amd64" || one.Manifest.OS != "linux" {
		t.Errorf("the imported image's platform: %+v", one.Manifest)
	}
}
