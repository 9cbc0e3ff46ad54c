package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Webhook is a registry's webhook. Its receiver's address and custom headers, and the secret
// that signs deliveries, are kept sealed (ConfigSealed): the store never reads them.
type Webhook struct {
	ID           int64
	RegistryID   int64
	Name         string
	ConfigSealed []byte
	Actions      []string // push, delete, chart_push, chart_delete
	Scope        string   // "" (everything), "repo:tag" with * wildcards; "repo" is "repo:latest"
	Status       string   // enabled, disabled
	CreatedAt    time.Time
}

// MaxWebhooks bounds a registry's webhooks.
const MaxWebhooks = 100

// The webhook actions, as ACR's.
const (
	WebhookPush        = "push"
	WebhookDelete      = "delete"
	WebhookChartPush   = "chart_push"
	WebhookChartDelete = "chart_delete"
	WebhookPing        = "ping"
)

const webhookColumns = `id, registry_id, name, config_sealed, actions, scope, status, created_at`

func scanWebhook(sc scanner) (Webhook, error) {
	var w Webhook
	var actions string
	var created int64
	err := sc.Scan(&w.ID, &w.RegistryID, &w.Name, &w.ConfigSealed, &actions, &w.Scope, &w.Status, &created)
	w.Actions, w.CreatedAt = strings.Fields(actions), time.UnixMilli(created)
	return w, err
}

// CreateWebhook adds a webhook; ErrConflict if the name is taken or the registry has MaxWebhooks.
func (s *Store) CreateWebhook(ctx context.Context, w Webhook) (Webhook, error) {
	w.CreatedAt = time.UnixMilli(s.millis())
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM webhooks WHERE registry_id = ?`), w.RegistryID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxWebhooks {
			return fmt.Errorf("%w: the registry has %d webhooks, the most it may have", ErrConflict, MaxWebhooks)
		}
		var err error
		w.ID, err = s.insertRow(ctx, tx, "webhooks", "registry_id, name, config_sealed, actions, scope, status, created_at",
			w.RegistryID, w.Name, w.ConfigSealed, strings.Join(w.Actions, " "), w.Scope, w.Status, w.CreatedAt.UnixMilli())
		return err
	})
	if err != nil {
		return w, fmt.Errorf("store: create webhook %q: %w", w.Name, s.classify(err))
	}
	return w, nil
}

// Webhooks lists a registry's webhooks by name.
func (s *Store) Webhooks(ctx context.Context, registryID int64) ([]Webhook, error) {
	out, err := queryAll(ctx, s.r, s.q(`SELECT `+webhookColumns+` FROM webhooks WHERE registry_id = ? ORDER BY name`), []any{registryID}, scanWebhook)
	if err != nil {
		return nil, fmt.Errorf("store: webhooks: %w", err)
	}
	return out, nil
}

// Webhook returns one webhook, or ErrNotFound.
func (s *Store) Webhook(ctx context.Context, registryID int64, name string) (Webhook, error) {
	w, err := scanWebhook(s.r.QueryRowContext(ctx, s.q(`SELECT `+webhookColumns+` FROM webhooks WHERE registry_id = ? AND name = ?`), registryID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return w, ErrNotFound
	}
	if err != nil {
		return w, fmt.Errorf("store: webhook %q: %w", name, err)
	}
	return w, nil
}

// WebhookUpdate changes a webhook; nil fields stay.
type WebhookUpdate struct {
	ConfigSealed []byte
	Actions      *[]string
	Scope        *string
	Status       *string
}

// UpdateWebhook changes a webhook and returns it; ErrNotFound if there is none.
func (s *Store) UpdateWebhook(ctx context.Context, registryID int64, name string, u WebhookUpdate) (Webhook, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, c := range []struct {
			col string
			set bool
			v   func() any
		}{
			{"config_sealed", u.ConfigSealed != nil, func() any { return u.ConfigSealed }},
			{"actions", u.Actions != nil, func() any { return strings.Join(*u.Actions, " ") }},
			{"scope", u.Scope != nil, func() any { return *u.Scope }},
			{"status", u.Status != nil, func() any { return *u.Status }},
		} {
			if !c.set {
				continue
			}
			if err := s.execOne(ctx, tx, `UPDATE webhooks SET `+c.col+` = ? WHERE registry_id = ? AND name = ?`, c.v(), registryID, name); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return Webhook{}, ErrNotFound
	}
	if err != nil {
		return Webhook{}, fmt.Errorf("store: update webhook %q: %w", name, err)
	}
	return s.Webhook(ctx, registryID, name)
}

// DeleteWebhook removes a webhook with its deliveries; ErrNotFound if there is none.
func (s *Store) DeleteWebhook(ctx context.Context, registryID int64, name string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM webhook_deliveries WHERE webhook_id IN (SELECT id FROM webhooks WHERE registry_id = ? AND name = ?)`), registryID, name); err != nil {
			return err
		}
		return s.execOne(ctx, tx, `DELETE FROM webhooks WHERE registry_id = ? AND name = ?`, registryID, name)
	})
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: delete webhook %q: %w", name, err)
	}
	return nil
}

