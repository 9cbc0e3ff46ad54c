package mgmt

import (
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/store"
)

// userName: 1 to 64 letters, digits, and . _ @ -, starting with a letter or digit.
var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// minPassword is the shortest password a user may choose.
const minPassword = directory.MinPasswordLength

func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	users, err := h.Store.Users(r.Context())
	if err != nil {
		return err
	}
	out := make([]client.User, 0, len(users))
	for _, u := range users {
		out = append(out, client.User{Name: u.Name, CreationDate: timeOrNil(u.CreatedAt), SSOOnly: u.SSOOnly})
	}
	return reply(w, http.StatusOK, out)
}

func (h *Handler) showUser(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	name := r.PathValue("name")
	u, err := h.Store.UserByName(r.Context(), name)
	if err != nil {
		return storeError(err, fmt.Sprintf("user %q", name))
	}
	return reply(w, http.StatusOK, client.User{Name: u.Name, CreationDate: timeOrNil(u.CreatedAt), SSOOnly: u.SSOOnly})
}

// password returns the chosen password, or a generated one (then also returned to show).
func password(chosen string) (value, show string, err error) {
	if chosen == "" {
		v := directory.GenerateSecret()
		return v, v, nil
	}
	if len(chosen) < minPassword || len(chosen) > 256 {
		return "", "", invalid("a password must have %d to 256 characters", minPassword)
	}
	return chosen, "", nil
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	var req client.UserCreate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if !userName.MatchString(req.Name) {
		return invalid("user name %q is invalid: use up to 64 letters, digits and . _ @ -", req.Name)
	}
	value, show, err := password(req.Password)
	if err != nil {
		return err
	}
	hash, err := h.Dir.Hasher().Hash(ctx, value)
	if err != nil {
		return err
	}
	u, err := h.Store.CreateUser(ctx, req.Name, hash)
	if err != nil {
		return storeError(err, fmt.Sprintf("user %q", req.Name))
	}
	return h.commit(ctx, w, http.StatusCreated, client.User{Name: u.Name, CreationDate: timeOrNil(u.CreatedAt), Password: show})
}

func (h *Handler) updateUser(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	var req client.UserUpdate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	u, err := h.Store.UserByName(ctx, name)
	if err != nil {
		return storeError(err, fmt.Sprintf("user %q", name))
	}
	// One's own password is one's own, whatever one's roles; whether one may have a password at
	// all (single sign-on only) is an administrator's call.
	if p.Kind != access.KindUser || p.ID != u.ID || req.SSOOnly != nil {
		if err := h.require(p, policy.PermDirectoryWrite, ""); err != nil {
			return err
		}
		if err := h.requireManage(ctx, p, access.KindUser, u.ID, u.Name); err != nil {
			return err
		}
	}
	if req.SSOOnly != nil {
		if err := h.Store.SetUserSSOOnly(ctx, u.Name, *req.SSOOnly); err != nil {
			return storeError(err, fmt.Sprintf("user %q", name))
		}
		u.SSOOnly = *req.SSOOnly
		if req.Password == "" {
			return reply(w, http.StatusOK, client.User{Name: u.Name, CreationDate: timeOrNil(u.CreatedAt), SSOOnly: u.SSOOnly})
		}
	}
	value, show, err := password(req.Password)
	if err != nil {
		return err
	}
	hash, err := h.Dir.Hasher().Hash(ctx, value)
	if err != nil {
		return err
	}
	if err := h.Store.PutSecret(ctx, store.KindUser, u.ID, store.Secret{Name: "password", Hash: hash, CreatedAt: h.Now()}); err != nil {
		return err
	}
	return reply(w, http.StatusOK, client.User{Name: u.Name, CreationDate: timeOrNil(u.CreatedAt), Password: show, SSOOnly: u.SSOOnly})
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	name := r.PathValue("name")
	if p.Kind == access.KindUser && p.Name == name {
		return invalid("you cannot delete the user you are signed in as")
	}
	u, err := h.Store.UserByName(ctx, name)
	if err != nil {
		return storeError(err, fmt.Sprintf("user %q", name))
	}
	// Deleting takes the identity's roles away from whoever relies on it: it needs what
	// changing it needs.
	if err := h.requireManage(ctx, p, access.KindUser, u.ID, u.Name); err != nil {
		return err
	}
	if err := h.Store.DeleteUser(ctx, name); err != nil {
		return storeError(err, fmt.Sprintf("user %q", name))
	}
	return h.commit(ctx, w, http.StatusNoContent, nil)
}

