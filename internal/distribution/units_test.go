package distribution

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/policy"
)

// The pure parts of the handler, each edge by itself: what the wire tests reach only through
// whole requests.

func TestParseRange(t *testing.T) {
	tests := []struct {
		hdr        string
		size       int64
		start, end int64
		partial    bool
		bad        bool
	}{
		{"", 10, 0, 10, false, false},
		{"items=0-1", 10, 0, 10, false, false}, // another unit: ignored
		{"bytes=0-1,4-5", 10, 0, 10, false, false},
		{"bytes=5", 10, 0, 0, false, true},
		{"bytes=-3", 10, 7, 10, true, false},
		{"bytes=-10", 10, 0, 10, true, false},
		{"bytes=-11", 10, 0, 10, true, false}, // longer than the blob: all of it
		{"bytes=-0", 10, 0, 0, false, true},
		{"bytes=-x", 10, 0, 0, false, true},
		{"bytes=-1", 0, 0, 0, false, true}, // an empty blob has no last byte
		{"bytes=0-", 10, 0, 10, true, false},
		{"bytes=0-0", 10, 0, 1, true, false},
		{"bytes=9-", 10, 9, 10, true, false},
		{"bytes=10-", 10, 0, 0, false, true},
		{"bytes=x-", 10, 0, 0, false, true},
		{"bytes=-", 10, 0, 0, false, true},
		{"bytes=2-8", 10, 2, 9, true, false},
		{"bytes=2-9", 10, 2, 10, true, false},
		{"bytes=2-10", 10, 2, 10, true, false},
		{"bytes=2-2", 10, 2, 3, true, false},
		{"bytes=3-2", 10, 0, 0, false, true},
		{"bytes=2-y", 10, 0, 0, false, true},
	}
	for _, tc := range tests {
		start, end, partial, err := parseRange(tc.hdr, tc.size)
		if (err != nil) != tc.bad {
			t.Errorf("parseRange(%q, %d): error %v, want error %v", tc.hdr, tc.size, err, tc.bad)
		}
		if err != nil {
			continue // the other results mean nothing
		}
		if start != tc.start || end != tc.end || partial != tc.partial {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v; want %d, %d, %v", tc.hdr, tc.size, start, end, partial, tc.start, tc.end, tc.partial)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in         string
		start, end int64
		bad        bool
	}{
		{"0-9", 0, 9, false},
		{" 5-5 ", 5, 5, false},
		{"bytes=10-19", 10, 19, false},
		{"bytes 10-19/100", 10, 19, false},
		{"0-9/*", 0, 9, false},
		{"9-0", 0, 0, true},
		{"-1-3", 0, 0, true},
		{"3", 0, 0, true},
		{"a-3", 0, 0, true},
		{"3-b", 0, 0, true},
		{"", 0, 0, true},
	}
	for _, tc := range tests {
		start, end, err := parseContentRange(tc.in)
		if (err != nil) != tc.bad || start != tc.start || end != tc.end {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, error %v", tc.in, start, end, err, tc.start, tc.end, tc.bad)
		}
	}
}

func TestLimitedBody(t *testing.T) {
	tests := []struct {
		name     string
		body     io.Reader
		left     int64
		want     int
		over     bool
		readErr  bool
		wantErr  bool
		bufBytes int
	}{
		{"shorter than the limit", strings.NewReader("abc"), 5, 3, false, false, false, 2},
		{"exactly the limit", strings.NewReader("abcde"), 5, 5, false, false, false, 2},
		{"one byte over", strings.NewReader("abcdef"), 5, 5, true, false, true, 2},
		{"limit in one read", strings.NewReader("abcdef"), 5, 5, true, false, true, 64},
		{"nothing allowed, nothing sent", strings.NewReader(""), 0, 0, false, false, false, 4},
		{"nothing allowed, one byte sent", strings.NewReader("a"), 0, 0, true, false, true, 4},
		{"broken off", io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(io.ErrUnexpectedEOF)), 5, 2, false, true, true, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &limitedBody{r: tc.body, left: tc.left}
			var got bytes.Buffer
			buf := make([]byte, tc.bufBytes)
			var err error
			for {
				var n int
				n, err = b.Read(buf)
				if n > len(buf) || int64(got.Len()+n) > tc.left {
					t.Fatalf("read %d bytes past the limit of %d", got.Len()+n, tc.left)
				}
				got.Write(buf[:n])
				if err != nil {
					break
				}
			}
			if got.Len() != tc.want {
				t.Errorf("read %d bytes, want %d", got.Len(), tc.want)
			}
			if (err != io.EOF) != tc.wantErr {
				t.Errorf("last error %v, want an error other than EOF: %v", err, tc.wantErr)
			}
			if b.over != tc.over || (b.readErr != nil) != tc.readErr {
				t.Errorf("over %v readErr %v; want over %v, a read error %v", b.over, b.readErr, tc.over, tc.readErr)
			}
		})
	}
}

