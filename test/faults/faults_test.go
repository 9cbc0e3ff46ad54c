// Package faults runs berth as a real process and hurts it: kill -9 in the middle of pushes, and
// checks that nothing acknowledged is lost and nothing half-written is visible (issue 16).
package faults

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-registry/berth/internal/registrytest"
)

var berthBin string

func TestMain(m *testing.M) { registrytest.MainWithBinary(m, &berthBin) }

const ownerPassword = "faults-owner-password"

// process is one berth serve on a fixed address and data folder, which can be killed and
// started again.
type process struct {
	t     *testing.T
	addr  string
	dir   string
	mu    sync.Mutex
	cmd   *exec.Cmd
	logMu sync.Mutex // logs is written by the server's output copiers, read by the test
	logs  bytes.Buffer
	kills int
	args  []string // more flags of berth serve
	env   []string // more environment
}

// newProcess starts berth serve with more environment (NAME=VALUE) and flags.
func newProcess(t *testing.T, env []string, args ...string) *process {
	p := &process{t: t, addr: registrytest.FreeAddr(t), dir: t.TempDir(), args: args, env: env}
	p.start()
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.cmd != nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

func (p *process) start() {
	p.t.Helper()
	p.mu.Lock()
	cmd := exec.Command(berthBin, append([]string{"serve", "--listen", p.addr, "--data-dir", p.dir, "--log-level", "warn"}, p.args...)...)
	cmd.Env = append(append(os.Environ(), "BERTH_BOOTSTRAP_PASSWORD="+ownerPassword), p.env...)
	cmd.Stdout, cmd.Stderr = logWriter{p}, logWriter{p}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatal(err)
	}
	p.cmd = cmd
	p.mu.Unlock()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + p.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
	}
	p.t.Fatalf("berth did not become ready:\n%s", p.log())
}

// logLines is the server's log lines that hold the correlation id in reply (all of them when
// reply has none).
func (p *process) logLines(reply string) string {
	logs := p.log()
	_, id, ok := strings.Cut(reply, "correlation id: ")
	if !ok || len(id) < 16 {
		return logs
	}
	var out strings.Builder
	for line := range strings.Lines(logs) {
		if strings.Contains(line, id[:16]) {
			out.WriteString(line)
		}
	}
	return out.String()
}

// log is what the server wrote so far.
func (p *process) log() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.logs.String()
}

// logWriter appends the server's output to its process's logs.
type logWriter struct{ p *process }

func (w logWriter) Write(b []byte) (int, error) {
	w.p.logMu.Lock()
	defer w.p.logMu.Unlock()
	return w.p.logs.Write(b)
}

// kill9 kills the server without warning (SIGKILL) and waits for it to be gone.
func (p *process) kill9() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	p.cmd = nil
	p.kills++
}

// adminCredentials enables the admin user of the default registry and returns its password.
func (p *process) adminCredentials() (string, string) {
	p.t.Helper()
	base := "http://" + p.addr
	tok := registrytest.SignInAt(p.t, base, "owner", ownerPassword)
	var reg struct {
		Credentials struct {
			Username  string
			Passwords []struct{ Value string }
		}
	}
	if st := registrytest.MgmtAt(p.t, base, tok, "PATCH", "/mgmt/v1/registries/default", map[string]any{"adminUserEnabled": true}, &reg); st != 200 {
		p.t.Fatalf("enable the admin user: %d", st)
	}
	return reg.Credentials.Username, reg.Credentials.Passwords[0].Value
}

