package mgmt

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/store"
)

// exportPage is how many events one query of a JSON lines export reads.
const exportPage = 1000

// events serves GET …/events/{kind}: the login or repository events of the registry in the path,
// or, without one, of every registry and the directory. Filters are query parameters; the reply
// is a JSON array, newest first, or with format=jsonl every matching event, one per line.
func (h *Handler) events(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	kind := r.PathValue("kind")
	if kind != "login" && kind != "repository" {
		return httperr.New(CodeNotFound, "there are no %q events: use login or repository", truncate(kind)).WithStatus(http.StatusNotFound)
	}
	f, jsonl, err := eventFilter(r)
	if err != nil {
		return err
	}
	if name := r.PathValue("registry"); name != "" {
		reg, err := h.registry(r.Context(), r)
		if err != nil {
			return err
		}
		f.Registries = []string{reg.Name}
	} else if reg := r.URL.Query().Get("registry"); reg != "" {
		f.Registries = []string{reg}
	}
	list := func(f store.EventFilter) ([]any, int64, error) {
		var out []any
		var last int64
		if kind == "login" {
			evs, err := h.Store.LoginEvents(r.Context(), f)
			for _, e := range evs {
				out, last = append(out, toLoginEvent(e)), e.ID
			}
			return out, last, err
		}
		evs, err := h.Store.RepositoryEvents(r.Context(), f)
		for _, e := range evs {
			out, last = append(out, toRepositoryEvent(e)), e.ID
		}
		return out, last, err
	}
	if !jsonl {
		out, _, err := list(f)
		if err != nil {
			return err
		}
		if out == nil {
			out = []any{}
		}
		return reply(w, http.StatusOK, out)
	}
	// JSON lines: page through everything that matches (or up to limit), streaming.
	remaining := f.Limit
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	for {
		f.Limit = exportPage
		if remaining > 0 && remaining < exportPage {
			f.Limit = remaining
		}
		page, last, err := list(f)
		if err != nil {
			return err // before the first line this is a clean error reply; after, the stream stops short
		}
		for _, e := range page {
			if err := enc.Encode(e); err != nil {
				return nil // the client went away
			}
		}
		if remaining > 0 {
			if remaining -= len(page); remaining <= 0 {
				return nil
			}
		}
		if len(page) < f.Limit {
			return nil
		}
		f.Before = last
	}
}

// eventFilter reads an event query's parameters.
func eventFilter(r *http.Request) (f store.EventFilter, jsonl bool, err error) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "identity", "result", "reason", "ip", "operation", "repository", "correlationId", "subject", "since", "until", "limit", "before", "format", "registry":
		default:
			return f, false, invalid("unknown query parameter %q; the filters are identity, result, reason, ip, operation, repository, correlationId, subject, since, until, limit, before and format", truncate(k))
		}
	}
	get := func(k string) (string, error) {
		v := q.Get(k)
		if len(v) > 512 {
			return "", invalid("%s is longer than 512 bytes", k)
		}
		return v, nil
	}
	for _, p := range []struct {
		key string
		dst *string
	}{{"identity", &f.Identity}, {"reason", &f.Reason}, {"operation", &f.Operation}, {"repository", &f.Repository}, {"correlationId", &f.CorrelationID}, {"subject", &f.Subject}} {
		if *p.dst, err = get(p.key); err != nil {
			return f, false, err
		}
	}
	switch f.Result = q.Get("result"); f.Result {
	case "", store.ResultSuccess, store.ResultFailure:
	default:
		return f, false, invalid("result must be success or failure, not %q", truncate(f.Result))
	}
	if ip := q.Get("ip"); ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return f, false, invalid("ip %q is not an IP address", truncate(ip))
		}
		f.IP = a.String()
	}
	if f.Since, err = eventTime(q.Get("since"), "since"); err != nil {
		return f, false, err
	}
	if f.Until, err = eventTime(q.Get("until"), "until"); err != nil {
		return f, false, err
	}
	for _, p := range []struct {
		key string
		max int64
		set func(int64)
	}{{"limit", store.MaxEventPage, func(n int64) { f.Limit = int(n) }}, {"before", 1 << 62, func(n int64) { f.Before = n }}} {
		if v := q.Get(p.key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 || (p.key == "limit" && n > p.max) {
				return f, false, invalid("%s must be a whole number from 1 to %d, not %q", p.key, p.max, truncate(v))
			}
			p.set(n)
		}
	}
	switch format := q.Get("format"); format {
	case "", "json":
	case "jsonl":
		jsonl = true
		if q.Get("limit") == "" {
			f.Limit = 0 // everything
		}
	default:
		return f, false, invalid("format must be json or jsonl, not %q", truncate(format))
	}
	return f, jsonl, nil
}

// eventTime parses RFC 3339 time, or a duration back from now ("90m", "24h", "7d").
func eventTime(v, name string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 && n <= 36500 {
			return time.Now().Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, httperr.New(CodeInvalidArgument, "%s %q is neither an RFC 3339 time (2026-11-23T10:00:00Z) nor a duration back from now (90m, 24h, 7d)", name, truncate(v)).
		WithStatus(http.StatusBadRequest)
}

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func millis(m store.Millis) float64 { return float64(time.Duration(m).Microseconds()) / 1000 }

// toLoginEvent is a login event as the API shows it.
func toLoginEvent(e store.LoginEvent) client.LoginEvent {
	return client.LoginEvent{ID: e.ID, Time: formatTime(e.Time), Registry: e.Registry, LoginServer: e.LoginServer, Operation: e.Operation,
		Identity: e.Identity, IdentityKind: e.IdentityKind, IP: e.IP, UserAgent: e.UserAgent, Status: e.Status, Result: e.Result,
		Reason: e.Reason, Message: e.Message, Granted: e.Granted, Refused: e.Refused, DurationMs: millis(e.Duration),
		CorrelationID: e.CorrelationID, TokenID: e.TokenID, Attempts: e.Attempts, Issuer: e.Issuer, Subject: e.Subject}
}

// toRepositoryEvent is a repository event as the API shows it.
func toRepositoryEvent(e store.RepositoryEvent) client.RepositoryEvent {
	return client.RepositoryEvent{ID: e.ID, Time: formatTime(e.Time), Registry: e.Registry, LoginServer: e.LoginServer, Operation: e.Operation,
		Repository: e.Repository, Tag: e.Tag, Digest: e.Digest, MediaType: e.MediaType, ArtifactType: e.ArtifactType, Size: e.Size,
		Identity: e.Identity, IdentityKind: e.IdentityKind, IP: e.IP, UserAgent: e.UserAgent, Status: e.Status, Result: e.Result,
		Reason: e.Reason, Message: e.Message, DurationMs: millis(e.Duration), CorrelationID: e.CorrelationID}
}
