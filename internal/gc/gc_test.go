package gc_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ggauthn "github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/blob/s3blob/s3test"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/gc"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registrytest"
)

func stored(t *testing.T, s *registrytest.Server, d string) bool {
	t.Helper()
	_, err := s.Blobs().Stat(context.Background(), oci.Digest(d))
	if err != nil && !errors.Is(err, blob.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// digests are an image's manifest, config and layers.
func digests(t *testing.T, img v1.Image) []string {
	t.Helper()
	m, _ := img.Digest()
	c, _ := img.ConfigName()
	out := []string{m.String(), c.String()}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		out = append(out, d.String())
	}
	return out
}

// TestCollect: an image that is deleted and a blob pushed without a manifest are collected
// (after a dry run that deletes nothing); a tagged image is kept whole; a collected image can be
// pushed again.
func TestCollect(t *testing.T) {
	ctx := context.Background()
	s := registrytest.New(t, registrytest.Options{})
	user, pwd := s.Admin(t)
	auth := remote.WithAuth(&ggauthn.Basic{Username: user, Password: pwd})
	keep, _ := random.Image(300, 2)
	drop, _ := random.Image(300, 2)
	keepRef, _ := name.NewTag(s.Host+"/gc/keep:v1", name.Insecure)
	dropRef, _ := name.NewTag(s.Host+"/gc/drop:v1", name.Insecure)
	for ref, img := range map[name.Tag]v1.Image{keepRef: keep, dropRef: drop} {
		if err := remote.Write(ref, img, auth); err != nil {
			t.Fatal(err)
		}
	}
	orphan := make([]byte, 1000)
	rand.Read(orphan)
	od := oci.FromBytes(oci.SHA256, orphan)
	req, _ := http.NewRequest("POST", s.URL+"/v2/gc/orphan/blobs/uploads/?digest="+string(od), bytes.NewReader(orphan))
	req.SetBasicAuth(user, pwd)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("orphan push: %v %v", resp, err)
	}
	dd, _ := drop.Digest()
	if err := remote.Delete(dropRef.Context().Digest(dd.String()), auth); err != nil {
		t.Fatal(err)
	}
	garbage := append(digests(t, drop), string(od))
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }

	// Within the grace period nothing goes.
	rep, err := gc.Run(ctx, s.Meta(), s.Blobs(), gc.Options{Grace: time.Hour})
	if err != nil || len(rep.Deleted) != 0 || rep.Young == 0 {
		t.Fatalf("within the grace period: %+v, %v", rep, err)
	}
	rep, err = gc.Run(ctx, s.Meta(), s.Blobs(), gc.Options{Grace: time.Hour, Now: later, DryRun: true})
	if err != nil || len(rep.Deleted) != len(garbage) {
		t.Fatalf("dry run: %+v, %v; want %d digests", rep, err, len(garbage))
	}
	for _, d := range garbage {
		if !stored(t, s, d) {
			t.Fatalf("the dry run deleted %s", d)
		}
	}
	rep, err = gc.Run(ctx, s.Meta(), s.Blobs(), gc.Options{Grace: time.Hour, Now: later})
	if err != nil || len(rep.Deleted) != len(garbage) || rep.Bytes == 0 {
		t.Fatalf("collection: %+v, %v", rep, err)
	}
	for _, d := range garbage {
		if stored(t, s, d) {
			t.Errorf("%s was not collected", d)
		}
	}
	for _, d := range digests(t, keep) {
		if !stored(t, s, d) {
			t.Errorf("%s of the tagged image was collected", d)
		}
	}
	if img, err := remote.Image(keepRef, auth); err != nil {
		t.Fatal(err)
	} else if _, err := img.ConfigFile(); err != nil {
		t.Fatalf("the kept image: %v", err)
	}
	if err := remote.Write(dropRef, drop, auth); err != nil {
		t.Fatalf("pushing the collected image again: %v", err)
	}
	if _, err := remote.Image(dropRef, auth); err != nil {
		t.Fatal(err)
	}
}

