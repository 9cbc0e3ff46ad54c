// Package server is berth's composition root: it builds the stores, the policy engine and the
// HTTP handlers from a Config, and runs them until its context ends.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/audit"
	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/blob/fsblob"
	"github.com/berth-registry/berth/internal/blob/s3blob"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/distribution"
	"github.com/berth-registry/berth/internal/hosts"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/metrics"
	"github.com/berth-registry/berth/internal/mgmt"
	"github.com/berth-registry/berth/internal/oauth"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/portal"
	"github.com/berth-registry/berth/internal/reqlog"
	"github.com/berth-registry/berth/internal/seal"
	"github.com/berth-registry/berth/internal/sso"
	"github.com/berth-registry/berth/internal/store"
	"github.com/berth-registry/berth/internal/token"
	"github.com/berth-registry/berth/internal/webhook"
)

// Server is a running berth.
type Server struct {
	version string
	cfg     config.Config
	log     *slog.Logger
	now     func() time.Time
	meta    *store.Store
	blobs   blob.Store
	hosts   *hosts.Resolver
	handler http.Handler
	dir     *directory.Directory
	tokens  *token.Service
	authn   *authn.Service
	policy  *policy.Engine
	audit   *audit.Writer
	box     *seal.Box // the key-encryption key, for what is stored sealed
	// replicaID names this process in job leases (one replica at a time runs retention).
	replicaID string
	hooks     *webhook.Deliverer
	// manualWebhooks: Options.ManualWebhooks.
	manualWebhooks bool
	metrics        *metrics.Metrics
	dist           *distribution.Handler
	keys           token.KeyStore
}

// Options are what a server takes besides its configuration.
type Options struct {
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// BootstrapPassword is the password of the owner user created on an empty database
	// (BERTH_BOOTSTRAP_PASSWORD); empty means generate one and write it to a file.
	BootstrapPassword string
	// HashParams overrides argon2id's costs (tests use cheap ones); nil means the defaults.
	HashParams *directory.Params
	// Version is berth's, for the start-up log line.
	Version string
	// ManualWebhooks leaves webhook deliveries to DeliverWebhooks (tests that step them).
	ManualWebhooks bool
}

