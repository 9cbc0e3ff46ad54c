package portal

import (
	"net/url"
	"slices"
	"strings"

	"github.com/berth-registry/berth/client"
)

type eventsData struct {
	Kind        string
	Filter      client.EventFilter
	AllRegistry bool
	CanAll      bool
	Logins      []client.LoginEvent
	Repository  []client.RepositoryEvent
}

// eventLimit is how many events a page shows.
const eventLimit = 100

// events lists login or repository events with filters; a correlation id (pasted from an error
// message) is looked up in both kinds, in the registry's and, for who may read them, the
// server's (the directory's sign-ins).
func (h *Handler) events(x *call) error {
	q := x.r.URL.Query()
	d := eventsData{Kind: q.Get("kind"), CanAll: slices.Contains(x.v.Me.Permissions, "registries/read")}
	if d.Kind != "repository" {
		d.Kind = "login"
	}
	d.Filter = client.EventFilter{Registry: x.v.Registry.Name, Identity: strings.TrimSpace(q.Get("identity")), Result: q.Get("result"),
		CorrelationID: strings.TrimSpace(q.Get("correlationId")), Limit: eventLimit}
	d.AllRegistry = q.Get("scope") == "server" && d.CanAll
	if d.AllRegistry {
		d.Filter.Registry = ""
	}
	var err error
	if d.Filter.CorrelationID != "" {
		if err = h.findCorrelation(x, &d); err != nil {
			return err
		}
		return h.page(x, "events", "events", "Events", d)
	}
	if d.Kind == "login" {
		d.Logins, err = x.c.LoginEvents(x.ctx, d.Filter)
	} else {
		d.Repository, err = x.c.RepositoryEvents(x.ctx, d.Filter)
	}
	if err != nil {
		return err
	}
	return h.page(x, "events", "events", "Events", d)
}

func (h *Handler) findCorrelation(x *call, d *eventsData) error {
	scopes := []string{d.Filter.Registry}
	if d.Filter.Registry != "" && d.CanAll {
		scopes = append(scopes, "")
	}
	for _, reg := range scopes {
		f := d.Filter
		f.Registry = reg
		logins, err := x.c.LoginEvents(x.ctx, f)
		if err != nil {
			return err
		}
		repo, err := x.c.RepositoryEvents(x.ctx, f)
		if err != nil {
			return err
		}
		d.Logins, d.Repository = logins, repo
		if len(logins)+len(repo) > 0 {
			d.AllRegistry = reg == ""
			if len(logins) == 0 {
				d.Kind = "repository"
			}
			return nil
		}
	}
	return nil
}

type webhooksData struct {
	Webhooks   []client.Webhook
	Deliveries map[string][]client.WebhookEvent
	Actions    []string
}

func (h *Handler) webhooks(x *call) error {
	hooks, err := x.c.Webhooks(x.ctx, x.v.Registry.Name)
	if err != nil {
		return err
	}
	d := webhooksData{Webhooks: hooks, Deliveries: map[string][]client.WebhookEvent{}, Actions: webhookActions}
	for _, w := range hooks {
		ev, err := x.c.WebhookEvents(x.ctx, x.v.Registry.Name, w.Name)
		if err != nil {
			return err
		}
		if len(ev) > 20 {
			ev = ev[:20]
		}
		d.Deliveries[w.Name] = ev
	}
	return h.page(x, "webhooks", "webhooks", "Webhooks", d)
}

func pathEscape(s string) string { return url.PathEscape(s) }
