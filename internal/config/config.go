// Package config is berth serve's typed configuration: defaults, a YAML file whose unknown keys
// are errors, BERTH_* environment overrides, and Validate.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the server's configuration.
type Config struct {
	// Listen is the address to serve on.
	Listen string `yaml:"listen"`
	// DataDir holds the embedded database and the filesystem blobs unless configured elsewhere.
	DataDir string `yaml:"data_dir"`
	// Database is "sqlite:PATH" or "postgres://…"; empty means sqlite:<data_dir>/berth.db.
	Database string `yaml:"database"`
	// DatabaseMaxConnections is how many connections this process may hold to PostgreSQL at
	// once (SQLite keeps one writer and eight readers): replicas × it must stay within what
	// the server allows the role.
	DatabaseMaxConnections int `yaml:"database_max_connections"`
	// Storage is "fs:PATH" or "s3://BUCKET[/PREFIX]?endpoint=…"; empty means fs:<data_dir>/blobs.
	Storage string `yaml:"storage"`
	// Registry names the default registry on first start.
	Registry string   `yaml:"registry"`
	TLS      TLS      `yaml:"tls"`
	Log      Log      `yaml:"log"`
	Limits   Limits   `yaml:"limits"`
	Uploads  Uploads  `yaml:"uploads"`
	Auth     Auth     `yaml:"auth"`
	Network  Network  `yaml:"network"`
	Events   Events   `yaml:"events"`
	Metrics  Metrics  `yaml:"metrics"`
	GC       GC       `yaml:"gc"`
	Webhooks Webhooks `yaml:"webhooks"`
	Outbound Outbound `yaml:"outbound"`
	// Federation trusts external OpenID Connect issuers' tokens for federated credentials.
	Federation Federation `yaml:"federation"`
	// Portal is the web console at /portal/.
	Portal Portal `yaml:"portal"`
	Debug  Debug  `yaml:"debug"`
	// ShutdownTimeout bounds the wait for requests in flight on SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// TLS enables HTTPS: with a certificate's files (reloaded when they change), or with ACME.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// ReloadInterval is how often the files are checked for a renewed certificate.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	ACME           ACME          `yaml:"acme"`
}

// ACME gets certificates for public host names from an ACME server (Let's Encrypt by default)
// and renews them: TLS-ALPN-01 on the registry's own port (which must then be 443 from the
// outside), HTTP-01 on HTTPListen (port 80 from the outside) when set.
type ACME struct {
	// Domains are the host names to get certificates for; setting them turns ACME on.
	Domains []string `yaml:"domains"`
	// AcceptTerms must be true: it says yes to the ACME server's terms of service.
	AcceptTerms  bool   `yaml:"accept_terms"`
	Email        string `yaml:"email"`
	DirectoryURL string `yaml:"directory_url"`
	// CAFile, when set, is the only CA trusted for the ACME server's own HTTPS (a private ACME
	// server; the tests' pebble).
	CAFile     string `yaml:"ca_file"`
	HTTPListen string `yaml:"http_listen"`
	// CacheDir keeps the account key and the certificates; empty means <data_dir>/acme.
	CacheDir string `yaml:"cache_dir"`
}

// Log configures the server log.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// Limits bound what clients may send.
type Limits struct {
	MaxManifestBytes Size `yaml:"max_manifest_bytes"`
	MaxBlobBytes     Size `yaml:"max_blob_bytes"`
	MaxUploads       int  `yaml:"max_uploads"` // open upload sessions per registry
	// MaxUploadsPerIdentity bounds one identity's open upload sessions in a registry, so that
	// one CI job or token cannot take every slot of MaxUploads.
	MaxUploadsPerIdentity int  `yaml:"max_uploads_per_identity"`
	MaxPageSize           int  `yaml:"max_page_size"`
	MaxHeaderBytes        Size `yaml:"max_header_bytes"`
	// BodyIdleTimeout ends a request whose body sends nothing for this long; after that long,
	// a body must also average MinBodyRate bytes a second (a trickle holds nothing for ever).
	BodyIdleTimeout time.Duration `yaml:"body_idle_timeout"`
	MinBodyRate     Size          `yaml:"min_body_rate"` // bytes a second
	// WriteIdleTimeout ends a reply the client takes nothing of for this long.
	WriteIdleTimeout time.Duration `yaml:"write_idle_timeout"`
	// MaxAnonymousPerAddress is how many requests without credentials one client address may
	// have in flight at once (health checks aside).
	MaxAnonymousPerAddress int `yaml:"max_anonymous_per_address"`
}

