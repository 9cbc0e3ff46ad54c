package faults

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-registry/berth/internal/blob/s3blob/s3test"
	"github.com/berth-registry/berth/internal/store/pgtest"
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

// TestOutages: berth over PostgreSQL and S3 (each behind a proxy the test can cut) while two
// clients push. While the database is away, and while the storage is, requests fail with a
// clear 503 and Retry-After — never a 500 or a driver's message — and berth recovers by itself
// when they are back; every acknowledged push pulls whole.
func TestOutages(t *testing.T) {
	dsn, storage := pgtest.DSN(t), s3test.URL(t, "faults")
	du, _ := url.Parse(dsn)
	db := newProxy(t, du.Host)
	du.Host = db.addr
	su, _ := url.Parse(storage)
	q := su.Query()
	s3 := newProxy(t, q.Get("endpoint"))
	q.Set("endpoint", s3.addr)
	su.RawQuery = q.Encode()
	if out, err := exec.Command(berthBin, "migrate", "--database", du.String()).CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	p := newProcess(t, []string{"BERTH_AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32))},
		"--database", du.String(), "--storage", su.String())
	user, pass := p.adminCredentials()
	auth := remote.WithAuth(&authn.Basic{Username: user, Password: pass})
	transport := remote.WithTransport(&http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: 20 * time.Second})
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
	check := func(what, path string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+p.addr+path, nil)
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(string(b), "cannot reach its database or storage") || strings.Contains(string(b), "dial tcp") {
			t.Errorf("%s: %d %v %s; want 503 with Retry-After and a plain message", what, resp.StatusCode, resp.Header, b)
		}
	}
	time.Sleep(300 * time.Millisecond)
	db.down()
	check("a manifest while the database is away", "/v2/outage/app/manifests/first")
	time.Sleep(2 * time.Second)
	db.up()
	time.Sleep(300 * time.Millisecond)
	s3.down()
	check("a blob while the storage is away", "/v2/outage/app/blobs/"+layer.String())
	time.Sleep(2 * time.Second)
	s3.up()
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
	t.Logf("%d pushes acknowledged through the outages", len(acks))
	for _, a := range append(acks, acked{firstRef, func() v1.Hash { d, _ := first.Digest(); return d }()}) {
		img, err := remote.Image(a.ref, auth)
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
