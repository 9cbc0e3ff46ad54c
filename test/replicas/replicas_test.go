package replicas

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/server"
	"github.com/berth-registry/berth/internal/store"
	"github.com/berth-registry/berth/internal/token"
)

// TestConformanceThroughProxy runs the OCI conformance suite (1.1 and dev) through the
// round-robin proxy: consecutive requests of one upload land on different replicas.
func TestConformanceThroughProxy(t *testing.T) {
	if _, err := exec.LookPath("oci-conformance"); err != nil {
		if os.Getenv("BERTH_REQUIRE_CLIENTS") == "1" {
			t.Fatal("oci-conformance is not on PATH: run scripts/install-test-tools.sh")
		}
		t.Skip("oci-conformance is not on PATH")
	}
	c := newCluster(t)
	pwd := adminPassword(t, c.proxy.URL, ownerToken(t, c.proxy.URL))
	script, _ := filepath.Abs("../../scripts/conformance.sh")
	cmd := exec.Command("bash", script, c.host, t.TempDir())
	cmd.Env = append(os.Environ(), "OCI_USERNAME=default", "OCI_PASSWORD="+pwd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("conformance through the proxy: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	uploads, spread := c.spread()
	t.Logf("%d uploads, %d of them served by more than one replica", uploads, spread)
	if uploads < 10 || spread < uploads/2 {
		t.Errorf("%d uploads, %d of them served by more than one replica", uploads, spread)
	}
	for i, r := range c.replicas {
		if r.hits.Load() == 0 {
			t.Errorf("replica %d served nothing", i)
		}
	}
}

// within polls check every 20 ms until it holds or the time is up, and returns how long it took.
func within(t *testing.T, limit time.Duration, what string, check func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) <= limit {
		if check() {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("%s: not within %s", what, limit)
	return limit
}

// status sends GET url with an Authorization header and returns the status.
func status(t *testing.T, url, auth string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestChangesReachEveryReplica: a token's scope map change, a role assignment's removal and a
// network rule, each made through replica 1, are enforced by replicas 2 and 3 within a second.
func TestChangesReachEveryReplica(t *testing.T) {
	c := newCluster(t)
	r1, others := c.replicas[0].url, c.replicas[1:]
	tok := ownerToken(t, r1)
	// allowed: past authorization (404 for an empty repository); refused: 401/403.
	allowed := func(st int) bool { return st == http.StatusOK || st == http.StatusNotFound }
	everywhere := func(auth, repo string, want bool) func() bool {
		return func() bool {
			for _, r := range others {
				if allowed(status(t, r.url+"/v2/"+repo+"/tags/list", auth)) != want {
					return false
				}
			}
			return true
		}
	}

	t.Run("scope map", func(t *testing.T) {
		var created struct {
			Credentials struct {
				Passwords []struct{ Name, Value string }
			}
		}
		if st := mgmt(t, r1, tok, "POST", "/mgmt/v1/registries/default/tokens",
			map[string]any{"name": "ci-token", "repositories": []map[string]any{{"repository": "p/x", "actions": []string{"content/read"}}}}, &created); st != 201 {
			t.Fatalf("create token: %d", st)
		}
		auth := basic("ci-token", created.Credentials.Passwords[0].Value)
		within(t, time.Second, "the new token works on replicas 2 and 3", everywhere(auth, "p/x", true))
		if st := mgmt(t, r1, tok, "PATCH", "/mgmt/v1/registries/default/scopeMaps/ci-token-scope-map",
			map[string]any{"removeRepositories": []map[string]any{{"repository": "p/x", "actions": []string{"content/read"}}},
				"addRepositories": []map[string]any{{"repository": "q/y", "actions": []string{"content/read"}}}}, nil); st != 200 {
			t.Fatalf("update scope map: %d", st)
		}
		d := within(t, time.Second, "the scope map change on replicas 2 and 3", everywhere(auth, "p/x", false))
		t.Logf("scope map change enforced everywhere after %s", d)
	})

	t.Run("role assignment", func(t *testing.T) {
		var sp struct{ AppID, Password string }
		if st := mgmt(t, r1, tok, "POST", "/mgmt/v1/servicePrincipals", map[string]string{"displayName": "puller"}, &sp); st != 201 {
			t.Fatalf("create sp: %d", st)
		}
		var ra struct{ ID string }
		if st := mgmt(t, r1, tok, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": sp.AppID, "role": "AcrPull", "scope": "/registries/default"}, &ra); st != 201 {
			t.Fatalf("assign: %d", st)
		}
		auth := basic(sp.AppID, sp.Password)
		within(t, time.Second, "AcrPull works on replicas 2 and 3", everywhere(auth, "p/x", true))
		if st := mgmt(t, r1, tok, "DELETE", "/mgmt/v1/roleAssignments/"+ra.ID, nil, nil); st != 204 {
			t.Fatalf("delete assignment: %d", st)
		}
		d := within(t, time.Second, "the removal on replicas 2 and 3", everywhere(auth, "p/x", false))
		t.Logf("role assignment removal enforced everywhere after %s", d)
	})

	t.Run("signing key rotation", func(t *testing.T) {
		// What a replica does when its key is due: Ensure adds a new key to the database and signs
		// with it. The other replicas have never seen that key.
		ctx := context.Background()
		st, err := store.Open(ctx, c.dsn, store.Options{NoMigrate: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		keys, err := server.KeyStore(st, kek)
		if err != nil {
			t.Fatal(err)
		}
		rotating := token.New(keys, token.Options{Rotation: time.Nanosecond})
		if err := rotating.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		owner, err := st.UserByName(ctx, "owner")
		if err != nil {
			t.Fatal(err)
		}
		claims := token.Claims{GrantType: token.GrantDirectory, Kind: "user", PID: owner.ID}
		claims.Subject, claims.Audience = "owner", []string{token.DirectoryAudience}
		signed, err := rotating.Sign(ctx, &claims, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range c.replicas {
			if st := status(t, r.url+"/mgmt/v1/me", "Bearer "+signed); st != http.StatusOK {
				t.Errorf("replica %d does not accept a token signed with the new key: %d", i+1, st)
			}
		}
	})

	t.Run("network rule", func(t *testing.T) {
		if st := mgmt(t, r1, tok, "POST", "/mgmt/v1/registries/default/networkRules", map[string]string{"value": "203.0.113.0/24"}, nil); st != 201 && st != 200 {
			t.Fatalf("add rule: %d", st)
		}
		if st := mgmt(t, r1, tok, "PATCH", "/mgmt/v1/registries/default", map[string]any{"networkRuleSet": map[string]string{"defaultAction": "Deny"}}, nil); st != 200 {
			t.Fatalf("deny: %d", st)
		}
		d := within(t, time.Second, "the network rules on replicas 2 and 3", func() bool {
			for _, r := range others {
				if status(t, r.url+"/v2/", "") != http.StatusForbidden {
					return false
				}
			}
			return true
		})
		t.Logf("network rule enforced everywhere after %s", d)
	})
}

// TestThrottlingAcrossReplicas: failed sign-ins count together, whichever replica they reach.
func TestThrottlingAcrossReplicas(t *testing.T) {
	c := newCluster(t, "BERTH_AUTH_MAX_FAILURES=3")
	// One failure on each replica: the third is the third for the identity, wherever it lands,
	// and locks it out.
	for i, r := range c.replicas {
		want := http.StatusUnauthorized
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if st := status(t, r.url+"/oauth2/token?service="+c.host, basic("mallory", "guess")); st != want {
			t.Fatalf("failure %d, on replica %d: %d, want %d", i+1, i+1, st, want)
		}
	}
	for i, r := range c.replicas {
		if st := status(t, r.url+"/oauth2/token?service="+c.host, basic("mallory", "guess")); st != http.StatusTooManyRequests {
			t.Errorf("after 3 failures spread over 3 replicas, replica %d answered %d, want 429", i+1, st)
		}
	}
	if st := status(t, c.replicas[0].url+"/oauth2/token?service="+c.host, basic("alice", "guess")); !strings.HasPrefix(http.StatusText(st), "Unauth") {
		t.Errorf("another identity from the same address: %d, want 401", st)
	}
}

// tools returns the paths of the real clients, or skips (fails under BERTH_REQUIRE_CLIENTS).
func tools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("BERTH_REQUIRE_CLIENTS") == "1" {
				t.Fatalf("%s is not on PATH: run scripts/install-test-tools.sh", n)
			}
			t.Skipf("%s is not on PATH", n)
		}
	}
}

// run runs a client command with the docker config of dir and returns its output.
func run(t *testing.T, dir string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dir, "REGISTRY_AUTH_FILE="+filepath.Join(dir, "config.json"),
		"HELM_REGISTRY_CONFIG="+filepath.Join(dir, "config.json"), "HOME="+dir, "XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_DATA_HOME="+filepath.Join(dir, "data"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestClientsAndKill: skopeo, crane, oras and helm push and pull through the proxy; then one
// replica is killed with SIGKILL while crane pushes, and every push crane reports done can be
// pulled whole through the other two.
func TestClientsAndKill(t *testing.T) {
	tools(t, "crane", "skopeo", "oras", "helm")
	c := newCluster(t)
	pwd := adminPassword(t, c.proxy.URL, ownerToken(t, c.proxy.URL))
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("default:" + pwd))
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"`+c.host+`":{"auth":"`+auth+`"}}}`), 0o600)
	layer := func(name string, size int) string {
		data := make([]byte, size)
		rand.Read(data)
		os.WriteFile(filepath.Join(dir, name+".bin"), data, 0o600)
		out, err := exec.Command("tar", "-C", dir, "-cf", filepath.Join(dir, name+".tar"), name+".bin").CombinedOutput()
		if err != nil {
			t.Fatalf("tar: %v %s", err, out)
		}
		return filepath.Join(dir, name+".tar")
	}
	must := func(name string, args ...string) string {
		t.Helper()
		out, err := run(t, dir, name, args...)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return out
	}
	h := c.host
	must("crane", "append", "--insecure", "--oci-empty-base", "-f", layer("a", 3<<20), "-t", h+"/clients/crane:v1")
	must("crane", "pull", "--insecure", "--format", "oci", h+"/clients/crane:v1", filepath.Join(dir, "crane-oci"))
	must("skopeo", "copy", "--dest-tls-verify=false", "--src-tls-verify=false", "docker://"+h+"/clients/crane:v1", "docker://"+h+"/clients/skopeo:v1")
	must("skopeo", "copy", "--src-tls-verify=false", "docker://"+h+"/clients/skopeo:v1", "oci:"+filepath.Join(dir, "skopeo-oci")+":v1")
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello through three replicas\n"), 0o600)
	must("oras", "push", "--plain-http", h+"/clients/oras:v1", "--artifact-type", "application/vnd.example.test", "hello.txt:text/plain")
	must("oras", "pull", "--plain-http", h+"/clients/oras:v1", "-o", filepath.Join(dir, "oras-out"))
	if b, _ := os.ReadFile(filepath.Join(dir, "oras-out", "hello.txt")); string(b) != "hello through three replicas\n" {
		t.Errorf("oras pulled %q", b)
	}
	must("helm", "create", filepath.Join(dir, "mychart"))
	must("helm", "package", filepath.Join(dir, "mychart"), "-d", dir)
	must("helm", "push", filepath.Join(dir, "mychart-0.1.0.tgz"), "oci://"+h+"/charts", "--plain-http")
	os.MkdirAll(filepath.Join(dir, "pulled"), 0o700)
	must("helm", "pull", "oci://"+h+"/charts/mychart", "--version", "0.1.0", "--plain-http", "-d", filepath.Join(dir, "pulled"))

	// Pushes in flight while replica 2 is killed.
	const n = 6
	type result struct {
		tag string
		err error
		out string
	}
	results := make(chan result, n)
	tars := make([]string, n)
	for i := range n {
		tars[i] = layer("k"+string(rune('a'+i)), 16<<20)
	}
	hits := c.replicas[1].hits.Load()
	for i := range n {
		tar := tars[i]
		go func() {
			tag := h + "/kill/repo:" + string(rune('a'+i))
			out, err := run(t, dir, "crane", "append", "--insecure", "--oci-empty-base", "-f", tar, "-t", tag)
			results <- result{tag, err, out}
		}()
	}
	// Kill replica 2 once the pushes are going through it.
	for deadline := time.Now().Add(30 * time.Second); c.replicas[1].hits.Load() < hits+6 && len(results) < n && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if len(results) == n {
		r := <-results
		t.Fatalf("every push finished before the kill: nothing was in flight (one: %s %v %s)", r.tag, r.err, r.out)
	}
	inFlight := n - len(results)
	c.replicas[1].kill(t)
	t.Logf("replica 2 killed with %d pushes in flight", inFlight)
	acked := 0
	for range n {
		r := <-results
		if r.err != nil {
			t.Logf("push %s failed (not acknowledged): %v %s", r.tag, r.err, r.out)
			continue
		}
		acked++
		out, err := run(t, dir, "crane", "export", "--insecure", r.tag, "-")
		if err != nil || len(out) < 16<<20 {
			t.Errorf("acknowledged push %s cannot be pulled whole through the survivors: %v (%d bytes)", r.tag, err, len(out))
		}
	}
	if acked < n-1 {
		t.Errorf("only %d of %d pushes completed through the two surviving replicas", acked, n)
	}
	t.Logf("%d of %d pushes completed across the kill", acked, n)
}

// TestManageSeesOtherReplicasRoles: a role given on one replica counts at once on another for
// "no permission grants another": a Contributor cannot reset the password of a user made Owner
// a moment ago elsewhere, though its replica's policy snapshot is not yet reloaded.
func TestManageSeesOtherReplicasRoles(t *testing.T) {
	c := newCluster(t)
	a, b := c.replicas[0].url, c.replicas[1].url
	owner := ownerToken(t, a)
	var contrib struct{ Password string }
	if st := mgmt(t, a, owner, "POST", "/mgmt/v1/users", map[string]string{"name": "contrib"}, &contrib); st != http.StatusCreated {
		t.Fatalf("create contrib: %d", st)
	}
	mgmt(t, a, owner, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": "contrib", "role": "Contributor", "scope": "/"}, nil)
	mgmt(t, a, owner, "POST", "/mgmt/v1/users", map[string]string{"name": "target"}, nil)
	tok := registrytest.SignInAt(t, b, "contrib", contrib.Password)
	// On b, target holds no role yet: its password may be reset.
	within(t, 10*time.Second, "b sees contrib's role", func() bool {
		return mgmt(t, b, tok, "PATCH", "/mgmt/v1/users/target", map[string]any{}, nil) == http.StatusOK
	})
	if st := mgmt(t, a, owner, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": "target", "role": "Owner", "scope": "/"}, nil); st != http.StatusCreated {
		t.Fatalf("make target Owner: %d", st)
	}
	if st := mgmt(t, b, tok, "PATCH", "/mgmt/v1/users/target", map[string]any{}, nil); st != http.StatusForbidden {
		t.Errorf("a Contributor resets, on another replica, the password of a user just made Owner: %d, want 403", st)
	}
}

// TestOneWriterPerUpload (issue 16): while a request on one replica is appending to an upload
// (here its body stalls), a request to the same upload on another replica is refused at once
// with 409 instead of writing beside it; once the first ends, the upload continues anywhere from
// what it checkpointed.
func TestOneWriterPerUpload(t *testing.T) {
	c := newCluster(t)
	pwd := adminPassword(t, c.proxy.URL, ownerToken(t, c.proxy.URL))
	send := func(r *replica, method, path, body string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, r.url+path, strings.NewReader(body))
		req.SetBasicAuth("default", pwd)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s %s on %s: %v", method, path, r.url, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	a, b := c.replicas[0], c.replicas[1]
	// The admin user was enabled through the proxy: each replica enforces it within a second
	// (its policy poll), so replica a may refuse it for that long.
	resp := send(a, "POST", "/v2/lease/app/blobs/uploads/", "")
	for deadline := time.Now().Add(2 * time.Second); resp.StatusCode != http.StatusAccepted && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		resp = send(a, "POST", "/v2/lease/app/blobs/uploads/", "")
	}
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PATCH", a.url+loc, nil)
	req.SetBasicAuth("default", pwd)
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n0123456789",
		loc, strings.TrimPrefix(a.url, "http://"), req.Header.Get("Authorization"))
	time.Sleep(500 * time.Millisecond) // replica a holds the upload's lease now
	start := time.Now()
	if resp := send(b, "PATCH", loc, "abcde", "Content-Type", "application/octet-stream"); resp.StatusCode != http.StatusConflict || time.Since(start) > 2*time.Second {
		t.Errorf("the same upload on another replica while the first writes: %d after %s; want 409 at once", resp.StatusCode, time.Since(start))
	}
	conn.Close() // the first request ends: what arrived whole is checkpointed, the lease released
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st := send(b, "GET", loc, "")
		var end int64 = -1
		if r := st.Header.Get("Range"); r != "0-0" {
			fmt.Sscanf(r, "0-%d", &end)
		}
		resp := send(b, "PATCH", loc, "abcde", "Content-Type", "application/octet-stream", "Content-Range", fmt.Sprintf("%d-%d", end+1, end+5))
		if resp.StatusCode == http.StatusAccepted && resp.Header.Get("Range") == fmt.Sprintf("0-%d", end+5) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("continuing on the other replica once the first request ended: %d, Range %q", resp.StatusCode, resp.Header.Get("Range"))
		}
	}
}
