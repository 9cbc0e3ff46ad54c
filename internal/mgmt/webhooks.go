package mgmt

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/audit"
	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/reqlog"
	"github.com/berth-registry/berth/internal/store"
	"github.com/berth-registry/berth/internal/webhook"
)

// webhookName follows ACR: 5 to 50 letters and digits.
var webhookName = regexp.MustCompile(`^[A-Za-z0-9]{5,50}$`)

// webhookScope is "", or repo[:tag] with * wildcards.
var webhookScope = regexp.MustCompile(`^[a-z0-9*._/-]+(:[A-Za-z0-9*._-]+)?$`)

var webhookActions = []string{store.WebhookPush, store.WebhookDelete, store.WebhookChartPush, store.WebhookChartDelete}

// maxHeaders bounds a webhook's custom headers.
const maxHeaders = 20

func toWebhookJSON(registry string, w store.Webhook) client.Webhook {
	actions := w.Actions
	if actions == nil {
		actions = []string{}
	}
	return client.Webhook{ID: "/registries/" + registry + "/webhooks/" + w.Name, Type: client.TypeWebhook, Name: w.Name, Actions: actions, Scope: w.Scope,
		Status: w.Status, ProvisioningState: client.ProvisioningSucceeded, CreationDate: timeOrNil(w.CreatedAt)}
}

func checkWebhook(actions []string, scope, status string, headers map[string]string) error {
	if len(actions) == 0 {
		return invalid("actions: at least one of push, delete, chart_push, chart_delete")
	}
	for _, a := range actions {
		if !slices.Contains(webhookActions, a) {
			return invalid("action %q is invalid: use push, delete, chart_push or chart_delete", a)
		}
	}
	if scope != "" && (len(scope) > 256 || !webhookScope.MatchString(scope)) {
		return invalid("scope %q is invalid: repository[:tag], * matching any characters, e.g. team/*:v* (at most 256 characters)", scope)
	}
	if status != "enabled" && status != "disabled" {
		return invalid("status %q is invalid: use enabled or disabled", status)
	}
	if len(headers) > maxHeaders {
		return invalid("customHeaders: at most %d", maxHeaders)
	}
	for k, v := range headers {
		if err := webhook.CheckHeader(k, v); err != nil {
			return invalid("customHeaders: %v", err)
		}
	}
	return nil
}

func (h *Handler) listWebhooks(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	reg, err := h.registry(r.Context(), r)
	if err != nil {
		return err
	}
	hooks, err := h.Store.Webhooks(r.Context(), reg.ID)
	if err != nil {
		return err
	}
	return replyList(w, hooks, func(wh store.Webhook) (client.Webhook, error) { return toWebhookJSON(reg.Name, wh), nil })
}

func (h *Handler) webhook(ctx context.Context, r *http.Request) (store.Registry, store.Webhook, error) {
	reg, err := h.registry(ctx, r)
	if err != nil {
		return reg, store.Webhook{}, err
	}
	name := r.PathValue("webhook")
	wh, err := h.Store.Webhook(ctx, reg.ID, name)
	if err != nil {
		return reg, wh, storeError(err, fmt.Sprintf("webhook %q of registry %q", name, reg.Name))
	}
	return reg, wh, nil
}

func (h *Handler) showWebhook(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	reg, wh, err := h.webhook(r.Context(), r)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, toWebhookJSON(reg.Name, wh))
}

func (h *Handler) createWebhook(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	var req client.WebhookCreate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if !webhookName.MatchString(req.Name) {
		return invalid("webhook name %q is invalid: use 5 to 50 letters and digits", req.Name)
	}
	if req.Status == "" {
		req.Status = "enabled"
	}
	if err := webhook.CheckURI(req.ServiceURI); err != nil {
		return invalid("%v", err)
	}
	if err := checkWebhook(req.Actions, req.Scope, req.Status, req.CustomHeaders); err != nil {
		return err
	}
	if h.Box == nil {
		return errors.New("mgmt: webhooks need the key-encryption key")
	}
	sealed, err := webhook.Seal(h.Box, reg.ID, req.Name, webhook.Config{ServiceURI: req.ServiceURI, CustomHeaders: req.CustomHeaders, Secret: rand.Text() + rand.Text()})
	if err != nil {
		return err
	}
	wh, err := h.Store.CreateWebhook(ctx, store.Webhook{RegistryID: reg.ID, Name: req.Name, ConfigSealed: sealed, Actions: dedupe(req.Actions), Scope: req.Scope, Status: req.Status})
	if err != nil {
		return storeError(err, fmt.Sprintf("webhook %q of registry %q", req.Name, reg.Name))
	}
	return reply(w, http.StatusCreated, toWebhookJSON(reg.Name, wh))
}