// TestCollectDuringPushes runs collections without a grace period, back to back, while images
// sharing a layer are pushed and some deleted: a push may be refused and have to be repeated,
// but every push that was acknowledged (and not deleted) can be pulled whole afterwards.
func TestCollectDuringPushes(t *testing.T) {
	ctx := context.Background()
	s := registrytest.New(t, registrytest.Options{})
	user, pwd := s.Admin(t)
	auth := remote.WithAuth(&ggauthn.Basic{Username: user, Password: pwd})
	shared, err := random.Layer(200, types.OCILayer) // in every image: the contended blob
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var collections, deleted atomic.Int64
	gcDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				gcDone <- nil
				return
			default:
			}
			rep, err := gc.Run(ctx, s.Meta(), s.Blobs(), gc.Options{Grace: 0})
			if err != nil {
				gcDone <- err
				return
			}
			collections.Add(1)
			deleted.Add(int64(len(rep.Deleted)))
			// Room for pushes to finish now and then, at random moments: on a slow store (S3)
			// back-to-back collections without grace would refuse every push.
			var b [1]byte
			rand.Read(b[:])
			time.Sleep(time.Duration(b[0]) * time.Millisecond)
		}
	}()
	type pushed struct {
		ref name.Tag
		img v1.Image
	}
	var mu sync.Mutex
	var acked []pushed
	var refused atomic.Int64
	var pushers sync.WaitGroup
	for w := range 3 {
		pushers.Add(1)
		go func() {
			defer pushers.Done()
			// At least 12 pushes each, and more until collections have run a few times (fast
			// pushes can otherwise all finish between two collections).
			for i := 0; i < 12 || collections.Load() < 3 && i < 400; i++ {
				own, _ := random.Layer(200, types.OCILayer)
				img, err := mutate.AppendLayers(empty.Image, shared, own)
				if err != nil {
					t.Error(err)
					return
				}
				ref, _ := name.NewTag(fmt.Sprintf("%s/race/w%d:%d", s.Host, w, i), name.Insecure)
				if err := remote.Write(ref, img, auth); err != nil {
					refused.Add(1)
					continue
				}
				if i%3 == 0 { // delete some, so that collections have work
					d, _ := img.Digest()
					if err := remote.Delete(ref.Context().Digest(d.String()), auth); err != nil {
						t.Error(err)
					}
					continue
				}
				mu.Lock()
				acked = append(acked, pushed{ref, img})
				mu.Unlock()
			}
		}()
	}
	pushers.Wait()
	close(stop)
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d collections deleted %d blobs; %d pushes kept, %d refused", collections.Load(), deleted.Load(), len(acked), refused.Load())
	if collections.Load() < 3 || deleted.Load() == 0 || len(acked) == 0 {
		t.Fatalf("the race did not happen: %d collections, %d deleted, %d kept", collections.Load(), deleted.Load(), len(acked))
	}
	for _, p := range acked {
		for _, d := range digests(t, p.img) {
			if !stored(t, s, d) {
				t.Errorf("%s of acknowledged push %s was deleted", d, p.ref)
			}
		}
		img, err := remote.Image(p.ref, auth)
		if err != nil {
			t.Errorf("pull %s: %v", p.ref, err)
			continue
		}
		layers, _ := img.Layers()
		for _, l := range layers {
			rc, err := l.Compressed()
			if err == nil {
				var buf bytes.Buffer
				_, err = buf.ReadFrom(rc)
				rc.Close()
			}
			if err != nil {
				t.Errorf("pull %s: %v", p.ref, err)
			}
		}
	}
}

// TestCollectSparesOpenUploads: an upload whose bytes arrived (a PATCH) but that is not
// committed yet survives a collection that finds its bytes old and unreferenced — on S3 those
// bytes are already stored where their blob belongs — and its PUT then commits them whole.
func TestCollectSparesOpenUploads(t *testing.T) {
	for _, backend := range []string{"filesystem", "s3"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			var o registrytest.Options
			if backend == "s3" {
				u := s3test.URL(t, "gc-upload")
				o.Config = func(c *config.Config) { c.Storage = u }
			}
			s := registrytest.New(t, o)
			user, pwd := s.Admin(t)
			do := func(method, path string, body []byte, want int) *http.Response {
				t.Helper()
				req, _ := http.NewRequest(method, path, bytes.NewReader(body))
				req.SetBasicAuth(user, pwd)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Fatalf("%s %s: %d, want %d", method, path, resp.StatusCode, want)
				}
				return resp
			}
			data := make([]byte, 200_000)
			rand.Read(data)
			d := oci.FromBytes(oci.SHA256, data)
			loc := do("POST", s.URL+"/v2/gc/open/blobs/uploads/", nil, http.StatusAccepted).Header.Get("Location")
			if !strings.HasPrefix(loc, "http") {
				loc = s.URL + loc
			}
			loc = do("PATCH", loc, data, http.StatusAccepted).Header.Get("Location")
			if !strings.HasPrefix(loc, "http") {
				loc = s.URL + loc
			}
			if _, err := gc.Run(ctx, s.Meta(), s.Blobs(), gc.Options{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }, Grace: time.Hour}); err != nil {
				t.Fatal(err)
			}
			sep := "?"
			if strings.Contains(loc, "?") {
				sep = "&"
			}
			do("PUT", loc+sep+"digest="+string(d), nil, http.StatusCreated)
			req, _ := http.NewRequest("GET", s.URL+"/v2/gc/open/blobs/"+string(d), nil)
			req.SetBasicAuth(user, pwd)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Equal(got, data) {
				t.Fatalf("GET after the commit: %d, %d bytes", resp.StatusCode, len(got))
			}
		})
	}
}
