package checkhealth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// nullGUID is the user name under which a berth refresh or access token is stored.
const nullGUID = "00000000-0000-0000-0000-000000000000"

// credential is one set of stored credentials for the login server.
type credential struct {
	source         string // "docker config /home/u/.docker/config.json"
	user, password string
}

// credentialFiles are the files docker, podman and helm keep registry credentials in, per
// their environment variables and defaults.
func (r *run) credentialFiles() []struct{ tool, path string } {
	env := r.Getenv
	home := env("HOME")
	var out []struct{ tool, path string }
	seen := map[string]bool{}
	add := func(tool, path string) {
		if path != "" && !seen[path] { // podman may be pointed at docker's file
			seen[path] = true
			out = append(out, struct{ tool, path string }{tool, path})
		}
	}
	if d := env("DOCKER_CONFIG"); d != "" {
		add("docker", filepath.Join(d, "config.json"))
	} else if home != "" {
		add("docker", filepath.Join(home, ".docker", "config.json"))
	}
	switch {
	case env("REGISTRY_AUTH_FILE") != "":
		add("podman", env("REGISTRY_AUTH_FILE"))
	case env("XDG_RUNTIME_DIR") != "":
		add("podman", filepath.Join(env("XDG_RUNTIME_DIR"), "containers", "auth.json"))
	}
	if home != "" {
		add("podman", filepath.Join(home, ".config", "containers", "auth.json"))
	}
	switch {
	case env("HELM_REGISTRY_CONFIG") != "":
		add("helm", env("HELM_REGISTRY_CONFIG"))
	case env("HELM_CONFIG_HOME") != "":
		add("helm", filepath.Join(env("HELM_CONFIG_HOME"), "registry", "config.json"))
	case env("XDG_CONFIG_HOME") != "":
		add("helm", filepath.Join(env("XDG_CONFIG_HOME"), "helm", "registry", "config.json"))
	case home != "":
		add("helm", filepath.Join(home, ".config", "helm", "registry", "config.json"))
	}
	return out
}

type authFile struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// normalizeKey reduces an auths key ("https://host/v1/", "host") to host[:port].
func normalizeKey(k string) string {
	k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
	k, _, _ = strings.Cut(k, "/")
	return k
}

