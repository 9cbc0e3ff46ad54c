package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// TypeWebhook is ACR's resource type of a webhook.
const TypeWebhook = "Microsoft.ContainerRegistry/registries/webhooks"

// Webhook is a registry's webhook, as az acr webhook show prints it (never its address or
// headers: get-config shows them).
type Webhook struct {
	ID                string   `json:"id"`
	Type              string   `json:"type"`
	Name              string   `json:"name"`
	Actions           []string `json:"actions"`
	Scope             string   `json:"scope"`
	Status            string   `json:"status"`
	ProvisioningState string   `json:"provisioningState"`
	CreationDate      *string  `json:"creationDate"`
}

// WebhookCreate is a new webhook.
type WebhookCreate struct {
	Name          string            `json:"name"`
	ServiceURI    string            `json:"serviceUri"`
	CustomHeaders map[string]string `json:"customHeaders,omitempty"`
	Actions       []string          `json:"actions"`
	Scope         string            `json:"scope,omitempty"`
	Status        string            `json:"status,omitempty"`
}

// WebhookUpdate changes a webhook; nil fields stay.
type WebhookUpdate struct {
	ServiceURI    *string            `json:"serviceUri,omitempty"`
	CustomHeaders *map[string]string `json:"customHeaders,omitempty"`
	Actions       *[]string          `json:"actions,omitempty"`
	Scope         *string            `json:"scope,omitempty"`
	Status        *string            `json:"status,omitempty"`
}

// WebhookConfig is az acr webhook get-config's reply; SigningSecret is berth's: the HMAC key of
// the X-Berth-Signature-256 header of every delivery.
type WebhookConfig struct {
	ServiceURI    string            `json:"serviceUri"`
	CustomHeaders map[string]string `json:"customHeaders"`
	SigningSecret string            `json:"signingSecret"`
}

// WebhookRequestMessage is what a delivery sent.
type WebhookRequestMessage struct {
	Content    json.RawMessage   `json:"content"`
	Headers    map[string]string `json:"headers"`
	Method     string            `json:"method"`
	RequestURI string            `json:"requestUri"`
	Version    string            `json:"version"`
}

// WebhookResponseMessage is what the receiver last answered.
type WebhookResponseMessage struct {
	Headers      map[string]string `json:"headers"`
	ReasonPhrase string            `json:"reasonPhrase"`
	StatusCode   string            `json:"statusCode"`
	Version      string            `json:"version"`
}

// WebhookEvent is one delivery, as az acr webhook list-events prints it; berth adds its status
// (pending, delivered, failed), attempts, latency and time.
type WebhookEvent struct {
	ID                   string                 `json:"id"`
	EventRequestMessage  WebhookRequestMessage  `json:"eventRequestMessage"`
	EventResponseMessage WebhookResponseMessage `json:"eventResponseMessage"`
	Status               string                 `json:"status"`
	Attempts             int                    `json:"attempts"`
	LatencyMs            int64                  `json:"latencyMs"`
	Time                 string                 `json:"time"`
}

// WebhookPing is az acr webhook ping's reply: the id of the ping's delivery.
type WebhookPing struct {
	ID string `json:"id"`
}

func hook(registry, name string) string { return reg(registry) + "/webhooks/" + url.PathEscape(name) }

// Webhooks lists a registry's webhooks.
func (c *Client) Webhooks(ctx context.Context, registry string) ([]Webhook, error) {
	var out []Webhook
	return out, c.Do(ctx, http.MethodGet, reg(registry)+"/webhooks", nil, &out)
}

// Webhook shows a webhook.
func (c *Client) Webhook(ctx context.Context, registry, name string) (Webhook, error) {
	var out Webhook
	return out, c.Do(ctx, http.MethodGet, hook(registry, name), nil, &out)
}

// CreateWebhook creates a webhook.
func (c *Client) CreateWebhook(ctx context.Context, registry string, w WebhookCreate) (Webhook, error) {
	var out Webhook
	return out, c.Do(ctx, http.MethodPost, reg(registry)+"/webhooks", w, &out)
}

// UpdateWebhook changes a webhook.
func (c *Client) UpdateWebhook(ctx context.Context, registry, name string, u WebhookUpdate) (Webhook, error) {
	var out Webhook
	return out, c.Do(ctx, http.MethodPatch, hook(registry, name), u, &out)
}

// DeleteWebhook deletes a webhook with its deliveries.
func (c *Client) DeleteWebhook(ctx context.Context, registry, name string) error {
	return c.Do(ctx, http.MethodDelete, hook(registry, name), nil, nil)
}

// PingWebhook queues a ping delivery.
func (c *Client) PingWebhook(ctx context.Context, registry, name string) (WebhookPing, error) {
	var out WebhookPing
	return out, c.Do(ctx, http.MethodPost, hook(registry, name)+"/ping", nil, &out)
}

// WebhookEvents lists a webhook's deliveries, newest first.
func (c *Client) WebhookEvents(ctx context.Context, registry, name string) ([]WebhookEvent, error) {
	var out []WebhookEvent
	return out, c.Do(ctx, http.MethodGet, hook(registry, name)+"/events", nil, &out)
}

// WebhookConfig shows a webhook's address, headers and signing secret.
func (c *Client) WebhookConfig(ctx context.Context, registry, name string) (WebhookConfig, error) {
	var out WebhookConfig
	return out, c.Do(ctx, http.MethodPost, hook(registry, name)+"/getCallbackConfig", nil, &out)
}
