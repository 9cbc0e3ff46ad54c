package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// DataPlane is a client of one registry's data plane, /v2/ and /acr/v1/ on its login server,
// with registry access tokens: what az acr repository and az acr manifest do. It signs in with a
// registry refresh token (Exchange, for a directory identity) or Basic credentials (the admin
// user, a repository token, a service principal), and asks the token endpoint the registry's
// challenge names for one access token per scope.
type DataPlane struct {
	// Base is scheme://login-server.
	Base string
	HTTP *http.Client
	// RefreshToken, or else User and Password, sign in.
	RefreshToken   string
	User, Password string

	once           sync.Once
	realm, service string
	challengeErr   error
	mu             sync.Mutex
	tokens         map[string]string // by scope
}

func (d *DataPlane) client() *Client { return &Client{BaseURL: d.Base, HTTP: d.HTTP} }

// challenge reads the registry's token realm and service from /v2/.
func (d *DataPlane) challenge(ctx context.Context) error {
	d.once.Do(func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.Base+"/v2/", nil)
		if err != nil {
			d.challengeErr = err
			return
		}
		resp, err := d.HTTP.Do(req)
		if err != nil {
			d.challengeErr = err
			return
		}
		resp.Body.Close()
		scheme, params := ParseChallenge(resp.Header.Get("WWW-Authenticate"))
		if resp.StatusCode != http.StatusUnauthorized || scheme != "bearer" || params["realm"] == "" {
			d.challengeErr = fmt.Errorf("client: %s/v2/ answered %d without a bearer challenge", d.Base, resp.StatusCode)
			return
		}
		d.realm, d.service = params["realm"], params["service"]
	})
	return d.challengeErr
}

// Challenge returns the realm (the token endpoint) and service of the registry's challenge.
func (d *DataPlane) Challenge(ctx context.Context) (realm, service string, err error) {
	if err := d.challenge(ctx); err != nil {
		return "", "", err
	}
	return d.realm, d.service, nil
}

// token returns an access token for scope (one request per scope and DataPlane).
func (d *DataPlane) token(ctx context.Context, scope string) (string, error) {
	d.mu.Lock()
	t, ok := d.tokens[scope]
	d.mu.Unlock()
	if ok {
		return t, nil
	}
	if err := d.challenge(ctx); err != nil {
		return "", err
	}
	var req *http.Request
	var err error
	if d.RefreshToken != "" {
		f := url.Values{"grant_type": {"refresh_token"}, "service": {d.service}, "scope": {scope}, "refresh_token": {d.RefreshToken}}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, d.realm, strings.NewReader(f.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, d.realm+"?"+url.Values{"service": {d.service}, "scope": {scope}}.Encode(), nil)
		if err == nil {
			req.SetBasicAuth(d.User, d.Password)
		}
	}
	if err != nil {
		return "", err
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := d.client().send(req, &out); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tokens == nil {
		d.tokens = map[string]string{}
	}
	d.tokens[scope] = out.AccessToken
	return out.AccessToken, nil
}

// do sends one request with an access token for scope and decodes the reply into out; it
// returns the reply's Link target for the next page, if any.
func (d *DataPlane) do(ctx context.Context, method, path, scope string, in, out any) (next string, err error) {
	tok, err := d.token(ctx, scope)
	if err != nil {
		return "", err
	}
	var body *strings.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return "", err
		}
		body = strings.NewReader(string(b))
	}
	var req *http.Request
	if body != nil {
		req, err = http.NewRequestWithContext(ctx, method, d.Base+path, body)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, d.Base+path, nil)
	}
	if err != nil {
		return "", err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	var link string
	c := d.client()
	c.onReply = func(resp *http.Response) { link = linkNext(resp.Header.Get("Link")) }
	err = c.send(req, out)
	return link, err
}

// linkNext is the target of a Link header's rel="next".
func linkNext(h string) string {
	target, params, ok := strings.Cut(h, ";")
	if !ok || !strings.Contains(params, `rel="next"`) {
		return ""
	}
	return strings.Trim(strings.TrimSpace(target), "<>")
}

func repoScope(repo, actions string) string { return "repository:" + repo + ":" + actions }

func acrPath(repo string) string { return "/acr/v1/" + repo }

// Catalog lists the repositories (the whole catalog, page by page, at most top when top > 0).
func (d *DataPlane) Catalog(ctx context.Context, top int) ([]string, error) {
	out := []string{}
	for path := "/v2/_catalog?n=100"; path != ""; {
		var page struct {
			Repositories []string `json:"repositories"`
		}
		next, err := d.do(ctx, http.MethodGet, path, "registry:catalog:*", nil, &page)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Repositories...)
		if top > 0 && len(out) >= top {
			return out[:top], nil
		}
		path = next
	}
	return out, nil
}

