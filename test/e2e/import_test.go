package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
)

// distribution3 starts Distribution 3 (installed by scripts/install-test-tools.sh as registry)
// with htpasswd Basic auth and returns its host:port.
func distribution3(t *testing.T, user, password string) string {
	t.Helper()
	bin, err := exec.LookPath("registry")
	if err != nil {
		t.Fatal("Distribution 3 (registry) is not on PATH: run scripts/install-test-tools.sh and put its folder on PATH")
	}
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600)
	addr := registrytest.FreeAddr(t)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\nauth:\n  htpasswd:\n    realm: dist\n    path: %s\n",
		filepath.Join(dir, "data"), addr, filepath.Join(dir, "htpasswd"))
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600)
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr
		}
	}
	t.Fatal("Distribution 3 did not start")
	return ""
}

// TestImportFromDistribution (issue 19): berth import copies a multi-platform index with its
// signature referrer from a real Distribution 3 (Basic auth), whole, digests unchanged; again
// from another berth (token auth) into a second tag; a tag that exists needs --force; a source
// in a network not allowed is refused.
func TestImportFromDistribution(t *testing.T) {
	ctx := context.Background()
	src := distribution3(t, "importer", "import-secret")
	auth := remote.WithAuth(&authn.Basic{Username: "importer", Password: "import-secret"})
	// A two-platform index, and a signature that refers to it.
	var idx v1.ImageIndex = empty.Index
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	ref, _ := name.NewTag(src+"/multi/app:v1", name.Insecure)
	if err := remote.WriteIndex(ref, idx, auth); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	idxDesc, _ := partial(idx)
	sig, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	sig = mutate.MediaType(sig, types.OCIManifestSchema1)
	sig = mutate.ConfigMediaType(sig, "application/vnd.example.signature")
	sig = mutate.Subject(sig, idxDesc).(v1.Image)
	sigDigest, _ := sig.Digest()
	if err := remote.Write(ref.Context().Digest(sigDigest.String()), sig, auth); err != nil {
		t.Fatal(err)
	}

	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Outbound.AllowedNetworks = []string{"127.0.0.0/8"} }})
	c := client.New(s.URL, s.OwnerToken(t))
	run := func(req client.ImportRequest) client.ImportOperation {
		t.Helper()
		op, err := c.StartImport(ctx, "default", req)
		if err != nil {
			t.Fatalf("import %s: %v", req.Source, err)
		}
		for deadline := time.Now().Add(time.Minute); op.Status == "Running" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if op, err = c.Import(ctx, "default", op.ID); err != nil {
				t.Fatal(err)
			}
		}
		return op
	}
	op := run(client.ImportRequest{Source: src + "/multi/app:v1", Image: "imported/app:v1", Username: "importer", Password: "import-secret", PlainHTTP: true, WithReferrers: true})
	if op.Status != "Succeeded" || op.Manifests != 4 || op.Blobs < 6 {
		t.Fatalf("import: %+v (want the index, two images and the signature; their configs and layers)", op)
	}
	user, pass := s.Admin(t)
	berthAuth := remote.WithAuth(&authn.Basic{Username: user, Password: pass})
	dst, _ := name.NewTag(s.Host+"/imported/app:v1", name.Insecure)
	got, err := remote.Index(dst, berthAuth)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != idxDigest {
		t.Errorf("imported index %s, want %s", d, idxDigest)
	}
	im, _ := got.IndexManifest()
	for _, m := range im.Manifests {
		img, err := remote.Image(dst.Context().Digest(m.Digest.String()), berthAuth)
		if err != nil {
			t.Fatalf("platform %s: %v", m.Platform, err)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("platform %s does not validate: %v", m.Platform, err)
		}
	}
	refs, err := remote.Referrers(dst.Context().Digest(idxDigest.String()), berthAuth)
	if err != nil {
		t.Fatal(err)
	}
	rm, _ := refs.IndexManifest()
	if len(rm.Manifests) != 1 || rm.Manifests[0].Digest != sigDigest {
		t.Errorf("referrers of the imported index: %+v, want the signature %s", rm.Manifests, sigDigest)
	}

	// Again, into the same tag: refused without force; then from berth itself (token auth).
	if _, err := c.StartImport(ctx, "default", client.ImportRequest{Source: src + "/multi/app:v1", Image: "imported/app:v1", PlainHTTP: true,
		Username: "importer", Password: "import-secret"}); !client.IsStatus(err, http.StatusConflict) {
		t.Errorf("import onto an existing tag: %v", err)
	}
	other := registrytest.New(t, registrytest.Options{})
	ou, op2 := other.Admin(t)
	img, _ := random.Image(1024, 1)
	oref, _ := name.NewTag(other.Host+"/from/berth:v2", name.Insecure)
	if err := remote.Write(oref, img, remote.WithAuth(&authn.Basic{Username: ou, Password: op2})); err != nil {
		t.Fatal(err)
	}
	if op := run(client.ImportRequest{Source: other.Host + "/from/berth:v2", PlainHTTP: true, Username: ou, Password: op2}); op.Status != "Succeeded" || op.Target != "from/berth:v2" {
		t.Errorf("import from a berth (token auth): %+v", op)
	}
	// Wrong credentials and unreachable sources fail with their reason.
	if op := run(client.ImportRequest{Source: src + "/multi/app:v1", Image: "x/y:z", PlainHTTP: true, Username: "importer", Password: "wrong"}); op.Status != "Failed" || !strings.Contains(strings.ToLower(op.Error), "unauthorized") {
		t.Errorf("import with a wrong password: %+v", op)
	}
	blocked := registrytest.New(t, registrytest.Options{}) // no outbound.allowed_networks
	bc := client.New(blocked.URL, blocked.OwnerToken(t))
	bop, err := bc.StartImport(ctx, "default", client.ImportRequest{Source: src + "/multi/app:v1", PlainHTTP: true})
	for deadline := time.Now().Add(30 * time.Second); err == nil && bop.Status == "Running" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		bop, err = bc.Import(ctx, "default", bop.ID)
	}
	if err != nil || bop.Status != "Failed" || !strings.Contains(bop.Error, "outbound.allowed_networks") {
		t.Errorf("import from a loopback source without allowing it: %+v, %v", bop, err)
	}
	b, _ := json.Marshal(op)
	t.Logf("import: %s", b)

	// Four imports at once, the fifth waits its turn (429).
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer hang.Close()
	defer close(release)
	hangHost := strings.TrimPrefix(hang.URL, "http://")
	for i := range 4 {
		if _, err := c.StartImport(ctx, "default", client.ImportRequest{Source: fmt.Sprintf("%s/slow/app:v%d", hangHost, i), PlainHTTP: true}); err != nil {
			t.Fatalf("import %d: %v", i, err)
		}
	}
	if _, err := c.StartImport(ctx, "default", client.ImportRequest{Source: hangHost + "/slow/app:v9", PlainHTTP: true}); !client.IsStatus(err, http.StatusTooManyRequests) {
		t.Errorf("a fifth import at once: %v, want 429", err)
	}
}

// partial is the descriptor of an index, for a referrer's subject.
func partial(idx v1.ImageIndex) (v1.Descriptor, error) {
	d, err := idx.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, _ := idx.Size()
	mt, _ := idx.MediaType()
	return v1.Descriptor{Digest: d, Size: size, MediaType: mt}, nil
}