// Uploads configures upload sessions.
type Uploads struct {
	// TTL is how long an upload may sit idle before it is purged.
	TTL time.Duration `yaml:"ttl"`
}

// Network configures how client addresses are found and who may reach the management API.
// Lists are YAML sequences, or comma-separated in the environment.
type Network struct {
	// TrustedProxies are the addresses/CIDRs of reverse proxies whose X-Forwarded-For is believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ManagementAllow, when not empty, is the only addresses/CIDRs that may use /mgmt/v1/.
	ManagementAllow []string `yaml:"management_allow"`
}

// Events configures the audit: login and repository events.
type Events struct {
	// Retention is how long events are kept; older ones are purged every hour.
	Retention time.Duration `yaml:"retention"`
	// Queue is how many events may wait to be written before requests wait for room.
	Queue int `yaml:"queue"`
	// AggregateWindow is the interval over which failed sign-ins that name no verified identity
	// (a malformed token, an unknown name, a refused address) are written one by one only for
	// the first few per registry, address and reason, then as one event with their number;
	// 0 writes every one.
	AggregateWindow time.Duration `yaml:"aggregate_window"`
}

// Metrics configures the Prometheus endpoint, GET /metrics.
type Metrics struct {
	Enabled bool `yaml:"enabled"`
	// Listen, when set, serves /metrics on this address only (e.g. 127.0.0.1:9090 or a private
	// network's address), not on the registry's; when empty, /metrics is on the registry's
	// address, behind network.management_allow.
	Listen string `yaml:"listen"`
}

// Debug configures what helps find a performance problem.
type Debug struct {
	// PprofListen, when set, serves Go's profiles (net/http/pprof) on this address, apart from
	// the registry and without authentication: bind it to loopback.
	PprofListen string `yaml:"pprof_listen"`
}

// Webhooks bound the calls berth makes to webhook receivers.
type Webhooks struct {
	// Timeout bounds one delivery, from the connection to the receiver's answer.
	Timeout time.Duration `yaml:"timeout"`
}

// Outbound bounds the connections berth makes itself (webhook deliveries, imports): an address
// in a private or loopback network is refused unless AllowedNetworks lists it; link-local and
// cloud metadata addresses are always refused; redirects to them too.
type Outbound struct {
	// AllowedNetworks are addresses or CIDRs berth may connect to though private or loopback.
	AllowedNetworks []string `yaml:"allowed_networks"`
}

// Federation lets service principals sign in with tokens of external OpenID Connect issuers
// (GitHub Actions, GitLab CI, Kubernetes service accounts) that their federated credentials
// trust. Keys are discovered at ISSUER/.well-known/openid-configuration through the outbound
// bounds (a loopback or private issuer must be in outbound.allowed_networks), or given to a
// credential as a static key set.
type Federation struct {
	// Issuers are the iss values federated credentials may name, exactly; none turns federated
	// sign-in off.
	Issuers []string `yaml:"issuers"`
	// AllowHTTP lets issuers be reached over plain http (tests, labs).
	AllowHTTP bool `yaml:"allow_http"`
	// MaxTokenAge refuses external tokens issued longer ago (iat).
	MaxTokenAge time.Duration `yaml:"max_token_age"`
	// Leeway allows for the issuer's clock and berth's being apart (exp, nbf, iat).
	Leeway time.Duration `yaml:"leeway"`
	// RefreshInterval is the least time between two fetches of an issuer's keys (a token with a
	// kid not yet known, a fetch that failed).
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// Timeout bounds the fetch of an issuer's discovery document and keys.
	Timeout time.Duration `yaml:"timeout"`
}

// Portal configures the web console at /portal/: a client of the management API with the
// signed-in user's own token.
type Portal struct {
	Enabled bool `yaml:"enabled"`
	// A session ends when unused for IdleTimeout, and AbsoluteTimeout after its sign-in.
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
}

// GC configures garbage collection of unreferenced blobs.
type GC struct {
	// Interval between collections serve runs itself; 0 means none (run 'berth gc').
	Interval time.Duration `yaml:"interval"`
	// Grace: blobs stored or linked more recently are kept (pushes in progress).
	Grace time.Duration `yaml:"grace"`
}

