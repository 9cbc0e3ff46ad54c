package faults

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to give each run its own schema
)

// tcpProxy forwards a local port to a server; down cuts every connection and refuses new ones
// (the server is gone, as far as berth can tell), up listens again on the same port.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target, conns: map[net.Conn]bool{}}
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) up() {
	p.t.Helper()
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // the port was just released
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
}

func (p *tcpProxy) serve(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // went down meanwhile
		p.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	go func() { io.Copy(s, c); s.Close() }()
	io.Copy(c, s)
	c.Close()
}

func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// TestOutages: berth over PostgreSQL and S3 while two clients push, and each goes away in turn:
// first cut off (a proxy between berth and the server drops every connection and refuses new
// ones: a network partition), then really restarted (PostgreSQL's fast shutdown ends every
// session; MinIO is terminated; both start again on the same port and data). While either is
// away, requests fail with a clear 503 and Retry-After — never a 500 or a driver's message —
// and berth recovers by itself when it is back; every acknowledged push pulls whole.
func TestOutages(t *testing.T) {
	pg := startService(t, "postgres.sh", "BERTH_TEST_POSTGRES", "BERTH_REQUIRE_POSTGRES")
	minio := startService(t, "minio.sh", "BERTH_TEST_S3", "BERTH_REQUIRE_S3")
	t.Run("cut", func(t *testing.T) {
		du, su := dsnIn(t, pg.url, "cut"), storageIn(t, minio.url, "cut")
		db := newProxy(t, du.Host)
		du.Host = db.addr
		q := su.Query()
		s3 := newProxy(t, q.Get("endpoint"))
		q.Set("endpoint", s3.addr)
		su.RawQuery = q.Encode()
		pushThrough(t, du, su, minio.env, []outage{
			{"a manifest while the database is cut off", "manifest", db.down, db.up},
			{"a blob while the storage is cut off", "blob", s3.down, s3.up},
		})
	})
	t.Run("restart", func(t *testing.T) {
		pushThrough(t, dsnIn(t, pg.url, "restart"), storageIn(t, minio.url, "restart"), minio.env, []outage{
			{"a manifest while the database restarts", "manifest", pg.stop, pg.resume},
			{"a blob while the storage restarts", "blob", minio.stop, minio.resume},
		})
	})
}

// statusWatch is the pushing clients' transport: it keeps every server error other than 503.
type statusWatch struct {
	next        http.RoundTripper
	unavailable atomic.Int64
	mu          sync.Mutex
	errors      []string
}

func (w *statusWatch) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := w.next.RoundTrip(r)
	if err != nil || resp.StatusCode < 500 {
		return resp, err
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		w.unavailable.Add(1)
		return resp, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	w.mu.Lock()
	w.errors = append(w.errors, fmt.Sprintf("%d at %s %s: %s", resp.StatusCode, r.Method, r.URL.Path, b))
	w.mu.Unlock()
	return resp, nil
}

func (w *statusWatch) bad() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.errors...)
}

// outage is one way a dependency goes away and comes back, and the request checked meanwhile
// ("manifest" or "blob").
type outage struct {
	what, request string
	down, up      func()
}

// dsnIn is dsn with its own new schema.
func dsnIn(t *testing.T, dsn, schema string) *url.URL {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u
}

// storageIn is the storage URL with its own prefix.
func storageIn(t *testing.T, storage, prefix string) *url.URL {
	u, err := url.Parse(storage)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + prefix
	return u
}

