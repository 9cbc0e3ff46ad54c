package portal

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/client"
)

// planes keeps each session's data-plane clients for a while (their registry refresh token and
// access tokens), so that browsing does not sign in again on every page.
type planes struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]planeEntry
}

type planeEntry struct {
	dp      *client.DataPlane
	expires time.Time
}

// planeLife is how long a data-plane client is kept (its refresh token lasts hours).
const planeLife = 10 * time.Minute

// maxPlanes bounds the cache.
const maxPlanes = 10_000

func newPlanes(now func() time.Time) *planes { return &planes{now: now, m: map[string]planeEntry{}} }

func (p *planes) get(key string) *client.DataPlane {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[key]
	if !ok || p.now().After(e.expires) {
		delete(p.m, key)
		return nil
	}
	return e.dp
}

// forget drops one client (its sign-in was refused).
func (p *planes) forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, key)
}

// planeKey names the call's session's client of its registry.
func planeKey(x *call) string { return x.s.ID + "\x00" + x.v.Registry.Name }

// drop forgets a session's clients (at sign-out).
func (p *planes) drop(session string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.m {
		if strings.HasPrefix(k, session+"\x00") {
			delete(p.m, k)
		}
	}
}

func (p *planes) put(key string, dp *client.DataPlane) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if len(p.m) >= maxPlanes { // full: the expired go first, then any until there is room
		for k, e := range p.m {
			if now.After(e.expires) {
				delete(p.m, k)
			}
		}
		for k := range p.m {
			if len(p.m) < maxPlanes {
				break
			}
			delete(p.m, k)
		}
	}
	p.m[key] = planeEntry{dp: dp, expires: now.Add(planeLife)}
}

// dataPlane is the user's client of the registry's /v2/ and /acr/v1/: the directory token is
// exchanged for a registry refresh token, as 'berth acr login' does.
func (h *Handler) dataPlane(x *call) (*client.DataPlane, error) {
	key := planeKey(x)
	if dp := h.planes.get(key); dp != nil {
		return dp, nil
	}
	dp := &client.DataPlane{Base: "http://" + x.v.Registry.LoginServer, HTTP: h.inProcessClient()}
	realm, service, err := dp.Challenge(x.ctx)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(realm)
	if err != nil {
		return nil, err
	}
	if dp.RefreshToken, err = x.c.Exchange(x.ctx, "http://"+u.Host, service); err != nil {
		return nil, err
	}
	h.planes.put(key, dp)
	return dp, nil
}

// planeErr keeps a data-plane refusal from ending the session: the registry answers 401 for a
// scope the user's roles do not give (insufficient_scope), which is a refusal, not a sign-out.
func planeErr(err error) error {
	var e *client.Error
	if errors.As(err, &e) && e.Status == http.StatusUnauthorized {
		c := *e
		c.Status = http.StatusForbidden
		return &c
	}
	return err
}

// pageSize is how many repositories, tags or manifests a page lists.
const pageSize = 100

type repositoriesData struct {
	Repositories []string
	Last         string
	More         bool
}

func (h *Handler) repositories(x *call) error {
	d := repositoriesData{}
	if x.v.Perms.Can("catalog") {
		dp, err := h.dataPlane(x)
		if err != nil {
			return err
		}
		if d.Repositories, d.More, err = dp.CatalogPage(x.ctx, pageSize, x.r.URL.Query().Get("last")); err != nil {
			return err
		}
		if n := len(d.Repositories); n > 0 {
			d.Last = d.Repositories[n-1]
		}
	}
	return h.page(x, "repositories", "repositories", "Repositories", d)
}

type repositoryData struct {
	Name       string
	Attributes client.RepositoryAttributes
	Tags       []client.TagAttributes
	Manifests  []client.ManifestAttributes
	Perms      client.Permissions
}

// repositoryFrame reads the repository named by ?name= (or the form's repository) and what the
// user may do on it.
func (h *Handler) repositoryFrame(x *call, name string) (*client.DataPlane, client.Permissions, error) {
	perms, err := x.c.MyPermissions(x.ctx, x.v.Registry.Name, name)
	if err != nil {
		return nil, perms, err
	}
	dp, err := h.dataPlane(x)
	return dp, perms, err
}

