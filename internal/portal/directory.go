package portal

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/client"
)

// The directory blade: users, groups, service principals (with their federated credentials) and
// identity providers, read with directory/read at "/"; created, changed and deleted with
// directory/write, and, where a change moves roles, what the API's "no permission grants another"
// asks.

type directoryData struct {
	CanRead, CanWrite bool
	Users             []client.User
	Groups            []client.Group
	SPs               []client.ServicePrincipal
	Federated         map[string][]client.FederatedCredential
	Identities        []client.IdentityProvider
	// Secret is a service principal's new secret, shown once.
	Secret *client.SPSecret
}

// maxFederatedShown bounds the service principals whose federated credentials the page reads.
const maxFederatedShown = 50

func (h *Handler) directoryPage(x *call, secret *client.SPSecret) error {
	d := directoryData{CanRead: slices.Contains(x.v.Me.Permissions, "directory/read"), CanWrite: slices.Contains(x.v.Me.Permissions, "directory/write"),
		Federated: map[string][]client.FederatedCredential{}, Secret: secret}
	if d.CanRead {
		var err error
		if d.Users, err = x.c.Users(x.ctx); err != nil {
			return err
		}
		if d.Groups, err = x.c.Groups(x.ctx); err != nil {
			return err
		}
		if d.SPs, err = x.c.ServicePrincipals(x.ctx); err != nil {
			return err
		}
		for i, sp := range d.SPs {
			if i == maxFederatedShown {
				break
			}
			fc, err := x.c.FederatedCredentials(x.ctx, sp.AppID)
			if err != nil {
				return err
			}
			d.Federated[sp.AppID] = fc
		}
		if d.Identities, err = x.c.IdentityProviders(x.ctx); err != nil {
			return err
		}
	}
	return h.page(x, "directory", "directory", "Directory", d)
}

func (h *Handler) directory(x *call) error { return h.directoryPage(x, nil) }

func (h *Handler) createUser(x *call) (string, error) {
	f := x.r.PostForm
	_, err := x.c.CreateUser(x.ctx, strings.TrimSpace(f.Get("name")), f.Get("password"))
	return "user-created", err
}

func (h *Handler) deleteUser(x *call) (string, error) {
	return "user-deleted", x.c.DeleteUser(x.ctx, x.r.PostForm.Get("name"))
}

func (h *Handler) createGroup(x *call) (string, error) {
	f := x.r.PostForm
	_, err := x.c.CreateGroup(x.ctx, strings.TrimSpace(f.Get("name")), f.Get("description"))
	return "group-created", err
}

func (h *Handler) deleteGroup(x *call) (string, error) {
	return "group-deleted", x.c.DeleteGroup(x.ctx, x.r.PostForm.Get("name"))
}

func (h *Handler) addMember(x *call) (string, error) {
	_, err := x.c.AddGroupMember(x.ctx, x.r.PostForm.Get("group"), strings.TrimSpace(x.r.PostForm.Get("member")))
	return "member-added", err
}

func (h *Handler) removeMember(x *call) (string, error) {
	return "member-removed", x.c.RemoveGroupMember(x.ctx, x.r.PostForm.Get("group"), x.r.PostForm.Get("member"))
}

func years(f string) (int, error) {
	if f == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(f)
	if err != nil || n < 1 {
		return 0, &client.Error{Status: http.StatusBadRequest, Message: "years must be a whole number, at least 1"}
	}
	return n, nil
}

// createSP creates a service principal and shows its secret once.
func (h *Handler) createSP(x *call) (string, error) {
	y, err := years(x.r.PostForm.Get("years"))
	if err != nil {
		return "", err
	}
	sec, err := x.c.CreateServicePrincipal(x.ctx, strings.TrimSpace(x.r.PostForm.Get("displayName")), y)
	if err != nil {
		return "", err
	}
	x.v.Notice = "The service principal was created. Its secret is shown on this page only: copy it now."
	return "", h.directoryPage(x, &sec)
}

func (h *Handler) resetSP(x *call) (string, error) {
	sec, err := x.c.ResetServicePrincipalSecret(x.ctx, x.r.PostForm.Get("appId"), x.r.PostForm.Get("append") == "true", 1)
	if err != nil {
		return "", err
	}
	x.v.Notice = "A new secret was made. It is shown on this page only: copy it now."
	return "", h.directoryPage(x, &sec)
}

func (h *Handler) deleteSP(x *call) (string, error) {
	return "sp-deleted", x.c.DeleteServicePrincipal(x.ctx, x.r.PostForm.Get("appId"))
}

// Webhooks: create, enable or disable, ping, delete (registries/write).

var webhookActions = []string{"push", "delete", "chart_push", "chart_delete"}

func (h *Handler) createWebhook(x *call) (string, error) {
	f := x.r.PostForm
	w := client.WebhookCreate{Name: strings.TrimSpace(f.Get("name")), ServiceURI: strings.TrimSpace(f.Get("uri")), Actions: f["actions"], Scope: strings.TrimSpace(f.Get("scope"))}
	_, err := x.c.CreateWebhook(x.ctx, x.v.Registry.Name, w)
	return "webhook-created", err
}

func (h *Handler) webhookStatus(x *call) (string, error) {
	s := status(x.r.PostForm.Get("enabled") == "true")
	_, err := x.c.UpdateWebhook(x.ctx, x.v.Registry.Name, x.r.PostForm.Get("webhook"), client.WebhookUpdate{Status: &s})
	return "webhook-updated", err
}

func (h *Handler) pingWebhook(x *call) (string, error) {
	_, err := x.c.PingWebhook(x.ctx, x.v.Registry.Name, x.r.PostForm.Get("webhook"))
	return "webhook-pinged", err
}

func (h *Handler) deleteWebhook(x *call) (string, error) {
	return "webhook-deleted", x.c.DeleteWebhook(x.ctx, x.v.Registry.Name, x.r.PostForm.Get("webhook"))
}
