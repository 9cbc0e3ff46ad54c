package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestVersion: `berth version` prints the version, commit and Go version as JSON (and honours
// --query); `berth --version` prints them on one line; -ldflags values win over the build
// information.
func TestVersion(t *testing.T) {
	c := newCLI(t)
	var got buildInfo
	if err := json.Unmarshal([]byte(c.must("", "version")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Berth == "" || got.Commit == "" || got.Go != runtime.Version() || got.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("berth version: %+v", got)
	}
	Version, Commit = "v9.8.7", "0123456789abcdef0123"
	t.Cleanup(func() { Version, Commit = "", "" })
	if out := c.must("", "version", "--query", "berth", "-o", "tsv"); out != "v9.8.7\n" {
		t.Errorf("berth version --query berth -o tsv: %q", out)
	}
	line := c.must("", "--version")
	if !strings.HasPrefix(line, "berth v9.8.7 (commit 0123456789ab") || !strings.Contains(line, runtime.Version()) {
		t.Errorf("berth --version: %q", line)
	}
}

// TestServeCheck: serve --check validates the configuration, prints it with secrets hidden and
// exits without serving; a bad configuration fails it with the key's path and line.
func TestServeCheck(t *testing.T) {
	c := newCLI(t)
	out := c.must("", "serve", "--config", "../../deploy/berth.example.yaml", "--check")
	if !strings.Contains(out, "max_blob_bytes: 64GiB") || !strings.Contains(out, "throttled_delay: 500ms") {
		t.Errorf("serve --check of the example printed:\n%s", out)
	}
	dir := t.TempDir()
	kek := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("database: postgres://berth:s3cret-pw@db:5432/berth\nauth:\n  key_encryption_key: "+kek+"\n"), 0o600)
	out = c.must("", "serve", "--config", good, "--check")
	if strings.Contains(out, "s3cret-pw") || strings.Contains(out, kek) || !strings.Contains(out, "key_encryption_key: (set, hidden)") {
		t.Errorf("serve --check shows a secret:\n%s", out)
	}
	for _, tc := range []struct{ body, want string }{
		{"limits:\n  max_blob_byte: 1GiB\n", "line 2: unknown key limits.max_blob_byte (did you mean limits.max_blob_bytes?)"},
		{"database: postgres://berth@db/berth\n", "auth.key_encryption_key or auth.key_encryption_key_file: must be set with PostgreSQL"},
		{"auth:\n  key_encryption_key: short\n", "auth.key_encryption_key: not 32 bytes in base64"},
	} {
		bad := filepath.Join(dir, "bad.yaml")
		os.WriteFile(bad, []byte(tc.body), 0o600)
		if _, err := c.run("", "serve", "--config", bad, "--check"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve --check of %q: %v; want %q", tc.body, err, tc.want)
		}
	}
}