func (h *Handler) groupJSON(r *http.Request, g store.Group) (client.Group, error) {
	members, err := h.Store.GroupMembers(r.Context(), g.ID)
	if members == nil {
		members = []string{}
	}
	return client.Group{Name: g.Name, Description: g.Description, Members: members, CreationDate: timeOrNil(g.CreatedAt)}, err
}

func (h *Handler) listGroups(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	groups, err := h.Store.Groups(r.Context())
	if err != nil {
		return err
	}
	return replyList(w, groups, func(g store.Group) (client.Group, error) { return h.groupJSON(r, g) })
}

func (h *Handler) showGroup(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	name := r.PathValue("name")
	g, err := h.Store.GroupByName(r.Context(), name)
	if err != nil {
		return storeError(err, fmt.Sprintf("group %q", name))
	}
	j, err := h.groupJSON(r, g)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, j)
}

func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	var req client.GroupCreate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if !userName.MatchString(req.Name) {
		return invalid("group name %q is invalid: use up to 64 letters, digits and . _ @ -", req.Name)
	}
	if len(req.Description) > 256 {
		return invalid("the description is longer than 256 characters")
	}
	g, err := h.Store.CreateGroup(ctx, req.Name, req.Description)
	if err != nil {
		return storeError(err, fmt.Sprintf("group %q", req.Name))
	}
	if err := h.changed(ctx); err != nil {
		return err
	}
	j, err := h.groupJSON(r, g)
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, j)
}

func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	name := r.PathValue("name")
	g, err := h.Store.GroupByName(ctx, name)
	if err != nil {
		return storeError(err, fmt.Sprintf("group %q", name))
	}
	if err := h.requireManage(ctx, p, "group", g.ID, g.Name); err != nil {
		return err
	}
	if err := h.Store.DeleteGroup(ctx, name); err != nil {
		return storeError(err, fmt.Sprintf("group %q", name))
	}
	return h.commit(ctx, w, http.StatusNoContent, nil)
}

func (h *Handler) member(r *http.Request, user string) (store.Group, store.User, error) {
	name := r.PathValue("name")
	g, err := h.Store.GroupByName(r.Context(), name)
	if err != nil {
		return g, store.User{}, storeError(err, fmt.Sprintf("group %q", name))
	}
	u, err := h.Store.UserByName(r.Context(), user)
	if err != nil {
		return g, u, storeError(err, fmt.Sprintf("user %q", user))
	}
	return g, u, nil
}

func (h *Handler) addMember(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	var req client.GroupMemberAdd
	if err := decode(w, r, &req); err != nil {
		return err
	}
	g, u, err := h.member(r, req.User)
	if err != nil {
		return err
	}
	if err := h.requireManage(ctx, p, "group", g.ID, g.Name); err != nil {
		return err
	}
	if err := h.Store.AddGroupMember(ctx, g.ID, u.ID); err != nil {
		return err
	}
	if err := h.changed(ctx); err != nil {
		return err
	}
	j, err := h.groupJSON(r, g)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, j)
}

func (h *Handler) removeMember(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	g, u, err := h.member(r, r.PathValue("user"))
	if err != nil {
		return err
	}
	if err := h.requireManage(ctx, p, "group", g.ID, g.Name); err != nil {
		return err
	}
	if err := h.Store.RemoveGroupMember(ctx, g.ID, u.ID); err != nil {
		return storeError(err, fmt.Sprintf("membership of %q in group %q", u.Name, g.Name))
	}
	return h.commit(ctx, w, http.StatusNoContent, nil)
}

func (h *Handler) spJSON(r *http.Request, sp store.ServicePrincipal) (client.ServicePrincipal, error) {
	secs, err := h.Store.Secrets(r.Context(), store.KindSP, sp.ID)
	out := client.ServicePrincipal{ID: sp.AppID, AppID: sp.AppID, DisplayName: sp.DisplayName, CreationDate: timeOrNil(sp.CreatedAt), Tenant: Tenant, PasswordCredentials: []client.SPCredential{}}
	for _, s := range secs {
		out.PasswordCredentials = append(out.PasswordCredentials, client.SPCredential{KeyID: s.Name, StartDateTime: timeOrNil(s.CreatedAt), EndDateTime: timeOrNil(s.ExpiresAt)})
	}
	return out, err
}

