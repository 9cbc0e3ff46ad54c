package faults

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestDiskFull: the blob storage is a small tmpfs (mounted by the test, as root). A push that
// does not fit fails with 507 naming the cause, and what it wrote is removed; meanwhile pulls
// and sign-ins work; once space is freed, the same push succeeds.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("BERTH_REQUIRE_CLIENTS") == "1" {
			t.Fatal("the disk-full test mounts a tmpfs and needs root (CI runs as root)")
		}
		t.Skip("needs root to mount a tmpfs")
	}
	blobs := filepath.Join(t.TempDir(), "blobs")
	if err := os.MkdirAll(blobs, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", blobs).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", blobs).Run() })
	p := newProcess(t, nil, "--storage", "fs:"+filepath.Join(blobs, "store"))
	user, pass := p.adminCredentials()
	auth := remote.WithAuth(&authn.Basic{Username: user, Password: pass})
	small, _ := random.Image(1024, 1)
	ref, _ := name.NewTag(p.addr+"/full/app:small", name.Insecure)
	if err := remote.Write(ref, small, auth); err != nil {
		t.Fatal(err)
	}
	// Fill the disk but for about a megabyte.
	filler := filepath.Join(blobs, "filler")
	var st syscall.Statfs_t
	syscall.Statfs(blobs, &st)
	free := int64(st.Bavail) * int64(st.Bsize)
	if err := os.WriteFile(filler, make([]byte, free-1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	used := func() int64 {
		var st syscall.Statfs_t
		syscall.Statfs(blobs, &st)
		return int64(st.Blocks-st.Bfree) * int64(st.Bsize)
	}
	before := used()
	data := bytes.Repeat([]byte("does not fit "), 300_000) // 3.9 MB
	d := fmt.Sprintf("sha256:%x", sha256sum(data))
	push := func(how string) (int, string) {
		var req *http.Request
		switch how {
		case "monolithic":
			req, _ = http.NewRequest("POST", "http://"+p.addr+"/v2/full/app/blobs/uploads/?digest="+d, bytes.NewReader(data))
		case "chunked":
			start, _ := http.NewRequest("POST", "http://"+p.addr+"/v2/full/app/blobs/uploads/", nil)
			start.SetBasicAuth(user, pass)
			resp, err := http.DefaultClient.Do(start)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			req, _ = http.NewRequest("PATCH", "http://"+p.addr+resp.Header.Get("Location"), bytes.NewReader(data))
		}
		req.SetBasicAuth(user, pass)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, how := range []string{"monolithic", "chunked"} {
		st, body := push(how)
		if st != http.StatusInsufficientStorage || !strings.Contains(body, "no space left on device") {
			t.Errorf("a %s push that does not fit: %d %s", how, st, body)
		}
		if after := used(); after > before+64<<10 {
			t.Errorf("after the failed %s push the storage holds %d more bytes", how, after-before)
		}
	}
	// Meanwhile the registry serves what it has, and signs in.
	img, err := remote.Image(ref, auth)
	if err == nil {
		err = validate.Image(img)
	}
	if err != nil {
		t.Errorf("a pull while the disk is full: %v", err)
	}
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/oauth2/token?service="+p.addr+"&scope=repository:full/app:pull", nil)
	req.SetBasicAuth(user, pass)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("a sign-in while the disk is full: %v %v", resp, err)
	}
	// Space freed: the push goes through.
	os.Remove(filler)
	time.Sleep(10 * time.Millisecond)
	if st, body := push("monolithic"); st != http.StatusCreated {
		t.Errorf("the push once space is freed: %d %s", st, body)
	}
}