func TestPageParameters(t *testing.T) {
	h := &Handler{limits: Limits{MaxPageSize: 5}}
	tests := []struct {
		query string
		n     int
		last  string
		bad   bool
	}{
		{"", 5, "", false},
		{"n=0", 0, "", false},
		{"n=4", 4, "", false},
		{"n=5", 5, "", false},
		{"n=6", 5, "", false},
		{"n=-1", 0, "", true},
		{"n=x", 0, "", true},
		{"last=" + strings.Repeat("a", 512), 5, strings.Repeat("a", 512), false},
		{"last=" + strings.Repeat("a", 513), 0, "", true},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodGet, "/v2/_catalog?"+tc.query, nil)
		n, last, err := h.page(r)
		if (err != nil) != tc.bad || n != tc.n || last != tc.last {
			t.Errorf("page(%.20q) = %d, %.10q, %v; want %d, %.10q, error %v", tc.query, n, last, err, tc.n, tc.last, tc.bad)
		}
		var he *httperr.Error
		if err != nil && (!errors.As(err, &he) || he.Code != codePaginationInvalid) {
			t.Errorf("page(%.20q): error %v is not %s", tc.query, err, codePaginationInvalid)
		}
	}
}

func TestLinkNext(t *testing.T) {
	for _, tc := range []struct {
		extra []string
		want  string
	}{
		{nil, `</v2/_catalog?last=b&n=2>; rel="next"`},
		{[]string{"artifactType", "x/y"}, `</v2/_catalog?artifactType=x%2Fy&last=b&n=2>; rel="next"`},
		{[]string{"odd"}, `</v2/_catalog?last=b&n=2>; rel="next"`},
	} {
		w := httptest.NewRecorder()
		linkNext(w, "/v2/_catalog", "b", 2, tc.extra...)
		if got := w.Header().Get("Link"); got != tc.want {
			t.Errorf("linkNext(%q) = %s, want %s", tc.extra, got, tc.want)
		}
	}
}

func TestSmallHelpers(t *testing.T) {
	if got := truncate(strings.Repeat("x", 120)); got != strings.Repeat("x", 120) {
		t.Errorf("truncate of 120 bytes changed it to %q", got)
	}
	if got := truncate(strings.Repeat("x", 121)); got != strings.Repeat("x", 120)+"…" {
		t.Errorf("truncate of 121 bytes = %q", got)
	}
	for size, want := range map[int64]string{0: "0-0", 1: "0-0", 2: "0-1", 1000: "0-999"} {
		if got := rangeHeader(size); got != want {
			t.Errorf("rangeHeader(%d) = %q, want %q", size, got, want)
		}
	}
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{-1, "blobs may be at most 10 bytes"},
		{0, "blobs may be at most 10 bytes"},
		{11, "the blob is 11 bytes; blobs may be at most 10 bytes"},
	} {
		var he *httperr.Error
		if err := blobTooLarge(tc.n, 10); !errors.As(err, &he) || he.Message != tc.want || he.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("blobTooLarge(%d, 10) = %v, want 413 %q", tc.n, err, tc.want)
		}
	}
	if a, b := newID(), newID(); a == b || len(a) != 24 {
		t.Errorf("newID gave %q and %q", a, b)
	}
}

