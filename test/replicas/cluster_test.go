// Package replicas runs berth as three `berth serve` processes over one PostgreSQL and one S3
// bucket (MinIO), behind a round-robin reverse proxy that sends each request to the next
// replica, and checks that they behave as one registry.
package replicas

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/blob/s3blob/s3test"
	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/store/pgtest"
)

var berthBin string

func TestMain(m *testing.M) { registrytest.MainWithBinary(m, &berthBin) }

const ownerPassword = "replicas-owner-password"

// kek is the key-encryption key every replica is given (a shared PostgreSQL needs one).
var kek = bytes.Repeat([]byte{7}, 32)

// replica is one berth serve process.
type replica struct {
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
	hits atomic.Int64
	dead atomic.Bool // killed: the proxy skips it
}

// kill ends the replica with SIGKILL.
func (r *replica) kill(t *testing.T) {
	t.Helper()
	r.dead.Store(true)
	if err := r.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	r.cmd.Wait()
}

// cluster is three replicas and the proxy in front of them.
type cluster struct {
	t        *testing.T
	replicas []*replica
	proxy    *httptest.Server
	host     string // the proxy's host:port, the registry's login server
	dsn      string // the PostgreSQL database

	mu      sync.Mutex
	uploads map[string]map[int]bool // upload id → replicas that served one of its requests
}

// s3URL is the storage of BERTH_TEST_S3 under a prefix of its own.
func s3URL(t *testing.T) string { return s3test.URL(t, "replicas") }

// newCluster migrates a fresh PostgreSQL schema with `berth migrate`, starts three replicas
// over it and one S3 prefix (the first alone, so that it bootstraps the owner), and the proxy.
func newCluster(t *testing.T, env ...string) *cluster {
	t.Helper()
	dsn, storage := pgtest.DSN(t), s3URL(t)
	out, err := exec.Command(berthBin, "migrate", "--database", dsn).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "migrated") {
		t.Fatalf("berth migrate: %v\n%s", err, out)
	}
	c := &cluster{t: t, uploads: map[string]map[int]bool{}, dsn: dsn}
	start := func() *replica {
		addr := freeAddr(t)
		r := &replica{url: "http://" + addr, logs: &bytes.Buffer{}}
		r.cmd = exec.Command(berthBin, "serve", "--listen", addr, "--data-dir", t.TempDir(), "--database", dsn, "--storage", storage, "--log-level", "warn")
		r.cmd.Env = append(append(os.Environ(), "BERTH_BOOTSTRAP_PASSWORD="+ownerPassword,
			"BERTH_AUTH_KEY_ENCRYPTION_KEY="+base64.StdEncoding.EncodeToString(kek)), env...)
		r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if r.cmd.ProcessState == nil {
				r.cmd.Process.Kill()
				r.cmd.Wait()
			}
		})
		return r
	}
	first := start()
	c.replicas = append(c.replicas, first)
	c.waitReady(first)
	c.replicas = append(c.replicas, start(), start())
	for _, r := range c.replicas[1:] {
		c.waitReady(r)
	}
	var next atomic.Int64
	proxies := make([]*httputil.ReverseProxy, len(c.replicas))
	for i, r := range c.replicas {
		u, _ := url.Parse(r.url)
		proxies[i] = httputil.NewSingleHostReverseProxy(u)
	}
	c.proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		i := int(next.Add(1)-1) % len(c.replicas)
		for c.replicas[i].dead.Load() { // skip a replica that was killed
			i = (i + 1) % len(c.replicas)
		}
		c.replicas[i].hits.Add(1)
		proxies[i].ServeHTTP(w, req)
		// The upload a request served: in its path, or in the Location of the POST that started it.
		for _, u := range []string{req.URL.Path, w.Header().Get("Location")} {
			if _, id, ok := strings.Cut(u, "/blobs/uploads/"); ok && id != "" {
				id, _, _ = strings.Cut(id, "?")
				c.mu.Lock()
				if c.uploads[id] == nil {
					c.uploads[id] = map[int]bool{}
				}
				c.uploads[id][i] = true
				c.mu.Unlock()
				break
			}
		}
	}))
	t.Cleanup(c.proxy.Close)
	c.host = strings.TrimPrefix(c.proxy.URL, "http://")
	return c
}

func (c *cluster) waitReady(r *replica) {
	c.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(r.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if r.cmd.ProcessState != nil {
			break
		}
	}
	c.t.Fatalf("replica %s did not become ready:\n%s", r.url, r.logs)
}

// spread is how many uploads had their requests served by more than one replica.
func (c *cluster) spread() (uploads, spread int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range c.uploads {
		uploads++
		if len(rs) > 1 {
			spread++
		}
	}
	return uploads, spread
}

func freeAddr(t *testing.T) string { return registrytest.FreeAddr(t) }

// ownerToken signs the owner in through base.
func ownerToken(t *testing.T, base string) string {
	t.Helper()
	return registrytest.SignInOwner(t, base, ownerPassword)
}

// mgmt calls the management API at base and decodes the reply into out.
func mgmt(t *testing.T, base, tok, method, path string, in, out any) int {
	t.Helper()
	return registrytest.MgmtAt(t, base, tok, method, path, in, out)
}

// adminPassword enables the default registry's admin user through base and returns its password.
func adminPassword(t *testing.T, base, tok string) string {
	t.Helper()
	var reg struct {
		Credentials struct {
			Passwords []struct{ Name, Value string }
		}
	}
	if st := mgmt(t, base, tok, "PATCH", "/mgmt/v1/registries/default", map[string]any{"adminUserEnabled": true}, &reg); st != 200 || len(reg.Credentials.Passwords) == 0 {
		t.Fatalf("enable admin: %d", st)
	}
	return reg.Credentials.Passwords[0].Value
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}