// Auth configures tokens and sign-in throttling.
type Auth struct {
	AccessTokenTTL    time.Duration `yaml:"access_token_ttl"`
	RefreshTokenTTL   time.Duration `yaml:"refresh_token_ttl"`
	DirectoryTokenTTL time.Duration `yaml:"directory_token_ttl"`
	// DirectoryRefreshTokenTTL is how long the CLI's sign-in lasts unused: each renewal of its
	// directory token replaces the refresh token with a new one of this lifetime.
	DirectoryRefreshTokenTTL time.Duration `yaml:"directory_refresh_token_ttl"`
	// KeyRotation is how long a signing key signs before the next replaces it.
	KeyRotation time.Duration `yaml:"key_rotation"`
	// KeyEncryptionKey (32 bytes, base64) or KeyEncryptionKeyFile (a file holding that) encrypts
	// the signing keys in the database. With neither, a SQLite server generates one on first
	// start in <data_dir>/key-encryption-key; replicas over PostgreSQL must all be given the same.
	KeyEncryptionKey     string `yaml:"key_encryption_key"`
	KeyEncryptionKeyFile string `yaml:"key_encryption_key_file"`
	// Failed sign-ins within FailureWindow block further attempts for Lockout (doubling when
	// blocked again soon after, up to MaxLockout): MaxFailures per identity at one client
	// address, AddressMaxFailures per address, IdentityMaxFailures per identity over every
	// address (from addresses that never signed in as it).
	MaxFailures         int           `yaml:"max_failures"`
	AddressMaxFailures  int           `yaml:"address_max_failures"`
	IdentityMaxFailures int           `yaml:"identity_max_failures"`
	FailureWindow       time.Duration `yaml:"failure_window"`
	Lockout             time.Duration `yaml:"lockout"`
	MaxLockout          time.Duration `yaml:"max_lockout"`
	// ThrottledDelay is how long a sign-in refused as throttled waits before its 429.
	ThrottledDelay time.Duration `yaml:"throttled_delay"`
}

// Default returns the configuration berth runs with when nothing is set.
func Default() Config {
	return Config{
		Listen:   ":5000",
		DataDir:  "./berth-data",
		Registry: "default",
		// PostgreSQL's default max_connections (100) less its 3 reserved ones holds 3 replicas.
		DatabaseMaxConnections: 32,
		TLS:                    TLS{ReloadInterval: 10 * time.Second, ACME: ACME{DirectoryURL: "https://acme-v02.api.letsencrypt.org/directory", HTTPListen: ":80"}},
		Log:                    Log{Level: "info", Format: "json"},
		Limits: Limits{
			MaxManifestBytes:      4 << 20,
			MaxBlobBytes:          64 << 30,
			MaxUploads:            10_000,
			MaxUploadsPerIdentity: 1_000,
			MaxPageSize:           10_000,
			MaxHeaderBytes:        64 << 10,
			// A 1 Mbit/s client sends 125 000 bytes a second: 8× the minimum rate.
			BodyIdleTimeout: 30 * time.Second, MinBodyRate: 16 << 10, WriteIdleTimeout: time.Minute,
			MaxAnonymousPerAddress: 64,
		},
		Uploads: Uploads{TTL: 6 * time.Hour},
		Auth: Auth{
			AccessTokenTTL: 75 * time.Minute, RefreshTokenTTL: 3 * time.Hour, DirectoryTokenTTL: time.Hour, DirectoryRefreshTokenTTL: 14 * 24 * time.Hour,
			KeyRotation: 30 * 24 * time.Hour,
			MaxFailures: 10, AddressMaxFailures: 50, IdentityMaxFailures: 100, FailureWindow: 5 * time.Minute, Lockout: time.Minute,
			MaxLockout: time.Hour, ThrottledDelay: 500 * time.Millisecond,
		},
		Events:          Events{Retention: 90 * 24 * time.Hour, Queue: 4096, AggregateWindow: time.Minute},
		Metrics:         Metrics{Enabled: true},
		GC:              GC{Grace: time.Hour},
		Webhooks:        Webhooks{Timeout: 10 * time.Second},
		Federation:      Federation{MaxTokenAge: time.Hour, Leeway: time.Minute, RefreshInterval: time.Minute, Timeout: 5 * time.Second},
		Portal:          Portal{Enabled: true, IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour},
		ShutdownTimeout: 30 * time.Second,
	}
}