// CatalogPage lists at most n repositories after last (the catalog's order); more says whether
// others follow.
func (d *DataPlane) CatalogPage(ctx context.Context, n int, last string) (repos []string, more bool, err error) {
	q := url.Values{"n": {strconv.Itoa(n)}}
	if last != "" {
		q.Set("last", last)
	}
	var page struct {
		Repositories []string `json:"repositories"`
	}
	next, err := d.do(ctx, http.MethodGet, "/v2/_catalog?"+q.Encode(), "registry:catalog:*", nil, &page)
	if page.Repositories == nil {
		page.Repositories = []string{}
	}
	return page.Repositories, next != "", err
}

// Repository describes a repository.
func (d *DataPlane) Repository(ctx context.Context, repo string) (RepositoryAttributes, error) {
	var out RepositoryAttributes
	_, err := d.do(ctx, http.MethodGet, acrPath(repo), repoScope(repo, "metadata_read"), nil, &out)
	return out, err
}

// listQuery is the query of a listing: orderby (timedesc, timeasc or "") and the page size.
func listQuery(orderby string, top int) string {
	n := 100
	if top > 0 && top < n {
		n = top
	}
	q := url.Values{"n": {strconv.Itoa(n)}}
	if orderby != "" {
		q.Set("orderby", orderby)
	}
	return "?" + q.Encode()
}

// Tags lists a repository's tags, page by page (at most top when top > 0).
func (d *DataPlane) Tags(ctx context.Context, repo, orderby string, top int) ([]TagAttributes, error) {
	out := []TagAttributes{}
	for path := acrPath(repo) + "/_tags" + listQuery(orderby, top); path != ""; {
		var page TagList
		next, err := d.do(ctx, http.MethodGet, path, repoScope(repo, "metadata_read"), nil, &page)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Tags...)
		if top > 0 && len(out) >= top {
			return out[:top], nil
		}
		path = next
	}
	return out, nil
}

// Manifests lists a repository's manifests, page by page (at most top when top > 0).
func (d *DataPlane) Manifests(ctx context.Context, repo, orderby string, top int) ([]ManifestAttributes, error) {
	out := []ManifestAttributes{}
	for path := acrPath(repo) + "/_manifests" + listQuery(orderby, top); path != ""; {
		var page ManifestList
		next, err := d.do(ctx, http.MethodGet, path, repoScope(repo, "metadata_read"), nil, &page)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Manifests...)
		if top > 0 && len(out) >= top {
			return out[:top], nil
		}
		path = next
	}
	return out, nil
}

// Tag describes one tag.
func (d *DataPlane) Tag(ctx context.Context, repo, tag string) (TagAttributes, error) {
	var out TagReply
	_, err := d.do(ctx, http.MethodGet, acrPath(repo)+"/_tags/"+url.PathEscape(tag), repoScope(repo, "metadata_read"), nil, &out)
	return out.Tag, err
}

// Manifest describes one manifest, by digest or tag.
func (d *DataPlane) Manifest(ctx context.Context, repo, ref string) (ManifestAttributes, error) {
	var out ManifestReply
	_, err := d.do(ctx, http.MethodGet, acrPath(repo)+"/_manifests/"+url.PathEscape(ref), repoScope(repo, "metadata_read"), nil, &out)
	return out.Manifest, err
}

// DeleteRepository deletes a repository with everything in it.
func (d *DataPlane) DeleteRepository(ctx context.Context, repo string) (DeletedRepository, error) {
	var out DeletedRepository
	_, err := d.do(ctx, http.MethodDelete, acrPath(repo), repoScope(repo, "delete"), nil, &out)
	return out, err
}

// Untag removes a tag, leaving its manifest.
func (d *DataPlane) Untag(ctx context.Context, repo, tag string) error {
	_, err := d.do(ctx, http.MethodDelete, acrPath(repo)+"/_tags/"+url.PathEscape(tag), repoScope(repo, "delete"), nil, nil)
	return err
}

// DeleteManifest deletes a manifest and every tag pointing at it.
func (d *DataPlane) DeleteManifest(ctx context.Context, repo, digest string) error {
	_, err := d.do(ctx, http.MethodDelete, acrPath(repo)+"/_manifests/"+url.PathEscape(digest), repoScope(repo, "delete"), nil, nil)
	return err
}

