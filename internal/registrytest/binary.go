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
