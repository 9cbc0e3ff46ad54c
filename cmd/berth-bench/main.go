// Command berth-bench measures an OCI registry (berth or any other) and compares the results
// of several registries side by side. See docs/benchmarks.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "berth-bench:", err)
		os.Exit(1)
	}
}

func root() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "berth-bench",
		Short:         "Measure OCI registries and compare them side by side",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.AddCommand(runCmd(), compareCmd(), proxyCmd(), scaleCmd())
	return cmd
}

func runCmd() *cobra.Command {
	cfg := bench.Defaults()
	var sections, jsonOut, passwordEnv, refreshEnv, federatedEnv, cpuProfile string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "run URL",
		Short: "Measure the registry at URL and print a table (and JSON with --json)",
		Example: `  berth-bench run http://127.0.0.1:5000 -u default --password-env PW --pid 1234 --json out.json
  berth-bench run http://127.0.0.1:5000 --sections manifest,token --duration 1s`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.URL = args[0]
			var err error
			if cfg.Password, err = fromEnv(passwordEnv); err != nil {
				return err
			}
			if cfg.RefreshToken, err = fromEnv(refreshEnv); err != nil {
				return err
			}
			if cfg.FederatedToken, err = fromEnv(federatedEnv); err != nil {
				return err
			}
			if (cfg.FederatedUser == "") != (cfg.FederatedToken == "") {
				return errors.New("--federated-user and --federated-token-env go together")
			}
			if cfg.Username != "" && cfg.Password == "" {
				return errors.New("a username needs a password: --password-env NAME")
			}
			if sections != "" {
				cfg.Sections = strings.Split(sections, ",")
			}
			level := slog.LevelInfo
			if quiet {
				level = slog.LevelWarn
			}
			cfg.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			res, err := bench.Run(cmd.Context(), cfg)
			if res != nil {
				if werr := bench.WriteTable(cmd.OutOrStdout(), res); werr != nil {
					return werr
				}
			}
			if err != nil {
				return err
			}
			if jsonOut == "" {
				return nil
			}
			var w io.Writer = cmd.OutOrStdout()
			if jsonOut != "-" {
				f, err := os.OpenFile(jsonOut, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			return bench.WriteJSON(w, res)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfg.Username, "username", "u", "", "user name (Basic, or exchanged for a bearer token)")
	f.StringVar(&passwordEnv, "password-env", "", "name of the environment variable holding the password")
	f.StringVar(&refreshEnv, "refresh-token-env", "", "name of the environment variable holding a refresh token (for the token section)")
	f.StringVar(&cfg.FederatedUser, "federated-user", "", "a service principal's client id whose federated credential trusts the token in --federated-token-env (for the token section)")
	f.StringVar(&federatedEnv, "federated-token-env", "", "name of the environment variable holding an external OIDC token for --federated-user")
	f.StringVar(&cfg.Target, "target", cfg.Target, "label of the results (berth, distribution-3, …)")
	f.StringVar(&cfg.Repository, "repository", cfg.Repository, "prefix of every repository written")
	f.IntVar(&cfg.PID, "pid", 0, "the server's process id: RSS and CPU time are read from /proc")
	f.StringVar(&sections, "sections", "", "comma-separated sections to run: "+strings.Join(bench.AllSections, ","))
	f.IntVar(&cfg.Images, "images", cfg.Images, "images pushed and pulled by the blobs section")
	f.IntVar(&cfg.Layers, "layers", cfg.Layers, "layers per image of the blobs section")
	f.Int64Var(&cfg.LayerSize, "layer-size", cfg.LayerSize, "bytes per layer of the blobs section")
	f.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "images at a time in the concurrent half of blobs and big")
	f.IntVar(&cfg.BigLayers, "big-layers", cfg.BigLayers, "layers (one per image) of the big section")
	f.Int64Var(&cfg.BigSize, "big-size", cfg.BigSize, "bytes per layer of the big section")
	f.IntVar(&cfg.PeakPushes, "peak-pushes", cfg.PeakPushes, "concurrent pushes of the peak section")
	f.Int64Var(&cfg.PeakSize, "peak-size", cfg.PeakSize, "bytes per push of the peak section")
	f.IntSliceVar(&cfg.Clients, "clients", cfg.Clients, "concurrent clients of the manifest section")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of each request-rate measurement")
	f.IntVar(&cfg.Repos, "repos", cfg.Repos, "repositories the lists section creates (once) and pages through")
	f.IntVar(&cfg.Tags, "tags", cfg.Tags, "tags the lists section creates (once) and pages through")
	f.IntVar(&cfg.PageSize, "page-size", cfg.PageSize, "n of each list page")
	f.StringVar(&cfg.LimitDir, "limit-dir", "", "folder the sha256+write limit writes to (the server's disk; default the temp folder)")
	f.StringVar(&cfg.S3Limit, "s3-limit", "", "an s3:// storage URL (as berth serve --storage takes it): the limit section also measures plain uploads to it")
	f.StringVar(&jsonOut, "json", "", "append the results as JSON to this file (- for standard output)")
	f.BoolVarP(&quiet, "quiet", "q", false, "log warnings only")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile here (is the client the limit?)")
	return cmd
}

