package faults

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

// hookReceiver counts deliveries by id and answers down (503) or up.
type hookReceiver struct {
	mu   sync.Mutex
	down bool
	seen map[string]int    // delivery id → times received
	tags map[string]string // delivery id → tag pushed
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p struct {
		ID     string
		Action string
		Target struct{ Tag string }
	}
	b, _ := io.ReadAll(r.Body)
	json.Unmarshal(b, &p)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	h.seen[p.ID]++
	h.tags[p.ID] = p.Target.Tag
}

// delivered returns the distinct deliveries and the duplicates received.
func (h *hookReceiver) delivered() (distinct, duplicates int, tags map[string]bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tags = map[string]bool{}
	for id, n := range h.seen {
		distinct++
		duplicates += n - 1
		tags[h.tags[id]] = true
	}
	return distinct, duplicates, tags
}

// TestWebhooksSurviveOutagesAndKill (issue 19): deliveries are written with the push, so a
// receiver that is down gets them once it is back, and a server killed with SIGKILL between the
// pushes and their deliveries delivers them after it starts again; each push is delivered, with
// duplicates (the same id twice) under 1 %.
func TestWebhooksSurviveOutagesAndKill(t *testing.T) {
	rcv := &hookReceiver{seen: map[string]int{}, tags: map[string]string{}, down: true}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	p := newProcess(t, []string{"BERTH_OUTBOUND_ALLOWED_NETWORKS=127.0.0.0/8"})
	user, pass := p.adminCredentials()
	base := "http://" + p.addr
	tok := registrytest.SignInAt(t, base, "owner", ownerPassword)
	if st := registrytest.MgmtAt(t, base, tok, "POST", "/mgmt/v1/registries/default/webhooks",
		map[string]any{"name": "faulthook", "serviceUri": hook.URL, "actions": []string{"push"}}, nil); st != 201 {
		t.Fatalf("create webhook: %d", st)
	}
	auth := remote.WithAuth(&authn.Basic{Username: user, Password: pass})
	push := func(tag string) {
		t.Helper()
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := name.NewTag(p.addr+"/hooked/app:"+tag, name.Insecure)
		if err := remote.Write(ref, img, auth); err != nil {
			t.Fatalf("push %s: %v", tag, err)
		}
	}
	wait := func(want int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			n, dup, tags := rcv.delivered()
			if n >= want {
				if dup*100 > n {
					t.Errorf("%d duplicates for %d deliveries: over 1%%", dup, n)
				}
				if len(tags) != n {
					t.Errorf("%d deliveries name %d tags", n, len(tags))
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d deliveries after %s", n, want, within)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The receiver is down while 10 images are pushed, for 8 seconds; then they all arrive.
	for i := range 10 {
		push(fmt.Sprintf("down-%d", i))
	}
	time.Sleep(8 * time.Second)
	if n, _, _ := rcv.delivered(); n != 0 {
		t.Fatalf("%d deliveries while the receiver was down", n)
	}
	rcv.mu.Lock()
	rcv.down = false
	rcv.mu.Unlock()
	wait(10, 60*time.Second)

	// Pushes acknowledged, then the server is killed before it could deliver them (the receiver
	// refuses them until then), and started again.
	rcv.mu.Lock()
	rcv.down = true
	rcv.mu.Unlock()
	for i := range 10 {
		push(fmt.Sprintf("kill-%d", i))
	}
	p.kill9()
	rcv.mu.Lock()
	rcv.down = false
	rcv.mu.Unlock()
	p.start()
	wait(20, 60*time.Second)
}
