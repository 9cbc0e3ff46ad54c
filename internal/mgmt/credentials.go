package mgmt

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/audit"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/store"
)

// The admin user's two passwords, as ACR names them.
var adminPasswords = []string{"password", "password2"}

// setAdmin turns the admin user on or off. Turned on for the first time, it gets its two
// passwords, returned in the reply (and kept sealed, for listCredentials).
func (h *Handler) setAdmin(ctx context.Context, r *http.Request, p access.Principal, name string, on bool) (client.Registry, error) {
	reg, err := h.Store.UpdateRegistry(ctx, name, store.RegistryUpdate{AdminEnabled: &on})
	if err != nil {
		return client.Registry{}, storeError(err, fmt.Sprintf("registry %q", name))
	}
	out := toRegistryJSON(reg, r)
	if !on {
		return out, nil
	}
	secs, err := h.Store.Secrets(ctx, store.KindAdmin, reg.ID)
	if err != nil || len(secs) > 0 {
		return out, err
	}
	creds := &client.Credentials{Username: reg.Name}
	for _, pw := range adminPasswords {
		value, err := h.putSecret(ctx, store.KindAdmin, reg.ID, pw, store.Secret{})
		if err != nil {
			return client.Registry{}, err
		}
		creds.Passwords = append(creds.Passwords, client.Password{Name: pw, Value: &value})
	}
	out.Credentials = creds
	h.recordRead(r, p, reg, "admin_enabled", "enabled the admin user, whose passwords the reply shows")
	return out, nil
}

// putSecret generates a secret, stores its hash under name, and returns it. The admin user's
// passwords are also sealed with the key-encryption key, bound to their row.
func (h *Handler) putSecret(ctx context.Context, kind string, owner int64, name string, sec store.Secret) (string, error) {
	value := directory.GenerateSecret()
	hash, err := h.Dir.Hasher().Hash(ctx, value)
	if err != nil {
		return "", err
	}
	if kind == store.KindAdmin && h.Box != nil {
		if sec.Sealed, err = h.Box.Seal([]byte(value), sealedAD(kind, owner, name)); err != nil {
			return "", err
		}
	}
	sec.Name, sec.Hash = name, hash
	sec.CreatedAt = h.Now()
	if err := h.Store.PutSecret(ctx, kind, owner, sec); err != nil {
		return "", err
	}
	return value, nil
}

// sealedAD is the additional data a sealed secret is bound to: its row. A sealed value copied
// into another registry's row does not open.
func sealedAD(kind string, owner int64, name string) []byte {
	return []byte("secret:" + kind + ":" + strconv.FormatInt(owner, 10) + ":" + name)
}

// adminDisabled is the error of credential operations while the admin user is off.
func adminDisabled(reg store.Registry) error {
	return httperr409("admin user is disabled: run 'berth registry update -n %s --admin-enabled true' to enable admin first", reg.Name)
}

// showCredentials lists the admin user's password names, never their values (registries/
// credentials/read, which read-only roles hold): listCredentials returns the values.
func (h *Handler) showCredentials(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	if !reg.AdminEnabled {
		return adminDisabled(reg)
	}
	secs, err := h.Store.Secrets(ctx, store.KindAdmin, reg.ID)
	if err != nil {
		return err
	}
	out := client.Credentials{Username: reg.Name, Passwords: []client.Password{}}
	for _, s := range secs {
		out.Passwords = append(out.Passwords, client.Password{Name: s.Name, CreationTime: timeOrNil(s.CreatedAt)})
	}
	return reply(w, http.StatusOK, out)
}

// listCredentials is ACR's listCredentials: the admin user's name and both passwords, to a
// caller holding registries/credentials/list (Owner, Contributor, Container Registry
// Contributor and Data Access Configuration Administrator). Each call is a login event.
func (h *Handler) listCredentials(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	if !reg.AdminEnabled {
		return adminDisabled(reg)
	}
	out, err := h.adminCredentials(ctx, reg, "", "")
	if err != nil {
		return err
	}
	h.recordRead(r, p, reg, "admin_credentials_listed", "listed the admin user's passwords")
	return reply(w, http.StatusOK, out)
}

// adminCredentials opens the admin user's sealed passwords; fresh, if set, is the value of the
// password named renewed, which was just made. A password made before berth kept them sealed
// (or another key-encryption key's) has no value: renewing it makes one that has.
func (h *Handler) adminCredentials(ctx context.Context, reg store.Registry, renewed, fresh string) (client.Credentials, error) {
	secs, err := h.Store.Secrets(ctx, store.KindAdmin, reg.ID)
	if err != nil {
		return client.Credentials{}, err
	}
	out := client.Credentials{Username: reg.Name, Passwords: []client.Password{}}
	for _, s := range secs {
		pw := client.Password{Name: s.Name, CreationTime: timeOrNil(s.CreatedAt)}
		switch {
		case s.Name == renewed:
			pw.Value = &fresh
		case s.Sealed != nil && h.Box != nil:
			if v, err := h.Box.Open(s.Sealed, sealedAD(store.KindAdmin, reg.ID, s.Name)); err == nil {
				value := string(v)
				pw.Value = &value
			} else {
				h.Log.WarnContext(ctx, "an admin password cannot be opened: renew it", "registry", reg.Name, "password", s.Name, "err", err)
			}
		}
		out.Passwords = append(out.Passwords, pw)
	}
	return out, nil
}

// recordRead writes a login event for a reply that shows the admin user's passwords: who read
// them, from where, when.
func (h *Handler) recordRead(r *http.Request, p access.Principal, reg store.Registry, reason, message string) {
	e := audit.NewLogin(r, reg.Name, loginServer(reg, r), audit.OpListCredentials)
	audit.Finish(r, &e, nil)
	e.Identity, e.IdentityKind = audit.Identity(p)
	e.Reason, e.Message = reason, message
	h.Audit.Login(r.Context(), e)
}

func (h *Handler) renewCredential(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	var req client.CredentialRenew
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Name != "password" && req.Name != "password2" {
		return invalid("password name %q is invalid: use password or password2", req.Name)
	}
	if !reg.AdminEnabled {
		return adminDisabled(reg)
	}
	value, err := h.putSecret(ctx, store.KindAdmin, reg.ID, req.Name, store.Secret{})
	if err != nil {
		return err
	}
	// As az acr credential renew: both passwords. Every role that may renew may also list them.
	out, err := h.adminCredentials(ctx, reg, req.Name, value)
	if err != nil {
		return err
	}
	h.Log.InfoContext(ctx, "admin password renewed", "registry", reg.Name, "password", req.Name)
	h.recordRead(r, p, reg, "admin_credential_renewed", "renewed the admin user's "+req.Name)
	return reply(w, http.StatusOK, out)
}