// fromEnv reads a secret from the environment variable name ("" when name is "").
func fromEnv(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	v := os.Getenv(name)
	if v == "" {
		return "", fmt.Errorf("environment variable %s is empty", name)
	}
	return v, nil
}

func compareCmd() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "compare FILE...",
		Short: "Print the medians of several runs per registry and the base's advantage over each other",
		Long: `compare reads the JSON of berth-bench run (several results per file allowed), takes each
metric's median per target and prints a Markdown table: medians, then "BASE vs PEER", how many
times better the base is (×2.00: twice the rate, or half the latency or memory).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var all []*bench.Result
			for _, name := range args {
				f, err := os.Open(name)
				if err != nil {
					return err
				}
				rs, err := bench.ReadResults(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				all = append(all, rs...)
			}
			c, err := bench.Compare(all, base)
			if err != nil {
				return err
			}
			return c.WriteMarkdown(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&base, "base", "", "the target the others are compared with (default: berth if measured, else the first)")
	return cmd
}

func proxyCmd() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:     "proxy URL...",
		Short:   "Serve a round-robin reverse proxy over the registries at URL... (replicas behind a load balancer)",
		Example: `  berth-bench proxy --listen 127.0.0.1:5000 http://127.0.0.1:5001 http://127.0.0.1:5002 http://127.0.0.1:5003`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := bench.Proxy(args)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-cmd.Context().Done()
				srv.Close()
			}()
			fmt.Fprintln(cmd.OutOrStdout(), "listening on", ln.Addr())
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:5000", "address to listen on")
	return cmd
}

func scaleCmd() *cobra.Command {
	cfg := bench.ScaleConfig{Databases: []string{"sqlite"}, Scales: []int{1, 10, 100, 1000}, Reps: 200}
	var jsonOut, plotDir string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Seed 1×, 10×, 100×, 1 000× a base data set into SQLite and PostgreSQL and print how each operation's cost grows",
		Long: `scale seeds a fresh database per scale with the base data set times the scale (100
repositories, a repository of 1 000 tags, 10 users with role assignments, 10 scope maps and tokens,
10 000 login events, soft-deleted and untagged manifests), then measures, in this process
against the store: catalog and tag pages, manifest HEAD, policy reload after a change, Decide,
login events by correlation id and by identity, retention, garbage collection over every stored
blob (a dry run), and purges. It prints a Markdown table (medians; growth from the smallest
scale to the largest) and, with --plot-dir, draws the curves as PNG files.`,
		Example: `  berth-bench scale --scales 1,10 --reps 20
  berth-bench scale --database sqlite --database "$DSN" --json scale.json --plot-dir docs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.Dir == "" {
				dir, err := os.MkdirTemp("", "berth-scale-*")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				cfg.Dir = dir
			}
			level := slog.LevelInfo
			if quiet {
				level = slog.LevelWarn
			}
			cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			pts, err := bench.Scale(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if err := bench.WriteScaleTable(cmd.OutOrStdout(), pts); err != nil {
				return err
			}
			if jsonOut != "" {
				b, err := json.MarshalIndent(pts, "", "  ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
					return err
				}
			}
			if plotDir != "" {
				files, err := bench.PlotScale(pts, plotDir)
				if err != nil {
					return err
				}
				for _, f := range files {
					cfg.Log.Info("plot", "file", f)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&cfg.Databases, "database", cfg.Databases, "a database to measure: sqlite, or a postgres:// DSN (each scale in a schema of its own, dropped after); repeat for several")
	f.IntSliceVar(&cfg.Scales, "scales", cfg.Scales, "multipliers of the base data set")
	f.IntVar(&cfg.Reps, "reps", cfg.Reps, "repetitions of each fast operation per scale (its median is reported)")
	f.StringVar(&cfg.Dir, "dir", "", "folder for the SQLite databases (default a temporary one, removed after)")
	f.StringVar(&jsonOut, "json", "", "write the points as JSON to this file")
	f.StringVar(&plotDir, "plot-dir", "", "draw the curves as PNG files in this folder (scale-DATABASE-flat.png, scale-DATABASE-growing.png)")
	f.BoolVarP(&quiet, "quiet", "q", false, "log warnings only")
	return cmd
}
