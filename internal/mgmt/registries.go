package mgmt

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/store"
)

// loginServer is what clients use for reg: its own host name, or for a registry without one the
// host this request came to.
func loginServer(reg store.Registry, r *http.Request) string {
	if reg.LoginServer != "" {
		return reg.LoginServer
	}
	return r.Host
}

// toRegistryJSON is a registry as the API shows it (az's field names).
func toRegistryJSON(reg store.Registry, r *http.Request) client.Registry {
	out := client.Registry{ID: policy.RegistryScope(reg.Name), Type: client.TypeRegistry, ProvisioningState: client.ProvisioningSucceeded, Name: reg.Name, LoginServer: loginServer(reg, r), Default: reg.Default,
		AdminUserEnabled: reg.AdminEnabled, RoleAssignmentMode: reg.RoleAssignmentMode, AnonymousPullEnabled: reg.AnonymousPullEnabled,
		AnonymousPullRepositories: reg.AnonymousPullRepositories, PublicNetworkAccess: enabled(reg.PublicNetworkAccess),
		NetworkRuleSet: client.NetworkRuleSet{DefaultAction: reg.DefaultAction, IPRules: []client.IPRule{}}, CreationDate: timeOrNil(reg.CreatedAt)}
	if out.AnonymousPullRepositories == nil {
		out.AnonymousPullRepositories = []string{}
	}
	status := func(on bool) string {
		if on {
			return "enabled"
		}
		return "disabled"
	}
	out.Policies = client.Policies{
		RetentionPolicy:  client.RetentionPolicy{Days: reg.Retention.Days, LastUpdatedTime: timeOrNil(reg.Retention.UpdatedAt), Status: status(reg.Retention.Enabled)},
		SoftDeletePolicy: client.SoftDeletePolicy{RetentionDays: reg.SoftDelete.Days, LastUpdatedTime: timeOrNil(reg.SoftDelete.UpdatedAt), Status: status(reg.SoftDelete.Enabled)},
	}
	for _, nr := range reg.NetworkRules {
		out.NetworkRuleSet.IPRules = append(out.NetworkRuleSet.IPRules, client.IPRule{Action: nr.Action, IPAddressOrRange: nr.Value, Value: nr.Value})
	}
	return out
}

func enabled(b bool) string {
	if b {
		return "Enabled"
	}
	return "Disabled"
}

