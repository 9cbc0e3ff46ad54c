package mgmt

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/store"
)

// scopeMapID is a scope map's id, as az prints scopeMapId (berth's path of it).
func scopeMapID(registry, name string) string {
	return policy.RegistryScope(registry) + "/scopeMaps/" + name
}

func toScopeMapJSON(registry string, m store.ScopeMap) client.ScopeMap {
	typ := "UserDefined"
	if m.System {
		typ = "SystemDefined"
	}
	return client.ScopeMap{ID: scopeMapID(registry, m.Name), ProvisioningState: client.ProvisioningSucceeded, Name: m.Name, Description: m.Description, Type: typ, Actions: directory.ARMActions(m.Rules), CreationDate: timeOrNil(m.CreatedAt)}
}

// tokenName follows ACR: 5 to 50 letters, digits and dashes.
var tokenName = regexp.MustCompile(`^[A-Za-z0-9-]{5,50}$`)

// expiry reads an expiry given as a time or as days from now; zero means none.
func (h *Handler) expiry(at string, days int) (time.Time, error) {
	switch {
	case at != "" && days != 0:
		return time.Time{}, invalid("give expiry or expiryInDays, not both")
	case days < 0:
		return time.Time{}, invalid("expiryInDays must be positive")
	case days > 0:
		return h.Now().Add(time.Duration(days) * 24 * time.Hour), nil
	case at != "":
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return time.Time{}, invalid("expiry %q is not an RFC 3339 time such as 2027-12-31T23:59:59Z", at)
		}
		if !t.After(h.Now()) {
			return time.Time{}, invalid("expiry %s is in the past", at)
		}
		return t, nil
	}
	return time.Time{}, nil
}

func (h *Handler) tokenJSON(r *http.Request, t store.Token, values map[string]string) (client.Token, error) {
	secs, err := h.Store.Secrets(r.Context(), store.KindToken, t.ID)
	if err != nil {
		return client.Token{}, err
	}
	creds := &client.Credentials{Username: t.Name, Passwords: []client.Password{}, Certificates: &[]client.TokenCertificate{}}
	for _, s := range secs {
		pw := client.Password{Name: s.Name, CreationTime: timeOrNil(s.CreatedAt), Expiry: timeOrNil(s.ExpiresAt)}
		if v, ok := values[s.Name]; ok {
			pw.Value = &v
		}
		creds.Passwords = append(creds.Passwords, pw)
	}
	registry := strings.ToLower(r.PathValue("registry"))
	out := client.Token{ID: policy.RegistryScope(registry) + "/tokens/" + t.Name, Type: client.TypeToken, ProvisioningState: client.ProvisioningSucceeded,
		Name: t.Name, Status: t.Status, ScopeMapName: t.ScopeMap, CreationDate: timeOrNil(t.CreatedAt), Credentials: creds}
	if t.ScopeMap != "" {
		id := scopeMapID(registry, t.ScopeMap)
		out.ScopeMapID = &id
	}
	return out, nil
}

func (h *Handler) listTokens(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	reg, err := h.registry(r.Context(), r)
	if err != nil {
		return err
	}
	toks, err := h.Store.Tokens(r.Context(), reg.ID)
	if err != nil {
		return err
	}
	return replyList(w, toks, func(t store.Token) (client.Token, error) { return h.tokenJSON(r, t, nil) })
}

func (h *Handler) showToken(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	reg, err := h.registry(r.Context(), r)
	if err != nil {
		return err
	}
	name := r.PathValue("token")
	t, err := h.Store.Token(r.Context(), reg.ID, name)
	if err != nil {
		return storeError(err, fmt.Sprintf("token %q", name))
	}
	j, err := h.tokenJSON(r, t, nil)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, j)
}

// scopeRules checks the repositories of a request (directory.ScopeRules).
func scopeRules(in []client.RepositoryActions) ([]store.ScopeRule, error) {
	ras := make([]directory.RepositoryActions, len(in))
	for i, ra := range in {
		ras[i] = directory.RepositoryActions(ra)
	}
	return directory.ScopeRules(ras)
}

func checkStatus(s *string) error {
	if s != nil && *s != "enabled" && *s != "disabled" {
		return invalid("status %q is invalid: use enabled or disabled", *s)
	}
	return nil
}