// LoadFile merges the YAML file at path into c. Unknown keys are errors that name the nearest
// known key; every error names the key by its YAML path and line.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file
	}
	if err := decodeNode(doc.Content[0], reflect.ValueOf(c).Elem(), ""); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	return nil
}

// MaxDatabaseConnections bounds database_max_connections.
const MaxDatabaseConnections = 1000

// EnvPrefix starts every environment override: BERTH_LISTEN, BERTH_TLS_CERT,
// BERTH_LIMITS_MAX_BLOB_BYTES …
const EnvPrefix = "BERTH_"

// LoadEnv applies overrides from environment variables looked up with getenv.
func (c *Config) LoadEnv(getenv func(string) string) error {
	return walk(reflect.ValueOf(c).Elem(), EnvPrefix, func(name string, v reflect.Value) error {
		s := getenv(name)
		if s == "" {
			return nil
		}
		if err := setFromString(v, s); err != nil {
			return fmt.Errorf("config: %s=%q: %w", name, s, err)
		}
		return nil
	})
}

// EnvNames lists every environment variable LoadEnv reads, for documentation and tests.
func EnvNames() []string {
	var out []string
	c := Default()
	walk(reflect.ValueOf(&c).Elem(), EnvPrefix, func(name string, v reflect.Value) error {
		out = append(out, name)
		return nil
	})
	return out
}

func walk(v reflect.Value, prefix string, fn func(string, reflect.Value) error) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + strings.ToUpper(tag)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			if err := walk(fv, name+"_", fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(name, fv); err != nil {
			return err
		}
	}
	return nil
}

var durationType = reflect.TypeOf(time.Duration(0))

func setFromString(v reflect.Value, s string) error {
	switch v.Type() {
	case durationType:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want a duration (500ms, 30s, 5m, 2h), not %q", s)
		}
		v.SetInt(int64(d))
		return nil
	case sizeType:
		n, err := ParseSize(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(n))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported kind %s", v.Kind())
		}
		var items []string
		for _, it := range strings.Split(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		v.Set(reflect.ValueOf(items))
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("want a whole number, not %q", s)
		}
		v.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want true or false, not %q", s)
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported kind %s", v.Kind())
	}
	return nil
}