// pushThrough starts berth over the database du and the storage su, pushes 30 images from two
// clients while each outage happens in turn, checks the 503 during each, and pulls every
// acknowledged push afterwards.
func pushThrough(t *testing.T, du, su *url.URL, env []string, outages []outage) {
	migrate := exec.Command(berthBin, "migrate", "--database", du.String())
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	p := newProcess(t, append([]string{"BERTH_AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32))}, env...),
		"--database", du.String(), "--storage", su.String())
	user, pass := p.adminCredentials()
	auth := remote.WithAuth(&authn.Basic{Username: user, Password: pass})
	watch := &statusWatch{next: &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: 20 * time.Second}}
	transport := remote.WithTransport(watch)
	first, _ := random.Image(1024, 2)
	firstRef, _ := name.NewTag(p.addr+"/outage/app:first", name.Insecure)
	if err := remote.Write(firstRef, first, auth); err != nil {
		t.Fatal(err)
	}
	layers, _ := first.Layers()
	layer, _ := layers[0].Digest()

	type acked struct {
		ref    name.Tag
		digest v1.Hash
	}
	var mu sync.Mutex
	acks := []acked{}
	var wg sync.WaitGroup
	for c := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				img, _ := random.Image(int64(1024+c*100+i), 2)
				ref, _ := name.NewTag(fmt.Sprintf("%s/outage/c%d:p%d", p.addr, c, i), name.Insecure)
				for try := 0; ; try++ {
					if err := remote.Write(ref, img, auth, transport); err == nil {
						break
					}
					if try == 100 {
						t.Errorf("%s never pushed", ref)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
				d, _ := img.Digest()
				mu.Lock()
				acks = append(acks, acked{ref, d})
				mu.Unlock()
			}
		}()
	}
	do := func(what, method, path string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+p.addr+path, nil)
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	check := func(what, method, path string) {
		t.Helper()
		resp, b := do(what, method, path)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(string(b), "cannot reach its database or storage") || strings.Contains(string(b), "dial tcp") {
			t.Errorf("%s: %d %v %s; want 503 with Retry-After and a plain message", what, resp.StatusCode, resp.Header, b)
		}
	}
	// While the storage is away, a new upload cannot start, and the layer this replica stored
	// is still served whole from its cache.
	requests := map[string][2]string{"manifest": {"GET", "/v2/outage/app/manifests/first"}, "blob": {"POST", "/v2/outage/app/blobs/uploads/"}}
	for _, o := range outages {
		time.Sleep(300 * time.Millisecond)
		o.down()
		check(o.what, requests[o.request][0], requests[o.request][1])
		if o.request == "blob" {
			resp, b := do(o.what, "GET", "/v2/outage/app/blobs/"+layer.String())
			if d := sha256.Sum256(b); resp.StatusCode != 200 || "sha256:"+hex.EncodeToString(d[:]) != layer.String() {
				t.Errorf("%s: the cached layer: %d, %d bytes of another digest; want it whole", o.what, resp.StatusCode, len(b))
			}
		}
		time.Sleep(2 * time.Second)
		o.up()
	}
	wg.Wait()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("berth did not recover after the outages")
		}
	}
	t.Logf("%d pushes acknowledged through the outages; %d answers 503 to the pushing clients", len(acks), watch.unavailable.Load())
	for _, bad := range watch.bad() {
		t.Errorf("a pushing client got %s; want 503 UNAVAILABLE while a dependency is away; berth logged:\n%s", bad, p.logLines(bad))
	}
	// Every acknowledged push pulls whole from another replica without a cache: from the
	// database and the bucket alone.
	q := su.Query()
	q.Set("cache_size", "0")
	su.RawQuery = q.Encode()
	other := newProcess(t, p.env, "--database", du.String(), "--storage", su.String())
	for _, a := range append(acks, acked{firstRef, func() v1.Hash { d, _ := first.Digest(); return d }()}) {
		ref, _ := name.NewTag(other.addr+"/"+a.ref.RepositoryStr()+":"+a.ref.TagStr(), name.Insecure)
		img, err := remote.Image(ref, auth)
		if err == nil {
			err = validate.Image(img)
		}
		if err != nil {
			t.Errorf("acknowledged %s: %v", a.ref, err)
		} else if d, _ := img.Digest(); d != a.digest {
			t.Errorf("acknowledged %s is %s, pushed as %s", a.ref, d, a.digest)
		}
	}
	if len(acks) != 30 {
		t.Errorf("%d of 30 pushes acknowledged", len(acks))
	}
}
