package distribution

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/audit"
	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/hosts"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/reqlog"
	"github.com/berth-registry/berth/internal/store"
)

// ACR's metadata API, /acr/v1/…, beside /v2/ on every login server: what az acr repository and
// az acr manifest call, and berth's CLI too. It is data plane: a registry access token (or Basic
// credentials) with metadata_read (GET), metadata_write (PATCH) or delete (DELETE) on the
// repository, decided by the policy as on /v2/ — a Reader sees, an AcrDelete deletes, a token's
// scope map bounds it.

// ACRPrefix starts every path of the metadata API.
const ACRPrefix = "/acr/v1/"

type acrKind int

const (
	acrRepository acrKind = iota + 1
	acrTags
	acrTag
	acrManifests
	acrManifest
)

type acrRoute struct {
	kind acrKind
	name string
	ref  string // tag or digest
}

// parseACRPath splits /acr/v1/NAME[/_tags[/TAG]|/_manifests[/DIGEST]]; names hold slashes, so
// the path is read from its end.
func parseACRPath(p string) (acrRoute, bool) {
	rest, ok := strings.CutPrefix(p, ACRPrefix)
	if !ok || rest == "" || len(p) > maxPathLength {
		return acrRoute{}, false
	}
	for _, s := range []struct {
		suffix string
		kind   acrKind
	}{{"/_tags", acrTags}, {"/_manifests", acrManifests}} {
		if name, ok := strings.CutSuffix(rest, s.suffix); ok && name != "" {
			return acrRoute{kind: s.kind, name: name}, true
		}
	}
	if i := strings.LastIndexByte(rest, '/'); i > 0 {
		head, ref := rest[:i], rest[i+1:]
		for _, s := range []struct {
			suffix string
			kind   acrKind
		}{{"/_tags", acrTag}, {"/_manifests", acrManifest}} {
			if name, ok := strings.CutSuffix(head, s.suffix); ok && name != "" && ref != "" {
				return acrRoute{kind: s.kind, name: name, ref: ref}, true
			}
		}
	}
	if strings.Contains(rest, "/_") { // an element of the API that is not there
		return acrRoute{}, false
	}
	return acrRoute{kind: acrRepository, name: rest}, true
}

