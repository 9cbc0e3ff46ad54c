package portal

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/authn"
)

// home lists the registries the user may see; with one, it is the registry's overview.
func (h *Handler) home(x *call) error {
	if len(x.v.Registries) == 1 && x.r.URL.Query().Get("list") == "" {
		http.Redirect(x.w, x.r, Prefix+"r/"+pathEscape(x.v.Registries[0].Name)+"/", http.StatusSeeOther)
		x.rendered = true
		return nil
	}
	return h.page(x, "home", "home", "Registries", nil)
}

// overview shows the registry; its usage, which costs as much as the registry holds, comes in a
// request of its own (usage), loaded by the page or followed as a link.
func (h *Handler) overview(x *call) error {
	return h.page(x, "overview", "overview", x.v.Registry.Name, nil)
}

func (h *Handler) usage(x *call) error {
	var items []client.UsageItem
	if x.v.Can("registries/read") {
		u, err := x.c.RegistryUsage(x.ctx, x.v.Registry.Name)
		if err != nil {
			return err
		}
		items = u.Value
	}
	return h.page(x, "usage", "overview", "Usage of "+x.v.Registry.Name, items)
}

// keysData is the access keys blade's: the admin user's passwords, whose values are shown only
// in the reply of the request that asked for them (never in a URL, never stored by the portal).
type keysData struct {
	Credentials *client.Credentials
}

func (h *Handler) keys(x *call) error {
	var d keysData
	if x.v.Registry.AdminUserEnabled && x.v.Can("registries/credentials/read") {
		c, err := x.c.AdminCredentials(x.ctx, x.v.Registry.Name)
		if err != nil {
			return err
		}
		d.Credentials = &c
	}
	return h.page(x, "keys", "keys", "Access keys", d)
}

func (h *Handler) setAdmin(x *call) (string, error) {
	on := x.r.PostForm.Get("enabled") == "true"
	if _, err := x.c.UpdateRegistry(x.ctx, x.v.Registry.Name, client.RegistryUpdate{AdminUserEnabled: &on}); err != nil {
		return "", err
	}
	if on {
		return "admin-on", nil
	}
	return "admin-off", nil
}

// showPasswords shows the admin user's passwords (listCredentials: a login event records it).
func (h *Handler) showPasswords(x *call) (string, error) {
	c, err := x.c.ListCredentials(x.ctx, x.v.Registry.Name)
	if err != nil {
		return "", err
	}
	x.v.Notice = "The passwords are shown on this page only: copy what you need now."
	return "", h.page(x, "keys", "keys", "Access keys", keysData{Credentials: &c})
}

func (h *Handler) regenerate(x *call) (string, error) {
	name := x.r.PostForm.Get("name")
	if name != "password" && name != "password2" {
		return "", &client.Error{Status: http.StatusBadRequest, Message: "name must be password or password2"}
	}
	c, err := x.c.RenewAdminCredential(x.ctx, x.v.Registry.Name, name)
	if err != nil {
		return "", err
	}
	x.v.Notice = name + " was regenerated; it is shown on this page only: copy it now."
	return "", h.page(x, "keys", "keys", "Access keys", keysData{Credentials: &c})
}

type networkData struct {
	Rules    client.NetworkRuleSet
	ClientIP string
	// Network is the rules' answer for the user's own address now.
	Network client.Decision
}

func (h *Handler) network(x *call) error {
	rules, err := x.c.NetworkRules(x.ctx, x.v.Registry.Name)
	if err != nil {
		return err
	}
	return h.page(x, "network", "network", "Networking", networkData{Rules: rules, ClientIP: authn.ClientIP(x.r), Network: x.v.Perms.Network})
}

func (h *Handler) networkSettings(x *call) (string, error) {
	f := x.r.PostForm
	u := client.RegistryUpdate{}
	if v := f.Get("publicNetworkAccess"); v != "" {
		u.PublicNetworkAccess = &v
	}
	if v := f.Get("defaultAction"); v != "" {
		u.NetworkRuleSet = &client.NetworkRuleSetUpdate{DefaultAction: &v}
	}
	if f.Has("anonymousPull") {
		on := f.Get("anonymousPull") == "true"
		u.AnonymousPullEnabled = &on
	}
	_, err := x.c.UpdateRegistry(x.ctx, x.v.Registry.Name, u)
	return "network-saved", err
}

// addRule adds the address or range typed, or with "mine" the user's own address.
func (h *Handler) addRule(x *call) (string, error) {
	value := strings.TrimSpace(x.r.PostForm.Get("value"))
	if x.r.PostForm.Get("mine") == "true" {
		value = authn.ClientIP(x.r)
	}
	_, err := x.c.AddNetworkRule(x.ctx, x.v.Registry.Name, value)
	return "rule-added", err
}

func (h *Handler) removeRule(x *call) (string, error) {
	_, err := x.c.RemoveNetworkRule(x.ctx, x.v.Registry.Name, x.r.PostForm.Get("value"))
	return "rule-removed", err
}

func (h *Handler) policies(x *call) error {
	return h.page(x, "policies", "policies", "Retention and soft delete", nil)
}

func (h *Handler) setPolicies(x *call) (string, error) {
	f := x.r.PostForm
	days, err1 := strconv.Atoi(f.Get("retentionDays"))
	soft, err2 := strconv.Atoi(f.Get("softDeleteDays"))
	if err1 != nil || err2 != nil {
		return "", &client.Error{Status: http.StatusBadRequest, Message: "the numbers of days must be whole numbers"}
	}
	rs, ss := status(f.Get("retention") == "true"), status(f.Get("softDelete") == "true")
	u := client.RegistryUpdate{Policies: &client.PoliciesUpdate{
		RetentionPolicy:  &client.RetentionPolicyUpdate{Days: &days, Status: &rs},
		SoftDeletePolicy: &client.SoftDeletePolicyUpdate{RetentionDays: &soft, Status: &ss},
	}}
	_, err := x.c.UpdateRegistry(x.ctx, x.v.Registry.Name, u)
	return "policies-saved", err
}

func status(on bool) string {
	if on {
		return "enabled"
	}
	return "disabled"
}