// New opens the stores named by cfg (creating the default registry on an empty database) and
// builds the handlers. cfg must have passed Validate.
func New(ctx context.Context, cfg config.Config, opts Options) (*Server, error) {
	now, log := opts.Now, opts.Log
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	trusted, err := policy.ParseAddressList(cfg.Network.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("server: network.trusted_proxies: %w", err)
	}
	mgmtAllow, err := policy.ParseAddressList(cfg.Network.ManagementAllow)
	if err != nil {
		return nil, fmt.Errorf("server: network.management_allow: %w", err)
	}
	// The data folder holds the database, the blobs and the bootstrap password: berth's user only.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data folder: %w", err)
	}
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		log.Warn("cannot make the data folder private (0700); check who else can read it", "data_dir", cfg.DataDir, "err", err)
	}
	// Replicas over a shared PostgreSQL leave migrations to 'berth migrate'; SQLite migrates here.
	meta, err := store.Open(ctx, cfg.Database, store.Options{Now: now, NoMigrate: store.IsPostgres(cfg.Database), MaxConns: cfg.DatabaseMaxConnections})
	if err != nil {
		return nil, err
	}
	checkConnectionRoom(ctx, log, meta, cfg.DatabaseMaxConnections)
	blobs, err := OpenBlobs(ctx, cfg)
	if err != nil {
		meta.Close()
		return nil, err
	}
	if _, err := meta.EnsureDefaultRegistry(ctx, cfg.Registry); err != nil {
		meta.Close()
		return nil, err
	}
	s := &Server{version: opts.Version, cfg: cfg, log: log, now: now, meta: meta, blobs: blobs, hosts: hosts.New(meta, 5*time.Second, now), replicaID: rand.Text()}
	if err := s.buildAuth(ctx, opts); err != nil {
		meta.Close()
		return nil, err
	}
	s.policy.OnReload = s.hosts.Invalidate
	s.policy.AllowManagement(mgmtAllow)
	s.metrics = metrics.New(metrics.Gauges{
		QueueDepth:    func() float64 { return float64(s.audit.Depth()) },
		QueueCapacity: func() float64 { return float64(s.audit.Capacity()) },
		PolicyVersion: func() float64 { return float64(s.policy.Snapshot().Version) },
	})
	aggregate := cfg.Events.AggregateWindow
	if aggregate == 0 {
		aggregate = -1 // every event on its own
	}
	s.audit = audit.NewWriter(meta, log, audit.Options{Queue: cfg.Events.Queue, OnLogin: s.metrics.Login, Aggregate: aggregate})
	allowed := outboundAllowed(cfg)
	host, _ := os.Hostname()
	source := store.WebhookSource{Addr: host, InstanceID: s.replicaID}
	s.dist = distribution.New(distribution.Deps{
		Blobs:    blobs,
		Meta:     meta,
		Authn:    s.authn,
		Policy:   s.policy,
		Log:      log,
		Now:      now,
		Audit:    s.audit,
		OnUpload: s.metrics.Upload,
		Outbound: webhook.Dialer{Allowed: allowed}.Transport(30 * time.Second),
		Source:   source,
		Limits: distribution.Limits{
			MaxManifestBytes:      int64(cfg.Limits.MaxManifestBytes),
			MaxBlobBytes:          int64(cfg.Limits.MaxBlobBytes),
			MaxUploadsPerRegistry: cfg.Limits.MaxUploads,
			MaxUploadsPerIdentity: cfg.Limits.MaxUploadsPerIdentity,
			MaxPageSize:           cfg.Limits.MaxPageSize,
		},
	})
	s.hooks = &webhook.Deliverer{Store: meta, Box: s.box, HTTP: webhook.Dialer{Allowed: allowed}.Client(cfg.Webhooks.Timeout), Log: log.With("component", "webhook"),
		Holder: s.replicaID, Version: opts.Version, Now: now, Lease: 2*cfg.Webhooks.Timeout + 5*time.Second}
	s.manualWebhooks = opts.ManualWebhooks
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /readyz", httperr.Handle(log, s.ready))
	tokens := oauth.New(s.authn, s.policy, s.hosts, s.audit, &sso.Service{Store: meta, Box: s.box, Verifier: s.authn.Federation, Now: now, Portal: cfg.Portal.Enabled}, log)
	tokens.Register(mux)
	if cfg.Metrics.Enabled && cfg.Metrics.Listen == "" {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	mgmt.New(mgmt.Deps{Store: meta, Dir: s.dir, Authn: s.authn, Policy: s.policy, Box: s.box, Audit: s.audit, Importer: s.dist, Changed: s.hosts.Invalidate, Log: log, Now: now, Source: source,
		Federation: s.authn.Federation}).Register(mux)
	mux.Handle("/", httperr.Handle(log, func(w http.ResponseWriter, r *http.Request) error {
		return httperr.New(oci.CodeUnsupported, "%s %s is not an endpoint of berth", r.Method, truncate(r.URL.Path)).WithStatus(http.StatusNotFound)
	}))
	// /v2/ bypasses ServeMux, which would clean and redirect paths ("a//b") that the
	// distribution API must refuse as invalid names instead.
	v2 := s.withRegistry(s.dist)
	fail := httperr.Handle(log, func(w http.ResponseWriter, r *http.Request) error {
		return httperr.New(oci.CodeUnknown, "internal server error: give the operator the correlation id")
	})
	anonymous := &anonymousLimit{max: cfg.Limits.MaxAnonymousPerAddress, log: log}
	timing := deadlines{bodyIdle: cfg.Limits.BodyIdleTimeout, writeIdle: cfg.Limits.WriteIdleTimeout, minRate: int64(cfg.Limits.MinBodyRate)}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2/") || r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, distribution.ACRPrefix) {
			v2.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/mgmt/") || r.URL.Path == "/metrics" {
			if d := s.policy.Management(authn.ClientAddr(r)); !d.Allow {
				httperr.Write(w, r, log, httperr.New(oci.CodeDenied, "%s", d.Reason).WithStatus(http.StatusForbidden).WithReason(d.Code))
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
	root, err := s.withPortal(api, func(h http.Handler) http.Handler {
		return reqlog.Middleware(log, now, s.metrics.Observe, fail, anonymous.wrap(h))
	})
	if err != nil {
		meta.Close()
		return nil, err
	}
	s.handler = timing.wrap(s.withClientIP(trusted, reqlog.Middleware(log, now, s.metrics.Observe, fail, anonymous.wrap(root))))
	return s, nil
}

// withPortal serves the portal at /portal/ beside the APIs when it is on. The portal is their
// client: it calls api in process, through the same request log and limits as a socket's
// requests (wrap), and the management allow-list applies to it as to /mgmt/v1/.
func (s *Server) withPortal(api http.Handler, wrap func(http.Handler) http.Handler) (http.Handler, error) {
	if !s.cfg.Portal.Enabled {
		return api, nil
	}
	p, err := portal.New(portal.Deps{API: wrap(api), Store: s.meta, Box: s.box, Log: s.log, Now: s.now, Version: s.version,
		Idle: s.cfg.Portal.IdleTimeout, Absolute: s.cfg.Portal.AbsoluteTimeout})
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/portal" && !strings.HasPrefix(r.URL.Path, portal.Prefix) {
			api.ServeHTTP(w, r)
			return
		}
		if d := s.policy.Management(authn.ClientAddr(r)); !d.Allow {
			httperr.Write(w, r, s.log, httperr.New(oci.CodeDenied, "%s", d.Reason).WithStatus(http.StatusForbidden).WithReason(d.Code))
			return
		}
		p.ServeHTTP(w, r)
	}), nil
}

