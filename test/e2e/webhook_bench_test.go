package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
)

// BenchmarkPushWebhooks pushes small images into two registries of one server, in turn: one with
// no webhook, one with 10 whose scope takes every push (issue 19's target: at most 5 % slower),
// and reports each one's mean push time (ms/push-none, ms/push-hooked) and their ratio. Taking
// turns on one server keeps the disk's and the machine's drift out of the ratio. The push writes
// one event row in its transaction; the deliveries are fanned out and sent in the background.
func BenchmarkPushWebhooks(b *testing.B) {
	rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer rcv.Close()
	s := registrytest.New(b, registrytest.Options{Config: func(c *config.Config) { c.Outbound.AllowedNetworks = []string{"127.0.0.0/8"} }})
	tok := s.OwnerToken(b)
	port := s.Host[strings.LastIndex(s.Host, ":")+1:]
	hooked := "localhost:" + port // the same server, reached by another host name: the other registry
	if st := s.MgmtAs(b, tok, "POST", "/mgmt/v1/registries", map[string]any{"name": "hooked", "loginServer": hooked}, nil); st != 201 {
		b.Fatalf("registry: %d", st)
	}
	var reg struct {
		Credentials struct{ Passwords []struct{ Value string } }
	}
	if st := s.MgmtAs(b, tok, "PATCH", "/mgmt/v1/registries/hooked", map[string]any{"adminUserEnabled": true}, &reg); st != 200 || len(reg.Credentials.Passwords) == 0 {
		b.Fatalf("admin user: %d", st)
	}
	for i := range 10 {
		if st := s.MgmtAs(b, tok, "POST", "/mgmt/v1/registries/hooked/webhooks", map[string]any{"name": fmt.Sprintf("benchhook%d", i),
			"serviceUri": rcv.URL, "actions": []string{"push"}}, nil); st != 201 {
			b.Fatalf("webhook: %d", st)
		}
	}
	user, pass := s.Admin(b)
	plainAuth := remote.WithAuth(&authn.Basic{Username: user, Password: pass})
	hookedAuth := remote.WithAuth(&authn.Basic{Username: "hooked", Password: reg.Credentials.Passwords[0].Value})
	img, err := random.Image(1024, 1)
	if err != nil {
		b.Fatal(err)
	}
	var plain, withHooks time.Duration
	i := 0
	push := func(host string, auth remote.Option) time.Duration {
		ref, _ := name.NewTag(fmt.Sprintf("%s/bench/app:t%d", host, i), name.Insecure)
		start := time.Now()
		if err := remote.Write(ref, img, auth); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	b.ResetTimer()
	for b.Loop() {
		i++
		if i%2 == 0 { // alternate which goes first
			plain += push(s.Host, plainAuth)
			withHooks += push(hooked, hookedAuth)
		} else {
			withHooks += push(hooked, hookedAuth)
			plain += push(s.Host, plainAuth)
		}
	}
	b.ReportMetric(float64(plain.Microseconds())/1000/float64(b.N), "ms/push-none")
	b.ReportMetric(float64(withHooks.Microseconds())/1000/float64(b.N), "ms/push-hooked")
	b.ReportMetric(float64(withHooks)/float64(plain), "hooked/none")
}