// ScopeMatches reports whether a webhook's scope covers repo:tag (tag "" for an event without
// one, which only a scope of every tag covers): "" covers everything, "repo" is "repo:latest",
// and * matches any run of characters.
func ScopeMatches(scope, repo, tag string) bool {
	if scope == "" {
		return true
	}
	rs, ts, ok := strings.Cut(scope, ":")
	if !ok {
		ts = "latest"
	}
	if !globAcross(rs, repo) {
		return false
	}
	if tag == "" {
		return ts == "*"
	}
	return globAcross(ts, tag)
}

// globAcross matches a pattern whose only special character is * (any run of characters,
// slashes included).
func globAcross(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// RequestInfo is what a webhook payload says of the request that caused an event: ACR's
// documented request fields, and the client address its event model adds.
type RequestInfo struct {
	ID        string `json:"id"`
	Addr      string `json:"addr,omitempty"`
	Host      string `json:"host"`
	Method    string `json:"method"`
	UserAgent string `json:"useragent"`
	// Actor and Source go to the payload's own fields.
	Actor  string        `json:"-"`
	Source WebhookSource `json:"-"`
}

// WebhookActor is who made the change (ACR's event model, Distribution's notifications): the
// identity's name as login events show it.
type WebhookActor struct {
	Name string `json:"name"`
}

// WebhookSource is the registry instance that handled the request: its host name and the
// replica's id (random per process).
type WebhookSource struct {
	Addr       string `json:"addr,omitempty"`
	InstanceID string `json:"instanceID,omitempty"`
}

type requestInfoKey struct{}

// WithRequest attaches the request behind the store's next writes, for webhook payloads.
func WithRequest(ctx context.Context, ri RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, ri)
}

// WebhookTarget is what a webhook payload says of the content.
type WebhookTarget struct {
	MediaType  string `json:"mediaType,omitempty"`
	Size       int64  `json:"size,omitempty"`
	Digest     string `json:"digest,omitempty"`
	Length     int64  `json:"length,omitempty"`
	Repository string `json:"repository,omitempty"`
	Tag        string `json:"tag,omitempty"`
}

// WebhookPayload is ACR's webhook payload.
type WebhookPayload struct {
	ID        string         `json:"id"`
	Timestamp string         `json:"timestamp"`
	Action    string         `json:"action"`
	Target    WebhookTarget  `json:"target"`
	Request   RequestInfo    `json:"request"`
	Actor     *WebhookActor  `json:"actor,omitempty"`
	Source    *WebhookSource `json:"source,omitempty"`
}

// newPayload is a payload with a new id, for the request behind ctx.
func (s *Store) newPayload(ctx context.Context, action string, target WebhookTarget) WebhookPayload {
	ri, _ := ctx.Value(requestInfoKey{}).(RequestInfo)
	p := WebhookPayload{ID: NewDeliveryID(), Timestamp: s.now().UTC().Format(time.RFC3339Nano), Action: action, Target: target, Request: ri}
	if ri.Actor != "" {
		p.Actor = &WebhookActor{Name: ri.Actor}
	}
	if ri.Source != (WebhookSource{}) {
		p.Source = &ri.Source
	}
	return p
}