func (h *Handler) createToken(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	var req client.TokenCreate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	switch {
	case !tokenName.MatchString(req.Name):
		return invalid("token name %q is invalid: use 5 to 50 letters, digits and dashes", req.Name)
	case strings.EqualFold(req.Name, reg.Name):
		return invalid("token name %q is the admin user's name (the registry's)", req.Name)
	case directory.IsGUID(req.Name):
		return invalid("token name %q has the form of a GUID, which sign-in reads as a service principal's client id", req.Name)
	case (req.ScopeMap == nil || *req.ScopeMap == "") == (len(req.Repositories) == 0):
		return invalid("usage error: --repository | --scope-map: give exactly one")
	}
	if err := checkStatus(req.Status); err != nil {
		return err
	}
	exp, err := h.expiry(req.Expiry, req.ExpiryInDays)
	if err != nil {
		return err
	}
	t := store.Token{Name: req.Name, Status: "enabled"}
	if req.Status != nil {
		t.Status = *req.Status
	}
	var newMap *store.ScopeMap
	if len(req.Repositories) > 0 {
		rules, err := scopeRules(req.Repositories)
		if err != nil {
			return invalid("%v", err)
		}
		newMap = &store.ScopeMap{Name: req.Name + "-scope-map", Description: "Created by token: " + req.Name, Rules: rules}
	} else {
		t.ScopeMap = *req.ScopeMap
	}
	values := map[string]string{}
	var secrets []store.Secret
	if !req.NoPasswords {
		for _, name := range []string{"password1", "password2"} {
			v := directory.GenerateSecret()
			hash, err := h.Dir.Hasher().Hash(ctx, v)
			if err != nil {
				return err
			}
			values[name] = v
			secrets = append(secrets, store.Secret{Name: name, Hash: hash, CreatedAt: h.Now(), ExpiresAt: exp})
		}
	}
	t, err = h.Store.CreateToken(ctx, reg.ID, t, newMap, secrets)
	if err != nil {
		return storeError(err, fmt.Sprintf("token %q (or scope map %q)", req.Name, req.Name+"-scope-map"))
	}
	if err := h.changed(ctx); err != nil {
		return err
	}
	j, err := h.tokenJSON(r, t, values)
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, j)
}

func (h *Handler) updateToken(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	var req client.TokenUpdate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := checkStatus(req.Status); err != nil {
		return err
	}
	name := r.PathValue("token")
	t, err := h.Store.UpdateToken(ctx, reg.ID, name, store.TokenUpdate{Status: req.Status, ScopeMap: req.ScopeMap})
	if err != nil {
		return storeError(err, fmt.Sprintf("token %q (or its scope map)", name))
	}
	if err := h.changed(ctx); err != nil {
		return err
	}
	j, err := h.tokenJSON(r, t, nil)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, j)
}

func (h *Handler) deleteToken(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	name := r.PathValue("token")
	if err := h.Store.DeleteToken(ctx, reg.ID, name); err != nil {
		return storeError(err, fmt.Sprintf("token %q", name))
	}
	return h.commit(ctx, w, http.StatusNoContent, nil)
}

func (h *Handler) generateTokenCredentials(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	var req client.TokenCredentials
	if err := decode(w, r, &req); err != nil {
		return err
	}
	exp, err := h.expiry(req.Expiry, req.ExpiryInDays)
	if err != nil {
		return err
	}
	name := r.PathValue("token")
	t, err := h.Store.Token(ctx, reg.ID, name)
	if err != nil {
		return storeError(err, fmt.Sprintf("token %q", name))
	}
	if !req.Password1 && !req.Password2 {
		req.Password1, req.Password2 = true, true
	}
	values := map[string]string{}
	for pw, on := range map[string]bool{"password1": req.Password1, "password2": req.Password2} {
		if !on {
			continue
		}
		if values[pw], err = h.putSecret(ctx, store.KindToken, t.ID, pw, store.Secret{ExpiresAt: exp}); err != nil {
			return err
		}
	}
	h.Log.InfoContext(ctx, "token passwords generated", "registry", reg.Name, "token", t.Name, "passwords", len(values))
	j, err := h.tokenJSON(r, t, values)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, j)
}

