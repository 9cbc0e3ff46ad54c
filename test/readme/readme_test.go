package readme

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	doc := "# t\n\n<!-- readme-test: background until http://localhost:5000/readyz answers -->\n```sh\ngo run ./cmd/berth serve\n```\n\n" +
		"text\n```yaml\nkey: 1\n```\n```sh\na\n\nb\n```\n<!-- readme-test: not run: needs a GPU -->\n```bash\nc\n```\n"
	blocks, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []Block{
		{Line: 4, Code: "go run ./cmd/berth serve\n", Background: "http://localhost:5000/readyz"},
		{Line: 12, Code: "a\n\nb\n"},
		{Line: 18, Code: "c\n", NotRun: "needs a GPU"},
	}
	if fmt.Sprint(blocks) != fmt.Sprint(want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", blocks, want)
	}
	for _, bad := range []string{
		"<!-- readme-test: sometimes -->\n```sh\na\n```\n",
		"<!-- readme-test: not run: -->\n```sh\na\n```\n",
		"<!-- readme-test: not run: why -->\n```yaml\na\n```\n",
		"<!-- readme-test: not run: why -->\ntext between\n```sh\na\n```\n",
		"```sh\na\n",
		"text\n<!-- readme-test: not run: why -->\n",
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted it", bad)
		}
	}
}

// TestScript: the script stops at the first failing command and names its block; blocks share
// one shell.
func TestScript(t *testing.T) {
	blocks := []Block{{Doc: "D.md", Line: 3, Code: "X=1\n"}, {Doc: "D.md", Line: 7, Code: "echo x=$X\nfalse\necho after\n"}, {Doc: "D.md", Line: 9, Code: "echo never\n"}}
	out, err := exec.Command("bash", "-c", Script(blocks, t.TempDir())).CombinedOutput()
	if err == nil {
		t.Fatalf("a failing block: the script succeeded:\n%s", out)
	}
	for _, want := range []string{"=== block 1 done", "x=1", "=== block 2 (D.md:7) failed: exit 1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("script output lacks %q:\n%s", want, out)
		}
	}
	for _, not := range []string{"after", "never", "block 2 done"} {
		if strings.Contains(string(out), not) {
			t.Errorf("script output has %q after the failure:\n%s", not, out)
		}
	}
}

// TestREADME runs README.md as written against a fresh berth (see the package comment). It
// needs port 5000 free and the clients the README uses (scripts/install-test-tools.sh), so it
// runs in its own stage of scripts/test.sh, with BERTH_README_TEST=1.
func TestREADME(t *testing.T) {
	if os.Getenv("BERTH_README_TEST") != "1" {
		t.Skip("the README runs in its own stage of scripts/test.sh (BERTH_README_TEST=1): it needs port 5000 and the clients")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	// README.md, then every guide in docs/, in one shell: the guides' blocks run after the
	// walkthrough, beside its server, unless marked.
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	var blocks []Block
	for _, path := range append([]string{filepath.Join(root, "README.md")}, docs...) {
		doc, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, path)
		bs, err := Parse(string(doc))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		for i := range bs {
			bs[i].Doc = rel
		}
		blocks = append(blocks, bs...)
	}
	if ln, err := net.Listen("tcp", ":5000"); err != nil {
		t.Fatalf("port 5000 is taken: the README's server needs it: %v", err)
	} else {
		ln.Close()
	}

	work := t.TempDir()
	clone, home, logs := filepath.Join(work, "berth"), filepath.Join(work, "home"), filepath.Join(work, "logs")
	for _, d := range []string{home, logs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyCheckout(t, root, clone)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", Script(blocks, logs))
	cmd.Dir = clone
	cmd.Env = freshEnv(home)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // the background server, and anything else the blocks left running
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		time.Sleep(500 * time.Millisecond)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	err = cmd.Wait()
	ran, skipped := 0, []string{}
	for i, b := range blocks {
		if b.NotRun != "" {
			skipped = append(skipped, fmt.Sprintf("%s:%d: %s", b.Doc, b.Line, b.NotRun))
			continue
		}
		ran++
		if !strings.Contains(out.String(), fmt.Sprintf("=== block %d done\n", i+1)) && err == nil {
			t.Errorf("block %d (%s:%d) did not finish, yet the script succeeded", i+1, b.Doc, b.Line)
		}
	}
	if err != nil || !strings.Contains(out.String(), "=== all blocks done") {
		t.Fatalf("README.md and docs/, run as written: %v\n%s%s", err, tail(out.String(), 120), backgroundLogs(logs))
	}
	t.Logf("README.md and docs/, run as written:\n%s", out.String())
	t.Logf("%d shell blocks ran, in order; not run (%d):\n  %s", ran, len(skipped), strings.Join(skipped, "\n  "))
}

// copyCheckout copies the repository's files (what git tracks, and what it would add) into dst:
// what a fresh clone holds, and no berth-data or bin folder of a developer's.
func copyCheckout(t *testing.T, root, dst string) {
	t.Helper()
	list := exec.Command("git", "ls-files", "-co", "--exclude-standard", "-z")
	list.Dir = root
	names, err := list.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(names), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		info, err := os.Lstat(src)
		if err != nil {
			continue // deleted in the working tree
		}
		if !info.Mode().IsRegular() {
			continue
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		o, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
		if err == nil {
			_, err = io.Copy(o, in)
			err = errors.Join(err, o.Close())
		}
		in.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// freshEnv is the environment of a new user's shell: this one's PATH and Go caches (so that
// nothing is downloaded twice), a home of its own, and none of berth's or the tests' settings.
func freshEnv(home string) []string {
	env := []string{"HOME=" + home, "USER=" + os.Getenv("USER"), "LANG=C.UTF-8", "TERM=dumb"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "PATH", k == "TMPDIR", strings.HasPrefix(k, "GO") && k != "GOFLAGS":
			env = append(env, kv)
		}
	}
	for _, k := range []string{"GOPATH", "GOMODCACHE", "GOCACHE"} {
		if os.Getenv(k) == "" {
			if v, err := exec.Command("go", "env", k).Output(); err == nil {
				env = append(env, k+"="+strings.TrimSpace(string(v)))
			}
		}
	}
	return env
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func backgroundLogs(dir string) string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(dir, "background-*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "\n--- %s (last lines)\n%s", filepath.Base(f), tail(string(data), 30))
	}
	return b.String()
}
