package distribution_test

import (
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/store"
)

// TestRetention: with the registry's policy off a retention pass keeps an untagged manifest;
// on (0 days), it deletes the manifest a tag moved away from, keeps the tagged one, and records
// the delete as a repository event of the identity "retention".
func TestRetention(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	admin := newClient(t, s)
	_, old := admin.pushImage("team/app", "v1", randomBytes(t, 100))
	_, cur := admin.pushImage("team/app", "v1", randomBytes(t, 100)) // v1 moves: old is untagged
	if err := s.ApplyContentPolicies(t.Context()); err != nil {
		t.Fatal(err)
	}
	admin.must(admin.do("HEAD", "/v2/team/app/manifests/"+string(old), nil, nil), 200, "the untagged manifest with retention off")
	if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"policies": map[string]any{"retentionPolicy": map[string]any{"status": "enabled", "days": 0}}}, nil); st != 200 {
		t.Fatalf("retention on: %d", st)
	}
	if err := s.ApplyContentPolicies(t.Context()); err != nil {
		t.Fatal(err)
	}
	admin.must(admin.do("HEAD", "/v2/team/app/manifests/"+string(old), nil, nil), 404, "the untagged manifest after retention")
	admin.must(admin.do("HEAD", "/v2/team/app/manifests/"+string(cur), nil, nil), 200, "the tagged manifest after retention")
	s.SettleEvents(t)
	evs, err := s.Meta().RepositoryEvents(t.Context(), store.EventFilter{Repository: "team/app", Reason: "retention"})
	if err != nil || len(evs) != 1 || evs[0].Digest != string(old) || evs[0].Identity != "retention" {
		t.Errorf("retention's events: %+v, %v", evs, err)
	}
}