// idClock makes this process's delivery ids increase: the millisecond, then a counter.
var idClock struct {
	sync.Mutex
	last int64 // unix milliseconds << 12 | counter
}

// NewDeliveryID is an id in the shape of a GUID, as ACR's event ids: a version 7 UUID (RFC
// 9562), whose first 60 bits are the millisecond and a counter and whose other 62 come from
// crypto/rand. Ids made by one process sort in the order they were made, so that events and
// deliveries of the same millisecond go out in that order (a push before the delete after it).
func NewDeliveryID() string {
	var b [16]byte
	rand.Read(b[:])
	idClock.Lock()
	t := max(time.Now().UnixMilli()<<12, idClock.last+1)
	idClock.last = t
	idClock.Unlock()
	ms, seq := t>>12, t&0xfff
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	b[6], b[7] = 0x70|byte(seq>>8), byte(seq)
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// isChart reports whether a manifest is a Helm chart (its config's media type, which berth keeps
// as the artifact type of an image manifest).
func isChart(artifactType string) bool {
	return artifactType == "application/vnd.cncf.helm.config.v1+json"
}

// enqueueWebhooks writes, in the transaction of the change, a delivery for each enabled webhook
// of the registry that the action and repo:tag trigger.
func (s *Store) enqueueWebhooks(ctx context.Context, tx *sql.Tx, registryID int64, action string, target WebhookTarget, artifactType string) error {
	if isChart(artifactType) {
		action = "chart_" + action
	}
	// A registry without enabled webhooks writes nothing.
	var one int
	err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM webhooks WHERE registry_id = ? AND status = 'enabled' LIMIT 1`), registryID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	// One row for the change, whatever the number of webhooks: ClaimDeliveries fans it out.
	p := s.newPayload(ctx, action, target)
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO webhook_events (id, registry_id, payload, created_at) VALUES (?, ?, ?, ?)`), p.ID, registryID, string(b), s.now().UnixMilli())
	return err
}

// maxFanOut bounds the events one claim fans out into deliveries.
const maxFanOut = 200

// fanOut turns pending webhook events into one delivery per enabled webhook of their registry
// that the action and repo:tag trigger and that existed when the change was made, each with an
// id of its own; the events go.
func (s *Store) fanOut(ctx context.Context, tx *sql.Tx) error {
	type event struct {
		id       string
		registry int64
		payload  string
		created  int64
	}
	events, err := queryAll(ctx, tx, s.q(`SELECT id, registry_id, payload, created_at FROM webhook_events ORDER BY created_at, id LIMIT ?`), []any{maxFanOut},
		func(sc scanner) (event, error) {
			var e event
			return e, sc.Scan(&e.id, &e.registry, &e.payload, &e.created)
		})
	if err != nil || len(events) == 0 {
		return err
	}
	type hook struct {
		id             int64
		actions, scope string
		created        int64
	}
	hooks := map[int64][]hook{}
	for _, e := range events {
		if _, ok := hooks[e.registry]; ok {
			continue
		}
		hs, err := queryAll(ctx, tx, s.q(`SELECT id, actions, scope, created_at FROM webhooks WHERE registry_id = ? AND status = 'enabled'`), []any{e.registry},
			func(sc scanner) (hook, error) {
				var h hook
				return h, sc.Scan(&h.id, &h.actions, &h.scope, &h.created)
			})
		if err != nil {
			return err
		}
		hooks[e.registry] = hs
	}
	var marks []string
	var args []any
	flush := func() error {
		if len(marks) == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO webhook_deliveries (id, webhook_id, action, payload, created_at, next_at) VALUES `+strings.Join(marks, ", ")), args...)
		marks, args = marks[:0], args[:0]
		return err
	}
	for _, e := range events {
		var p WebhookPayload
		if err := json.Unmarshal([]byte(e.payload), &p); err != nil {
			return fmt.Errorf("webhook event %s: %w", e.id, err)
		}
		for _, h := range hooks[e.registry] {
			if h.created > e.created || !strings.Contains(" "+h.actions+" ", " "+p.Action+" ") || !ScopeMatches(h.scope, p.Target.Repository, p.Target.Tag) {
				continue
			}
			p.ID = NewDeliveryID()
			b, err := json.Marshal(p)
			if err != nil {
				return err
			}
			marks = append(marks, "(?, ?, ?, ?, ?, ?)")
			args = append(args, p.ID, h.id, p.Action, string(b), e.created, e.created)
			if len(marks) == 100 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM webhook_events WHERE id = ?`), e.id); err != nil {
			return err
		}
	}
	return flush()
}