func (h *Handler) listSPs(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	sps, err := h.Store.ServicePrincipals(r.Context())
	if err != nil {
		return err
	}
	return replyList(w, sps, func(sp store.ServicePrincipal) (client.ServicePrincipal, error) { return h.spJSON(r, sp) })
}

func (h *Handler) lookupSP(r *http.Request) (store.ServicePrincipal, error) {
	id := r.PathValue("appId")
	sp, err := h.Store.ServicePrincipalByAppID(r.Context(), id)
	if err != nil {
		return sp, storeError(err, fmt.Sprintf("service principal %q", id))
	}
	return sp, nil
}

// managedSP is the service principal the path names, when p may change who can act as it
// (DecideManage): a secret, a federated credential, its deletion.
func (h *Handler) managedSP(r *http.Request, p access.Principal) (store.ServicePrincipal, error) {
	sp, err := h.lookupSP(r)
	if err != nil {
		return sp, err
	}
	return sp, h.requireManage(r.Context(), p, access.KindSP, sp.ID, sp.AppID)
}

func (h *Handler) showSP(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	sp, err := h.lookupSP(r)
	if err != nil {
		return err
	}
	j, err := h.spJSON(r, sp)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, j)
}

// spSecret makes a secret that expires after years (default one).
func (h *Handler) spSecret(r *http.Request, years int) (string, store.Secret, error) {
	if years == 0 {
		years = 1
	}
	if years < 0 || years > 10 {
		return "", store.Secret{}, invalid("years must be between 1 and 10")
	}
	value := directory.GenerateSecret()
	hash, err := h.Dir.Hasher().Hash(r.Context(), value)
	now := h.Now()
	return value, store.Secret{Name: directory.NewGUID(), Hash: hash, CreatedAt: now, ExpiresAt: now.AddDate(years, 0, 0)}, err
}

func (h *Handler) createSP(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	var req client.SPCreate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.DisplayName == "" {
		req.DisplayName = "berth-sp-" + h.Now().UTC().Format("2006-01-02-15-04-05")
	}
	if len(req.DisplayName) > 120 {
		return invalid("the display name is longer than 120 characters")
	}
	value, sec, err := h.spSecret(r, req.Years)
	if err != nil {
		return err
	}
	sp, err := h.Store.CreateServicePrincipal(ctx, directory.NewGUID(), req.DisplayName, sec)
	if err != nil {
		return storeError(err, fmt.Sprintf("service principal %q", req.DisplayName))
	}
	return h.commit(ctx, w, http.StatusCreated, client.SPSecret{AppID: sp.AppID, Password: value, DisplayName: sp.DisplayName, Tenant: Tenant})
}

func (h *Handler) deleteSP(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	id := r.PathValue("appId")
	if _, err := h.managedSP(r, p); err != nil {
		return err
	}
	if err := h.Store.DeleteServicePrincipal(ctx, id); err != nil {
		return storeError(err, fmt.Sprintf("service principal %q", id))
	}
	h.Authn.FederationChanged()
	return h.commit(ctx, w, http.StatusNoContent, nil)
}

// maxSPSecrets is how many secrets a service principal may hold at once.
const maxSPSecrets = 2

func (h *Handler) resetSPCredential(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	var req client.SPSecretReset
	if err := decode(w, r, &req); err != nil {
		return err
	}
	sp, err := h.managedSP(r, p)
	if err != nil {
		return err
	}
	value, sec, err := h.spSecret(r, req.Years)
	if err != nil {
		return err
	}
	if req.Append {
		secs, err := h.Store.Secrets(ctx, store.KindSP, sp.ID)
		if err != nil {
			return err
		}
		if len(secs) >= maxSPSecrets {
			return httperr409("service principal %s already has %d secrets: reset without --append to replace them", sp.AppID, maxSPSecrets)
		}
		err = h.Store.PutSecret(ctx, store.KindSP, sp.ID, sec)
	} else {
		err = h.Store.ReplaceSecrets(ctx, store.KindSP, sp.ID, sec)
	}
	if err != nil {
		return err
	}
	h.Log.InfoContext(ctx, "service principal secret reset", "appId", sp.AppID, "keyId", sec.Name, "expires", sec.ExpiresAt.UTC().Format(time.RFC3339))
	return reply(w, http.StatusOK, client.SPSecret{AppID: sp.AppID, Password: value, DisplayName: sp.DisplayName, Tenant: Tenant})
}
