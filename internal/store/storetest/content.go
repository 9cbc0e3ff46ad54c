package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/store"
)

// runContent tests what az acr repository and az acr manifest read: repository, tag and
// manifest descriptions, listings by name and by time, deleting a repository, and usage.
func runContent(t *testing.T, setup func(t *testing.T) (*store.Store, store.Registry)) {
	ctx := context.Background()
	dg := func(s string) oci.Digest { return oci.FromBytes(oci.SHA256, []byte(s)) }

	t.Run("ContentDescriptions", func(t *testing.T) {
		s, reg := setup(t)
		if err := s.LinkBlob(ctx, reg.ID, "app", dg("layer"), 1000); err != nil {
			t.Fatal(err)
		}
		if err := s.LinkBlob(ctx, reg.ID, "app", dg("config"), 10); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RepositoryInfo(ctx, reg.ID, "app"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a repository with blobs and no manifest: %v, want ErrNotFound", err)
		}
		put := func(name string, tags ...string) oci.Digest {
			m := store.Manifest{Digest: dg(name), MediaType: oci.MediaTypeImageManifest, Size: 100}
			if err := s.PutManifest(ctx, reg.ID, "app", m, []oci.Digest{dg("layer"), dg("config")}, nil, tags); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond) // times are milliseconds: keep the order visible
			return m.Digest
		}
		m1 := put("m1", "v1", "latest")
		m2 := put("m2", "v2")
		m3 := put("m3")
		info, err := s.RepositoryInfo(ctx, reg.ID, "app")
		if err != nil || info.ManifestCount != 3 || info.TagCount != 3 || info.Attributes != store.Unlocked || info.UpdatedAt.Before(info.CreatedAt) {
			t.Errorf("RepositoryInfo = %+v, %v", info, err)
		}
		tags, more, err := s.TagInfos(ctx, reg.ID, "app", store.ByName, "", 10)
		if err != nil || more || len(tags) != 3 || tags[0].Name != "latest" || tags[0].Digest != m1 || tags[2].Name != "v2" || tags[2].CreatedAt.IsZero() {
			t.Errorf("TagInfos by name = %+v, %v, %v", tags, more, err)
		}
		tags, more, err = s.TagInfos(ctx, reg.ID, "app", store.NewestFirst, "", 1)
		if err != nil || !more || len(tags) != 1 || tags[0].Name != "v2" {
			t.Errorf("TagInfos newest first, one = %+v, %v, %v", tags, more, err)
		}
		var names []string
		for last := ""; ; {
			page, more, err := s.TagInfos(ctx, reg.ID, "app", store.OldestFirst, last, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, tg := range page {
				names = append(names, tg.Name)
			}
			if !more {
				break
			}
			last = page[len(page)-1].Name
		}
		if !slices.Equal(names, []string{"latest", "v1", "v2"}) {
			t.Errorf("tags oldest first, page by page: %v (v1 and latest share a time: by name)", names)
		}
		ms, _, err := s.ManifestInfos(ctx, reg.ID, "app", store.NewestFirst, "", 10)
		if err != nil || len(ms) != 3 || ms[0].Digest != m3 || ms[2].Digest != m1 || !slices.Equal(ms[2].Tags, []string{"latest", "v1"}) || len(ms[0].Tags) != 0 {
			t.Fatalf("ManifestInfos newest first = %+v, %v", ms, err)
		}
		if ms[0].ImageSize != 100+1000+10 {
			t.Errorf("image size %d, want the manifest and its two blobs: 1110", ms[0].ImageSize)
		}
		mi, err := s.ManifestInfo(ctx, reg.ID, "app", m2)
		if err != nil || !slices.Equal(mi.Tags, []string{"v2"}) || mi.ImageSize != 1110 {
			t.Errorf("ManifestInfo = %+v, %v", mi, err)
		}
		if _, err := s.TagInfo(ctx, reg.ID, "app", "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("TagInfo of an absent tag: %v", err)
		}

		u, err := s.RegistryUsage(ctx, reg.ID)
		if err != nil || u.Repositories != 1 || u.Manifests != 3 || u.Tags != 3 || u.Bytes != 1010+300 {
			t.Errorf("RegistryUsage = %+v, %v; want 1 repository, 3 manifests, 3 tags, 1310 bytes", u, err)
		}
		gone, tagsGone, err := s.DeleteRepository(ctx, reg.ID, "app")
		if err != nil || len(gone) != 3 || !slices.Equal(tagsGone, []string{"latest", "v1", "v2"}) {
			t.Errorf("DeleteRepository = %v, %v, %v", gone, tagsGone, err)
		}
		if _, _, err := s.DeleteRepository(ctx, reg.ID, "app"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleting it again: %v", err)
		}
		if ok, _ := s.RepositoryExists(ctx, reg.ID, "app"); ok {
			t.Error("the deleted repository still exists")
		}
		if u, err := s.RegistryUsage(ctx, reg.ID); err != nil || u != (store.Usage{}) {
			t.Errorf("usage after the delete: %+v, %v", u, err)
		}
	})
}

