package faults

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// service is a PostgreSQL or a MinIO of the test's own, run by the project's script, which the
// test stops and starts again: a real restart, unlike a cut connection.
type service struct {
	t      *testing.T
	script string // scripts/postgres.sh or scripts/minio.sh
	dir    string
	url    string   // the DSN or the storage URL
	env    []string // what a client needs (MinIO's credentials)
}

// startService starts script's server in a folder of its own. Like the shared servers of the
// other tests, it needs the environment variable gate set (BERTH_TEST_POSTGRES or BERTH_TEST_S3:
// the server is installed); without it the test is skipped, or fails when require is set.
func startService(t *testing.T, script, gate, require string) *service {
	t.Helper()
	if os.Getenv(gate) == "" {
		if os.Getenv(require) == "1" {
			t.Fatalf("%s is not set", gate)
		}
		t.Skipf("%s is not set: %s is not installed here", gate, script)
	}
	parent, err := os.MkdirTemp("", "berth-faults-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(parent, 0o755) // PostgreSQL runs as its own user when the test runs as root
	s := &service{t: t, script: filepath.Join("..", "..", "scripts", script), dir: filepath.Join(parent, "server")}
	out := s.run("start")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	s.url = lines[len(lines)-1]
	t.Cleanup(func() {
		exec.Command("bash", s.script, "stop", s.dir).Run()
		os.RemoveAll(parent)
	})
	if b, err := os.ReadFile(filepath.Join(s.dir, "env")); err == nil { // "export A=x B=y"
		s.env = strings.Fields(strings.TrimPrefix(strings.TrimSpace(string(b)), "export "))
	}
	return s
}

func (s *service) run(cmd string) string {
	s.t.Helper()
	out, err := exec.Command("bash", s.script, cmd, s.dir).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		s.t.Fatalf("%s %s: %v\n%s", s.script, cmd, err, stderr)
	}
	return string(out)
}

// stop stops the server (PostgreSQL's fast shutdown: sessions are ended; MinIO is terminated)
// and returns when it is gone; resume starts it again on the same port with the same data.
func (s *service) stop()   { s.run("stop") }
func (s *service) resume() { s.run("resume") }
