package server_test

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/server"
)

func TestBootstrapGeneratedPassword(t *testing.T) {
	dir := t.TempDir()
	logs := &lockedBuffer{}
	s := registrytest.New(t, registrytest.Options{Dir: dir, GenerateOwnerPassword: true, Log: logs})
	file := filepath.Join(dir, server.BootstrapPasswordFile)
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("no password file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v; want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(file)
	pw := strings.TrimSpace(string(b))
	if len(pw) < 32 {
		t.Fatalf("generated password %d characters long", len(pw))
	}
	if !strings.Contains(logs.String(), file) || strings.Contains(logs.String(), pw) {
		t.Errorf("the log must name the file and not hold the password:\n%s", logs.String())
	}
	signIn := func(s *registrytest.Server, pw string) int {
		resp, err := http.PostForm(s.URL+"/mgmt/v1/token", url.Values{"grant_type": {"password"}, "username": {server.BootstrapUser}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := signIn(s, pw); st != 200 {
		t.Errorf("sign-in with the generated password: %d", st)
	}
	// A restart neither creates the user again nor touches the file.
	s.Stop()
	s2 := registrytest.New(t, registrytest.Options{Dir: dir, GenerateOwnerPassword: true})
	if b2, _ := os.ReadFile(file); !bytes.Equal(b, b2) {
		t.Error("the password file changed on restart")
	}
	if st := signIn(s2, pw); st != 200 {
		t.Errorf("sign-in after restart: %d", st)
	}
}

func TestBootstrapGivenPassword(t *testing.T) {
	dir := t.TempDir()
	s := registrytest.New(t, registrytest.Options{Dir: dir})
	if _, err := os.Stat(filepath.Join(dir, server.BootstrapPasswordFile)); !os.IsNotExist(err) {
		t.Errorf("a password file was written although the password was given: %v", err)
	}
	var me struct {
		Name        string
		ServerOwner bool
	}
	if st := s.Mgmt(t, "GET", "/mgmt/v1/me", nil, &me); st != 200 || me.Name != "owner" || !me.ServerOwner {
		t.Errorf("me = %d %+v", st, me)
	}
}

// lockedBuffer is a log the server writes to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