// withClientIP resolves each request's client address once, through the trusted proxies, and
// whether the client came over HTTPS (a trusted proxy's X-Forwarded-Proto). Without trusted
// proxies the peer is the client, which authn.ClientAddr reads directly: nothing to do.
func (s *Server) withClientIP(trusted policy.AddressList, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := authn.WithClientIP(r.Context(), authn.ResolveClientIP(r, trusted.Contains))
		if r.TLS == nil && r.Header.Get("X-Forwarded-Proto") == "https" && trusted.Contains(authn.PeerAddr(r)) {
			ctx = authn.WithHTTPS(ctx)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// checkConnectionRoom warns when this replica alone may open more connections than PostgreSQL
// allows its role: past that, a burst of requests meets "too many connections" (answered 503).
func checkConnectionRoom(ctx context.Context, log *slog.Logger, meta *store.Store, pool int) {
	room, err := meta.ConnectionRoom(ctx)
	switch {
	case err != nil:
		log.Warn("cannot read PostgreSQL's connection limits", "err", err)
	case room < 0: // SQLite
	case pool > room:
		log.Warn("database_max_connections is more than PostgreSQL allows this role: requests beyond that get 503 under load; "+
			"set it to at most the server's room divided by the number of replicas",
			"database_max_connections", pool, "server_room", room)
	default:
		log.Info("database connections", "database_max_connections", pool, "server_room", room)
	}
}

// OpenBlobs opens the blob storage cfg names (cfg must have passed Validate).
func OpenBlobs(ctx context.Context, cfg config.Config) (blob.Store, error) {
	tempDir := filepath.Join(cfg.DataDir, "tmp") // pieces of uploads between checkpoints (S3)
	if err := os.MkdirAll(tempDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	st, err := config.ParseStorage(cfg.Storage)
	if err != nil {
		return nil, fmt.Errorf("server: storage: %w", err)
	}
	if st.S3 != nil {
		return s3blob.New(ctx, s3blob.Config{S3: *st.S3, TempDir: tempDir, CacheDir: filepath.Join(cfg.DataDir, "cache")})
	}
	return fsblob.New(st.FSPath)
}

// Handler is the server's root handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close writes the queued events and releases the stores.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(s.audit.Close(ctx), s.meta.Close())
}

func (s *Server) withRegistry(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg, err := s.hosts.Resolve(r.Context(), r.Host)
		if err != nil {
			httperr.Write(w, r, s.log, err)
			return
		}
		// Network rules come before any authentication.
		if err := oauth.CheckNetwork(r, s.policy, reg, s.log); err != nil {
			s.refusedLogin(r, reg, err)
			w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
			httperr.Write(w, r, s.log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(hosts.WithRegistry(r.Context(), reg)))
	})
}

// refusedLogin records the login event of a /v2/ request the network rules refused: every such
// request is an attempt to reach the registry, credentials or not.
func (s *Server) refusedLogin(r *http.Request, reg store.Registry, err error) {
	e := audit.NewLogin(r, reg.Name, audit.LoginServer(r, reg), audit.OpRegistry)
	audit.Finish(r, &e, err)
	s.audit.Login(r.Context(), e)
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.meta.Ping(ctx); err != nil {
		return httperr.New(oci.CodeUnknown, "metadata database is not answering").WithStatus(http.StatusServiceUnavailable).Wrap(err)
	}
	if _, err := s.blobs.Stat(ctx, oci.FromBytes(oci.SHA256, nil)); err != nil && !errors.Is(err, blob.ErrNotFound) {
		return httperr.New(oci.CodeUnknown, "blob storage is not answering").WithStatus(http.StatusServiceUnavailable).Wrap(err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ready\n"))
	return nil
}

// Run serves on cfg.Listen until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    int(s.cfg.Limits.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	scheme := "http"
	tlsSetup, err := setupTLS(s.cfg, s.log)
	if err != nil {
		ln.Close()
		return err
	}
	if tlsSetup != nil {
		stop, err := tlsSetup.start(bg)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
		hs.TLSConfig = tlsSetup.config
		ln = tls.NewListener(ln, hs.TLSConfig)
		scheme = "https"
	}
	go s.purgeUploads(bg)
	// Every change bumps the policy version: polling it four times a second makes a change made
	// through another replica enforced here well within a second (the registries' settings too,
	// through OnReload).
	go s.policy.Watch(bg, s.meta, 250*time.Millisecond, s.log)
	go s.maintainAuth(bg)
	go s.purgeEvents(bg)
	go s.contentPolicies(bg)
	if !s.manualWebhooks {
		go s.hooks.Run(bg, 500*time.Millisecond)
	}
	if s.cfg.GC.Interval > 0 {
		go s.collect(bg)
	}

	if s.cfg.Metrics.Enabled && s.cfg.Metrics.Listen != "" {
		stop, err := s.serveMetrics(s.cfg.Metrics.Listen)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
	}
	if s.cfg.Debug.PprofListen != "" {
		stop, err := s.servePprof(s.cfg.Debug.PprofListen)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
	}
	// Start-up leaves garbage behind (the hasher's first argon2 computation alone is 19 MiB):
	// give it back before serving, or an idle server keeps it until the next collection.
	debug.FreeOSMemory()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	dataDir, _ := filepath.Abs(s.cfg.DataDir)
	s.log.Info("berth is serving", "addr", ln.Addr().String(), "scheme", scheme, "data_dir", dataDir,
		"database", store.Redact(s.cfg.Database), "storage", s.cfg.Storage, "version", s.version)
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
		return fmt.Errorf("server: shutdown: %w", err)
	}
	if err := s.audit.Close(sctx); err != nil {
		return fmt.Errorf("server: shutdown: writing the queued events: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// servePprof serves Go's profiles on addr until stop is called.
func (s *Server) servePprof(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: debug.pprof_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ps := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go ps.Serve(ln)
	s.log.Warn("serving Go profiles without authentication", "addr", ln.Addr().String())
	return func() { ps.Close() }, nil
}

// serveMetrics serves GET /metrics alone on addr (metrics.listen), apart from the registry.
func (s *Server) serveMetrics(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go ms.Serve(ln)
	s.log.Info("serving /metrics apart from the registry", "addr", ln.Addr().String())
	return func() { ms.Close() }, nil
}

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// Meta exposes the metadata store, for tests and commands that share the process.
func (s *Server) Meta() *store.Store { return s.meta }

// InvalidateHosts makes the next request reload the registries table.
func (s *Server) InvalidateHosts() { s.hosts.Invalidate() }

// Blobs exposes the blob store, for tests and commands that share the process.
func (s *Server) Blobs() blob.Store { return s.blobs }

// outboundAllowed are the private or loopback networks outbound calls may reach.
func outboundAllowed(cfg config.Config) []netip.Prefix {
	var allowed []netip.Prefix
	for _, n := range cfg.Outbound.AllowedNetworks {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			a, _ := netip.ParseAddr(n) // Validate checked it
			p = netip.PrefixFrom(a, a.BitLen())
		}
		allowed = append(allowed, p)
	}
	return allowed
}
