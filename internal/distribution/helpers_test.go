package distribution_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registrytest"
)

// reply is a response with its body read.
type reply struct {
	*http.Response
	body []byte
}

// firstError returns the code and message of the body's first OCI error, or empty strings.
func (r reply) firstError() (code, message string) {
	var env struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if json.Unmarshal(r.body, &env) != nil || len(env.Errors) == 0 {
		return "", ""
	}
	return env.Errors[0].Code, env.Errors[0].Message
}

func (r reply) code() string    { c, _ := r.firstError(); return c }
func (r reply) message() string { _, m := r.firstError(); return m }

type client struct {
	t    testing.TB
	base string
	host string // Host header override
	// user and pass are sent as Basic auth when user is set
	user, pass string
}

// newClient returns a client signed in as the default registry's admin user.
func newClient(t testing.TB, s *registrytest.Server) *client {
	user, pass := s.Admin(t)
	return &client{t: t, base: s.URL, user: user, pass: pass}
}

// anonymous returns a client that sends no credentials.
func anonymous(t testing.TB, s *registrytest.Server) *client {
	return &client{t: t, base: s.URL}
}

func (c *client) do(method, path string, hdr map[string]string, body []byte) reply {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	return c.send(method, path, hdr, rd)
}

// send is do with any body: one whose length net/http cannot tell goes chunked, with no
// Content-Length.
func (c *client) send(method, path string, hdr map[string]string, rd io.Reader) reply {
	c.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = c.base + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c.host != "" {
		req.Host = c.host
	}
	if c.user != "" && req.Header.Get("Authorization") == "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return reply{resp, b}
}

// must checks the status of a reply.
func (c *client) must(r reply, status int, what string) reply {
	c.t.Helper()
	if r.StatusCode != status {
		c.t.Fatalf("%s: status %d, want %d; body %s", what, r.StatusCode, status, r.body)
	}
	return r
}

// pushBlob uploads b monolithically into repo and returns its digest.
func (c *client) pushBlob(repo string, b []byte) oci.Digest {
	c.t.Helper()
	d := oci.FromBytes(oci.SHA256, b)
	c.must(c.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+string(d), map[string]string{"Content-Type": "application/octet-stream"}, b), 201, "push blob")
	return d
}

// pushImage pushes a one-layer image tagged tag and returns the manifest and its digest.
func (c *client) pushImage(repo, tag string, layer []byte) ([]byte, oci.Digest) {
	c.t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	cd := c.pushBlob(repo, cfg)
	ld := c.pushBlob(repo, layer)
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		oci.MediaTypeImageManifest, cd, len(cfg), ld, len(layer))
	c.must(c.do("PUT", "/v2/"+repo+"/manifests/"+tag, map[string]string{"Content-Type": oci.MediaTypeImageManifest}, []byte(m)), 201, "push manifest")
	return []byte(m), oci.FromBytes(oci.SHA256, []byte(m))
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
}