// UpdateRepository changes a repository's attributes.
func (d *DataPlane) UpdateRepository(ctx context.Context, repo string, u ChangeableAttributesUpdate) (RepositoryAttributes, error) {
	var out RepositoryAttributes
	_, err := d.do(ctx, http.MethodPatch, acrPath(repo), repoScope(repo, "metadata_write"), u, &out)
	return out, err
}

// UpdateTag changes a tag's attributes.
func (d *DataPlane) UpdateTag(ctx context.Context, repo, tag string, u ChangeableAttributesUpdate) (TagAttributes, error) {
	var out TagReply
	_, err := d.do(ctx, http.MethodPatch, acrPath(repo)+"/_tags/"+url.PathEscape(tag), repoScope(repo, "metadata_write"), u, &out)
	return out.Tag, err
}

// UpdateManifest changes a manifest's attributes.
func (d *DataPlane) UpdateManifest(ctx context.Context, repo, digest string, u ChangeableAttributesUpdate) (ManifestAttributes, error) {
	var out ManifestReply
	_, err := d.do(ctx, http.MethodPatch, acrPath(repo)+"/_manifests/"+url.PathEscape(digest), repoScope(repo, "metadata_write"), u, &out)
	return out.Manifest, err
}

// ManifestChildren lists the manifests an index (or manifest list) names, read through /v2/.
func (d *DataPlane) ManifestChildren(ctx context.Context, repo, digest string) ([]string, error) {
	var idx struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	tok, err := d.token(ctx, repoScope(repo, "pull"))
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.Base+"/v2/"+repo+"/manifests/"+digest, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json")
	if err := d.client().send(req, &idx); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(idx.Manifests))
	for _, m := range idx.Manifests {
		out = append(out, m.Digest)
	}
	return out, nil
}

// maxManifestBody bounds a manifest read through /v2/ (berth's own bound is 4 MiB by default).
const maxManifestBody = 16 << 20

// ManifestBody reads a manifest through /v2/ as stored, with its media type.
func (d *DataPlane) ManifestBody(ctx context.Context, repo, ref string) ([]byte, string, error) {
	tok, err := d.token(ctx, repoScope(repo, "pull"))
	if err != nil {
		return nil, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.Base+"/v2/"+repo+"/manifests/"+url.PathEscape(ref), nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", strings.Join([]string{"application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json"}, ", "))
	resp, err := d.HTTP.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBody+1))
	switch {
	case err != nil:
		return nil, "", err
	case resp.StatusCode != http.StatusOK:
		return nil, "", replyError(resp, b)
	case len(b) > maxManifestBody:
		return nil, "", fmt.Errorf("client: the manifest is larger than %d bytes", maxManifestBody)
	}
	return b, resp.Header.Get("Content-Type"), nil
}

// DeletedRepositories lists the repositories holding soft-deleted manifests.
func (d *DataPlane) DeletedRepositories(ctx context.Context) ([]string, error) {
	var out struct {
		Repositories []string `json:"repositories"`
	}
	_, err := d.do(ctx, http.MethodGet, "/acr/v1/_deleted/_catalog", "registry:catalog:*", nil, &out)
	return out.Repositories, err
}

// DeletedManifests lists a repository's soft-deleted manifests, the most recently deleted first.
func (d *DataPlane) DeletedManifests(ctx context.Context, repo string) ([]DeletedManifest, error) {
	var out DeletedManifestList
	_, err := d.do(ctx, http.MethodGet, "/acr/v1/_deleted/"+repo+"/_manifests", repoScope(repo, "metadata_read"), nil, &out)
	return out.Manifests, err
}

// DeletedTags lists the tags of a repository's soft-deleted manifests.
func (d *DataPlane) DeletedTags(ctx context.Context, repo string) ([]DeletedTag, error) {
	var out DeletedTagList
	_, err := d.do(ctx, http.MethodGet, "/acr/v1/_deleted/"+repo+"/_tags", repoScope(repo, "metadata_read"), nil, &out)
	return out.Tags, err
}

// Restore brings a soft-deleted manifest back, tagged tag (if set); force moves a tag now
// pointing elsewhere.
func (d *DataPlane) Restore(ctx context.Context, repo, digest, tag string, force bool) (ManifestAttributes, error) {
	var out ManifestReply
	var body any
	if tag != "" {
		body = map[string]string{"tag": tag}
	}
	_, err := d.do(ctx, http.MethodPost, "/acr/v1/_deleted/"+repo+"/_manifests/"+url.PathEscape(digest)+"?force="+strconv.FormatBool(force),
		repoScope(repo, "pull,push"), body, &out)
	return out.Manifest, err
}
