package server_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/blob/s3blob/s3test"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registrytest"
)

// TestBlobRedirect: with redirect=true on S3 storage a blob download is a 307 to a presigned
// URL, from which the client gets the bytes without credentials of berth.
func TestBlobRedirect(t *testing.T) {
	u, _ := url.Parse(s3test.URL(t, "redirect"))
	q := u.Query()
	q.Set("redirect", "true")
	u.RawQuery = q.Encode()
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Storage = u.String() }})
	user, pwd := s.Admin(t)
	data := make([]byte, 3000)
	rand.Read(data)
	d := oci.FromBytes(oci.SHA256, data)
	req, _ := http.NewRequest("POST", s.URL+"/v2/r/x/blobs/uploads/?digest="+string(d), bytes.NewReader(data))
	req.SetBasicAuth(user, pwd)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("push: %v %v", resp, err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ = http.NewRequest("GET", s.URL+"/v2/r/x/blobs/"+string(d), nil)
	req.SetBasicAuth(user, pwd)
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.Contains(loc, "X-Amz-Signature") {
		t.Fatalf("GET blob: %d, Location %q", resp.StatusCode, loc)
	}
	resp, err = http.Get(loc) // no berth credentials: the signature is the authorization
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("the presigned URL gave %d, %d bytes", resp.StatusCode, len(got))
	}
	// Without the registry's authorization there is no redirect.
	if resp, _ := noFollow.Get(s.URL + "/v2/r/x/blobs/" + string(d)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous GET: %d, want 401", resp.StatusCode)
	}
}
