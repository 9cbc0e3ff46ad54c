package cli

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
)

// receiver is a webhook receiver that records what it gets and answers status.
type receiver struct {
	mu     sync.Mutex
	got    []delivery
	status int
}

type delivery struct {
	header  http.Header
	body    []byte
	payload struct {
		ID, Timestamp, Action string
		Target                struct {
			MediaType, Digest, Repository, Tag string
			Size, Length                       int64
		}
		Request struct{ ID, Addr, Host, Method, Useragent string }
		Actor   struct{ Name string }
		Source  struct {
			Addr       string
			InstanceID string `json:"instanceID"`
		}
	}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	d := delivery{header: r.Header.Clone(), body: b}
	json.Unmarshal(b, &d.payload)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.got = append(rc.got, d)
	if rc.status != 0 {
		w.WriteHeader(rc.status)
	}
}

func (rc *receiver) take() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := rc.got
	rc.got = nil
	return out
}

// TestWebhooks (issue 19): berth webhook as az acr webhook: a push and a delete in the scope are
// delivered with ACR's payload, signed with the webhook's secret, with the custom headers; what
// the scope or the actions leave out is not; a receiver that fails gets the delivery again
// later; private, link-local and metadata addresses are refused and redirects not followed;
// list-events shows each delivery with the receiver's answer; get-config needs the roles that
// may read credentials.
func TestWebhooks(t *testing.T) {
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now, ManualWebhooks: true, Config: func(c *config.Config) { c.Outbound.AllowedNetworks = []string{"127.0.0.0/8"} }})
	rc := &receiver{}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	tsv := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(c.must("", append(args, "-o", "tsv")...))
	}
	deliver := func() {
		t.Helper()
		if _, err := s.DeliverWebhooks(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := tsv("webhook", "create", "-n", "deployhook", "-r", "default", "--uri", hook.URL+"/hook?token=secret", "--actions", "push", "delete",
		"--scope", "team/*:*", "--headers", "X-Token=abc", "--query", "{n: name, s: status, a: join(',', actions)}"); got != "deployhook\tenabled\tpush,delete" {
		t.Fatalf("webhook create = %q", got)
	}
	secret := tsv("webhook", "get-config", "-n", "deployhook", "-r", "default", "--query", "signingSecret")
	if len(secret) < 40 || tsv("webhook", "get-config", "-n", "deployhook", "-r", "default", "--query", "customHeaders.\"X-Token\"") != "abc" {
		t.Fatalf("get-config: secret %q", secret)
	}

	d1 := pushImage(t, s, "team/app", "v1", "one")
	pushImage(t, s, "other/app", "v1", "not in scope")
	deliver()
	got := rc.take()
	if len(got) != 1 {
		t.Fatalf("deliveries after two pushes (one in scope): %d", len(got))
	}
	p := got[0].payload
	if p.Action != "push" || p.Target.Repository != "team/app" || p.Target.Tag != "v1" || p.Target.Digest != d1 || p.Target.Size == 0 || p.Target.Length != p.Target.Size ||
		p.Target.MediaType != "application/vnd.oci.image.manifest.v1+json" || p.Request.Method != "PUT" || p.Request.Host != s.Host || p.Request.ID == "" || p.ID == "" {
		t.Errorf("push payload: %+v", p)
	}
	// Beyond the documented fields, ACR's event model (and Distribution's notifications): who
	// pushed, from where, to which instance.
	if admin, _ := s.Admin(t); p.Actor.Name != admin || p.Request.Addr != "127.0.0.1" || p.Source.InstanceID == "" || p.Source.Addr == "" {
		t.Errorf("push payload's actor, address and source: %+v", p)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(got[0].body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); got[0].header.Get("X-Berth-Signature-256") != want {
		t.Errorf("signature %q, want %q", got[0].header.Get("X-Berth-Signature-256"), want)
	}
	if got[0].header.Get("X-Token") != "abc" || got[0].header.Get("X-Berth-Delivery") != p.ID || got[0].header.Get("Content-Type") != "application/json" {
		t.Errorf("headers: %v", got[0].header)
	}

	// The receiver fails: the delivery stays, and comes again later.
	rc.status = http.StatusServiceUnavailable
	c.must("", "repository", "delete", "-n", "default", "--image", "team/app:v1", "--yes")
	deliver()
	if got := rc.take(); len(got) != 1 || got[0].payload.Action != "delete" || got[0].payload.Target.Digest != d1 {
		t.Fatalf("the failed delete delivery: %+v", got)
	}
	if got := tsv("webhook", "list-events", "-n", "deployhook", "-r", "default", "--query", "[?eventRequestMessage.content.action=='delete'] | [0].{s: status, c: eventResponseMessage.statusCode, a: attempts}"); got != "pending\t503\t1" {
		t.Errorf("list-events after a 503: %q", got)
	}
	deliver()
	if got := rc.take(); len(got) != 0 {
		t.Errorf("retried before its time: %d", len(got))
	}
	rc.status = 0
	clk.Add(5 * time.Second)
	deliver()
	got = rc.take()
	if len(got) != 1 || got[0].payload.Action != "delete" {
		t.Fatalf("the retried delivery: %+v", got)
	}
	if got := tsv("webhook", "list-events", "-n", "deployhook", "-r", "default", "--query", "[?eventRequestMessage.content.action=='delete'] | [0].{s: status, c: eventResponseMessage.statusCode, a: attempts, u: eventRequestMessage.requestUri}"); got != "delivered\t200\t2\t"+hook.URL+"/hook" {
		t.Errorf("list-events after the retry: %q (the address without its query)", got)
	}

	// A ping.
	if id := tsv("webhook", "ping", "-n", "deployhook", "-r", "default", "--query", "id"); id == "" {
		t.Error("ping gave no id")
	}
	deliver()
	if got := rc.take(); len(got) != 1 || got[0].payload.Action != "ping" {
		t.Errorf("ping delivery: %+v", got)
	}

	// Receivers berth refuses to call, and a redirect it does not follow.
	redirect := httptest.NewServer(http.RedirectHandler("http://169.254.169.254/latest/meta-data/", http.StatusFound))
	defer redirect.Close()
	for _, tc := range []struct{ name, uri, want string }{
		{"metadatahook", "http://169.254.169.254/latest/meta-data/", "link-local"},
		{"privatehook", "http://10.1.2.3:8080/hook", "private"},
		{"redirecthook", redirect.URL, "302"},
	} {
		c.must("", "webhook", "create", "-n", tc.name, "-r", "default", "--uri", tc.uri, "--actions", "push", "-o", "none")
		c.must("", "webhook", "ping", "-n", tc.name, "-r", "default", "-o", "none")
		deliver()
		out := tsv("webhook", "list-events", "-n", tc.name, "-r", "default", "--query", "[0].{s: status, c: eventResponseMessage.statusCode, r: eventResponseMessage.reasonPhrase}")
		if !strings.HasPrefix(out, "pending") || !strings.Contains(out, tc.want) {
			t.Errorf("%s (%s): %q, want pending and %q", tc.name, tc.uri, out, tc.want)
		}
	}

	// Bad requests.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "bad", "--uri", hook.URL, "--actions", "push"}, "5 to 50"},
		{[]string{"--name", "goodname", "--uri", "ftp://x/y", "--actions", "push"}, "http or https"},
		{[]string{"--name", "goodname", "--uri", "http://u:p@x/y", "--actions", "push"}, "user information"},
		{[]string{"--name", "goodname", "--uri", hook.URL, "--actions", "pull"}, "push, delete"},
		{[]string{"--name", "goodname", "--uri", hook.URL, "--actions", "push", "--headers", "Host=evil"}, "set by berth"},
		{[]string{"--name", "goodname", "--uri", hook.URL, "--actions", "push", "--scope", "Team App"}, "scope"},
		{[]string{"--name", "deployhook", "--uri", hook.URL, "--actions", "push"}, "already exists"},
	} {
		if _, err := c.run("", append([]string{"webhook", "create", "-r", "default"}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("webhook create %v: %v, want %q", tc.args, err, tc.want)
		}
	}

	// Another registry's webhooks are its own: deployhook is not there.
	c.must("", "registry", "create", "-n", "otherreg", "-o", "none")
	for _, args := range [][]string{{"show"}, {"get-config"}, {"ping"}, {"list-events"}, {"delete"}} {
		if _, err := c.run("", append([]string{"webhook"}, append(args, "-n", "deployhook", "-r", "otherreg")...)...); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("webhook %s of another registry: %v", args[0], err)
		}
	}

	// A Reader sees webhooks, not their configuration, and changes nothing.
	c.must("reader-password-1234", "user", "create", "-n", "reader", "--password-stdin", "-o", "none")
	c.must("", "role", "assignment", "create", "--assignee", "reader", "--role", "Reader", "--scope", "/registries/default", "-o", "none")
	rd := newCLI(t)
	rd.must("reader-password-1234", "auth", "login", "--server", s.URL, "-u", "reader", "--password-stdin", "-o", "none")
	if got := strings.TrimSpace(rd.must("", "webhook", "show", "-n", "deployhook", "-r", "default", "--query", "scope", "-o", "tsv")); got != "team/*:*" {
		t.Errorf("a Reader's webhook show = %q", got)
	}
	for _, args := range [][]string{{"get-config", "-n", "deployhook"}, {"ping", "-n", "deployhook"}, {"delete", "-n", "deployhook"}, {"create", "-n", "readerhook", "--uri", hook.URL, "--actions", "push"}} {
		if _, err := rd.run("", append(append([]string{"webhook"}, args...), "-r", "default")...); err == nil || !strings.Contains(err.Error(), "DENIED") {
			t.Errorf("a Reader's webhook %s: %v", args[0], err)
		}
	}
	c.must("", "webhook", "delete", "-n", "metadatahook", "-r", "default")
	if got := tsv("webhook", "list", "-r", "default", "--query", "[].name"); got != "deployhook\nprivatehook\nredirecthook" {
		t.Errorf("webhook list after a delete = %q", got)
	}
}