// registryName follows ACR's rule, lower-cased: 5 to 50 alphanumerics (berth also allows the
// short "default" it creates, and dashes).
var registryName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$`)

// listRegistries lists the registries the caller may read.
func (h *Handler) listRegistries(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	regs, err := h.Store.Registries(r.Context())
	if err != nil {
		return err
	}
	snap := h.Policy.Snapshot()
	out := make([]client.Registry, 0, len(regs))
	for _, reg := range regs {
		if policy.DecideControl(snap, p, policy.PermRegistryRead, reg.Name).Allow {
			out = append(out, toRegistryJSON(reg, r))
		}
	}
	return reply(w, http.StatusOK, out)
}

func (h *Handler) showRegistry(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	reg, err := h.registry(r.Context(), r)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, toRegistryJSON(reg, r))
}

// settings validates the settings of a request and returns them as a store update.
func settings(req client.RegistryUpdate) (store.RegistryUpdate, error) {
	u := store.RegistryUpdate{AnonymousPullEnabled: req.AnonymousPullEnabled}
	if req.LoginServer != nil {
		ls, err := canonicalLoginServer(*req.LoginServer)
		if err != nil {
			return u, err
		}
		u.LoginServer = &ls
	}
	if req.RoleAssignmentMode != nil {
		m, ok := policy.ParseMode(*req.RoleAssignmentMode)
		if !ok {
			return u, invalid("roleAssignmentMode %q is invalid: use rbac or rbac-abac", *req.RoleAssignmentMode)
		}
		mode := m.String()
		u.RoleAssignmentMode = &mode
	}
	if req.AnonymousPullRepositories != nil {
		repos := []string{}
		for _, p := range *req.AnonymousPullRepositories {
			if err := directory.ValidatePattern(p); err != nil {
				return u, invalid("anonymousPullRepositories: %v", err)
			}
			repos = append(repos, p)
		}
		if len(repos) > maxAnonymousPatterns {
			return u, invalid("anonymousPullRepositories: at most %d patterns", maxAnonymousPatterns)
		}
		u.AnonymousPullRepositories = &repos
	}
	if req.PublicNetworkAccess != nil {
		var on bool
		switch strings.ToLower(*req.PublicNetworkAccess) {
		case "enabled", "true":
			on = true
		case "disabled", "false":
		default:
			return u, invalid("publicNetworkAccess %q is invalid: use Enabled or Disabled", *req.PublicNetworkAccess)
		}
		u.PublicNetworkAccess = &on
	}
	if p := req.Policies; p != nil {
		status := func(field string, v *string) (*bool, error) {
			if v == nil {
				return nil, nil
			}
			switch strings.ToLower(*v) {
			case "enabled":
				on := true
				return &on, nil
			case "disabled":
				off := false
				return &off, nil
			}
			return nil, invalid("%s %q is invalid: use enabled or disabled", field, *v)
		}
		var err error
		if rp := p.RetentionPolicy; rp != nil {
			if rp.Days != nil && (*rp.Days < 0 || *rp.Days > 365) {
				return u, invalid("Invalid value for days: should be from 0 to 365")
			}
			u.RetentionDays = rp.Days
			if u.RetentionEnabled, err = status("retentionPolicy.status", rp.Status); err != nil {
				return u, err
			}
		}
		if sp := p.SoftDeletePolicy; sp != nil {
			if sp.RetentionDays != nil && (*sp.RetentionDays < 1 || *sp.RetentionDays > 90) {
				return u, invalid("Invalid value for days: should be from 1 to 90")
			}
			u.SoftDeleteDays = sp.RetentionDays
			if u.SoftDeleteEnabled, err = status("softDeletePolicy.status", sp.Status); err != nil {
				return u, err
			}
		}
	}
	if req.NetworkRuleSet != nil && req.NetworkRuleSet.DefaultAction != nil {
		var a string
		switch strings.ToLower(*req.NetworkRuleSet.DefaultAction) {
		case "allow":
			a = store.ActionAllow
		case "deny":
			a = store.ActionDeny
		default:
			return u, invalid("networkRuleSet.defaultAction %q is invalid: use Allow or Deny", *req.NetworkRuleSet.DefaultAction)
		}
		u.DefaultAction = &a
	}
	return u, nil
}

// maxAnonymousPatterns bounds the anonymous pull patterns of a registry.
const maxAnonymousPatterns = 100

func (h *Handler) createRegistry(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	var req client.RegistryUpdate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if !registryName.MatchString(req.Name) {
		return invalid("registry name %q is invalid: use 3 to 50 lower-case letters, digits and dashes, starting and ending with a letter or digit", req.Name)
	}
	u, err := settings(req)
	if err != nil {
		return err
	}
	ls := ""
	if u.LoginServer != nil {
		ls = *u.LoginServer
	}
	if req.AdminUserEnabled != nil && *req.AdminUserEnabled {
		if err := h.require(p, policy.PermCredentialsWrite, ""); err != nil {
			return err
		}
	}
	reg, err := h.Store.CreateRegistry(ctx, req.Name, ls)
	if err != nil {
		return storeError(err, fmt.Sprintf("registry %q (or its login server)", req.Name))
	}
	u.LoginServer = nil
	if reg, err = h.Store.UpdateRegistry(ctx, reg.Name, u); err != nil {
		return err
	}
	out := toRegistryJSON(reg, r)
	if req.AdminUserEnabled != nil && *req.AdminUserEnabled {
		if out, err = h.setAdmin(ctx, r, p, reg.Name, true); err != nil {
			return err
		}
	}
	return h.commit(ctx, w, http.StatusCreated, out)
}

func (h *Handler) updateRegistry(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	var req client.RegistryUpdate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Name != "" && req.Name != reg.Name {
		return invalid("a registry cannot be renamed")
	}
	u, err := settings(req)
	if err != nil {
		return err
	}
	if req.AdminUserEnabled != nil {
		// Turning the admin user on hands out passwords: that is data access configuration.
		if err := h.require(p, policy.PermCredentialsWrite, reg.Name); err != nil {
			return err
		}
	}
	if u.LoginServer != nil && *u.LoginServer != reg.LoginServer {
		// Host names are the whole server's namespace: which registry answers a host is
		// decided at "/", not by one registry's administrators.
		if err := h.require(p, policy.PermRegistryWrite, ""); err != nil {
			return err
		}
	}
	if reg, err = h.Store.UpdateRegistry(ctx, reg.Name, u); err != nil {
		return storeError(err, fmt.Sprintf("registry %q or login server", reg.Name))
	}
	if u.RoleAssignmentMode != nil {
		h.Log.InfoContext(ctx, "role assignment mode set; tokens issued under the other mode are no longer accepted", "registry", reg.Name, "mode", *u.RoleAssignmentMode)
	}
	out := toRegistryJSON(reg, r)
	if req.AdminUserEnabled != nil {
		if out, err = h.setAdmin(ctx, r, p, reg.Name, *req.AdminUserEnabled); err != nil {
			return err
		}
	}
	return h.commit(ctx, w, http.StatusOK, out)
}

func (h *Handler) deleteRegistry(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	name := r.PathValue("registry")
	if err := h.Store.DeleteRegistry(ctx, name); err != nil {
		return storeError(err, fmt.Sprintf("registry %q", name))
	}
	return h.commit(ctx, w, http.StatusNoContent, nil)
}

// canonicalLoginServer checks a login server (a host name or IP address, with an optional port;
// no scheme, path or user) and returns it in lower case, without a default port (443, 80), as
// clients send it in Host. "" clears it.
func canonicalLoginServer(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	bad := func(why string) error {
		return invalid("loginServer %q is invalid: %s; give a host name or IP address with an optional port, such as registry.example.com or 10.0.0.5:5000", truncate(v), why)
	}
	if len(v) > 261 {
		return "", bad("longer than 261 characters")
	}
	if strings.ContainsAny(v, "/@?#\\ \t") || strings.Contains(v, "://") {
		return "", bad("it has a scheme, path, user or space")
	}
	host, port := strings.ToLower(v), ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		host, port = h, p
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "", bad("the port is not a number from 1 to 65535")
		}
	} else if strings.Count(host, ":") == 1 || strings.HasPrefix(host, "[") {
		return "", bad(err.Error())
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return "", bad("an address with a zone")
		}
		host = ip.String()
		if ip.Is6() && !ip.Is4In6() {
			host = "[" + host + "]"
		}
	} else if !hostName.MatchString(host) || len(host) > 253 {
		return "", bad("not a host name")
	}
	if port == "" || port == "443" || port == "80" {
		return host, nil
	}
	return host + ":" + port, nil
}

// hostName is a DNS name: labels of letters, digits and dashes, not starting or ending with a dash.
var hostName = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// showUsage is az acr show-usage: what the registry holds (berth sets no quota: limit null).
func (h *Handler) showUsage(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	reg, err := h.registry(r.Context(), r)
	if err != nil {
		return err
	}
	// ?repository=NAME: that repository's figures.
	if repo := r.URL.Query().Get("repository"); repo != "" {
		u, err := h.usage.do(r.Context(), usageKey{reg.ID, repo}, func(ctx context.Context) (store.Usage, error) {
			return h.Store.RepositoryUsage(ctx, reg.ID, repo)
		})
		if err != nil {
			return storeError(err, fmt.Sprintf("repository %q", repo))
		}
		return reply(w, http.StatusOK, client.Usage{Value: []client.UsageItem{
			{Name: "Size", CurrentValue: u.Bytes, Unit: "Bytes"},
			{Name: "Manifests", CurrentValue: u.Manifests, Unit: "Count"},
			{Name: "Tags", CurrentValue: u.Tags, Unit: "Count"},
		}})
	}
	u, err := h.usage.do(r.Context(), usageKey{reg.ID, ""}, func(ctx context.Context) (store.Usage, error) {
		return h.Store.RegistryUsage(ctx, reg.ID)
	})
	if err != nil {
		return err
	}
	hooks, err := h.Store.Webhooks(r.Context(), reg.ID)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, client.Usage{Value: []client.UsageItem{
		{Name: "Size", CurrentValue: u.Bytes, Unit: "Bytes"},
		{Name: "Repositories", CurrentValue: u.Repositories, Unit: "Count"},
		{Name: "Manifests", CurrentValue: u.Manifests, Unit: "Count"},
		{Name: "Tags", CurrentValue: u.Tags, Unit: "Count"},
		{Name: "Webhooks", CurrentValue: int64(len(hooks)), Unit: "Count"},
	}})
}
