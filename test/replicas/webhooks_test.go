package replicas

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/internal/registrytest"
)

// TestWebhooksOnceAcrossReplicas (issue 19): with three replicas polling one outbox, each push
// through the proxy is delivered, at least once and at most once but for a rare duplicate
// (under 1 %), whichever replica took it; the receiver's ids tell them apart.
func TestWebhooksOnceAcrossReplicas(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	tags := map[string]bool{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			ID     string
			Target struct{ Tag string }
		}
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &p)
		mu.Lock()
		seen[p.ID]++
		tags[p.Target.Tag] = true
		mu.Unlock()
	}))
	defer hook.Close()
	c := newCluster(t, "BERTH_OUTBOUND_ALLOWED_NETWORKS=127.0.0.0/8")
	tok := ownerToken(t, c.proxy.URL)
	pwd := adminPassword(t, c.proxy.URL, tok)
	if st := registrytest.MgmtAt(t, c.proxy.URL, tok, "POST", "/mgmt/v1/registries/default/webhooks",
		map[string]any{"name": "clusterhook", "serviceUri": hook.URL, "actions": []string{"push"}}, nil); st != 201 {
		t.Fatalf("create webhook: %d", st)
	}
	const pushes = 30
	auth := remote.WithAuth(&authn.Basic{Username: "default", Password: pwd})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range pushes / 3 {
				img, err := random.Image(256, 1)
				if err != nil {
					t.Error(err)
					return
				}
				ref, _ := name.NewTag(fmt.Sprintf("%s/hooked/app:w%d-%d", c.host, w, i), name.Insecure)
				if err := remote.Write(ref, img, auth); err != nil {
					t.Errorf("push %s: %v", ref, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		n, dup := len(seen), 0
		for _, k := range seen {
			dup += k - 1
		}
		distinctTags := len(tags)
		mu.Unlock()
		if n >= pushes {
			if distinctTags != pushes || dup*100 > n {
				t.Errorf("%d deliveries for %d tags, %d duplicates", n, distinctTags, dup)
			}
			t.Logf("%d deliveries, %d duplicates", n, dup)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d pushes delivered", n, pushes)
		}
	}
	time.Sleep(2 * time.Second) // a replica that took one twice would have sent it by now
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != pushes {
		t.Errorf("%d distinct deliveries for %d pushes", len(seen), pushes)
	}
}
