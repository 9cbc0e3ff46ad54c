package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/berth-registry/berth/internal/store"
)

// runSSO: single sign-on's users and groups (issue 20). An external identity is linked to the
// user it created; a local user's name is not taken; the groups claim joins the user to the
// groups named that exist, and a later claim that drops one makes the user leave it — but not a
// group an administrator added them to, nor the last Owner's group.
func runSSO(t *testing.T, setup func(t *testing.T) (*store.Store, store.Registry)) {
	ctx := context.Background()
	t.Run("SingleSignOnUsersAndGroups", func(t *testing.T) {
		s, _ := setup(t)
		p, err := s.CreateIdentityProvider(ctx, store.IdentityProvider{Name: "corp", Issuer: "https://idp.example", ClientID: "berth",
			ClaimUsername: "preferred_username", ClaimEmail: "email", ClaimGroups: "groups", Scopes: "openid"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, g := range []string{"devs", "ops", "manual"} {
			grp, err := s.CreateGroup(ctx, g, "")
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, grp.ID)
		}
		if _, err := s.SignInExternal(ctx, p.ID, "sub-1", "alice", false, nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("no link, no creation: %v", err)
		}
		u, err := s.SignInExternal(ctx, p.ID, "sub-1", "alice", true, []string{"devs", "ops", "nope"})
		if err != nil || !u.Created || u.Name != "alice" {
			t.Fatalf("first sign-in: %+v %v", u, err)
		}
		if err := s.AddGroupMember(ctx, ids[2], u.ID); err != nil {
			t.Fatal(err)
		}
		again, err := s.SignInExternal(ctx, p.ID, "sub-1", "ignored-name", true, []string{"ops"})
		if err != nil || again.Created || again.ID != u.ID {
			t.Fatalf("second sign-in: %+v %v", again, err)
		}
		for i, want := range []bool{false, true, true} {
			members, _ := s.GroupMembers(ctx, ids[i])
			if slices.Contains(members, "alice") != want {
				t.Errorf("group %d: members %v, alice should be in: %v", i, members, want)
			}
		}
		if local, err := s.UserByName(ctx, "alice"); err != nil || !local.SSOOnly {
			t.Errorf("alice: %+v %v", local, err)
		}
		if _, err := s.SignInExternal(ctx, p.ID, "sub-2", "alice", true, nil); !errors.Is(err, store.ErrNameTaken) {
			t.Errorf("another subject with alice's name: %v", err)
		}
		if err := s.DeleteIdentityProvider(ctx, "corp"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UserByName(ctx, "alice"); err != nil {
			t.Errorf("a provider's users stay when it goes: %v", err)
		}
	})
}
