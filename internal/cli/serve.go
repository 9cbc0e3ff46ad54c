package cli

import (
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server"
)

func serveCmd() *cobra.Command {
	var file string
	def := config.Default()
	var flags config.Config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the registry server",
		Long: `Run the registry server.

Settings come from, lowest first: built-in defaults, the YAML file given with --config (unknown
keys are errors), BERTH_* environment variables (BERTH_LISTEN, BERTH_DATA_DIR, BERTH_DATABASE,
BERTH_STORAGE, BERTH_TLS_CERT, BERTH_LIMITS_MAX_BLOB_BYTES …), and flags.

With no settings at all berth listens on :5000 and keeps its metadata in SQLite and its blobs on
the filesystem under ./berth-data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := config.Default()
			if file != "" {
				if err := cfg.LoadFile(file); err != nil {
					return err
				}
			}
			if err := cfg.LoadEnv(os.Getenv); err != nil {
				return err
			}
			f := cmd.Flags()
			set := func(name string, dst *string, v string) {
				if f.Changed(name) {
					*dst = v
				}
			}
			set("listen", &cfg.Listen, flags.Listen)
			set("data-dir", &cfg.DataDir, flags.DataDir)
			set("database", &cfg.Database, flags.Database)
			set("storage", &cfg.Storage, flags.Storage)
			set("registry", &cfg.Registry, flags.Registry)
			set("tls-cert", &cfg.TLS.Cert, flags.TLS.Cert)
			set("tls-key", &cfg.TLS.Key, flags.TLS.Key)
			set("log-level", &cfg.Log.Level, flags.Log.Level)
			set("log-format", &cfg.Log.Format, flags.Log.Format)
			if err := cfg.Validate(); err != nil {
				return err
			}
			log := newLogger(cfg.Log)
			ctx := cmd.Context()
			srv, err := server.New(ctx, cfg, server.Options{Log: log, BootstrapPassword: os.Getenv("BERTH_BOOTSTRAP_PASSWORD")})
			if err != nil {
				return err
			}
			defer srv.Close()
			return srv.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "YAML configuration file")
	f.StringVar(&flags.Listen, "listen", def.Listen, "address to listen on")
	f.StringVar(&flags.DataDir, "data-dir", def.DataDir, "folder for the embedded database and filesystem blobs")
	f.StringVar(&flags.Database, "database", "", "metadata database: sqlite:PATH (default sqlite:<data-dir>/berth.db)")
	f.StringVar(&flags.Storage, "storage", "", "blob storage: fs:PATH (default fs:<data-dir>/blobs)")
	f.StringVar(&flags.Registry, "registry", def.Registry, "name of the default registry, set on first start")
	f.StringVar(&flags.TLS.Cert, "tls-cert", "", "TLS certificate file (PEM); serves HTTPS with --tls-key")
	f.StringVar(&flags.TLS.Key, "tls-key", "", "TLS private key file (PEM)")
	f.StringVar(&flags.Log.Level, "log-level", def.Log.Level, "log level: debug, info, warn, error")
	f.StringVar(&flags.Log.Format, "log-format", def.Log.Format, "log format: json or text")
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