var registryName = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$`)

// CheckServe is what serving needs beyond Validate (migrate and gc do not): a key-encryption
// key with PostgreSQL, where replicas share the signing keys.
func (c *Config) CheckServe() error {
	postgres := strings.HasPrefix(c.Database, "postgres://") || strings.HasPrefix(c.Database, "postgresql://")
	if postgres && c.Auth.KeyEncryptionKey == "" && c.Auth.KeyEncryptionKeyFile == "" {
		return errors.New("config: auth.key_encryption_key or auth.key_encryption_key_file: must be set with PostgreSQL, the same for every replica " +
			"(e.g. BERTH_AUTH_KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64))")
	}
	return nil
}

// Validate checks c and fills the settings derived from others (Database, Storage).
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Listen == "" {
		bad("listen: must be set, e.g. :5000")
	}
	if c.DataDir == "" {
		bad("data_dir: must be set")
	}
	for name, d := range map[string]time.Duration{"auth.access_token_ttl": c.Auth.AccessTokenTTL, "auth.refresh_token_ttl": c.Auth.RefreshTokenTTL,
		"auth.directory_token_ttl": c.Auth.DirectoryTokenTTL, "auth.directory_refresh_token_ttl": c.Auth.DirectoryRefreshTokenTTL, "auth.key_rotation": c.Auth.KeyRotation, "auth.failure_window": c.Auth.FailureWindow,
		"auth.lockout": c.Auth.Lockout, "auth.max_lockout": c.Auth.MaxLockout} {
		if d < time.Minute {
			bad("%s: must be at least 1m, not %s", name, d)
		}
	}
	if c.Auth.MaxFailures < 1 || c.Auth.AddressMaxFailures < 1 || c.Auth.IdentityMaxFailures < 1 {
		bad("auth.max_failures, auth.address_max_failures and auth.identity_max_failures: must be at least 1")
	}
	if c.Limits.BodyIdleTimeout < time.Second || c.Limits.WriteIdleTimeout < time.Second {
		bad("limits.body_idle_timeout and limits.write_idle_timeout: must be at least 1s")
	}
	if c.Events.AggregateWindow != 0 && c.Events.AggregateWindow < time.Second {
		bad("events.aggregate_window: must be 0 (off) or at least 1s, not %s", c.Events.AggregateWindow)
	}
	if c.Limits.MaxUploads < 1 || c.Limits.MaxUploadsPerIdentity < 1 {
		bad("limits.max_uploads and limits.max_uploads_per_identity: must be at least 1")
	}
	if c.Limits.MinBodyRate < 0 || c.Limits.MaxAnonymousPerAddress < 1 {
		bad("limits.min_body_rate must not be negative, limits.max_anonymous_per_address must be at least 1")
	}
	if c.Auth.KeyEncryptionKey != "" && c.Auth.KeyEncryptionKeyFile != "" {
		bad("auth.key_encryption_key and auth.key_encryption_key_file: give one, not both")
	}
	if k := c.Auth.KeyEncryptionKey; k != "" {
		if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k)); err != nil || len(b) != 32 {
			bad("auth.key_encryption_key: not 32 bytes in base64 (make one with: head -c 32 /dev/urandom | base64)")
		}
	}

	if c.Auth.ThrottledDelay < 0 || c.Auth.ThrottledDelay > 10*time.Second {
		bad("auth.throttled_delay: must be between 0 and 10s, not %s", c.Auth.ThrottledDelay)
	}
	if c.Auth.MaxLockout < c.Auth.Lockout {
		bad("auth.max_lockout (%s): must be at least auth.lockout (%s)", c.Auth.MaxLockout, c.Auth.Lockout)
	}
	if c.Webhooks.Timeout < time.Second || c.Webhooks.Timeout > time.Minute {
		bad("webhooks.timeout: between 1s and 1m, not %s", c.Webhooks.Timeout)
	}
	c.validateFederation(bad)
	if p := c.Portal; p.IdleTimeout < time.Minute || p.IdleTimeout > 24*time.Hour {
		bad("portal.idle_timeout: between 1m and 24h, not %s", p.IdleTimeout)
	} else if p.AbsoluteTimeout < p.IdleTimeout || p.AbsoluteTimeout > 7*24*time.Hour {
		bad("portal.absolute_timeout: between portal.idle_timeout (%s) and 168h, not %s", p.IdleTimeout, p.AbsoluteTimeout)
	}
	for name, list := range map[string][]string{"network.trusted_proxies": c.Network.TrustedProxies, "network.management_allow": c.Network.ManagementAllow,
		"outbound.allowed_networks": c.Outbound.AllowedNetworks} {
		for _, it := range list {
			if _, err := netip.ParsePrefix(it); err != nil {
				if _, err := netip.ParseAddr(it); err != nil {
					bad("%s: %q is not an IP address or CIDR", name, it)
				}
			}
		}
	}
	if c.Database == "" {
		c.Database = "sqlite:" + filepath.Join(c.DataDir, "berth.db")
	}
	switch {
	case strings.HasPrefix(c.Database, "sqlite:"):
		if strings.TrimPrefix(c.Database, "sqlite:") == "" {
			bad("database: sqlite: needs a path")
		}
	case strings.HasPrefix(c.Database, "postgres://"), strings.HasPrefix(c.Database, "postgresql://"):
		if _, err := url.Parse(c.Database); err != nil {
			bad("database: not a valid postgres:// URL")
		}
	default:
		bad("database: %q: use sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DB", c.Database)
	}
	if c.DatabaseMaxConnections < 1 || c.DatabaseMaxConnections > MaxDatabaseConnections {
		bad("database_max_connections: %d: use 1 to %d", c.DatabaseMaxConnections, MaxDatabaseConnections)
	}
	if c.Storage == "" {
		c.Storage = "fs:" + filepath.Join(c.DataDir, "blobs")
	}
	if _, err := ParseStorage(c.Storage); err != nil {
		bad("storage: %v", err)
	}
	if !registryName.MatchString(c.Registry) {
		bad("registry: %q: use 1 to 50 lower-case letters, digits and inner dashes", c.Registry)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		bad("tls: cert and key must be given together")
	}
	if c.TLS.ReloadInterval < 100*time.Millisecond {
		bad("tls.reload_interval: at least 100ms, not %s", c.TLS.ReloadInterval)
	}
	if a := c.TLS.ACME; len(a.Domains) > 0 {
		if c.TLS.Cert != "" {
			bad("tls.acme.domains and tls.cert: give a certificate's files or ACME's host names, not both")
		}
		if !a.AcceptTerms {
			bad("tls.acme.accept_terms: must be true to use ACME: it accepts the terms of service of %s", a.DirectoryURL)
		}
		if u, err := url.Parse(a.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("tls.acme.directory_url: %q is not an https:// URL", a.DirectoryURL)
		}
		for _, d := range a.Domains {
			if d == "" || strings.ContainsAny(d, "/:*") || net.ParseIP(d) != nil {
				bad("tls.acme.domains: %q is not a host name (ACME certifies names, not addresses or wildcards here)", d)
			}
		}
		if a.HTTPListen != "" {
			if _, _, err := net.SplitHostPort(a.HTTPListen); err != nil {
				bad("tls.acme.http_listen: %q is not HOST:PORT (e.g. :80), or empty for TLS-ALPN-01 only", a.HTTPListen)
			}
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level: %q: use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format: %q: use json or text", c.Log.Format)
	}
	l := c.Limits
	if l.MaxManifestBytes <= 0 || l.MaxManifestBytes > 4<<20 {
		bad("limits.max_manifest_bytes: %s: must be between 1 and 4MiB", l.MaxManifestBytes)
	}
	if l.MaxBlobBytes <= 0 {
		bad("limits.max_blob_bytes: must be positive")
	}
	if l.MaxUploads <= 0 {
		bad("limits.max_uploads: must be positive")
	}
	if l.MaxPageSize <= 0 {
		bad("limits.max_page_size: must be positive")
	}
	if l.MaxHeaderBytes < 4096 {
		bad("limits.max_header_bytes: must be at least 4KiB, not %s", l.MaxHeaderBytes)
	}
	if c.Uploads.TTL < time.Minute {
		bad("uploads.ttl: must be at least 1m")
	}
	if c.Events.Retention < time.Hour {
		bad("events.retention: must be at least 1h, not %s (90 days is 2160h)", c.Events.Retention)
	}
	if c.Events.Queue < 1 || c.Events.Queue > 1_000_000 {
		bad("events.queue: must be between 1 and 1000000")
	}
	if c.GC.Interval != 0 && c.GC.Interval < time.Minute {
		bad("gc.interval: 0 (off) or at least 1m, not %s", c.GC.Interval)
	}
	if c.GC.Grace < time.Minute {
		bad("gc.grace: at least 1m, not %s: pushes in progress need the time", c.GC.Grace)
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen: %q is not HOST:PORT (e.g. 127.0.0.1:9090)", c.Metrics.Listen)
		}
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown_timeout: must not be negative")
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

func (c *Config) validateFederation(bad func(string, ...any)) {
	f := c.Federation
	for _, iss := range f.Issuers {
		u, err := url.Parse(iss)
		switch {
		case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
			bad("federation.issuers: %q is not an issuer URL (https://host[/path], as the tokens' iss claim says)", iss)
		case u.Scheme != "https" && !(u.Scheme == "http" && f.AllowHTTP):
			bad("federation.issuers: %q is not https (federation.allow_http lets a lab use http)", iss)
		case len(iss) > 600:
			bad("federation.issuers: %q is longer than 600 characters", iss[:60]+"…")
		}
	}
	if f.MaxTokenAge < time.Minute || f.MaxTokenAge > 7*24*time.Hour {
		bad("federation.max_token_age: between 1m and 168h, not %s", f.MaxTokenAge)
	}
	if f.Leeway < 0 || f.Leeway > 10*time.Minute {
		bad("federation.leeway: between 0 and 10m, not %s", f.Leeway)
	}
	if f.RefreshInterval < time.Second || f.RefreshInterval > time.Hour {
		bad("federation.refresh_interval: between 1s and 1h, not %s", f.RefreshInterval)
	}
	if f.Timeout < time.Second || f.Timeout > time.Minute {
		bad("federation.timeout: between 1s and 1m, not %s", f.Timeout)
	}
}
