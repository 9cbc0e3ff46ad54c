// Package deploy checks what deploy/ ships: the systemd unit (systemd-analyze verify, and its
// exposure score), beside the example configuration (internal/config) and the container image
// (test/image).
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
)

var berthBin string

func TestMain(m *testing.M) { registrytest.MainWithBinary(m, &berthBin) }

// need returns the path of a tool, or skips (fails under BERTH_REQUIRE_CLIENTS=1, as in CI).
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("BERTH_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("%s is not installed", tool)
		}
		t.Skipf("%s is not installed", tool)
	}
	return p
}

// TestSystemdUnit: deploy/systemd/berth.service passes systemd-analyze verify (with the binary
// where the unit expects it: the path is rewritten to the one built here) and its hardening
// scores an exposure of at most 2.0 of 10 in systemd-analyze security.
func TestSystemdUnit(t *testing.T) {
	analyze := need(t, "systemd-analyze")
	unit, err := os.ReadFile("../../deploy/systemd/berth.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/berth serve") {
		t.Fatalf("the unit does not run /usr/local/bin/berth serve")
	}
	path := filepath.Join(t.TempDir(), "berth.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/berth", berthBin)), 0o644)
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(analyze, "security", "--offline=true", path).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for berth.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.0 {
		t.Errorf("the unit's exposure is %.1f of 10; want at most 2.0:\n%s", score, out)
	}
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=berth", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"ExecStartPre=/usr/local/bin/berth serve --config /etc/berth/berth.yaml --check"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
}
