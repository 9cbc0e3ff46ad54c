package storetest

import (
	"context"
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