func (s *Store) insertDelivery(ctx context.Context, tx *sql.Tx, webhookID int64, p WebhookPayload, now time.Time) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO webhook_deliveries (id, webhook_id, action, payload, created_at, next_at) VALUES (?, ?, ?, ?, ?, ?)`),
		p.ID, webhookID, p.Action, string(b), now.UnixMilli(), now.UnixMilli())
	return err
}

// EnqueuePing writes a ping delivery for a webhook and returns its id.
func (s *Store) EnqueuePing(ctx context.Context, w Webhook) (string, error) {
	p := s.newPayload(ctx, WebhookPing, WebhookTarget{})
	err := s.tx(ctx, func(tx *sql.Tx) error { return s.insertDelivery(ctx, tx, w.ID, p, s.now()) })
	if err != nil {
		return "", fmt.Errorf("store: ping webhook %q: %w", w.Name, err)
	}
	return p.ID, nil
}

// Delivery is one webhook call, due or done.
type Delivery struct {
	ID           string
	WebhookID    int64
	RegistryID   int64
	WebhookName  string
	ConfigSealed []byte
	Action       string
	Payload      []byte
	CreatedAt    time.Time
	Attempts     int
	Status       string // pending, delivered, failed
	LastStatus   int
	LastError    string
	Latency      time.Duration
	DoneAt       time.Time
}

const deliveryColumns = `d.id, d.webhook_id, w.registry_id, w.name, w.config_sealed, d.action, d.payload, d.created_at, d.attempts, d.status, d.last_status, d.last_error, d.latency_ms, d.done_at`

func scanDelivery(sc scanner) (Delivery, error) {
	var d Delivery
	var payload string
	var created, latency, done int64
	err := sc.Scan(&d.ID, &d.WebhookID, &d.RegistryID, &d.WebhookName, &d.ConfigSealed, &d.Action, &payload, &created, &d.Attempts, &d.Status, &d.LastStatus, &d.LastError, &latency, &done)
	d.Payload, d.CreatedAt, d.Latency = []byte(payload), time.UnixMilli(created), time.Duration(latency)*time.Millisecond
	if done > 0 {
		d.DoneAt = time.UnixMilli(done)
	}
	return d, err
}

// ClaimDeliveries leases up to limit due deliveries to holder until now+lease, in one
// transaction: while the lease runs no other replica takes them. A holder that dies leaves them
// to the others when it ends.
func (s *Store) ClaimDeliveries(ctx context.Context, holder string, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	var pending int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM webhook_events LIMIT 1) e`).Scan(&pending); err != nil {
		return nil, fmt.Errorf("store: webhook events: %w", err)
	}
	if pending > 0 {
		if err := s.tx(ctx, func(tx *sql.Tx) error { return s.fanOut(ctx, tx) }); err != nil {
			return nil, fmt.Errorf("store: webhook events: %w", err)
		}
	}
	ids, err := queryAll(ctx, s.r, s.q(`SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_at <= ? AND lease_until < ? ORDER BY next_at, id LIMIT ?`),
		[]any{now.UnixMilli(), now.UnixMilli(), limit}, func(sc scanner) (string, error) {
			var id string
			return id, sc.Scan(&id)
		})
	if err != nil || len(ids) == 0 {
		if err != nil {
			err = fmt.Errorf("store: due deliveries: %w", err)
		}
		return nil, err
	}
	marks := "?" + strings.Repeat(", ?", len(ids)-1)
	args := []any{holder, now.Add(lease).UnixMilli()}
	for _, id := range ids {
		args = append(args, id)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`UPDATE webhook_deliveries SET lease = ?, lease_until = ? WHERE id IN (`+marks+`) AND status = 'pending' AND lease_until < ?`),
			append(args, now.UnixMilli())...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	// What this holder got (another replica may have taken some first); a delivery whose webhook
	// was deleted meanwhile is gone.
	out, err := queryAll(ctx, s.r, s.q(`SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
		WHERE d.id IN (`+marks+`) AND d.lease = ? AND d.lease_until = ? ORDER BY d.next_at, d.id`), append(args[2:], holder, now.Add(lease).UnixMilli()), scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("store: claimed deliveries: %w", err)
	}
	return out, nil
}

