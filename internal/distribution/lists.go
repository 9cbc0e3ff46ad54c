package distribution

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/store"
)

// codePaginationInvalid is Distribution's code for a bad n parameter; the spec names none.
const codePaginationInvalid oci.ErrorCode = "PAGINATION_NUMBER_INVALID"

// page reads the n and last parameters. n absent means "as many as the server pages".
func (h *Handler) page(r *http.Request) (n int, last string, err error) {
	q := r.URL.Query()
	last = q.Get("last")
	if len(last) > 512 {
		return 0, "", httperr.New(codePaginationInvalid, "the last parameter is longer than 512 characters")
	}
	n = h.limits.MaxPageSize
	if s := q.Get("n"); s != "" {
		v, perr := strconv.Atoi(s)
		if perr != nil || v < 0 {
			return 0, "", httperr.New(codePaginationInvalid, "n must be a whole number of 0 or more, got %q", truncate(s))
		}
		if v < n {
			n = v
		}
	}
	return n, last, nil
}

func linkNext(w http.ResponseWriter, path, last string, n int, extra ...string) {
	q := url.Values{}
	q.Set("last", last)
	q.Set("n", strconv.Itoa(n))
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	w.Header().Set("Link", "<"+path+"?"+q.Encode()+`>; rel="next"`)
}

func writeJSON(w http.ResponseWriter, r *http.Request, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
	return nil
}

func (h *Handler) tags(w http.ResponseWriter, r *http.Request, req *request) error {
	n, last, err := h.page(r)
	if err != nil {
		return err
	}
	tags, more, err := h.meta.Tags(r.Context(), req.reg.ID, req.name, last, n)
	if errors.Is(err, store.ErrNotFound) {
		return httperr.New(oci.CodeNameUnknown, "repository %s is not known to registry %s", req.name, req.reg.Name).WithDetail(map[string]string{"name": req.name})
	}
	if err != nil {
		return err
	}
	if tags == nil {
		tags = []string{}
	}
	if more && len(tags) > 0 {
		linkNext(w, "/v2/"+req.name+"/tags/list", tags[len(tags)-1], n)
	}
	return writeJSON(w, r, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{req.name, tags})
}

func (h *Handler) catalog(w http.ResponseWriter, r *http.Request, req *request) error {
	n, last, err := h.page(r)
	if err != nil {
		return err
	}
	var repos []string
	var more bool
	if req.filtered {
		repos, more, err = h.filteredCatalog(r, req, last, n)
	} else {
		repos, more, err = h.meta.Catalog(r.Context(), req.reg.ID, last, n)
	}
	if err != nil {
		return err
	}
	if repos == nil {
		repos = []string{}
	}
	if more && len(repos) > 0 {
		linkNext(w, "/v2/_catalog", repos[len(repos)-1], n)
	}
	return writeJSON(w, r, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{repos})
}

// catalogBatch is how many names a filtered catalog reads from the store at a time.
const catalogBatch = 500

// filteredCatalog pages through the catalog keeping the repositories the principal may pull:
// what identities without catalog rights see instead of a 401.
func (h *Handler) filteredCatalog(r *http.Request, req *request, last string, n int) ([]string, bool, error) {
	ctx := r.Context()
	out := []string{}
	for n > 0 {
		batch, more, err := h.meta.Catalog(ctx, req.reg.ID, last, catalogBatch)
		if err != nil {
			return nil, false, err
		}
		for _, name := range batch {
			res := policy.Resource{Registry: req.reg.Name, Type: policy.TypeRepository, Name: name}
			if !h.policy.DecideVisible(ctx, req.principal, res).Allow {
				continue
			}
			if len(out) == n {
				return out, true, nil
			}
			out = append(out, name)
		}
		if !more || len(batch) == 0 {
			return out, false, nil
		}
		last = batch[len(batch)-1]
	}
	return out, false, nil
}

func (h *Handler) referrers(w http.ResponseWriter, r *http.Request, req *request) error {
	d, err := oci.ParseDigest(req.ref)
	if err != nil {
		return digestError(err)
	}
	artifactType := r.URL.Query().Get("artifactType")
	if len(artifactType) > 255 {
		return httperr.New(oci.CodeUnsupported, "the artifactType filter is longer than 255 characters").WithStatus(http.StatusBadRequest)
	}
	n, last, err := h.page(r)
	if err != nil {
		return err
	}
	list, more, err := h.meta.Referrers(r.Context(), req.reg.ID, req.name, d, artifactType, last, n, MaxReferrersBytes)
	if err != nil {
		return err
	}
	descs := make([]oci.Descriptor, 0, len(list))
	size := 0
	for i, m := range list {
		desc := oci.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
		b, err := json.Marshal(desc)
		if err != nil {
			return err
		}
		// A page is cut by bytes as well as by count (always at least one descriptor, so that
		// paging moves on); the rest is behind Link.
		if i > 0 && size+len(b)+1 > MaxReferrersBytes {
			list, more = list[:i], true
			break
		}
		size += len(b) + 1
		descs = append(descs, desc)
	}
	if more && len(list) > 0 {
		var extra []string
		if artifactType != "" {
			extra = []string{"artifactType", artifactType}
		}
		linkNext(w, "/v2/"+req.name+"/referrers/"+string(d), string(list[len(list)-1].Digest), n, extra...)
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, r, oci.MediaTypeImageIndex, struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     string           `json:"mediaType"`
		Manifests     []oci.Descriptor `json:"manifests"`
	}{2, oci.MediaTypeImageIndex, descs})
}
