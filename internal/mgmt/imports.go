package mgmt

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/store"
)

func toImportJSON(r store.ImportRun) client.ImportOperation {
	return client.ImportOperation{ID: r.ID, Status: r.Status, Source: r.Source, Target: r.Target, Error: r.Error, Manifests: r.Manifests,
		Blobs: r.Blobs, Bytes: r.Bytes, StartTime: timeOrNil(r.StartedAt), EndTime: timeOrNil(r.EndedAt)}
}

// startImport is az acr import: it checks the request and starts the copy in the background
// (202); GET …/imports/{id} tells how it goes. Importing writes the registry's content: it needs
// registries/write, as ACR's importImage action does (Contributor, Owner).
func (h *Handler) startImport(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	if h.Importer == nil {
		return errors.New("mgmt: no importer")
	}
	var req client.ImportRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Source == "" || len(req.Source) > 1024 {
		return invalid("source is required: HOST/REPOSITORY:TAG or HOST/REPOSITORY@DIGEST")
	}
	if (req.Username == "") != (req.Password == "") {
		return invalid("username and password go together")
	}
	run, err := h.Importer.StartImport(ctx, reg, p, loginServer(reg, r), req)
	if err != nil {
		return err
	}
	return reply(w, http.StatusAccepted, toImportJSON(run))
}

func (h *Handler) showImport(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	reg, err := h.registry(r.Context(), r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	run, err := h.Store.Import(r.Context(), reg.ID, id)
	if err != nil {
		return storeError(err, fmt.Sprintf("import %q of registry %q", id, reg.Name))
	}
	return reply(w, http.StatusOK, toImportJSON(run))
}
