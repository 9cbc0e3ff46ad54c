package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// LoginEvent is one sign-in attempt.
type LoginEvent struct {
	ID            int64    `json:"id"`
	Time          string   `json:"time"`
	Registry      string   `json:"registry"`
	LoginServer   string   `json:"loginServer"`
	Operation     string   `json:"operation"`
	Identity      string   `json:"identity"`
	IdentityKind  string   `json:"identityKind"`
	IP            string   `json:"callerIpAddress"`
	UserAgent     string   `json:"userAgent"`
	Status        int      `json:"status"`
	Result        string   `json:"result"`
	Reason        string   `json:"reason"`
	Message       string   `json:"message"`
	Granted       []string `json:"grantedScopes"`
	Refused       []string `json:"refusedScopes"`
	DurationMs    float64  `json:"durationMs"`
	CorrelationID string   `json:"correlationId"`
	TokenID       string   `json:"jwtId"`
	// Attempts is how many sign-in attempts the event stands for: failures that name no verified
	// identity (a malformed token, an unknown name, a refused address) are written once per
	// address, reason and minute, with their number.
	Attempts int `json:"attempts"`
	// Issuer and Subject name the external token of a federated sign-in.
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// RepositoryEvent is one push, pull, delete or untag of a manifest.
type RepositoryEvent struct {
	ID            int64   `json:"id"`
	Time          string  `json:"time"`
	Registry      string  `json:"registry"`
	LoginServer   string  `json:"loginServer"`
	Operation     string  `json:"operation"`
	Repository    string  `json:"repository"`
	Tag           string  `json:"tag"`
	Digest        string  `json:"digest"`
	MediaType     string  `json:"mediaType"`
	ArtifactType  string  `json:"artifactType"`
	Size          int64   `json:"size"`
	Identity      string  `json:"identity"`
	IdentityKind  string  `json:"identityKind"`
	IP            string  `json:"callerIpAddress"`
	UserAgent     string  `json:"userAgent"`
	Status        int     `json:"status"`
	Result        string  `json:"result"`
	Reason        string  `json:"reason"`
	Message       string  `json:"message"`
	DurationMs    float64 `json:"durationMs"`
	CorrelationID string  `json:"correlationId"`
}

// EventFilter selects events; zero fields match everything. Since and Until are RFC 3339
// times or durations back from now ("24h", "7d").
type EventFilter struct {
	// Registry limits the events to one registry; "" means every registry the caller may read
	// at "/", and the directory's sign-ins.
	Registry      string
	Identity      string
	Result        string
	Reason        string
	IP            string
	Operation     string
	Repository    string
	CorrelationID string
	Subject       string // login events: a federated or single sign-on sign-in's external subject
	Since, Until  string
	Limit         int
	Before        int64
}

func (f EventFilter) path(kind, format string) string {
	q := url.Values{}
	for k, v := range map[string]string{"identity": f.Identity, "result": f.Result, "reason": f.Reason, "ip": f.IP, "operation": f.Operation,
		"repository": f.Repository, "correlationId": f.CorrelationID, "subject": f.Subject, "since": f.Since, "until": f.Until, "format": format} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Before > 0 {
		q.Set("before", strconv.FormatInt(f.Before, 10))
	}
	p := "/mgmt/v1/events/" + kind
	if f.Registry != "" {
		p = "/mgmt/v1/registries/" + url.PathEscape(f.Registry) + "/events/" + kind
	}
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return p
}

// LoginEvents lists login events, newest first.
func (c *Client) LoginEvents(ctx context.Context, f EventFilter) ([]LoginEvent, error) {
	var out []LoginEvent
	return out, c.Do(ctx, http.MethodGet, f.path("login", ""), nil, &out)
}

// RepositoryEvents lists repository events, newest first.
func (c *Client) RepositoryEvents(ctx context.Context, f EventFilter) ([]RepositoryEvent, error) {
	var out []RepositoryEvent
	return out, c.Do(ctx, http.MethodGet, f.path("repository", ""), nil, &out)
}

// ExportEvents copies every matching event of kind ("login" or "repository") to w as JSON
// lines, newest first. Limit 0 means all of them.
func (c *Client) ExportEvents(ctx context.Context, kind string, f EventFilter, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+f.path(kind, "jsonl"), nil)
	if err != nil {
		return err
	}
	if c.AuthToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.AuthToken)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxReply))
		return replyError(resp, b)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("client: exporting %s events: %w", kind, err)
	}
	return nil
}
