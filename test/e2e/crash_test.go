package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowBody yields data in small pieces with pauses, so the server is mid-write when killed.
type slowBody struct {
	data    []byte
	off     int
	sent    chan struct{} // closed after the first half is sent
	once    sync.Once
	blocked chan struct{} // never closed: the body never finishes
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.off >= len(b.data)/2 {
		b.once.Do(func() { close(b.sent) })
		<-b.blocked
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p[:min(len(p), 64<<10)], b.data[b.off:len(b.data)/2])
	b.off += n
	return n, nil
}

// TestKillDuringUploads kills berth with SIGKILL while uploads are streaming and checks, after a
// restart, that finished content is intact, no partial blob is ever served, and every
// interrupted upload session resumes from at least its last acknowledged chunk to a correct blob.
func TestKillDuringUploads(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	p := startBerth(t, dir, addr)
	base := p.url

	// Finished content before the crash.
	done := make([]byte, 2<<20)
	rand.Read(done)
	doneDigest := digestOf(done)
	if resp, b := request(t, "POST", base+"/v2/crash/repo/blobs/uploads/?digest="+doneDigest, bytes.NewReader(done), nil); resp.StatusCode != 201 {
		t.Fatalf("push finished blob: %d %s", resp.StatusCode, b)
	}
	cfg := []byte("{}")
	request(t, "POST", base+"/v2/crash/repo/blobs/uploads/?digest="+digestOf(cfg), bytes.NewReader(cfg), nil)
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		digestOf(cfg), doneDigest, len(done))
	if resp, b := request(t, "PUT", base+"/v2/crash/repo/manifests/v1", strings.NewReader(manifest), map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}); resp.StatusCode != 201 {
		t.Fatalf("push manifest: %d %s", resp.StatusCode, b)
	}

	// Uploads in flight at the moment of the kill.
	type inflight struct {
		name   string
		data   []byte
		loc    string // upload URL, for session-based uploads
		digest string
	}
	var uploads []*inflight
	var started sync.WaitGroup
	for i, kind := range []string{"chunked", "streamed", "monolithic", "chunked"} {
		data := make([]byte, 8<<20)
		rand.Read(data)
		u := &inflight{name: fmt.Sprintf("%s-%d", kind, i), data: data, digest: digestOf(data)}
		uploads = append(uploads, u)
		body := &slowBody{data: data, sent: make(chan struct{}), blocked: make(chan struct{})}
		url := base + "/v2/crash/repo/blobs/uploads/?digest=" + u.digest // monolithic
		method := "POST"
		hdr := map[string]string{}
		if kind != "monolithic" {
			resp, b := request(t, "POST", base+"/v2/crash/repo/blobs/uploads/", nil, nil)
			if resp.StatusCode != 202 {
				t.Fatalf("start upload: %d %s", resp.StatusCode, b)
			}
			u.loc = absolute(base, resp.Header.Get("Location"))
			// A first chunk that completes: the checkpoint the restart must keep.
			first := data[:1<<20]
			if resp, b := request(t, "PATCH", u.loc, bytes.NewReader(first), map[string]string{"Content-Range": fmt.Sprintf("0-%d", len(first)-1)}); resp.StatusCode != 202 {
				t.Fatalf("first chunk: %d %s", resp.StatusCode, b)
			}
			body.data = data[1<<20:]
			url, method = u.loc, "PATCH"
			if kind == "chunked" {
				hdr["Content-Range"] = fmt.Sprintf("%d-%d", 1<<20, len(data)-1)
			}
		}
		started.Add(1)
		go func() {
			req, _ := http.NewRequest(method, url, body)
			req.Header.Set("Authorization", basicAuth)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			go func() { <-body.sent; started.Done() }()
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	started.Wait()
	time.Sleep(200 * time.Millisecond) // let the server write what it received
	p.kill(t)

	p = startBerth(t, dir, addr)
	base = p.url
	// Finished content is intact.
	if resp, b := request(t, "GET", base+"/v2/crash/repo/blobs/"+doneDigest, nil, nil); resp.StatusCode != 200 || !bytes.Equal(b, done) {
		t.Errorf("finished blob after restart: status %d, %d bytes (want %d)", resp.StatusCode, len(b), len(done))
	}
	if resp, b := request(t, "GET", base+"/v2/crash/repo/manifests/v1", nil, nil); resp.StatusCode != 200 || string(b) != manifest {
		t.Errorf("manifest after restart: status %d body %s", resp.StatusCode, b)
	}
	for _, u := range uploads {
		// No partial blob is served.
		if resp, _ := request(t, "HEAD", base+"/v2/crash/repo/blobs/"+u.digest, nil, nil); resp.StatusCode != 404 {
			t.Errorf("%s: unfinished blob answers HEAD with %d", u.name, resp.StatusCode)
		}
		if u.loc == "" {
			continue
		}
		// Every session upload had its first chunk acknowledged (202) before the kill: the
		// session must survive the restart with at least that chunk.
		resp, b := request(t, "GET", u.loc, nil, nil)
		if resp.StatusCode != 204 {
			t.Errorf("%s: upload status after restart %d %s; want 204 (its first chunk was acknowledged)", u.name, resp.StatusCode, b)
			continue
		}
		var last int
		if _, err := fmt.Sscanf(resp.Header.Get("Range"), "0-%d", &last); err != nil || last < 1<<20-1 {
			t.Errorf("%s: Range %q after restart; the first chunk was checkpointed", u.name, resp.Header.Get("Range"))
			continue
		}
		next := last + 1
		resp, b = request(t, "PUT", u.loc+"?digest="+u.digest, bytes.NewReader(u.data[next:]),
			map[string]string{"Content-Range": fmt.Sprintf("%d-%d", next, len(u.data)-1)})
		if resp.StatusCode != 201 {
			t.Errorf("%s: resuming at %d: %d %s", u.name, next, resp.StatusCode, b)
			continue
		}
		if resp, b := request(t, "GET", base+"/v2/crash/repo/blobs/"+u.digest, nil, nil); resp.StatusCode != 200 || !bytes.Equal(b, u.data) {
			t.Errorf("%s: resumed blob differs (status %d, %d bytes)", u.name, resp.StatusCode, len(b))
		}
		t.Logf("%s resumed from byte %d", u.name, next)
	}
}
