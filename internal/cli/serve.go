package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/gc"
	"github.com/berth-registry/berth/internal/server"
	"github.com/berth-registry/berth/internal/store"
)

// serverFlags are the flags serve and migrate share: the configuration file and the settings
// that override it.
type serverFlags struct {
	file  string
	flags config.Config
}

func (sf *serverFlags) add(cmd *cobra.Command, all bool) {
	def := config.Default()
	f := cmd.Flags()
	f.StringVar(&sf.file, "config", "", "YAML configuration file")
	f.StringVar(&sf.flags.DataDir, "data-dir", def.DataDir, "folder for the embedded database and filesystem blobs")
	f.StringVar(&sf.flags.Database, "database", "", "metadata database: sqlite:PATH (default sqlite:<data-dir>/berth.db) or postgres://USER:PASSWORD@HOST:PORT/DB")
	f.StringVar(&sf.flags.Log.Level, "log-level", def.Log.Level, "log level: debug, info, warn, error")
	f.StringVar(&sf.flags.Log.Format, "log-format", def.Log.Format, "log format: json or text")
	f.StringVar(&sf.flags.Storage, "storage", "", "blob storage: fs:PATH (default fs:<data-dir>/blobs) or s3://BUCKET[/PREFIX]?endpoint=HOST:PORT (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
	if !all {
		return
	}
	f.StringVar(&sf.flags.Listen, "listen", def.Listen, "address to listen on")
	f.StringVar(&sf.flags.Debug.PprofListen, "pprof-listen", "", "serve Go's profiles (/debug/pprof/) on this address, without authentication: use loopback")
	f.StringVar(&sf.flags.Registry, "registry", def.Registry, "name of the default registry, set on first start")
	f.StringVar(&sf.flags.TLS.Cert, "tls-cert", "", "TLS certificate file (PEM); serves HTTPS with --tls-key")
	f.StringVar(&sf.flags.TLS.Key, "tls-key", "", "TLS private key file (PEM)")
}

// load builds the configuration: defaults, the file, BERTH_* variables, then the flags given.
func (sf *serverFlags) load(cmd *cobra.Command) (config.Config, error) {
	cfg := config.Default()
	if sf.file != "" {
		if err := cfg.LoadFile(sf.file); err != nil {
			return cfg, err
		}
	}
	if err := cfg.LoadEnv(os.Getenv); err != nil {
		return cfg, err
	}
	f := cmd.Flags()
	set := func(name string, dst *string, v string) {
		if f.Lookup(name) != nil && f.Changed(name) {
			*dst = v
		}
	}
	fl := sf.flags
	set("listen", &cfg.Listen, fl.Listen)
	set("data-dir", &cfg.DataDir, fl.DataDir)
	set("database", &cfg.Database, fl.Database)
	set("storage", &cfg.Storage, fl.Storage)
	set("registry", &cfg.Registry, fl.Registry)
	set("tls-cert", &cfg.TLS.Cert, fl.TLS.Cert)
	set("tls-key", &cfg.TLS.Key, fl.TLS.Key)
	set("pprof-listen", &cfg.Debug.PprofListen, fl.Debug.PprofListen)
	set("log-level", &cfg.Log.Level, fl.Log.Level)
	set("log-format", &cfg.Log.Format, fl.Log.Format)
	return cfg, cfg.Validate()
}

func serveCmd() *cobra.Command {
	var sf serverFlags
	var check bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the registry server",
		Long: `Run the registry server.

Settings come from, lowest first: built-in defaults, the YAML file given with --config (unknown
keys are errors), BERTH_* environment variables (BERTH_LISTEN, BERTH_DATA_DIR, BERTH_DATABASE,
BERTH_STORAGE, BERTH_TLS_CERT, BERTH_LIMITS_MAX_BLOB_BYTES …), and flags.

With no settings at all berth listens on :5000 and keeps its metadata in SQLite and its blobs on
the filesystem under ./berth-data. SQLite's schema is migrated on start; a PostgreSQL database
(shared by replicas) must be migrated first with 'berth migrate', and serve refuses a schema older
or newer than it knows.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := sf.load(cmd)
			if err == nil {
				err = cfg.CheckServe()
			}
			if err != nil {
				return err
			}
			if check {
				return printConfig(cmd, cfg)
			}
			log := newLogger(cfg.Log)
			ctx := cmd.Context()
			// The address first: a server that cannot listen leaves nothing on disk.
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("cannot listen on %s (listen, --listen, BERTH_LISTEN): %w", cfg.Listen, err)
			}
			srv, err := server.New(ctx, cfg, server.Options{Log: log, BootstrapPassword: os.Getenv("BERTH_BOOTSTRAP_PASSWORD"), Version: version()})
			if err != nil {
				ln.Close()
				return err
			}
			defer srv.Close()
			return srv.Serve(ctx, ln)
		},
	}
	sf.add(cmd, true)
	cmd.Flags().BoolVar(&check, "check", false, "check the configuration (file, BERTH_* variables, flags), print it as YAML with secrets hidden, and exit: 0 when valid")
	return cmd
}

// printConfig writes the effective configuration as YAML, every key included, with the
// database password and the key-encryption key hidden.
func printConfig(cmd *cobra.Command, cfg config.Config) error {
	cfg.Database = store.Redact(cfg.Database)
	if cfg.Auth.KeyEncryptionKey != "" {
		cfg.Auth.KeyEncryptionKey = "(set, hidden)"
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "berth: the configuration is valid; in effect:")
	_, err = cmd.OutOrStdout().Write(out)
	return err
}

// healthcheckCmd is the probe of a container image with nothing but berth in it (no curl):
// GET the server's /healthz and exit 0 only on 200.
func healthcheckCmd() *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when a berth server answers /healthz (a container's HEALTHCHECK)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("--url: %w", err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("unhealthy: %w", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("unhealthy: %s answered %s", url, resp.Status)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:5000/healthz", "the health endpoint to ask")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return cmd
}

func migrateCmd() *cobra.Command {
	var sf serverFlags
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the metadata database's pending schema migrations",
		Long: `Apply the metadata database's pending schema migrations, in one transaction, and print
the versions applied. Run it before starting (or upgrading) replicas over PostgreSQL; it is safe
to run while other replicas start (they wait) and to run twice (the second applies nothing).
It takes the same --config, BERTH_DATABASE and --database as serve.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := sf.load(cmd)
			if err != nil {
				return err
			}
			st, err := store.Open(cmd.Context(), cfg.Database, store.Options{NoMigrate: true, MaxConns: cfg.DatabaseMaxConnections})
			if err == nil {
				st.Close()
				fmt.Fprintf(cmd.OutOrStdout(), "%s: the schema is current; nothing to apply\n", store.Redact(cfg.Database))
				return nil
			}
			if !errors.Is(err, store.ErrSchemaOld) {
				return err
			}
			st, err = store.Open(cmd.Context(), cfg.Database, store.Options{MaxConns: cfg.DatabaseMaxConnections})
			if err != nil {
				return err
			}
			defer st.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "%s: migrated to the current schema\n", store.Redact(cfg.Database))
			return nil
		},
	}
	sf.add(cmd, false)
	return cmd
}