// runSoftDelete tests soft delete, restore, purge, retention candidates and job leases.
func runSoftDelete(t *testing.T, setup func(t *testing.T) (*store.Store, store.Registry)) {
	ctx := context.Background()
	dg := func(s string) oci.Digest { return oci.FromBytes(oci.SHA256, []byte(s)) }
	on, days := true, 3

	t.Run("SoftDeleteAndRestore", func(t *testing.T) {
		s, reg := setup(t)
		if _, err := s.UpdateRegistry(ctx, reg.Name, store.RegistryUpdate{SoftDeleteEnabled: &on, SoftDeleteDays: &days}); err != nil {
			t.Fatal(err)
		}
		s.LinkBlob(ctx, reg.ID, "app", dg("layer"), 500)
		m := store.Manifest{Digest: dg("m"), MediaType: oci.MediaTypeImageManifest, Size: 50}
		if err := s.PutManifest(ctx, reg.ID, "app", m, []oci.Digest{dg("layer")}, nil, []string{"v1", "latest"}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.DeleteRepository(ctx, reg.ID, "app"); err != nil {
			t.Fatal(err)
		}
		repos, err := s.DeletedRepositories(ctx, reg.ID)
		if err != nil || !slices.Equal(repos, []string{"app"}) {
			t.Fatalf("DeletedRepositories = %v, %v", repos, err)
		}
		del, err := s.DeletedManifests(ctx, reg.ID, "app", 10)
		if err != nil || len(del) != 1 || del[0].Digest != m.Digest || !slices.Equal(del[0].Tags, []string{"latest", "v1"}) ||
			del[0].PurgeAt.Sub(del[0].DeletedAt) != 72*time.Hour {
			t.Fatalf("DeletedManifests = %+v, %v", del, err)
		}
		// What it references stays referenced: garbage collection keeps the layer.
		if got, err := s.MarkUnreferenced(ctx, []oci.Digest{dg("layer"), m.Digest}, time.Now().Add(time.Hour), true); err != nil || len(got) != 0 {
			t.Errorf("a soft-deleted manifest's digests are collectable: %v, %v", got, err)
		}
		if _, err := s.RestoreManifest(ctx, reg.ID, "app", dg("other"), "", false); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("restoring what was never deleted: %v", err)
		}
		if _, err := s.RestoreManifest(ctx, reg.ID, "app", m.Digest, "v1", false); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Tag(ctx, reg.ID, "app", "v1"); err != nil || got.Digest != m.Digest {
			t.Errorf("the restored tag: %+v, %v", got, err)
		}
		if _, err := s.Blob(ctx, reg.ID, "app", dg("layer")); err != nil {
			t.Errorf("the restored manifest's layer is not linked again: %v", err)
		}
		if del, _ := s.DeletedManifests(ctx, reg.ID, "app", 10); len(del) != 0 {
			t.Errorf("still soft-deleted after the restore: %+v", del)
		}
		// A restore to a tag now taken needs force.
		other := store.Manifest{Digest: dg("m2"), MediaType: oci.MediaTypeImageManifest, Size: 50}
		if err := s.PutManifest(ctx, reg.ID, "app", other, []oci.Digest{dg("layer")}, nil, []string{"v2"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteManifest(ctx, reg.ID, "app", m.Digest); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RestoreManifest(ctx, reg.ID, "app", m.Digest, "v2", false); !errors.Is(err, store.ErrTagTaken) {
			t.Errorf("restore onto a taken tag: %v", err)
		}
		if _, err := s.RestoreManifest(ctx, reg.ID, "app", m.Digest, "v2", true); err != nil {
			t.Errorf("forced restore: %v", err)
		}
		// Purged when the time is up.
		if _, err := s.DeleteManifest(ctx, reg.ID, "app", m.Digest); err != nil {
			t.Fatal(err)
		}
		if n, err := s.PurgeDeleted(ctx, time.Now()); err != nil || n != 0 {
			t.Errorf("purged early: %d, %v", n, err)
		}
		if n, err := s.PurgeDeleted(ctx, time.Now().Add(73*time.Hour)); err != nil || n != 1 {
			t.Errorf("purge after three days: %d, %v", n, err)
		}
		// Off, a delete is final.
		off := false
		if _, err := s.UpdateRegistry(ctx, reg.Name, store.RegistryUpdate{SoftDeleteEnabled: &off}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteManifest(ctx, reg.ID, "app", other.Digest); err != nil {
			t.Fatal(err)
		}
		if del, _ := s.DeletedManifests(ctx, reg.ID, "app", 10); len(del) != 0 {
			t.Errorf("soft-deleted with the policy off: %+v", del)
		}
	})

	t.Run("RetentionCandidates", func(t *testing.T) {
		s, reg := setup(t)
		zero := 0
		if _, err := s.UpdateRegistry(ctx, reg.Name, store.RegistryUpdate{RetentionEnabled: &on, RetentionDays: &zero}); err != nil {
			t.Fatal(err)
		}
		put := func(name string, children []oci.Digest, subject oci.Digest, tags ...string) oci.Digest {
			m := store.Manifest{Digest: dg(name), MediaType: oci.MediaTypeImageManifest, Size: 10, Subject: subject}
			if err := s.PutManifest(ctx, reg.ID, "app", m, nil, children, tags); err != nil {
				t.Fatal(err)
			}
			return m.Digest
		}
		old := put("old", nil, "", "v1")
		put("new", nil, "", "v1")           // v1 moves: old lost its last tag
		child := put("child", nil, "", "c") // named by an index below
		put("index", []oci.Digest{child}, "", "idx")
		if _, err := s.DeleteTag(ctx, reg.ID, "app", "c"); err != nil {
			t.Fatal(err)
		}
		sig := put("sig", nil, dg("new"), "s") // a referrer of a manifest still there
		if _, err := s.DeleteTag(ctx, reg.ID, "app", "s"); err != nil {
			t.Fatal(err)
		}
		locked := put("locked", nil, "", "l")
		if _, err := s.DeleteTag(ctx, reg.ID, "app", "l"); err != nil {
			t.Fatal(err)
		}
		f := false
		if _, err := s.UpdateAttributes(ctx, reg.ID, "app", "", locked, store.AttributesUpdate{DeleteEnabled: &f}); err != nil {
			t.Fatal(err)
		}
		put("never-tagged", nil, "") // pushed by digest: not "untagged" (an index child, a referrer…)
		got, err := s.RetentionCandidates(ctx, time.Now().Add(time.Second), 100)
		if err != nil || len(got) != 1 || got[0].Digest != old || got[0].Repository != "app" || got[0].Registry != reg.Name {
			t.Errorf("RetentionCandidates = %+v, %v; want old only (not %s, %s, %s)", got, err, child, sig, locked)
		}
		week := 7
		if _, err := s.UpdateRegistry(ctx, reg.Name, store.RegistryUpdate{RetentionDays: &week}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.RetentionCandidates(ctx, time.Now().Add(time.Second), 100); len(got) != 0 {
			t.Errorf("with 7 days, nothing is due yet: %+v", got)
		}
		if got, _ := s.RetentionCandidates(ctx, time.Now().Add(8*24*time.Hour), 100); len(got) != 1 {
			t.Errorf("8 days later: %+v", got)
		}
	})

	t.Run("JobLeases", func(t *testing.T) {
		s, _ := setup(t)
		now := time.Now()
		if ok, err := s.TryLease(ctx, "retention", "a", now, time.Minute); err != nil || !ok {
			t.Fatalf("a takes the free lease: %v %v", ok, err)
		}
		if ok, _ := s.TryLease(ctx, "retention", "b", now.Add(30*time.Second), time.Minute); ok {
			t.Error("b took a's running lease")
		}
		if ok, _ := s.TryLease(ctx, "retention", "a", now.Add(30*time.Second), time.Minute); !ok {
			t.Error("a cannot renew its own lease")
		}
		if ok, _ := s.TryLease(ctx, "retention", "b", now.Add(2*time.Minute), time.Minute); !ok {
			t.Error("b cannot take an expired lease")
		}
		if ok, _ := s.TryLease(ctx, "purge", "a", now, time.Minute); !ok {
			t.Error("another job's lease is separate")
		}
	})
}

// runWebhooks tests webhooks' outbox: deliveries written with pushes and deletes in scope,
// leases that keep a delivery to one holder, and results.
func runWebhooks(t *testing.T, setup func(t *testing.T) (*store.Store, store.Registry)) {
	ctx := context.Background()
	dg := func(s string) oci.Digest { return oci.FromBytes(oci.SHA256, []byte(s)) }
	t.Run("WebhookOutbox", func(t *testing.T) {
		s, reg := setup(t)
		wh, err := s.CreateWebhook(ctx, store.Webhook{RegistryID: reg.ID, Name: "hook1", ConfigSealed: []byte("sealed"), Actions: []string{"push", "delete"}, Scope: "team/*:v*", Status: "enabled"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateWebhook(ctx, store.Webhook{RegistryID: reg.ID, Name: "hook1", ConfigSealed: []byte("x"), Actions: []string{"push"}, Status: "enabled"}); !errors.Is(err, store.ErrExists) {
			t.Errorf("a second hook1: %v", err)
		}
		ctx := store.WithRequest(ctx, store.RequestInfo{ID: "req-1", Host: "reg.example", Method: "PUT", UserAgent: "test"})
		put := func(repo, name string, tags ...string) oci.Digest {
			m := store.Manifest{Digest: dg(name), MediaType: oci.MediaTypeImageManifest, Size: 42}
			if err := s.PutManifest(ctx, reg.ID, repo, m, nil, nil, tags); err != nil {
				t.Fatal(err)
			}
			return m.Digest
		}
		d := put("team/app", "m1", "v1", "latest") // v1 in scope, latest not
		put("other/app", "m2", "v1")               // repository not in scope
		if _, err := s.DeleteTag(ctx, reg.ID, "team/app", "v1"); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		a, err := s.ClaimDeliveries(ctx, "a", now, time.Minute, 10)
		if err != nil || len(a) != 2 {
			t.Fatalf("claimed by a: %d, %v; want the push of team/app:v1 and its untag", len(a), err)
		}
		var p store.WebhookPayload
		json.Unmarshal(a[0].Payload, &p)
		if p.Action != "push" || p.Target.Repository != "team/app" || p.Target.Tag != "v1" || p.Target.Digest != string(d) || p.Target.Size != 42 || p.Request.ID != "req-1" ||
			a[0].WebhookName != "hook1" || string(a[0].ConfigSealed) != "sealed" {
			t.Errorf("the push delivery: %+v %+v", a[0], p)
		}
		if b, _ := s.ClaimDeliveries(ctx, "b", now.Add(30*time.Second), time.Minute, 10); len(b) != 0 {
			t.Errorf("b claimed a's leased deliveries: %d", len(b))
		}
		if err := s.FinishDelivery(ctx, a[0].ID, "a", store.DeliveryResult{Status: 200, Delivered: true, NextAt: now}); err != nil {
			t.Fatal(err)
		}
		// a dies holding the other: after the lease, b gets it; a's late result changes nothing.
		b, _ := s.ClaimDeliveries(ctx, "b", now.Add(2*time.Minute), time.Minute, 10)
		if len(b) != 1 || b[0].ID != a[1].ID {
			t.Fatalf("b after a's lease: %+v", b)
		}
		s.FinishDelivery(ctx, a[1].ID, "a", store.DeliveryResult{Status: 200, Delivered: true, NextAt: now})
		s.FinishDelivery(ctx, b[0].ID, "b", store.DeliveryResult{Status: 503, Error: "busy", NextAt: now.Add(3 * time.Minute)})
		list, err := s.WebhookDeliveries(ctx, wh.ID, 10)
		if err != nil || len(list) != 2 {
			t.Fatalf("deliveries: %+v, %v", list, err)
		}
		for _, dl := range list {
			switch dl.ID {
			case a[0].ID:
				if dl.Status != "delivered" || dl.Attempts != 1 || dl.LastStatus != 200 {
					t.Errorf("delivered one: %+v", dl)
				}
			case b[0].ID:
				if dl.Status != "pending" || dl.Attempts != 1 || dl.LastStatus != 503 || dl.LastError != "busy" {
					t.Errorf("retried one: %+v (a's late result must not count)", dl)
				}
			}
		}
		if due, _ := s.ClaimDeliveries(ctx, "b", now.Add(150*time.Second), time.Minute, 10); len(due) != 0 {
			t.Errorf("due before its time: %d", len(due))
		}
		if due, _ := s.ClaimDeliveries(ctx, "b", now.Add(4*time.Minute), time.Minute, 10); len(due) != 1 {
			t.Errorf("due again at its time: %d", len(due))
		}
		off := "disabled"
		if _, err := s.UpdateWebhook(ctx, reg.ID, "hook1", store.WebhookUpdate{Status: &off}); err != nil {
			t.Fatal(err)
		}
		put("team/app", "m3", "v3")
		if due, _ := s.ClaimDeliveries(ctx, "c", now.Add(10*time.Minute), time.Minute, 10); len(due) != 1 {
			t.Errorf("a disabled webhook got a delivery (or the old one is gone): %d", len(due))
		}
		if err := s.DeleteWebhook(ctx, reg.ID, "hook1"); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.WebhookDeliveries(ctx, wh.ID, 10); len(list) != 0 {
			t.Errorf("deliveries of a deleted webhook: %d", len(list))
		}
	})
	t.Run("ImportRecords", func(t *testing.T) {
		s, reg := setup(t)
		for _, id := range []string{"done", "running"} {
			if err := s.CreateImport(ctx, store.ImportRun{ID: id, RegistryID: reg.ID, Source: "src/x:1", Target: "x:1"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.UpdateImport(ctx, store.ImportRun{ID: "done", Status: "Succeeded", Manifests: 2, Blobs: 3, Bytes: 10}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Import(ctx, reg.ID, "done"); err != nil || got.Status != "Succeeded" || got.Blobs != 3 || got.EndedAt.IsZero() {
			t.Errorf("Import = %+v, %v", got, err)
		}
		if n, err := s.PurgeImports(ctx, time.Now().Add(time.Second)); err != nil || n != 1 {
			t.Errorf("PurgeImports = %d, %v; want the finished one only", n, err)
		}
		if _, err := s.Import(ctx, reg.ID, "running"); err != nil {
			t.Errorf("a running import was purged: %v", err)
		}
	})
	for _, tc := range []struct {
		scope, repo, tag string
		want             bool
	}{
		{"", "a/b", "", true}, {"team/*:*", "team/x/y", "v1", true}, {"team/*:v*", "team/app", "latest", false}, {"app", "app", "latest", true},
		{"app", "app", "v1", false}, {"app:*", "app", "", true}, {"app:v1", "app", "", false}, {"*/app:*", "team/app", "x", true}, {"team/*", "teams/app", "latest", false},
	} {
		if got := store.ScopeMatches(tc.scope, tc.repo, tc.tag); got != tc.want {
			t.Errorf("ScopeMatches(%q, %q, %q) = %v", tc.scope, tc.repo, tc.tag, got)
		}
	}
}
