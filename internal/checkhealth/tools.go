package checkhealth

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// toolTimeout bounds each command check-health runs.
const toolTimeout = 20 * time.Second

// command runs a tool and returns its trimmed output; a tool that is not installed gives
// exec.ErrNotFound.
func (r *run) command(name string, args ...string) (stdout, stderr string, err error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(r.ctx, toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return strings.TrimSpace(out.String()), strings.TrimSpace(errb.String()), err
}

// containerTool checks the container tool named by DOCKER_COMMAND and its daemon (`ps`), then
// its version. As in ACR, a missing tool ends the tool's checks; a daemon that is down does not.
func (r *run) containerTool() error {
	const check = "container tool"
	_, stderr, err := r.command(r.tool, "ps")
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return r.fail(check, "DOCKER_COMMAND_ERROR", "'"+r.tool+"' was not found on PATH", 0)
	case err != nil:
		if err := r.fail(check, "DOCKER_DAEMON_ERROR", firstLine(stderr, err), 0); err != nil {
			return err
		}
	default:
		r.ok(check, "%s daemon status: available", r.tool)
	}
	// Without a daemon, docker prints its client version and still exits 1: the version is what counts.
	version, stderr, err := r.command(r.tool, "version", "--format", "{{.Client.Version}}")
	if version == "" {
		return r.fail("container tool version", "DOCKER_VERSION_ERROR", firstLine(stderr, err), 0)
	}
	r.ok("container tool version", "%s version: %s", r.tool, firstLine(version, nil))
	return nil
}

// helm checks that helm is installed and answers its version; before 3.8 it cannot use OCI
// registries without an experimental flag.
func (r *run) helm() error {
	out, stderr, err := r.command("helm", "version", "--short")
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return r.fail("helm", "HELM_COMMAND_ERROR", "'helm' was not found on PATH", 0)
	case err != nil || out == "":
		return r.fail("helm version", "HELM_VERSION_ERROR", firstLine(stderr, err), 0)
	}
	v := firstLine(out, nil)
	if major, minor, ok := semver(v); ok && (major < 3 || major == 3 && minor < 8) {
		r.warn("helm version", "Helm version: %s. Current Helm client version is not recommended: OCI registries need helm 3.8 or later.", v)
		return nil
	}
	r.ok("helm version", "Helm version: %s", v)
	return nil
}

// semver reads the major and minor of "v3.22.0+g1234" or "v3.22".
func semver(v string) (major, minor int, ok bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return major, minor, err1 == nil && err2 == nil
}

// firstLine is the first line of s, or err's text when s is empty.
func firstLine(s string, err error) string {
	s = strings.TrimSpace(s)
	if s == "" && err != nil {
		return err.Error()
	}
	line, _, _ := strings.Cut(s, "\n")
	return line
}
