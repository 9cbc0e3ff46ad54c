package server_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
)

// stall opens a connection, sends a request whose body announces more than it sends, and
// returns the connection and a function that reads the reply's status (0: none, the connection
// was closed without one).
func stall(t *testing.T, host, head string) (net.Conn, func() int) {
	t.Helper()
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "%sHost: %s\r\nContent-Length: 100000\r\n\r\ngrant_type", head, host); err != nil {
		t.Fatal(err)
	}
	return c, func() int {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
}

// TestSlowBodiesCannotHoldTheServer (issue 16, finding 2): requests without credentials whose
// bodies stall are bounded per address, and each is ended once its body sends nothing for
// limits.body_idle_timeout; a body that trickles is ended too; the network rules refuse a client
// without reading its body (the reply waits at most the idle timeout for the connection to be
// drained or closed); health checks and signed-in clients are answered throughout.
func TestSlowBodiesCannotHoldTheServer(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Limits.BodyIdleTimeout, c.Limits.MaxAnonymousPerAddress = time.Second, 8
	}})
	user, pass := s.Admin(t)
	const stalled = 20
	reads := make([]func() int, stalled)
	for i := range reads {
		_, reads[i] = stall(t, s.Host, "POST /oauth2/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n")
	}
	time.Sleep(200 * time.Millisecond)
	// While they stall: health checks and a signed-in client are answered at once.
	start := time.Now()
	if resp, err := http.Get(s.URL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz while %d bodies stall: %v", stalled, err)
	} else {
		resp.Body.Close()
	}
	req, _ := http.NewRequest("GET", s.URL+"/v2/", nil)
	req.SetBasicAuth(user, pass)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("a signed-in client while %d bodies stall: %v", stalled, err)
	} else {
		resp.Body.Close()
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("answers took %s while bodies stall", d)
	}
	// Every stalled request is answered: 429 beyond the address's 8, 408 for those 8 once their
	// bodies sent nothing for a second.
	var mu sync.Mutex
	count := map[int]int{}
	var wg sync.WaitGroup
	for _, read := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := read()
			mu.Lock()
			count[st]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if d := time.Since(start); count[http.StatusTooManyRequests] != stalled-8 || count[http.StatusRequestTimeout] != 8 || d > 5*time.Second {
		t.Errorf("stalled requests answered %v in %s; want %d × 429 and 8 × 408 within seconds", count, d, stalled-8)
	}

	// A body that trickles (a byte every 200 ms) is ended after the idle timeout too.
	c, err := net.Dial("tcp", s.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v2/app/blobs/uploads/?digest=sha256:%064x HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\nContent-Length: 100000\r\n\r\n", 1, s.Host, basicAuth(user, pass))
	done := make(chan int, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	var st int
trickle:
	for range 50 {
		select {
		case st = <-done:
			break trickle
		case <-time.After(200 * time.Millisecond):
			c.Write([]byte("x"))
		}
	}
	if st != http.StatusRequestTimeout && st != http.StatusBadRequest {
		t.Errorf("a trickling upload body: %d; want 408 (or 400 naming the timeout)", st)
	}

	// A registry that refuses the address does so before the body is read.
	if code := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"networkRuleSet": map[string]string{"defaultAction": "Deny"}}, nil); code != 200 {
		t.Fatalf("deny: %d", code)
	}
	_, read := stall(t, s.Host, "POST /oauth2/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n")
	start = time.Now()
	if st := read(); st != http.StatusForbidden || time.Since(start) > 3*time.Second {
		t.Errorf("a refused address with a stalled body: %d after %s; want 403 within the body's idle timeout", st, time.Since(start))
	}
}

