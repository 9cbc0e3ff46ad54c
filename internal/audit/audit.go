// Package audit records login and repository events off the request path. Events go into a
// bounded queue that one goroutine drains into the store in batches: a burst becomes a few
// transactions, and a full queue makes the requests that record events wait (back pressure)
// rather than lose them. Events the store refuses even after retries are written to the log, so
// none disappears silently.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/reqlog"
	"github.com/berth-registry/berth/internal/store"
)

// Recorder takes events. Recording may wait while the queue is full; it never drops an event.
type Recorder interface {
	Login(ctx context.Context, e store.LoginEvent)
	Repository(ctx context.Context, e store.RepositoryEvent)
}

// Discard is a Recorder that keeps nothing, for handlers built without audit.
var Discard Recorder = discard{}

type discard struct{}

func (discard) Login(context.Context, store.LoginEvent)           {}
func (discard) Repository(context.Context, store.RepositoryEvent) {}

// Sink is where batches go: the store.
type Sink interface {
	InsertEvents(ctx context.Context, logins []store.LoginEvent, repos []store.RepositoryEvent) error
}

// Options tune a Writer.
type Options struct {
	// Queue is how many events may wait to be written; 0 means 4096.
	Queue int
	// Batch is the most events written in one transaction; 0 means 500.
	Batch int
	// Retries is how often a failed batch is tried again before it goes to the log; 0 means 5.
	Retries int
	// Linger is how long a batch that is not full waits for more events before it is written;
	// 0 means 10ms, negative means not at all. Every transaction costs a write to the
	// database's log: under load, waiting a little makes far fewer of them.
	Linger time.Duration
	// OnLogin, if set, is called for each login event as it is recorded (metrics).
	OnLogin func(store.LoginEvent)
	// Aggregate is the interval over which failures that name no verified identity are counted
	// into one event per registry, address, operation and reason; 0 means a minute, negative
	// means each is an event of its own.
	Aggregate time.Duration
}

type item struct {
	login *store.LoginEvent
	repo  *store.RepositoryEvent
}

// Writer is the batched Recorder.
type Writer struct {
	sink Sink
	log  *slog.Logger
	opts Options

	mu      sync.RWMutex // held shared by senders, exclusively by Close
	closed  bool
	ch      chan item
	done    chan struct{}
	agg     *aggregator  // nil when every event is written on its own
	waits   atomic.Int64 // times a sender found the queue full
	written atomic.Int64
	failed  atomic.Int64
}

// NewWriter starts a writer; Close stops it after writing what is queued.
func NewWriter(sink Sink, log *slog.Logger, opts Options) *Writer {
	if opts.Queue <= 0 {
		opts.Queue = 4096
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.Retries <= 0 {
		opts.Retries = 5
	}
	if opts.Linger == 0 {
		opts.Linger = 10 * time.Millisecond
	}
	if opts.Aggregate == 0 {
		opts.Aggregate = time.Minute
	}
	w := &Writer{sink: sink, log: log.With("component", "audit"), opts: opts, ch: make(chan item, opts.Queue), done: make(chan struct{})}
	if opts.Aggregate > 0 {
		w.agg = &aggregator{every: opts.Aggregate, m: map[string]*aggregate{}, stop: make(chan struct{}), done: make(chan struct{})}
		go w.agg.run(w)
	}
	go w.run()
	return w
}

// Login queues a login event.
func (w *Writer) Login(ctx context.Context, e store.LoginEvent) {
	if w.opts.OnLogin != nil {
		w.opts.OnLogin(e)
	}
	if w.agg.count(e) {
		return
	}
	w.put(ctx, item{login: &e})
}

// Repository queues a repository event.
func (w *Writer) Repository(ctx context.Context, e store.RepositoryEvent) {
	w.put(ctx, item{repo: &e})
}

// put queues it, waiting while the queue is full. It does not give up when ctx ends: a client
// that hangs up has still made its attempt, and the writer always makes progress.
func (w *Writer) put(ctx context.Context, it item) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		// After Close nothing drains the queue: write it here, synchronously.
		w.write(context.WithoutCancel(ctx), []item{it})
		return
	}
	select {
	case w.ch <- it:
		return
	default:
	}
	w.waits.Add(1)
	w.ch <- it
}