// serveACR serves the metadata API.
func (h *Handler) serveACR(w http.ResponseWriter, r *http.Request) error {
	if strings.HasPrefix(r.URL.Path, deletedPrefix) {
		return h.serveDeleted(w, r)
	}
	ctx := r.Context()
	rt, ok := parseACRPath(r.URL.Path)
	if !ok {
		return httperr.New(oci.CodeNameInvalid, "%q is not a path of the metadata API (/acr/v1/NAME, /_tags, /_manifests)", truncate(r.URL.Path)).WithStatus(http.StatusNotFound)
	}
	reg, ok := hosts.RegistryFrom(ctx)
	if !ok {
		return errors.New("distribution: request has no registry")
	}
	if err := oci.ValidateName(rt.name); err != nil {
		return httperr.New(oci.CodeNameInvalid, "%v", err).WithDetail(map[string]string{"name": truncate(rt.name)})
	}
	var action policy.Action
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		action = policy.ActionMetadataRead
	case r.Method == http.MethodPatch:
		action = policy.ActionMetadataWrite
	case r.Method == http.MethodDelete && rt.kind != acrTags && rt.kind != acrManifests:
		action = policy.ActionDelete
	default:
		allow := "GET, HEAD, PATCH, DELETE"
		if rt.kind == acrTags || rt.kind == acrManifests {
			allow = "GET, HEAD"
		}
		return httperr.New(oci.CodeUnsupported, "%s is not supported on this endpoint", r.Method).WithHeader("Allow", allow)
	}
	if (rt.kind == acrTags || rt.kind == acrManifests) && action == policy.ActionMetadataWrite {
		return httperr.New(oci.CodeUnsupported, "PATCH is not supported on a listing: name the tag or manifest").WithHeader("Allow", "GET, HEAD")
	}
	res := policy.Resource{Registry: reg.Name, Type: policy.TypeRepository, Name: rt.name}
	p, err := h.authn.Authenticate(ctx, r)
	h.loginEvent(r, reg, p, err)
	if err != nil {
		return authnError(r, action, res, err)
	}
	r = r.WithContext(authn.WithPrincipal(ctx, p))
	req := &request{route: route{kind: kindManifest, name: rt.name, ref: rt.ref}, reg: reg, principal: p}
	if !p.IsAnonymous() {
		reqlog.SetIdentity(ctx, &req.principal)
	}
	if action == policy.ActionDelete && rt.kind != acrRepository {
		// An untag or a manifest delete is the /v2/ one, with its event.
		if rt.kind == acrManifest {
			if _, err := oci.ParseDigest(rt.ref); err != nil {
				return digestError(err)
			}
		}
		return h.manifest(w, r, req, action, res)
	}
	if _, err := h.authorize(r, p, action, res); err != nil {
		return err
	}
	if action == policy.ActionDelete {
		r = r.WithContext(h.withRequestInfo(r, p))
	}
	a := acrReply{h: h, w: w, r: r, req: req, loginServer: audit.LoginServer(r, reg)}
	switch rt.kind {
	case acrRepository:
		switch action {
		case policy.ActionDelete:
			return a.deleteRepository()
		case policy.ActionMetadataWrite:
			if err := a.update("", ""); err != nil {
				return err
			}
		}
		return a.repository()
	case acrTags:
		return a.tags()
	case acrTag:
		if action == policy.ActionMetadataWrite {
			if err := a.update(rt.ref, ""); err != nil {
				return err
			}
		}
		return a.tag()
	case acrManifests:
		return a.manifests()
	}
	if action == policy.ActionMetadataWrite {
		d, err := oci.ParseDigest(rt.ref)
		if err != nil {
			return digestError(err)
		}
		if err := a.update("", d); err != nil {
			return err
		}
	}
	return a.manifestOne()
}

// acrReply is one request of the metadata API being answered.
type acrReply struct {
	h           *Handler
	w           http.ResponseWriter
	r           *http.Request
	req         *request
	loginServer string
}

func acrTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func changeable(a store.Attributes) client.ChangeableAttributes {
	return client.ChangeableAttributes{DeleteEnabled: a.DeleteEnabled, WriteEnabled: a.WriteEnabled, ReadEnabled: a.ReadEnabled, ListEnabled: a.ListEnabled}
}

func (a acrReply) nameUnknown() error {
	return httperr.New(oci.CodeNameUnknown, "repository %s is not known to registry %s", a.req.name, a.req.reg.Name).
		WithDetail(map[string]string{"name": a.req.name}).WithStatus(http.StatusNotFound)
}

func (a acrReply) repository() error {
	info, err := a.h.meta.RepositoryInfo(a.r.Context(), a.req.reg.ID, a.req.name)
	if errors.Is(err, store.ErrNotFound) {
		return a.nameUnknown()
	}
	if err != nil {
		return err
	}
	return writeJSON(a.w, a.r, "application/json", client.RepositoryAttributes{Registry: a.loginServer, ImageName: a.req.name,
		CreatedTime: acrTime(info.CreatedAt), LastUpdateTime: acrTime(info.UpdatedAt), ManifestCount: info.ManifestCount, TagCount: info.TagCount,
		ChangeableAttributes: changeable(info.Attributes)})
}

// order reads orderby: timedesc, timeasc, or none (by name or digest).
func (a acrReply) order() (store.Order, error) {
	switch v := a.r.URL.Query().Get("orderby"); v {
	case "":
		return store.ByName, nil
	case "timedesc":
		return store.NewestFirst, nil
	case "timeasc":
		return store.OldestFirst, nil
	default:
		return 0, httperr.New(codePaginationInvalid, "orderby %q is not timedesc or timeasc", truncate(v))
	}
}