func basicAuth(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestStalledUploadHoldsNoOtherTenant (issue 16, finding 1): an upload whose PATCH body stalls
// keeps no other upload waiting, even one whose id shared a lock stripe with it in the old
// design (256 stripes for every registry, by FNV-1a of the id): the attacker opens uploads in
// its own registry until one collides with the victim's, stalls it, and the victim's PATCH is
// answered at once.
func TestStalledUploadHoldsNoOtherTenant(t *testing.T) {
	// The attacker opens uploads until one shares the victim's old stripe (about 256, but more
	// than 1 000 — the default quota per identity — once in 50 runs): a quota that never refuses.
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Limits.MaxUploads, c.Limits.MaxUploadsPerIdentity = 20_000, 10_000
	}})
	victimUser, victimPass := s.Admin(t)
	var att struct {
		Credentials struct {
			Username  string
			Passwords []struct{ Value string }
		}
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries", map[string]any{"name": "att", "loginServer": "att.example", "adminUserEnabled": true}, &att); st != 201 {
		t.Fatalf("create the attacker's registry: %d", st)
	}
	attUser, attPass := att.Credentials.Username, att.Credentials.Passwords[0].Value
	open := func(host, user, pass, repo string) string {
		t.Helper()
		req, _ := http.NewRequest("POST", s.URL+"/v2/"+repo+"/blobs/uploads/", nil)
		req.Host = host
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("open an upload at %s: %d", host, resp.StatusCode)
		}
		return resp.Header.Get("Location")
	}
	stripe := func(loc string) uint32 {
		h := fnv.New32a()
		h.Write([]byte(path.Base(loc)))
		return h.Sum32() % 256
	}
	victim := open(s.Host, victimUser, victimPass, "victim/app")
	var attacker string
	for range 5000 {
		if loc := open("att.example", attUser, attPass, "x/app"); stripe(loc) == stripe(victim) {
			attacker = loc
			break
		}
	}
	if attacker == "" {
		t.Fatal("no upload of the attacker's shared the victim's old stripe")
	}
	c, err := net.Dial("tcp", s.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PATCH %s HTTP/1.1\r\nHost: att.example\r\nAuthorization: Basic %s\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n0123456789",
		attacker, basicAuth(attUser, attPass))
	time.Sleep(200 * time.Millisecond) // the stalled PATCH holds its upload's lock now
	req, _ := http.NewRequest("PATCH", s.URL+victim, strings.NewReader("hello"))
	req.SetBasicAuth(victimUser, victimPass)
	req.Header.Set("Content-Type", "application/octet-stream")
	cl := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("the victim's PATCH while the attacker's stalls: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != "0-4" || time.Since(start) > 2*time.Second {
		t.Errorf("the victim's PATCH: %d, Range %q, after %s", resp.StatusCode, resp.Header.Get("Range"), time.Since(start))
	}
}

// TestStalledDownloadEnds: a blob download goes out through the connection's own ReadFrom
// (sendfile) in pieces, each under limits.write_idle_timeout as a Write is: a client that
// keeps reading gets the blob whole however long it takes in all, and one that stops reading
// is cut off, not waited for.
func TestStalledDownloadEnds(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Limits.WriteIdleTimeout = time.Second }})
	user, pass := s.Admin(t)
	b := make([]byte, 64<<20)
	rand.Read(b)
	sum := sha256.Sum256(b)
	d := "sha256:" + hex.EncodeToString(sum[:])
	req, _ := http.NewRequest("POST", s.URL+"/v2/big/blobs/uploads/?digest="+d, bytes.NewReader(b))
	req.SetBasicAuth(user, pass)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	req, _ = http.NewRequest("GET", s.URL+"/v2/big/blobs/"+d, nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	var n int64
	for err == nil { // 1 MiB every 40 ms: about 2.5 s in all, never a second without reading
		var m int64
		m, err = io.CopyN(h, resp.Body, 1<<20)
		n += m
		time.Sleep(40 * time.Millisecond)
	}
	if err == io.EOF {
		err = nil
	}
	resp.Body.Close()
	if err != nil || n != int64(len(b)) || !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Fatalf("a reading client got %d of %d bytes (%v), digest equal: %v", n, len(b), err, bytes.Equal(h.Sum(nil), sum[:]))
	}

	c, err := net.Dial("tcp", s.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v2/big/blobs/%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n\r\n", d, s.Host, basicAuth(user, pass))
	r := bufio.NewReader(c)
	resp, err = http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v %v", resp, err)
	}
	time.Sleep(4 * time.Second) // reads nothing: the server's writes stall for longer than a second
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err = io.Copy(io.Discard, resp.Body)
	if err == nil || n >= int64(len(b)) {
		t.Errorf("a client that stopped reading for 4 s later got %d of %d bytes (%v); want the reply cut off after 1 s", n, len(b), err)
	}
}