// Depth is the number of queued events.
func (w *Writer) Depth() int { return len(w.ch) }

// Capacity is the queue's size.
func (w *Writer) Capacity() int { return cap(w.ch) }

// Stats are the writer's counters.
type Stats struct {
	Written int64 // events stored
	Failed  int64 // events the store refused, written to the log instead
	Waits   int64 // times a request waited for room in the queue
}

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	return Stats{Written: w.written.Load(), Failed: w.failed.Load(), Waits: w.waits.Load()}
}

// Close writes what is queued and stops the writer; events recorded later are written
// synchronously. It returns when the queue is empty or ctx ends.
func (w *Writer) Close(ctx context.Context) error {
	if w.agg != nil {
		w.agg.once.Do(func() {
			close(w.agg.stop)
			<-w.agg.done
			for _, e := range w.agg.finish() { // what the last interval counted
				w.put(ctx, item{login: &e})
			}
		})
	}
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.ch)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]item, 0, w.opts.Batch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for it := range w.ch {
		batch = append(batch[:0], it)
		if w.opts.Linger > 0 {
			linger.Reset(w.opts.Linger)
		}
	fill:
		for len(batch) < w.opts.Batch {
			if w.opts.Linger <= 0 {
				select {
				case more, ok := <-w.ch:
					if !ok {
						break fill
					}
					batch = append(batch, more)
				default:
					break fill
				}
				continue
			}
			select {
			case more, ok := <-w.ch:
				if !ok {
					break fill
				}
				batch = append(batch, more)
			case <-linger.C:
				break fill
			}
		}
		linger.Stop()
		w.write(context.Background(), batch)
	}
}

// write stores a batch, retrying with back-off; what the store keeps refusing goes to the log.
func (w *Writer) write(ctx context.Context, batch []item) {
	var logins []store.LoginEvent
	var repos []store.RepositoryEvent
	for _, it := range batch {
		if it.login != nil {
			logins = append(logins, *it.login)
		} else {
			repos = append(repos, *it.repo)
		}
	}
	delay := 50 * time.Millisecond
	var err error
	for try := 0; try <= w.opts.Retries; try++ {
		if try > 0 {
			time.Sleep(delay)
			delay *= 2
		}
		if err = w.sink.InsertEvents(ctx, logins, repos); err == nil {
			w.written.Add(int64(len(batch)))
			return
		}
		w.log.Warn("could not store events; retrying", "err", err, "events", len(batch), "try", try+1)
	}
	w.failed.Add(int64(len(batch)))
	for _, e := range logins {
		b, _ := json.Marshal(e)
		w.log.Error("login event not stored", "err", err, "event", string(b))
	}
	for _, e := range repos {
		b, _ := json.Marshal(e)
		w.log.Error("repository event not stored", "err", err, "event", string(b))
	}
}

// Operations of login events: the endpoint the attempt came to.
const (
	OpToken     = "token"     // /oauth2/token
	OpExchange  = "exchange"  // /oauth2/exchange
	OpRegistry  = "registry"  // credentials sent to /v2/ itself (Basic, or a bearer token that was refused)
	OpDirectory = "directory" // /mgmt/v1/token
	OpSSO       = "sso"       // a single sign-on's return from the identity provider (/mgmt/v1/sso/callback)
	// OpPasswordReset: a password set offline, straight in the database (berth owner reset-password).
	OpPasswordReset = "password_reset"
	// OpListCredentials: the admin user's passwords were shown to a caller of the management API
	// (credential show or renew); the identity is the caller.
	OpListCredentials = "list_credentials"
)

// Operations of repository events.
const (
	OpPush   = "push"
	OpPull   = "pull"
	OpDelete = "delete"
	OpUntag  = "untag"
	// OpLock: the attributes (locks) of a repository, tag or manifest were changed.
	OpLock = "lock"
	// OpRestore: a soft-deleted manifest was restored.
	OpRestore = "restore"
)

