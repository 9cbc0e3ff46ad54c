package distribution

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/audit"
	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/hosts"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/reqlog"
	"github.com/berth-registry/berth/internal/store"
)

// The soft-deleted content, as ACR's /acr/v1/_deleted/: the repositories that hold some
// (the catalog action), a repository's deleted manifests and tags (metadata_read), and a
// restore (push: it writes the repository again).
const deletedPrefix = ACRPrefix + "_deleted/"

// maxDeletedListing bounds one listing of soft-deleted manifests.
const maxDeletedListing = 1000

func (h *Handler) serveDeleted(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	rest := strings.TrimPrefix(r.URL.Path, deletedPrefix)
	reg, ok := hosts.RegistryFrom(ctx)
	if !ok {
		return errors.New("distribution: request has no registry")
	}
	var repo, digest string
	var action policy.Action
	res := policy.Resource{Registry: reg.Name, Type: policy.TypeRegistry, Name: "catalog"}
	listing := ""
	switch {
	case rest == "_catalog" && r.Method == http.MethodGet:
		action, listing = policy.ActionCatalog, "catalog"
	case strings.HasSuffix(rest, "/_manifests") && r.Method == http.MethodGet:
		repo, action, listing = strings.TrimSuffix(rest, "/_manifests"), policy.ActionMetadataRead, "manifests"
	case strings.HasSuffix(rest, "/_tags") && r.Method == http.MethodGet:
		repo, action, listing = strings.TrimSuffix(rest, "/_tags"), policy.ActionMetadataRead, "tags"
	case strings.Contains(rest, "/_manifests/") && r.Method == http.MethodPost:
		i := strings.LastIndex(rest, "/_manifests/")
		repo, digest, action = rest[:i], rest[i+len("/_manifests/"):], policy.ActionPush
	default:
		return httperr.New(oci.CodeUnsupported, "%s %s is not an endpoint of the deleted-content API (GET _catalog, GET REPO/_manifests, GET REPO/_tags, POST REPO/_manifests/DIGEST)",
			r.Method, truncate(r.URL.Path)).WithStatus(http.StatusNotFound)
	}
	if repo != "" {
		if err := oci.ValidateName(repo); err != nil {
			return httperr.New(oci.CodeNameInvalid, "%v", err).WithDetail(map[string]string{"name": truncate(repo)})
		}
		res = policy.Resource{Registry: reg.Name, Type: policy.TypeRepository, Name: repo}
	}
	p, err := h.authn.Authenticate(ctx, r)
	h.loginEvent(r, reg, p, err)
	if err != nil {
		return authnError(r, action, res, err)
	}
	r = r.WithContext(authn.WithPrincipal(ctx, p))
	if !p.IsAnonymous() {
		reqlog.SetIdentity(ctx, &p)
	}
	if _, err := h.authorize(r, p, action, res); err != nil {
		return err
	}
	loginServer := audit.LoginServer(r, reg)
	switch listing {
	case "catalog":
		repos, err := h.meta.DeletedRepositories(ctx, reg.ID)
		if err != nil {
			return err
		}
		if repos == nil {
			repos = []string{}
		}
		return writeJSON(w, r, "application/json", struct {
			Repositories []string `json:"repositories"`
		}{repos})
	case "manifests", "tags":
		list, err := h.meta.DeletedManifests(ctx, reg.ID, repo, maxDeletedListing)
		if err != nil {
			return err
		}
		if listing == "manifests" {
			out := client.DeletedManifestList{Registry: loginServer, ImageName: repo, Manifests: []client.DeletedManifest{}}
			for _, m := range list {
				out.Manifests = append(out.Manifests, client.DeletedManifest{Digest: string(m.Digest), MediaType: m.MediaType, ArtifactType: m.ArtifactType,
					Subject: string(m.Subject), Size: m.Size, Tags: m.Tags, CreatedTime: acrTime(m.CreatedAt), DeletedTime: acrTime(m.DeletedAt), PurgeTime: acrTime(m.PurgeAt)})
			}
			return writeJSON(w, r, "application/json", out)
		}
		out := client.DeletedTagList{Registry: loginServer, ImageName: repo, Tags: []client.DeletedTag{}}
		for _, m := range list {
			for _, t := range m.Tags {
				out.Tags = append(out.Tags, client.DeletedTag{Tag: t, Digest: string(m.Digest), DeletedTime: acrTime(m.DeletedAt)})
			}
		}
		return writeJSON(w, r, "application/json", out)
	}
	return h.restore(w, r, reg, p, repo, digest, loginServer)
}

// restore brings a soft-deleted manifest back, tagged as the body says ({"tag": "v1"}); force=true
// moves a tag that now points elsewhere. A repository event (restore) records it.
func (h *Handler) restore(w http.ResponseWriter, r *http.Request, reg store.Registry, p access.Principal, repo, ref, loginServer string) error {
	ctx := r.Context()
	d, err := oci.ParseDigest(ref)
	if err != nil {
		return digestError(err)
	}
	var body struct {
		Tag string `json:"tag"`
	}
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return httperr.New(oci.CodeUnsupported, "the body must be {\"tag\": \"TAG\"} or empty: %v", err).WithStatus(http.StatusBadRequest)
		}
	}
	if body.Tag != "" {
		if err := oci.ValidateTag(body.Tag); err != nil {
			return httperr.New(oci.CodeManifestInvalid, "tag %q is invalid: %v", truncate(body.Tag), err).WithStatus(http.StatusBadRequest)
		}
	}
	force := r.URL.Query().Get("force") == "true"
	e := audit.NewRepository(r, reg.Name, loginServer, audit.OpRestore, repo)
	e.Identity, e.IdentityKind = audit.Identity(p)
	e.Tag, e.Digest = body.Tag, string(d)
	_, err = h.meta.RestoreManifest(ctx, reg.ID, repo, d, body.Tag, force)
	var missing *store.MissingError
	var le *store.LockedError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httperr.New(oci.CodeManifestUnknown, "manifest %s is not soft-deleted in repository %s", d, repo).WithStatus(http.StatusNotFound)
	case errors.Is(err, store.ErrTagTaken):
		return httperr.New(oci.CodeDenied, "tag %s of repository %s points at another manifest: restore with force to move it", body.Tag, repo).WithStatus(http.StatusConflict)
	case errors.As(err, &missing):
		return httperr.New(oci.CodeManifestBlobUnknown, "%v: restore it first", missing)
	case errors.As(err, &le):
		return locked(le)
	case err != nil:
		return collecting(err, d)
	}
	if _, err := h.blobs.Stat(ctx, d); errors.Is(err, blob.ErrNotFound) {
		h.log.ErrorContext(ctx, "a restored manifest's data is missing from storage", "digest", d, "repository", repo)
		return httperr.New(oci.CodeManifestUnknown, "manifest %s is missing from storage", d)
	} else if err != nil {
		return err
	}
	m, err := h.meta.ManifestInfo(ctx, reg.ID, repo, d)
	if err != nil {
		return err
	}
	e.Status, e.Result, e.MediaType, e.Size = http.StatusOK, store.ResultSuccess, m.MediaType, m.Size
	e.Duration = audit.Elapsed(r)
	h.audit.Repository(ctx, e)
	return writeJSON(w, r, "application/json", client.ManifestReply{Registry: loginServer, ImageName: repo, Manifest: manifestJSON(m)})
}
