// Package registrytest runs a real berth server on a loopback socket for tests.
package registrytest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server"
)

// Server is a berth serving on 127.0.0.1 for the length of a test.
type Server struct {
	*server.Server
	URL  string // http://127.0.0.1:PORT
	Host string // 127.0.0.1:PORT
	Dir  string // data folder
	Cfg  config.Config
	stop func()
}

// Options adjust the server a test gets.
type Options struct {
	Dir    string               // data folder to reuse (for restarts); default a new temp dir
	Config func(*config.Config) // edits the default configuration
	Now    func() time.Time     // the server's clock; default time.Now
}

// New starts a server and stops it when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	if opts.Config != nil {
		opts.Config(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	var out io.Writer = io.Discard
	if os.Getenv("BERTH_TEST_LOG") != "" {
		out = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Options{Log: log, Now: opts.Now})
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	s := &Server{Server: srv, URL: "http://" + ln.Addr().String(), Host: ln.Addr().String(), Dir: dir, Cfg: cfg}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("server stopped with %v", err)
		}
		srv.Close()
	}
	t.Cleanup(s.stop)
	return s
}

// Stop shuts the server down now (it is also stopped at the end of the test).
func (s *Server) Stop() { s.stop() }