func newLogger(c config.Log) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

func (a *app) gcCmd() *cobra.Command {
	var sf serverFlags
	var dryRun bool
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete the blobs no manifest references (garbage collection)",
		Long: `Delete the blobs that no manifest is or references, in any repository of any registry, and that
no push linked within the grace period. It is safe while replicas serve pushes: a blob is
tombstoned before it is deleted, and a push that meets a tombstone is told to push again
(see internal/gc). --dry-run lists what would be deleted. It takes the same --config,
--database and --storage as serve; 'gc.interval' makes serve collect on a schedule.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := sf.load(cmd)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("grace") {
				grace = cfg.GC.Grace
			}
			if grace < 0 {
				return errors.New("--grace must not be negative")
			}
			ctx := cmd.Context()
			st, err := store.Open(ctx, cfg.Database, store.Options{NoMigrate: true, MaxConns: cfg.DatabaseMaxConnections})
			if err != nil {
				return err
			}
			defer st.Close()
			blobs, err := server.OpenBlobs(ctx, cfg)
			if err != nil {
				return err
			}
			rep, err := gc.Run(ctx, st, blobs, gc.Options{Grace: grace, DryRun: dryRun, Log: newLogger(cfg.Log)})
			if err != nil {
				return err
			}
			return a.print(rep)
		},
	}
	sf.add(cmd, false)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be deleted; delete nothing")
	cmd.Flags().DurationVar(&grace, "grace", 0, "keep blobs stored or linked more recently than this (default: gc.grace, 1h)")
	return cmd
}