// NewLogin starts a login event for a request: when it began, the caller, its user agent, the
// correlation id, and until a sign-in says who the caller is, the user name its Basic
// credentials claim (unverified). Finish completes it.
func NewLogin(r *http.Request, registry, loginServer, op string) store.LoginEvent {
	e := store.LoginEvent{Time: started(r), Registry: registry, LoginServer: loginServer, Operation: op, IP: authn.ClientIP(r),
		UserAgent: truncate(r.UserAgent(), 512), CorrelationID: reqlog.CorrelationID(r.Context()), Granted: []string{}, Refused: []string{}}
	if user, _, ok := r.BasicAuth(); ok {
		e.Identity = user
	}
	return e
}

// Finish completes the login event of a sign-in that ended with err (nil: it succeeded):
// status, result, reason and message, the identity a refused sign-in tried, the duration. It
// also names the identity in the request's access-log line.
func Finish(r *http.Request, e *store.LoginEvent, err error) {
	e.Status, e.Result = http.StatusOK, store.ResultSuccess
	if err != nil {
		e.Status, e.Reason, e.Message = Describe(err)
		e.Result = store.ResultFailure
		if ae, ok := authn.AsError(err); ok && ae.Identity != "" && e.IdentityKind == "" {
			e.Identity = ae.Identity
		}
		if ae, ok := authn.AsError(err); ok && e.Issuer == "" {
			e.Issuer, e.Subject = ae.Issuer, ae.Subject
		}
	}
	e.Identity = truncate(e.Identity, 120)
	e.Issuer, e.Subject = truncate(e.Issuer, 600), truncate(e.Subject, 600)
	e.Duration = Elapsed(r)
	reqlog.SetIdentity(r.Context(), reqlog.Name(e.Identity))
}

// NewRepository starts a repository event for a request.
func NewRepository(r *http.Request, registry, loginServer, op, repository string) store.RepositoryEvent {
	return store.RepositoryEvent{Time: started(r), Registry: registry, LoginServer: loginServer, Operation: op, Repository: repository,
		IP: authn.ClientIP(r), UserAgent: truncate(r.UserAgent(), 512), CorrelationID: reqlog.CorrelationID(r.Context())}
}

func started(r *http.Request) time.Time {
	if info := reqlog.InfoFrom(r.Context()); info != nil {
		return info.Start.UTC()
	}
	return time.Now().UTC()
}

// Elapsed is how long the request has taken so far.
func Elapsed(r *http.Request) store.Millis {
	if info := reqlog.InfoFrom(r.Context()); info != nil {
		return store.Millis(info.Elapsed())
	}
	return 0
}

// Describe turns the error a request failed with into an event's status, reason and message:
// a refused sign-in, a reply berth chose (with its reason), or a fault of berth's.
func Describe(err error) (status int, reason, message string) {
	if reply, e, ok := authn.Reply(err); ok {
		return reply.Status, e.Reason, truncate(e.Message, 1024)
	}
	var he *httperr.Error
	if errors.As(err, &he) {
		reason = he.Reason
		if reason == "" {
			reason = strings.ToLower(string(he.Code))
		}
		return he.Status, reason, truncate(he.Message, 1024)
	}
	return http.StatusInternalServerError, "internal_error", "internal server error"
}

// SignedIn completes a login event with the principal that signed in: its name and kind, and
// for a federated sign-in the external token's issuer and subject.
func SignedIn(e *store.LoginEvent, p access.Principal) {
	e.Identity, e.IdentityKind = Identity(p)
	e.Issuer, e.Subject = p.Issuer, p.Subject
}

// Identity names a principal in events: the registry for its admin user, else its name.
func Identity(p access.Principal) (name, kind string) {
	if p.IsAnonymous() {
		return "", string(access.KindAnonymous)
	}
	if p.Kind == access.KindAdmin && p.Name == "" {
		return p.Registry, string(p.Kind)
	}
	return p.Name, string(p.Kind)
}

// Result is the result of an HTTP status.
func Result(status int) string {
	if status < 400 {
		return store.ResultSuccess
	}
	return store.ResultFailure
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// LoginServer is the login server of reg as events name it: its configured one, else the Host
// the request came to.
func LoginServer(r *http.Request, reg store.Registry) string {
	if reg.LoginServer != "" {
		return reg.LoginServer
	}
	return truncate(r.Host, 255)
}
