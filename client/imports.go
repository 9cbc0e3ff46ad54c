package client

import (
	"context"
	"net/http"
	"net/url"
)

// ImportRequest is az acr import: a server-side copy of an image (an index with every platform)
// from another registry.
type ImportRequest struct {
	// Source is HOST/REPOSITORY:TAG or HOST/REPOSITORY@DIGEST.
	Source string `json:"source"`
	// Image is the target REPOSITORY[:TAG]; empty: the source's repository and tag.
	Image    string `json:"image,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Force overwrites a target tag that exists.
	Force bool `json:"force,omitempty"`
	// WithReferrers also copies the source's referrers (signatures, SBOMs) of what it copies.
	WithReferrers bool `json:"withReferrers,omitempty"`
	// PlainHTTP reaches the source over http (a lab, a test); otherwise https.
	PlainHTTP bool `json:"plainHttp,omitempty"`
}

// ImportOperation is an import and how it goes.
type ImportOperation struct {
	ID        string  `json:"id"`
	Status    string  `json:"status"` // Running, Succeeded, Failed
	Source    string  `json:"source"`
	Target    string  `json:"target"`
	Error     string  `json:"error,omitempty"`
	Manifests int     `json:"manifests"`
	Blobs     int     `json:"blobs"`
	Bytes     int64   `json:"bytes"`
	StartTime *string `json:"startTime"`
	EndTime   *string `json:"endTime"`
}

// StartImport starts an import in the background.
func (c *Client) StartImport(ctx context.Context, registry string, r ImportRequest) (ImportOperation, error) {
	var out ImportOperation
	return out, c.Do(ctx, http.MethodPost, reg(registry)+"/import", r, &out)
}

// Import tells how an import goes.
func (c *Client) Import(ctx context.Context, registry, id string) (ImportOperation, error) {
	var out ImportOperation
	return out, c.Do(ctx, http.MethodGet, reg(registry)+"/imports/"+url.PathEscape(id), nil, &out)
}