func (h *Handler) repository(x *call) error {
	name := x.r.URL.Query().Get("name")
	if name == "" {
		name = x.r.PostForm.Get("repository")
	}
	dp, perms, err := h.repositoryFrame(x, name)
	if err != nil {
		return err
	}
	d := repositoryData{Name: name, Perms: perms}
	if d.Attributes, err = dp.Repository(x.ctx, name); err != nil {
		return err
	}
	if d.Tags, err = dp.Tags(x.ctx, name, "timedesc", pageSize); err != nil {
		return err
	}
	if d.Manifests, err = dp.Manifests(x.ctx, name, "timedesc", pageSize); err != nil {
		return err
	}
	return h.page(x, "repository", "repositories", name, d)
}

type manifestData struct {
	Repository  string
	Reference   string
	Attributes  client.ManifestAttributes
	Perms       client.Permissions
	MediaType   string
	Config      *descriptor
	Layers      []descriptor
	Children    []descriptor
	Referrers   []client.ManifestAttributes
	Subject     string
	Annotations map[string]string
	Body        string
}

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType"`
	Annotations  map[string]string `json:"annotations"`
	Platform     *struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Variant      string `json:"variant"`
	} `json:"platform"`
}

func (h *Handler) manifest(x *call) error {
	q := x.r.URL.Query()
	repo, ref := q.Get("repository"), q.Get("reference")
	if repo == "" {
		repo, ref = x.r.PostForm.Get("repository"), x.r.PostForm.Get("digest")
	}
	dp, perms, err := h.repositoryFrame(x, repo)
	if err != nil {
		return err
	}
	d := manifestData{Repository: repo, Reference: ref, Perms: perms}
	if d.Attributes, err = dp.Manifest(x.ctx, repo, ref); err != nil {
		return err
	}
	body, mt, err := dp.ManifestBody(x.ctx, repo, d.Attributes.Digest)
	if err != nil {
		return err
	}
	d.MediaType = mt
	var m struct {
		Config      *descriptor       `json:"config"`
		Layers      []descriptor      `json:"layers"`
		Manifests   []descriptor      `json:"manifests"`
		Subject     *descriptor       `json:"subject"`
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(body, &m) == nil {
		d.Config, d.Layers, d.Children, d.Annotations = m.Config, m.Layers, m.Manifests, m.Annotations
		if m.Subject != nil {
			d.Subject = m.Subject.Digest
		}
	}
	if len(body) <= 64<<10 {
		d.Body = string(body)
	}
	all, err := dp.Manifests(x.ctx, repo, "timedesc", 1000)
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.Subject == d.Attributes.Digest {
			d.Referrers = append(d.Referrers, o)
		}
	}
	return h.page(x, "manifest", "repositories", repo+"@"+short(d.Attributes.Digest), d)
}

func short(digest string) string {
	if len(digest) > 19 {
		return digest[:19]
	}
	return digest
}

func (h *Handler) untag(x *call) (string, error) {
	dp, err := h.dataPlane(x)
	if err != nil {
		return "", err
	}
	return "untagged", dp.Untag(x.ctx, x.r.PostForm.Get("repository"), x.r.PostForm.Get("tag"))
}

func (h *Handler) deleteManifest(x *call) (string, error) {
	dp, err := h.dataPlane(x)
	if err != nil {
		return "", err
	}
	return "manifest-deleted", dp.DeleteManifest(x.ctx, x.r.PostForm.Get("repository"), x.r.PostForm.Get("digest"))
}

// lock changes the locks (changeable attributes) of a repository, or of a manifest when the form
// names a digest.
func (h *Handler) lock(x *call) (string, error) {
	dp, err := h.dataPlane(x)
	if err != nil {
		return "", err
	}
	f := x.r.PostForm
	on := func(k string) *bool { v := f.Get(k) == "true"; return &v }
	u := client.ChangeableAttributesUpdate{DeleteEnabled: on("deleteEnabled"), WriteEnabled: on("writeEnabled")}
	if d := f.Get("digest"); d != "" {
		_, err = dp.UpdateManifest(x.ctx, f.Get("repository"), d, u)
	} else {
		u.ReadEnabled, u.ListEnabled = on("readEnabled"), on("listEnabled")
		_, err = dp.UpdateRepository(x.ctx, f.Get("repository"), u)
	}
	return "locks-saved", err
}

func (h *Handler) deleteRepository(x *call) (string, error) {
	dp, err := h.dataPlane(x)
	if err != nil {
		return "", err
	}
	_, err = dp.DeleteRepository(x.ctx, x.r.PostForm.Get("repository"))
	return "repository-deleted", err
}