func TestNewDefaults(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	h := New(Deps{Log: log})
	if h.limits != DefaultLimits {
		t.Errorf("no limits: got %+v, want the defaults %+v", h.limits, DefaultLimits)
	}
	if h.now == nil || time.Since(h.now()) > time.Minute {
		t.Error("no clock: the handler's is not time.Now")
	}
	fixed := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if h := New(Deps{Log: log, Now: func() time.Time { return fixed }}); !h.now().Equal(fixed) {
		t.Errorf("a given clock was replaced: %v", h.now())
	}
	for _, tc := range []struct{ in, want int64 }{
		{-1, oci.MaxManifestSize},
		{0, oci.MaxManifestSize},
		{1, 1},
		{oci.MaxManifestSize, oci.MaxManifestSize},
		{oci.MaxManifestSize + 1, oci.MaxManifestSize},
	} {
		l := DefaultLimits
		l.MaxManifestBytes = tc.in
		if got := New(Deps{Log: log, Limits: l}).limits.MaxManifestBytes; got != tc.want {
			t.Errorf("MaxManifestBytes %d became %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestUploadLocks: each upload has its own lock — a held one keeps no other upload waiting —,
// a second request to the same upload waits for the first, a waiter leaves when its context
// ends (409), and nothing is left behind once every request is done.
func TestUploadLocks(t *testing.T) {
	var l uploadLocks
	ctx := context.Background()
	unlockA, err := l.lock(ctx, "upload-a")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 { // whatever their hashes
		unlock, err := l.lock(ctx, fmt.Sprintf("upload-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		unlock()
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := l.lock(short, "upload-a"); httpStatus(err) != http.StatusConflict {
		t.Errorf("a waiter whose client left: %v; want 409", err)
	}
	got := make(chan struct{})
	go func() {
		unlock, err := l.lock(ctx, "upload-a")
		if err == nil {
			close(got)
			unlock()
		}
	}()
	select {
	case <-got:
		t.Fatal("a second request to the same upload did not wait for the first")
	case <-time.After(50 * time.Millisecond):
	}
	unlockA()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter did not get the lock once it was released")
	}
	for deadline := time.Now().Add(5 * time.Second); l.held() != 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := l.held(); n != 0 {
		t.Errorf("%d locks left behind", n)
	}
}

func httpStatus(err error) int {
	var he *httperr.Error
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

func TestServeWithoutRegistry(t *testing.T) {
	h := New(Deps{Log: slog.New(slog.DiscardHandler)})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v2/", nil))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("a request without its registry: status %d, want 500", w.Code)
	}
	if w.Header().Get("Docker-Distribution-Api-Version") != "registry/2.0" {
		t.Error("no Docker-Distribution-Api-Version header")
	}
}

func TestAuthnError(t *testing.T) {
	res := policy.Resource{Registry: "r", Type: policy.TypeRepository, Name: "a/b"}
	tests := []struct {
		name      string
		err       error
		status    int
		challenge string // "" means none
	}{
		{"not an authentication error", errors.New("disk"), 0, ""},
		{"bad password", &authn.Error{Reason: "bad_password", Message: "no"}, 401,
			`Bearer realm="http://reg.example/oauth2/token",service="reg.example",scope="repository:a/b:pull"`},
		{"refused token", &authn.Error{Reason: authn.ReasonInvalidToken, Message: "expired", InvalidToken: true}, 401,
			`Bearer realm="http://reg.example/oauth2/token",service="reg.example",scope="repository:a/b:pull",error="invalid_token"`},
		{"throttled", &authn.Error{Reason: authn.ReasonThrottled, Message: "later", RetryAfter: 30 * time.Second}, 429, ""},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodGet, "http://reg.example/v2/a/b/manifests/x", nil)
		err := authnError(r, policy.ActionPull, res, tc.err)
		var he *httperr.Error
		if !errors.As(err, &he) {
			if tc.status != 0 {
				t.Errorf("%s: %v is not an HTTP error", tc.name, err)
			} else if err != tc.err {
				t.Errorf("%s: became %v", tc.name, err)
			}
			continue
		}
		if he.Status != tc.status || he.Header.Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("%s: status %d challenge %q; want %d %q", tc.name, he.Status, he.Header.Get("WWW-Authenticate"), tc.status, tc.challenge)
		}
	}
}

func TestChallengeScope(t *testing.T) {
	dst := policy.Resource{Registry: "r", Type: policy.TypeRepository, Name: "dst"}
	tests := []struct {
		method, target string
		tls            bool
		action         policy.Action
		errCode        string
		want           string
	}{
		{"GET", "/v2/", false, "", "", `Bearer realm="http://h/oauth2/token",service="h"`},
		{"GET", "/v2/", true, "", "", `Bearer realm="https://h/oauth2/token",service="h"`},
		{"GET", "/v2/dst/tags/list", false, policy.ActionPull, "insufficient_scope", `Bearer realm="http://h/oauth2/token",service="h",scope="repository:dst:pull",error="insufficient_scope"`},
		{"DELETE", "/v2/dst/manifests/x", false, policy.ActionDelete, "", `Bearer realm="http://h/oauth2/token",service="h",scope="repository:dst:delete"`},
		{"POST", "/v2/dst/blobs/uploads/", false, policy.ActionPush, "", `Bearer realm="http://h/oauth2/token",service="h",scope="repository:dst:pull,push"`},
		{"POST", "/v2/dst/blobs/uploads/?mount=sha256:ab&from=src", false, policy.ActionPush, "", `Bearer realm="http://h/oauth2/token",service="h",scope="repository:dst:pull,push repository:src:pull"`},
		{"POST", "/v2/dst/blobs/uploads/?from=src", false, policy.ActionPush, "", `Bearer realm="http://h/oauth2/token",service="h",scope="repository:dst:pull,push"`},
		{"POST", "/v2/dst/blobs/uploads/?mount=sha256:ab&from=dst", false, policy.ActionPush, "", `Bearer realm="http://h/oauth2/token",service="h",scope="repository:dst:pull,push"`},
		{"POST", "/v2/dst/blobs/uploads/?mount=sha256:ab&from=Bad..Name", false, policy.ActionPush, "", `Bearer realm="http://h/oauth2/token",service="h",scope="repository:dst:pull,push"`},
		{"POST", "/v2/dst/blobs/uploads/?mount=sha256:ab", false, policy.ActionPush, "", `Bearer realm="http://h/oauth2/token",service="h",scope="repository:dst:pull,push"`},
		{"PUT", "/v2/dst/manifests/x?mount=sha256:ab&from=src", false, policy.ActionPush, "", `Bearer realm="http://h/oauth2/token",service="h",scope="repository:dst:pull,push"`},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(tc.method, "http://h"+tc.target, nil)
		r.TLS = nil
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := challenge(r, dst, tc.action, tc.errCode); got != tc.want {
			t.Errorf("%s %s:\n got %s\nwant %s", tc.method, tc.target, got, tc.want)
		}
	}
}

func TestManifestLimits(t *testing.T) {
	many := make([]oci.Digest, MaxDescriptors)
	for _, tc := range []struct {
		m    oci.Manifest
		want string
	}{
		{oci.Manifest{Annotations: map[string]string{"k": strings.Repeat("v", 4<<20)}, Blobs: many}, ""},
		{oci.Manifest{Blobs: many, Manifests: []oci.Digest{"sha256:x"}}, "references 10001 blobs and manifests"},
	} {
		err := checkManifestLimits(&tc.m)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("checkManifestLimits: %v; want %q", err, tc.want)
		}
	}
}
