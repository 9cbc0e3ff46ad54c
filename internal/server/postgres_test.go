package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	ggauthn "github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/server"
	"github.com/berth-registry/berth/internal/store"
	"github.com/berth-registry/berth/internal/store/pgtest"
)

// TestServeOverPostgres: serve refuses an unmigrated PostgreSQL database; after a migration a
// push and a pull through it work, and their events land in PostgreSQL.
func TestServeOverPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	cfg := config.Default()
	cfg.DataDir, cfg.Database = t.TempDir(), dsn
	cfg.Auth.KeyEncryptionKey = registrytest.TestKeyEncryptionKey
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := server.New(ctx, cfg, server.Options{}); !errors.Is(err, store.ErrSchemaOld) {
		t.Fatalf("serve on an unmigrated database: %v, want ErrSchemaOld", err)
	}
	st, err := store.Open(ctx, dsn, store.Options{}) // what 'berth migrate' does
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Database = dsn }})
	if s.Meta().Dialect() != "postgres" {
		t.Fatalf("dialect %s", s.Meta().Dialect())
	}
	user, pwd := s.Admin(t)
	auth := remote.WithAuth(&ggauthn.Basic{Username: user, Password: pwd})
	img, _ := random.Image(1024, 2)
	ref, _ := name.NewTag(s.Host+"/pg/app:v1", name.Insecure)
	if err := remote.Write(ref, img, auth); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref, auth)
	if err != nil {
		t.Fatal(err)
	}
	if d1, _ := img.Digest(); true {
		if d2, _ := got.Digest(); d1 != d2 {
			t.Fatalf("pulled %s, pushed %s", d2, d1)
		}
	}
	var evs []client.RepositoryEvent
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && len(evs) < 2; time.Sleep(20 * time.Millisecond) {
		evs = nil
		if st := s.Mgmt(t, "GET", "/mgmt/v1/registries/default/events/repository?repository=pg/app", nil, &evs); st != http.StatusOK {
			t.Fatalf("events: %d", st)
		}
	}
	if len(evs) != 2 || evs[0].Operation != "pull" || evs[1].Operation != "push" {
		t.Fatalf("events %+v", evs)
	}
}