// TestKillDuringPushes: 4 clients push 100 images while the server is killed with SIGKILL at
// random moments and started again. Afterwards every push a client saw acknowledged pulls whole
// and verified, and every image the registry lists is whole (no manifest whose blobs are
// missing, no blob that is not what its digest says), acknowledged or not.
func TestKillDuringPushes(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BERTH_FAULTS_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (BERTH_FAULTS_SEED=%d repeats this run)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	p := newProcess(t, nil)
	user, pass := p.adminCredentials()
	auth := remote.WithAuth(&authn.Basic{Username: user, Password: pass})
	transport := remote.WithTransport(&http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: 10 * time.Second})

	const clients, each = 4, 25
	type acked struct {
		ref    name.Tag
		digest v1.Hash
	}
	var mu sync.Mutex
	var acks []acked
	var pushing atomic.Bool
	pushing.Store(true)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				img, err := random.Image(int64(2048+c*512+i), 3)
				if err != nil {
					t.Error(err)
					return
				}
				ref, _ := name.NewTag(fmt.Sprintf("%s/faults/c%d:p%d", p.addr, c, i), name.Insecure)
				// Retry through the kills: a push counts once the client saw it acknowledged.
				for try := 0; ; try++ {
					if err = remote.Write(ref, img, auth, transport); err == nil {
						break
					}
					if try == 200 {
						t.Errorf("%s never pushed: %v", ref, err)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				d, _ := img.Digest()
				mu.Lock()
				acks = append(acks, acked{ref, d})
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for pushing.Load() {
			time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
			if !pushing.Load() {
				return
			}
			p.kill9()
			time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
			p.start()
		}
	}()
	wg.Wait()
	pushing.Store(false)
	<-done
	t.Logf("%d pushes acknowledged through %d kills", len(acks), p.kills)
	if len(acks) != clients*each || p.kills < 3 {
		t.Fatalf("%d of %d pushes acknowledged, %d kills: the run tested less than it says", len(acks), clients*each, p.kills)
	}
	// Everything acknowledged is there and whole.
	for _, a := range acks {
		img, err := remote.Image(a.ref, auth)
		if err != nil {
			t.Errorf("acknowledged %s: %v", a.ref, err)
			continue
		}
		if d, _ := img.Digest(); d != a.digest {
			t.Errorf("acknowledged %s is %s, pushed as %s", a.ref, d, a.digest)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("acknowledged %s is not whole: %v", a.ref, err)
		}
	}
	// Everything listed is whole, acknowledged or not.
	listed := 0
	for _, repo := range listCatalog(t, p, user, pass) {
		r, _ := name.NewRepository(p.addr+"/"+repo, name.Insecure)
		tags, err := remote.List(r, auth)
		if err != nil {
			t.Errorf("tags of %s: %v", repo, err)
			continue
		}
		for _, tag := range tags {
			img, err := remote.Image(r.Tag(tag), auth)
			if err == nil {
				err = validate.Image(img)
			}
			if err != nil {
				t.Errorf("listed %s:%s is not whole: %v", repo, tag, err)
			}
			listed++
		}
	}
	if listed < len(acks) {
		t.Errorf("%d tags listed, %d pushes acknowledged", listed, len(acks))
	}
}

func listCatalog(t *testing.T, p *process, user, pass string) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/v2/_catalog?n=10000", nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Repositories []string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Repositories
}

// TestUploadResumesAfterKill: an upload that had received part of its blob when the server was
// killed is continued after the restart from what it had checkpointed, and the blob is whole.
func TestUploadResumesAfterKill(t *testing.T) {
	p := newProcess(t, nil)
	user, pass := p.adminCredentials()
	base := "http://" + p.addr
	do := func(method, path string, body []byte, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		req.SetBasicAuth(user, pass)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	data := bytes.Repeat([]byte("berth resumes uploads "), 50_000) // 1.1 MB
	resp := do("POST", "/v2/resume/app/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 202 || loc == "" {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	half := len(data) / 2
	if resp := do("PATCH", loc, data[:half], "Content-Type", "application/octet-stream"); resp.StatusCode != 202 {
		t.Fatalf("first half: %d", resp.StatusCode)
	}
	p.kill9()
	p.start()
	resp = do("GET", loc, nil)
	if resp.StatusCode != 204 || resp.Header.Get("Range") != fmt.Sprintf("0-%d", half-1) {
		t.Fatalf("status after the kill: %d, Range %q; want 0-%d", resp.StatusCode, resp.Header.Get("Range"), half-1)
	}
	if resp := do("PATCH", loc, data[half:], "Content-Type", "application/octet-stream", "Content-Range", fmt.Sprintf("%d-%d", half, len(data)-1)); resp.StatusCode != 202 {
		t.Fatalf("second half: %d", resp.StatusCode)
	}
	d, _, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	if resp := do("PUT", loc+sep+"digest="+url.QueryEscape(d.String()), nil); resp.StatusCode != 201 {
		t.Fatalf("finish: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", base+"/v2/resume/app/blobs/"+d.String(), nil)
	req.SetBasicAuth(user, pass)
	got, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Body.Close()
	b, _ := io.ReadAll(got.Body)
	if !bytes.Equal(b, data) {
		t.Errorf("the resumed blob is %d bytes, not the %d pushed", len(b), len(data))
	}
}

func sha256sum(b []byte) [32]byte { return sha256.Sum256(b) }