func (a acrReply) list(fetch func(o store.Order, last string, n int) (more bool, lastName string, err error)) error {
	o, err := a.order()
	if err != nil {
		return err
	}
	n, last, err := a.h.page(a.r)
	if err != nil {
		return err
	}
	more, lastName, err := fetch(o, last, n)
	if errors.Is(err, store.ErrNotFound) {
		return a.nameUnknown()
	}
	if err != nil {
		return err
	}
	if more && lastName != "" {
		var extra []string
		if v := a.r.URL.Query().Get("orderby"); v != "" {
			extra = []string{"orderby", v}
		}
		linkNext(a.w, a.r.URL.Path, lastName, n, extra...)
	}
	return nil
}

func tagJSON(t store.TagInfo) client.TagAttributes {
	return client.TagAttributes{Name: t.Name, Digest: string(t.Digest), CreatedTime: acrTime(t.CreatedAt), LastUpdateTime: acrTime(t.UpdatedAt),
		ChangeableAttributes: changeable(t.Attributes)}
}

func (a acrReply) tags() error {
	out := client.TagList{Registry: a.loginServer, ImageName: a.req.name, Tags: []client.TagAttributes{}}
	err := a.list(func(o store.Order, last string, n int) (bool, string, error) {
		list, more, err := a.h.meta.TagInfos(a.r.Context(), a.req.reg.ID, a.req.name, o, last, n)
		for _, t := range list {
			out.Tags = append(out.Tags, tagJSON(t))
		}
		if len(list) == 0 {
			return more, "", err
		}
		return more, list[len(list)-1].Name, err
	})
	if err != nil {
		return err
	}
	return writeJSON(a.w, a.r, "application/json", out)
}

func (a acrReply) tag() error {
	t, err := a.h.meta.TagInfo(a.r.Context(), a.req.reg.ID, a.req.name, a.req.ref)
	if errors.Is(err, store.ErrNotFound) {
		return httperr.New(oci.CodeManifestUnknown, "tag %s is not in repository %s", truncate(a.req.ref), a.req.name).WithStatus(http.StatusNotFound)
	}
	if err != nil {
		return err
	}
	return writeJSON(a.w, a.r, "application/json", client.TagReply{Registry: a.loginServer, ImageName: a.req.name, Tag: tagJSON(t)})
}

func manifestJSON(m store.ManifestInfo) client.ManifestAttributes {
	return client.ManifestAttributes{Digest: string(m.Digest), ImageSize: m.ImageSize, CreatedTime: acrTime(m.CreatedAt), LastUpdateTime: acrTime(m.UpdatedAt),
		MediaType: m.MediaType, ConfigMediaType: m.ConfigMediaType, Architecture: m.Architecture, OS: m.OS, ArtifactType: m.ArtifactType, Subject: string(m.Subject), Tags: m.Tags, ChangeableAttributes: changeable(m.Attributes)}
}

func (a acrReply) manifests() error {
	out := client.ManifestList{Registry: a.loginServer, ImageName: a.req.name, Manifests: []client.ManifestAttributes{}}
	err := a.list(func(o store.Order, last string, n int) (bool, string, error) {
		list, more, err := a.h.meta.ManifestInfos(a.r.Context(), a.req.reg.ID, a.req.name, o, last, n)
		for _, m := range list {
			out.Manifests = append(out.Manifests, manifestJSON(m))
		}
		if len(list) == 0 {
			return more, "", err
		}
		return more, string(list[len(list)-1].Digest), err
	})
	if err != nil {
		return err
	}
	return writeJSON(a.w, a.r, "application/json", out)
}

func (a acrReply) manifestOne() error {
	ctx := a.r.Context()
	var d oci.Digest
	if parsed, err := oci.ParseDigest(a.req.ref); err == nil {
		d = parsed
	} else { // a tag, as az acr manifest show-metadata REGISTRY/REPO:TAG sends it
		t, terr := a.h.meta.TagInfo(ctx, a.req.reg.ID, a.req.name, a.req.ref)
		if terr != nil && !errors.Is(terr, store.ErrNotFound) {
			return terr
		}
		if terr != nil {
			return httperr.New(oci.CodeManifestUnknown, "manifest %s is not in repository %s", truncate(a.req.ref), a.req.name).WithStatus(http.StatusNotFound)
		}
		d = t.Digest
	}
	m, err := a.h.meta.ManifestInfo(ctx, a.req.reg.ID, a.req.name, d)
	if errors.Is(err, store.ErrNotFound) {
		return httperr.New(oci.CodeManifestUnknown, "manifest %s is not in repository %s", d, a.req.name).WithStatus(http.StatusNotFound)
	}
	if err != nil {
		return err
	}
	return writeJSON(a.w, a.r, "application/json", client.ManifestReply{Registry: a.loginServer, ImageName: a.req.name, Manifest: manifestJSON(m)})
}