func dedupe(xs []string) []string {
	out := []string{}
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func (h *Handler) updateWebhook(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	reg, wh, err := h.webhook(ctx, r)
	if err != nil {
		return err
	}
	var req client.WebhookUpdate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	actions, scope, status := wh.Actions, wh.Scope, wh.Status
	if req.Actions != nil {
		actions = dedupe(*req.Actions)
	}
	if req.Scope != nil {
		scope = *req.Scope
	}
	if req.Status != nil {
		status = *req.Status
	}
	var headers map[string]string
	if req.CustomHeaders != nil {
		headers = *req.CustomHeaders
	}
	if err := checkWebhook(actions, scope, status, headers); err != nil {
		return err
	}
	u := store.WebhookUpdate{Actions: &actions, Scope: &scope, Status: &status}
	if req.ServiceURI != nil || req.CustomHeaders != nil {
		c, err := webhook.Open(h.Box, reg.ID, wh.Name, wh.ConfigSealed)
		if err != nil {
			return err
		}
		if req.ServiceURI != nil {
			if err := webhook.CheckURI(*req.ServiceURI); err != nil {
				return invalid("%v", err)
			}
			c.ServiceURI = *req.ServiceURI
		}
		if req.CustomHeaders != nil {
			c.CustomHeaders = headers
		}
		if u.ConfigSealed, err = webhook.Seal(h.Box, reg.ID, wh.Name, c); err != nil {
			return err
		}
	}
	if wh, err = h.Store.UpdateWebhook(ctx, reg.ID, wh.Name, u); err != nil {
		return storeError(err, fmt.Sprintf("webhook %q", wh.Name))
	}
	return reply(w, http.StatusOK, toWebhookJSON(reg.Name, wh))
}

func (h *Handler) deleteWebhook(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	reg, wh, err := h.webhook(r.Context(), r)
	if err != nil {
		return err
	}
	if err := h.Store.DeleteWebhook(r.Context(), reg.ID, wh.Name); err != nil {
		return storeError(err, fmt.Sprintf("webhook %q", wh.Name))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) pingWebhook(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	_, wh, err := h.webhook(ctx, r)
	if err != nil {
		return err
	}
	actor, _ := audit.Identity(p)
	ctx = store.WithRequest(ctx, store.RequestInfo{ID: reqlog.CorrelationID(ctx), Addr: authn.ClientIP(r), Host: truncate(r.Host), Method: r.Method,
		UserAgent: truncate(r.UserAgent()), Actor: truncate(actor), Source: h.Source})
	id, err := h.Store.EnqueuePing(ctx, wh)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, client.WebhookPing{ID: id})
}

// webhookConfig is az acr webhook get-config: the address and headers (which may carry
// credentials) and the signing secret, to the roles that may read the admin user's passwords;
// each read is a login event, as those are.
func (h *Handler) webhookConfig(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	reg, wh, err := h.webhook(r.Context(), r)
	if err != nil {
		return err
	}
	c, err := webhook.Open(h.Box, reg.ID, wh.Name, wh.ConfigSealed)
	if err != nil {
		return err
	}
	if c.CustomHeaders == nil {
		c.CustomHeaders = map[string]string{}
	}
	h.recordRead(r, p, reg, "webhook_config_read", "read the configuration of webhook "+wh.Name)
	return reply(w, http.StatusOK, client.WebhookConfig{ServiceURI: c.ServiceURI, CustomHeaders: c.CustomHeaders, SigningSecret: c.Secret})
}

// maxEvents bounds list-events.
const maxEvents = 200

// webhookEvents is az acr webhook list-events: the deliveries, newest first. The receiver's
// address is shown without its query and the custom headers' values are not shown (readers of
// the registry see this; get-config is for those who may see secrets).
func (h *Handler) webhookEvents(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	reg, wh, err := h.webhook(ctx, r)
	if err != nil {
		return err
	}
	list, err := h.Store.WebhookDeliveries(ctx, wh.ID, maxEvents)
	if err != nil {
		return err
	}
	uri, headers := "", map[string]string{}
	if c, err := webhook.Open(h.Box, reg.ID, wh.Name, wh.ConfigSealed); err == nil {
		if u, err := url.Parse(c.ServiceURI); err == nil {
			u.RawQuery, u.Fragment = "", ""
			uri = u.String()
		}
		for k := range c.CustomHeaders {
			headers[k] = "*****"
		}
	}
	return replyList(w, list, func(d store.Delivery) (client.WebhookEvent, error) {
		hs := map[string]string{"Content-Type": "application/json", "X-Berth-Delivery": d.ID, "X-Berth-Event": d.Action, "X-Berth-Signature-256": "*****"}
		for k, v := range headers {
			hs[k] = v
		}
		resp := client.WebhookResponseMessage{Headers: map[string]string{}, Version: "1.1"}
		if d.LastStatus > 0 {
			resp.StatusCode, resp.ReasonPhrase = strconv.Itoa(d.LastStatus), http.StatusText(d.LastStatus)
		}
		if d.LastError != "" && d.LastStatus == 0 {
			resp.ReasonPhrase = d.LastError
		}
		return client.WebhookEvent{ID: d.ID, EventRequestMessage: client.WebhookRequestMessage{Content: json.RawMessage(d.Payload), Headers: hs, Method: http.MethodPost,
			RequestURI: uri, Version: "1.1"}, EventResponseMessage: resp, Status: d.Status, Attempts: d.Attempts, LatencyMs: d.Latency.Milliseconds(),
			Time: *timeOrNil(d.CreatedAt)}, nil
	})
}
