package e2e

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/store"
)

// TestVersionNamesTheCommit: a berth built with go build in a git checkout names the commit it
// was built from, with no -ldflags.
func TestVersionNamesTheCommit(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout (go build stamps no commit then): %v", err)
	}
	out, err := exec.Command(berthBin, "version", "--query", "commit", "-o", "tsv").CombinedOutput()
	if err != nil {
		t.Fatalf("berth version: %v %s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), strings.TrimSpace(string(head)); got != want {
		t.Errorf("berth version names commit %q; HEAD is %q", got, want)
	}
	line, err := exec.Command(berthBin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(line), "berth ") || !strings.Contains(string(line), string(head[:12])) {
		t.Errorf("berth --version: %q %v", line, err)
	}
}

// TestServeRefusesEarly: a server that cannot listen, or whose bootstrap password is too short,
// says so and exits; the first leaves nothing on disk.
func TestServeRefusesEarly(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	data := filepath.Join(t.TempDir(), "data")
	out, err := exec.Command(berthBin, "serve", "--listen", taken.Addr().String(), "--data-dir", data).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cannot listen on "+taken.Addr().String()) {
		t.Errorf("serve on a taken address: %v %s", err, out)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("serve that could not listen created its data folder: %v", err)
	}
	cmd := exec.Command(berthBin, "serve", "--listen", "127.0.0.1:0", "--data-dir", data)
	cmd.Env = append(os.Environ(), "BERTH_BOOTSTRAP_PASSWORD=short")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "BERTH_BOOTSTRAP_PASSWORD has 5 characters: the owner's password must have 12 to 256") {
		t.Errorf("serve with a 5-character bootstrap password: %v %s", err, out)
	}
}

// TestOwnerResetPassword: whoever holds the data folder resets the owner's lost password while
// berth serves; the new password signs in, the old one no longer does, and a login event says
// who reset it.
func TestOwnerResetPassword(t *testing.T) {
	dir := t.TempDir()
	p := startBerth(t, dir, freeAddr(t))
	cmd := exec.Command(berthBin, "owner", "reset-password", "--data-dir", dir, "--query", "password", "-o", "tsv")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("berth owner reset-password: %v %s", err, out)
	}
	fresh := strings.TrimSpace(string(out))
	if len(fresh) < 12 {
		t.Fatalf("the generated password: %q", fresh)
	}
	signIn := func(pass string) int {
		form := url.Values{"grant_type": {"password"}, "username": {"owner"}, "password": {pass}}
		resp, err := http.PostForm(p.url+"/mgmt/v1/token", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := signIn(fresh); st != http.StatusOK {
		t.Errorf("the reset password signs in: %d", st)
	}
	if st := signIn(ownerPassword); st != http.StatusUnauthorized {
		t.Errorf("the old password after the reset: %d; want 401", st)
	}
	chosen := exec.Command(berthBin, "owner", "reset-password", "--data-dir", dir, "--password-stdin")
	chosen.Stdin = strings.NewReader("a-chosen-password-123\n")
	if out, err := chosen.CombinedOutput(); err != nil || strings.Contains(string(out), "a-chosen-password-123") {
		t.Errorf("reset with --password-stdin: %v %s", err, out)
	}
	if st := signIn("a-chosen-password-123"); st != http.StatusOK {
		t.Errorf("the chosen password signs in: %d", st)
	}
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(dir, "berth.db"), store.Options{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.LoginEvents(t.Context(), store.EventFilter{Operation: "password_reset", Limit: 10})
	if err != nil || len(evs) != 2 || evs[0].Identity != "owner" || !strings.Contains(evs[0].Message, "'berth owner reset-password' by ") {
		t.Errorf("the resets' login events: %+v %v", evs, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--user", "nobody"}, `no directory user "nobody"`},
		{[]string{"--data-dir", t.TempDir()}, "no berth database at"},
	} {
		args := append([]string{"owner", "reset-password", "--data-dir", dir}, tc.args...)
		if out, err := exec.Command(berthBin, args...).CombinedOutput(); err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("berth %v: %v %s; want %q", args, err, out, tc.want)
		}
	}
	short := exec.Command(berthBin, "owner", "reset-password", "--data-dir", dir, "--password-stdin")
	short.Stdin = strings.NewReader("short\n")
	if out, err := short.CombinedOutput(); err == nil || !strings.Contains(string(out), "12 to 256 characters") {
		t.Errorf("a short password: %v %s", err, out)
	}
}