func (h *Handler) deleteTokenCredential(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	name, pw := r.PathValue("token"), r.PathValue("name")
	if pw != "password1" && pw != "password2" {
		return invalid("password name %q is invalid: use password1 or password2", pw)
	}
	t, err := h.Store.Token(ctx, reg.ID, name)
	if err != nil {
		return storeError(err, fmt.Sprintf("token %q", name))
	}
	if err := h.Store.DeleteSecret(ctx, store.KindToken, t.ID, pw); err != nil {
		return storeError(err, fmt.Sprintf("%s of token %q", pw, name))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) listScopeMaps(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	reg, err := h.registry(r.Context(), r)
	if err != nil {
		return err
	}
	maps, err := h.Store.ScopeMaps(r.Context(), reg.ID)
	if err != nil {
		return err
	}
	out := make([]client.ScopeMap, 0, len(maps))
	for _, m := range maps {
		out = append(out, toScopeMapJSON(reg.Name, m))
	}
	return reply(w, http.StatusOK, out)
}

func (h *Handler) showScopeMap(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	reg, err := h.registry(r.Context(), r)
	if err != nil {
		return err
	}
	name := r.PathValue("map")
	m, err := h.Store.ScopeMap(r.Context(), reg.ID, name)
	if err != nil {
		return storeError(err, fmt.Sprintf("scope map %q", name))
	}
	return reply(w, http.StatusOK, toScopeMapJSON(reg.Name, m))
}

// scopeMapName follows ACR: 5 to 50 letters, digits, dashes and underscores.
var scopeMapName = regexp.MustCompile(`^[A-Za-z0-9-]{5,50}$`)

func (h *Handler) createScopeMap(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	var req client.ScopeMapCreate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if !scopeMapName.MatchString(req.Name) {
		return invalid("scope map name %q is invalid: use 5 to 50 letters, digits and dashes", req.Name)
	}
	if len(req.Description) > 256 {
		return invalid("the description is longer than 256 characters")
	}
	if len(req.Repositories) == 0 {
		return invalid("a scope map needs at least one --repository with its actions")
	}
	rules, err := scopeRules(req.Repositories)
	if err != nil {
		return invalid("%v", err)
	}
	m, err := h.Store.CreateScopeMap(ctx, reg.ID, store.ScopeMap{Name: req.Name, Description: req.Description, Rules: rules})
	if err != nil {
		return storeError(err, fmt.Sprintf("scope map %q", req.Name))
	}
	return h.commit(ctx, w, http.StatusCreated, toScopeMapJSON(reg.Name, m))
}

func (h *Handler) updateScopeMap(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	var req client.ScopeMapUpdate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Description != nil && len(*req.Description) > 256 {
		return invalid("the description is longer than 256 characters")
	}
	name := r.PathValue("map")
	m, err := h.Store.ScopeMap(ctx, reg.ID, name)
	if err != nil {
		return storeError(err, fmt.Sprintf("scope map %q", name))
	}
	add, err := scopeRules(req.AddRepositories)
	if err != nil {
		return invalid("%v", err)
	}
	remove, err := scopeRules(req.RemoveRepositories)
	if err != nil {
		return invalid("%v", err)
	}
	drop := map[store.ScopeRule]bool{}
	for _, r := range remove {
		drop[r] = true
	}
	var rules []store.ScopeRule
	for _, r := range append(m.Rules, add...) {
		if !drop[r] {
			rules = append(rules, r)
		}
	}
	if len(rules) == 0 {
		return invalid("the change would leave scope map %q with no actions; delete it instead", name)
	}
	m, err = h.Store.UpdateScopeMap(ctx, reg.ID, name, req.Description, rules)
	if err != nil {
		return storeError(err, fmt.Sprintf("scope map %q", name))
	}
	return h.commit(ctx, w, http.StatusOK, toScopeMapJSON(reg.Name, m))
}

func (h *Handler) deleteScopeMap(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	name := r.PathValue("map")
	if err := h.Store.DeleteScopeMap(ctx, reg.ID, name); err != nil {
		return storeError(err, fmt.Sprintf("scope map %q", name))
	}
	return h.commit(ctx, w, http.StatusNoContent, nil)
}