// findCredentials reads the credentials stored for the login server. Entries stored under the
// login server in other letter case are reported: docker does not use them.
func (r *run) findCredentials() ([]credential, error) {
	var out []credential
	for _, f := range r.credentialFiles() {
		b, err := os.ReadFile(f.path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			r.warn("stored credentials", "Cannot read %s: %v", f.path, err)
			continue
		}
		var af authFile
		if err := json.Unmarshal(b, &af); err != nil {
			r.warn("stored credentials", "%s is not valid JSON (%v): %s cannot use it either", f.path, err, f.tool)
			continue
		}
		keys := make([]string, 0, len(af.Auths))
		for k := range af.Auths {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			host := normalizeKey(k)
			if host != r.loginServer {
				if strings.EqualFold(host, r.loginServer) {
					if err := r.fail("stored credentials", "REGISTRY_NAME_UPPERCASE_ERROR",
						fmt.Sprintf("%s %s holds credentials under %q, which do not apply to %q", f.tool, f.path, k, r.loginServer), 0); err != nil {
						return nil, err
					}
				}
				continue
			}
			e := af.Auths[k]
			c := credential{source: f.tool + " " + f.path}
			switch {
			case e.IdentityToken != "":
				c.user, c.password = nullGUID, e.IdentityToken
			case e.Auth != "":
				raw, err := base64.StdEncoding.DecodeString(e.Auth)
				user, pass, ok := strings.Cut(string(raw), ":")
				if err != nil || !ok {
					r.warn("stored credentials", "The entry %q of %s is not base64 of user:password", k, f.path)
					continue
				}
				c.user, c.password = user, pass
			default:
				helper := af.CredHelpers[k]
				if helper == "" {
					helper = af.CredsStore
				}
				if helper == "" {
					continue
				}
				user, pass, err := r.credentialHelper(helper, k)
				if err != nil {
					r.warn("stored credentials", "The credential helper docker-credential-%s of %s did not give the credentials for %s: %v", helper, f.path, k, err)
					continue
				}
				c.user, c.password, c.source = user, pass, c.source+" (docker-credential-"+helper+")"
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// credentialHelper runs `docker-credential-NAME get`.
func (r *run) credentialHelper(name, server string) (user, secret string, err error) {
	path, err := exec.LookPath("docker-credential-" + name)
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(r.ctx, toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "get")
	cmd.Stdin = strings.NewReader(server)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return "", "", err
	}
	var v struct{ Username, Secret string }
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		return "", "", err
	}
	return v.Username, v.Secret, nil
}

// jwtExpiry reads the exp claim of a JWT without verifying it (only the registry can).
func jwtExpiry(tok string) (time.Time, bool) {
	claims, ok := jwtClaims(tok)
	if !ok || claims.Exp == 0 {
		return time.Time{}, false
	}
	return time.Unix(claims.Exp, 0), true
}

type claims struct {
	Exp    int64 `json:"exp"`
	Access []struct {
		Type, Name string
		Actions    []string
	} `json:"access"`
}

func jwtClaims(tok string) (claims, bool) {
	var c claims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return c, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(b, &c) != nil {
		return c, false
	}
	return c, true
}

// grantsPull reports whether an access token grants pull on repo.
func grantsPull(tok, repo string) bool {
	c, ok := jwtClaims(tok)
	if !ok {
		return false
	}
	for _, a := range c.Access {
		if a.Type == "repository" && a.Name == repo {
			for _, act := range a.Actions {
				if act == "pull" || act == "*" {
					return true
				}
			}
		}
	}
	return false
}

// anonymousPull reports whether anonymous clients may pull (the repository of --repository,
// else as the registry's settings say), and whether that is known.
func (r *run) anonymousPull(repo string) (allowed, known bool) {
	if repo != "" {
		tok, status, _, err := r.token("", "", "repository:"+repo+":pull")
		if err == nil && status == http.StatusOK {
			return grantsPull(tok, repo), true
		}
	}
	if r.anonymous != nil {
		return *r.anonymous, true
	}
	return false, false
}

// storedCredentials checks what docker, podman and helm would send to the login server.
func (r *run) storedCredentials() error {
	const check = "stored credentials"
	if r.realm == "" {
		return nil
	}
	creds, err := r.findCredentials()
	if err != nil {
		return err
	}
	if len(creds) == 0 {
		r.ok(check, "No credentials stored for %s (docker, podman, helm): clients pull anonymously or log in first", r.loginServer)
		return nil
	}
	repo, _ := splitRepository(r.Repository)
	scope := ""
	if repo != "" {
		scope = "repository:" + repo + ":pull"
	}
	// The pull check uses what a client would send: the first stored credentials, good or not.
	first := creds[0]
	r.pullAuth = &first
	for _, c := range creds {
		detail := ""
		expired := false
		if c.user == nullGUID {
			if exp, ok := jwtExpiry(c.password); ok && !r.Now().Before(exp) {
				expired, detail = true, fmt.Sprintf("%s: the stored token expired on %s", c.source, exp.UTC().Format(time.RFC3339))
			}
		}
		if !expired {
			_, status, msg, err := r.token(c.user, c.password, scope)
			switch {
			case err != nil:
				return r.fail(check, "UNEXPECTED_ERROR", err.Error(), 0)
			case status == http.StatusOK:
				r.ok(check, "Stored credentials for %s in %s (user %s) : OK", r.loginServer, c.source, c.user)
				continue
			case status == http.StatusTooManyRequests:
				if err := r.fail(check, "CONNECTIVITY_TOOMANYREQUESTS_ERROR", c.source+": "+msg, status); err != nil {
					return err
				}
				continue
			}
			detail = fmt.Sprintf("%s (user %s): %s", c.source, c.user, msg)
		}
		code := "STORED_CREDENTIALS_INVALID_ERROR"
		if expired || strings.Contains(detail, "password expired") {
			code = "STORED_CREDENTIALS_EXPIRED_ERROR"
		}
		if anon, _ := r.anonymousPull(repo); anon {
			code = "STORED_CREDENTIALS_ANONYMOUS_PULL_ERROR"
		}
		if err := r.fail(check, code, detail, 0); err != nil {
			return err
		}
	}
	return nil
}

// splitRepository splits REPO[:TAG] (default tag latest; a digest after @ is kept).
func splitRepository(s string) (repo, ref string) {
	if s == "" {
		return "", ""
	}
	if i := strings.Index(s, "@"); i >= 0 {
		return s[:i], s[i+1:]
	}
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		return s[:i], s[i+1:]
	}
	return s, "latest"
}

// maxPullBlob bounds the blob the pull check downloads.
const maxPullBlob = 64 << 20

var manifestAccept = strings.Join([]string{"application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json"}, ", ")

// pull fetches a manifest of --repository and its smallest blob, as the stored credentials (or
// the signed-in identity, or anonymously) would.
func (r *run) pull() error {
	const check = "pull"
	if r.realm == "" {
		return nil
	}
	repo, ref := splitRepository(r.Repository)
	if repo == "" {
		r.skip(check, "No --repository given: the pull check is skipped.")
		return nil
	}
	if !r.Yes {
		q := fmt.Sprintf("This will pull the manifest and the smallest blob of '%s/%s:%s'. Proceed?", r.loginServer, repo, ref)
		if r.Confirm == nil || !r.Confirm(q) {
			r.skip(check, "Skipping pull check (--yes runs it without asking).")
			return nil
		}
	}
	user, pass, who := "", "", "anonymously"
	switch {
	case r.pullAuth != nil:
		user, pass, who = r.pullAuth.user, r.pullAuth.password, "with the credentials in "+r.pullAuth.source
	case r.refresh != "":
		pass, who = r.refresh, "as the signed-in identity"
	}
	tok, status, msg, err := r.token(user, pass, "repository:"+repo+":pull")
	if err != nil || status != http.StatusOK {
		return r.fail(check, "CONNECTIVITY_PULL_ERROR", fmt.Sprintf("token for pull of %s: %s%v", repo, msg, errOrNil(err)), status)
	}
	base := r.scheme + "://" + r.loginServer + "/v2/" + repo
	body, mt, status, err := r.get(base+"/manifests/"+ref, tok, manifestAccept, 4<<20)
	if err != nil || status != http.StatusOK {
		return r.fail(check, "CONNECTIVITY_PULL_ERROR", fmt.Sprintf("GET %s/manifests/%s %s: %s", repo, ref, who, describe(body, status, err)), status)
	}
	var m struct {
		Manifests []struct{ Digest string } `json:"manifests"`
		Config    *struct {
			Digest string
			Size   int64
		} `json:"config"`
		Layers []struct {
			Digest string
			Size   int64
		} `json:"layers"`
	}
	if json.Unmarshal(body, &m) != nil {
		return r.fail(check, "CONNECTIVITY_PULL_ERROR", "the manifest of "+repo+":"+ref+" is not JSON ("+mt+")", status)
	}
	if len(m.Manifests) > 0 { // an index: follow its first manifest
		body, _, status, err = r.get(base+"/manifests/"+m.Manifests[0].Digest, tok, manifestAccept, 4<<20)
		if err != nil || status != http.StatusOK || json.Unmarshal(body, &m) != nil {
			return r.fail(check, "CONNECTIVITY_PULL_ERROR", "GET the index's first manifest: "+describe(body, status, err), status)
		}
	}
	blobs := m.Layers
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	if len(blobs) == 0 {
		r.ok(check, "The manifest of '%s:%s' can be pulled from registry '%s' %s (it references no blob) : OK", repo, ref, r.loginServer, who)
		return nil
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].Size < blobs[j].Size })
	small := blobs[0]
	if small.Size > maxPullBlob {
		r.ok(check, "The manifest of '%s:%s' can be pulled %s; its smallest blob (%d bytes) is too large to fetch here", repo, ref, who, small.Size)
		return nil
	}
	data, _, status, err := r.get(base+"/blobs/"+small.Digest, tok, "", maxPullBlob)
	if err != nil || status != http.StatusOK {
		return r.fail(check, "CONNECTIVITY_PULL_ERROR", fmt.Sprintf("GET blob %s: %s", small.Digest, describe(data, status, err)), status)
	}
	if alg, hexd, _ := strings.Cut(small.Digest, ":"); alg == "sha256" {
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != hexd {
			return r.fail(check, "CONNECTIVITY_PULL_ERROR", "blob "+small.Digest+" arrived with another digest", status)
		}
	}
	r.ok(check, "Blobs referenced by '%s:%s' can be pulled from registry '%s' %s : OK", repo, ref, r.loginServer, who)
	return nil
}

func (r *run) get(u, tok, accept string, limit int64) (body []byte, mediaType string, status int, err error) {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", 0, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := r.HTTP.Do(req)
	if err != nil {
		return nil, "", 0, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
	return body, resp.Header.Get("Content-Type"), resp.StatusCode, err
}

func describe(body []byte, status int, err error) string {
	if err != nil {
		return err.Error()
	}
	return serverMessage(body, status)
}

func errOrNil(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
