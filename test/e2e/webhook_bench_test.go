package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
)

// BenchmarkPushWebhooks pushes one small image per iteration with 0 and with 10 webhooks whose
// scope takes every push (issue 19's target: at most 5 % slower with them). The deliveries are
// written in the push's transaction; sending them is the background's work, which on a small
// machine shares the CPU with the pushes: "held" writes the outbox and sends nothing (the push's
// own cost), "sent" delivers as a server does.
func BenchmarkPushWebhooks(b *testing.B) {
	rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer rcv.Close()
	for _, v := range []struct {
		hooks int
		held  bool
	}{{0, false}, {10, true}, {10, false}} {
		label := fmt.Sprintf("webhooks=%d", v.hooks)
		if v.hooks > 0 {
			label += map[bool]string{true: ",held", false: ",sent"}[v.held]
		}
		hooks := v.hooks
		b.Run(label, func(b *testing.B) {
			s := registrytest.New(b, registrytest.Options{ManualWebhooks: v.held, Config: func(c *config.Config) { c.Outbound.AllowedNetworks = []string{"127.0.0.0/8"} }})
			tok := s.OwnerToken(b)
			for i := range hooks {
				if st := s.MgmtAs(b, tok, "POST", "/mgmt/v1/registries/default/webhooks", map[string]any{"name": fmt.Sprintf("benchhook%d", i),
					"serviceUri": rcv.URL, "actions": []string{"push"}}, nil); st != 201 {
					b.Fatalf("webhook: %d", st)
				}
			}
			user, pass := s.Admin(b)
			auth := remote.WithAuth(&authn.Basic{Username: user, Password: pass})
			img, err := random.Image(1024, 1)
			if err != nil {
				b.Fatal(err)
			}
			i := 0
			b.ResetTimer()
			for b.Loop() {
				ref, _ := name.NewTag(fmt.Sprintf("%s/bench/app:t%d", s.Host, i), name.Insecure)
				i++
				if err := remote.Write(ref, img, auth); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