// deleteRepository removes the repository and everything in it; each manifest is a delete
// event.
func (a acrReply) deleteRepository() error {
	manifests, tags, err := a.h.meta.DeleteRepository(a.r.Context(), a.req.reg.ID, a.req.name)
	if errors.Is(err, store.ErrNotFound) {
		return a.nameUnknown()
	}
	var le *store.LockedError
	if errors.As(err, &le) {
		return locked(le)
	}
	if err != nil {
		return err
	}
	out := client.DeletedRepository{ManifestsDeleted: []string{}, TagsDeleted: tags}
	if out.TagsDeleted == nil {
		out.TagsDeleted = []string{}
	}
	for _, d := range manifests {
		out.ManifestsDeleted = append(out.ManifestsDeleted, string(d))
		e := audit.NewRepository(a.r, a.req.reg.Name, a.loginServer, audit.OpDelete, a.req.name)
		e.Identity, e.IdentityKind = audit.Identity(a.req.principal)
		e.Digest, e.Status, e.Result, e.Reason = string(d), http.StatusAccepted, store.ResultSuccess, "repository_deleted"
		e.Duration = audit.Elapsed(a.r)
		a.h.audit.Repository(a.r.Context(), e)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	a.w.Header().Set("Content-Type", "application/json")
	a.w.WriteHeader(http.StatusAccepted)
	_, err = a.w.Write(b)
	return err
}

// update changes the attributes (locks) of the repository, a tag or a manifest from the
// request's body, as az acr repository update sends it ({"writeEnabled": false}); the change is a
// repository event (lock). The reply is then what a GET answers.
func (a acrReply) update(tag string, d oci.Digest) error {
	var body client.ChangeableAttributesUpdate
	dec := json.NewDecoder(http.MaxBytesReader(a.w, a.r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return httperr.New(oci.CodeUnsupported, "the body must be a JSON object of deleteEnabled, writeEnabled, readEnabled, listEnabled (true or false): %v", err).WithStatus(http.StatusBadRequest)
	}
	u := store.AttributesUpdate{WriteEnabled: body.WriteEnabled, DeleteEnabled: body.DeleteEnabled, ReadEnabled: body.ReadEnabled, ListEnabled: body.ListEnabled}
	got, err := a.h.meta.UpdateAttributes(a.r.Context(), a.req.reg.ID, a.req.name, tag, d, u)
	what := "repository " + a.req.name
	switch {
	case tag != "":
		what = "tag " + tag
	case d != "":
		what = "manifest " + string(d)
	}
	if errors.Is(err, store.ErrNotFound) {
		if tag == "" && d == "" {
			return a.nameUnknown()
		}
		return httperr.New(oci.CodeManifestUnknown, "%s is not in repository %s", truncate(what), a.req.name).WithStatus(http.StatusNotFound)
	}
	if err != nil {
		return err
	}
	e := audit.NewRepository(a.r, a.req.reg.Name, a.loginServer, audit.OpLock, a.req.name)
	e.Identity, e.IdentityKind = audit.Identity(a.req.principal)
	e.Tag, e.Digest = tag, string(d)
	e.Status, e.Result, e.Reason = http.StatusOK, store.ResultSuccess, "attributes"
	e.Message = fmt.Sprintf("%s: writeEnabled=%t deleteEnabled=%t readEnabled=%t listEnabled=%t", what, got.WriteEnabled, got.DeleteEnabled, got.ReadEnabled, got.ListEnabled)
	e.Duration = audit.Elapsed(a.r)
	a.h.audit.Repository(a.r.Context(), e)
	return nil
}
