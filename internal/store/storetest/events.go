package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/store"
)

// runAccessAndEvents covers the authorization settings and the audit events.
func runAccessAndEvents(t *testing.T, setup func(t *testing.T) (*store.Store, store.Registry)) {
	ctx := context.Background()

	t.Run("RegistrySettingsAndNetworkRules", func(t *testing.T) {
		s, reg := setup(t)
		mode, anon, repos, public, deny := "rbac-abac", true, []string{"public/*", "docs"}, false, "Deny"
		got, err := s.UpdateRegistry(ctx, reg.Name, store.RegistryUpdate{RoleAssignmentMode: &mode, AnonymousPullEnabled: &anon,
			AnonymousPullRepositories: &repos, PublicNetworkAccess: &public, DefaultAction: &deny})
		if err != nil || got.RoleAssignmentMode != mode || !got.AnonymousPullEnabled || strings.Join(got.AnonymousPullRepositories, " ") != "public/* docs" ||
			got.PublicNetworkAccess || got.DefaultAction != deny {
			t.Fatalf("UpdateRegistry = %+v, %v", got, err)
		}
		for _, cidr := range []string{"203.0.113.0/24", "2001:db8::/32"} {
			if err := s.AddNetworkRule(ctx, reg.Name, cidr); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddNetworkRule(ctx, reg.Name, "203.0.113.0/24"); !errors.Is(err, store.ErrExists) {
			t.Errorf("duplicate rule: %v", err)
		}
		got, err = s.RegistryByName(ctx, reg.Name)
		if err != nil || len(got.NetworkRules) != 2 {
			t.Fatalf("rules = %+v, %v", got.NetworkRules, err)
		}
		if err := s.RemoveNetworkRule(ctx, reg.Name, "2001:db8::/32"); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveNetworkRule(ctx, reg.Name, "2001:db8::/32"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("removing a missing rule: %v", err)
		}
	})

	t.Run("Events", func(t *testing.T) {
		s, _ := setup(t)
		base := time.UnixMilli(time.Now().UnixMilli()).UTC()
		var logins []store.LoginEvent
		for i, id := range []string{"Alice", "alice", "bob", "carol"} {
			e := store.LoginEvent{Time: base.Add(time.Duration(i) * time.Minute), Registry: "default", LoginServer: "r.example", Operation: "token",
				Identity: id, IdentityKind: "user", IP: "192.0.2.1", UserAgent: "docker", Status: 200, Result: store.ResultSuccess,
				Granted: []string{"repository:a:pull"}, Refused: []string{}, Duration: store.Millis(1500 * time.Microsecond), CorrelationID: "c" + id, TokenID: "j" + id}
			if id == "bob" {
				e.Status, e.Result, e.Reason, e.Registry, e.Refused = 401, store.ResultFailure, "bad_password", "", []string{"repository:a:push"}
			}
			logins = append(logins, e)
		}
		repos := []store.RepositoryEvent{{Time: base, Registry: "default", Operation: "push", Repository: "team/app", Tag: "v1", Digest: "sha256:x",
			MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 512, Identity: "alice", Status: 201, Result: store.ResultSuccess, CorrelationID: "r1"}}
		if err := s.InsertEvents(ctx, logins, repos); err != nil {
			t.Fatal(err)
		}
		all, err := s.LoginEvents(ctx, store.EventFilter{})
		if err != nil || len(all) != 4 || all[0].Identity != "carol" || all[3].Identity != "Alice" {
			t.Fatalf("newest first: %+v, %v", all, err)
		}
		if e := all[1]; e.Reason != "bad_password" || strings.Join(e.Refused, " ") != "repository:a:push" || !e.Time.Equal(base.Add(2*time.Minute)) ||
			time.Duration(e.Duration) != 1500*time.Microsecond || e.TokenID != "jbob" {
			t.Errorf("round trip: %+v", e)
		}
		for _, tc := range []struct {
			name string
			f    store.EventFilter
			want int
		}{
			{"identity, any case", store.EventFilter{Identity: "ALICE"}, 2},
			{"result", store.EventFilter{Result: store.ResultFailure}, 1},
			{"directory only", store.EventFilter{Registries: []string{""}}, 1},
			{"no registries", store.EventFilter{Registries: []string{}}, 0},
			{"since", store.EventFilter{Since: base.Add(90 * time.Second)}, 2},
			{"until", store.EventFilter{Until: base.Add(90 * time.Second)}, 2},
			{"before a cursor", store.EventFilter{Before: all[1].ID}, 2},
			{"limit", store.EventFilter{Limit: 3}, 3},
			{"correlation id", store.EventFilter{CorrelationID: "cbob"}, 1},
		} {
			got, err := s.LoginEvents(ctx, tc.f)
			if err != nil || len(got) != tc.want {
				t.Errorf("%s: %d events, %v; want %d", tc.name, len(got), err, tc.want)
			}
		}
		rs, err := s.RepositoryEvents(ctx, store.EventFilter{Repository: "team/app"})
		if err != nil || len(rs) != 1 || rs[0].Size != 512 || rs[0].Tag != "v1" {
			t.Errorf("repository events: %+v, %v", rs, err)
		}
		n, err := s.PurgeEvents(ctx, base.Add(time.Minute))
		if err != nil || n != 2 { // Alice's login and the push
			t.Errorf("purged %d, %v", n, err)
		}
		if l, r, err := s.CountEvents(ctx); err != nil || l != 3 || r != 0 {
			t.Errorf("after purge: %d logins, %d repository events, %v", l, r, err)
		}
	})
}