// DeliveryResult is the outcome of one attempt.
type DeliveryResult struct {
	Status  int // the receiver's HTTP status; 0 when it did not answer
	Error   string
	Latency time.Duration
	// Delivered ends the delivery; otherwise it is tried again at NextAt, unless Final (given up).
	Delivered, Final bool
	NextAt           time.Time
}

// FinishDelivery records an attempt by holder (a lease lost meanwhile changes nothing).
func (s *Store) FinishDelivery(ctx context.Context, id, holder string, r DeliveryResult) error {
	return s.FinishDeliveries(ctx, holder, map[string]DeliveryResult{id: r})
}

// FinishDeliveries records attempts by holder, in one transaction.
func (s *Store) FinishDeliveries(ctx context.Context, holder string, results map[string]DeliveryResult) error {
	now := s.millis()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for id, r := range results {
			status, done := "pending", int64(0)
			switch {
			case r.Delivered:
				status, done = "delivered", now
			case r.Final:
				status, done = "failed", now
			}
			if len(r.Error) > 1024 {
				r.Error = r.Error[:1024]
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE webhook_deliveries SET attempts = attempts + 1, status = ?, last_status = ?, last_error = ?, latency_ms = ?,
				done_at = ?, next_at = ?, lease = '', lease_until = 0 WHERE id = ? AND lease = ?`),
				status, r.Status, r.Error, r.Latency.Milliseconds(), done, r.NextAt.UnixMilli(), id, holder); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: finish deliveries: %w", err)
	}
	return nil
}

// WebhookDeliveries lists a webhook's deliveries, newest first (at most limit).
func (s *Store) WebhookDeliveries(ctx context.Context, webhookID int64, limit int) ([]Delivery, error) {
	out, err := queryAll(ctx, s.r, s.q(`SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
		WHERE d.webhook_id = ? ORDER BY d.created_at DESC, d.id LIMIT ?`), []any{webhookID, limit}, scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("store: deliveries: %w", err)
	}
	return out, nil
}

// PurgeDeliveries removes the finished deliveries older than before.
func (s *Store) PurgeDeliveries(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM webhook_deliveries WHERE status <> 'pending' AND done_at < ?`), before.UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// enqueueDelete writes the delete deliveries of a manifest (tag "") or a tag about to go.
func (s *Store) enqueueDelete(ctx context.Context, tx *sql.Tx, registryID, repoID int64, repo, digest, tag string) error {
	var mediaType, artifactType string
	var size int64
	err := tx.QueryRowContext(ctx, s.q(`SELECT media_type, artifact_type, size FROM manifests WHERE repository_id = ? AND digest = ?`), repoID, digest).
		Scan(&mediaType, &artifactType, &size)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return s.enqueueWebhooks(ctx, tx, registryID, WebhookDelete, WebhookTarget{MediaType: mediaType, Digest: digest, Repository: repo, Tag: tag}, artifactType)
}
