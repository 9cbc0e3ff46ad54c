package registrytest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// MainWithBinary builds the berth binary into a temporary folder, runs the package's tests
// with *bin naming it, and exits: the TestMain of packages that run berth as a process.
func MainWithBinary(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "berth-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "berth")
	cmd := exec.Command("go", "build", "-buildvcs=auto", "-o", *bin, "github.com/berth-registry/berth/cmd/berth") // auto: stamp the commit even where GOFLAGS says -buildvcs=false
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building berth:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// FreeAddr returns a loopback address no one listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Tool returns the path of an outside program a test drives (a client, Chromium), or skips the
// test without it — fails it with BERTH_REQUIRE_CLIENTS=1, as scripts/test.sh runs.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("BERTH_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("%s is required: %v", name, err)
		}
		t.Skipf("no %s: %v", name, err)
	}
	return p
}
