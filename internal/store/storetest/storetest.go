// Package storetest is the acceptance suite for the metadata store; every SQL dialect runs it.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/store"
)

// Run runs the suite; open returns a fresh, migrated, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) *store.Store) {
	ctx := context.Background()
	dg := func(s string) oci.Digest { return oci.FromBytes(oci.SHA256, []byte(s)) }
	setup := func(t *testing.T) (*store.Store, store.Registry) {
		s := open(t)
		reg, err := s.EnsureDefaultRegistry(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		return s, reg
	}

	t.Run("DefaultRegistryOnce", func(t *testing.T) {
		s, reg := setup(t)
		again, err := s.EnsureDefaultRegistry(ctx, "other")
		if err != nil || !reflect.DeepEqual(again, reg) {
			t.Errorf("second EnsureDefaultRegistry = %+v, %v; want %+v", again, err, reg)
		}
		if _, err := s.CreateRegistry(ctx, "default", ""); err == nil {
			t.Error("a second registry named default was created")
		}
		if _, err := s.CreateRegistry(ctx, "team", "Team.Example"); err != nil {
			t.Fatal(err)
		}
		regs, err := s.Registries(ctx)
		if err != nil || len(regs) != 2 || regs[1].LoginServer != "team.example" {
			t.Errorf("Registries = %+v, %v", regs, err)
		}
	})

	t.Run("BlobLinks", func(t *testing.T) {
		s, reg := setup(t)
		if _, err := s.Blob(ctx, reg.ID, "r", dg("a")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Blob before link err = %v", err)
		}
		for i := 0; i < 2; i++ { // linking twice is fine
			if err := s.LinkBlob(ctx, reg.ID, "r", dg("a"), 42); err != nil {
				t.Fatal(err)
			}
		}
		if size, err := s.Blob(ctx, reg.ID, "r", dg("a")); err != nil || size != 42 {
			t.Errorf("Blob = %d, %v", size, err)
		}
		s.LinkBlob(ctx, reg.ID, "q", dg("a"), 42)
		repos, err := s.ReposWithBlob(ctx, reg.ID, dg("a"), 10)
		if diff := cmp.Diff([]string{"q", "r"}, repos); err != nil || diff != "" {
			t.Errorf("ReposWithBlob: %v %s", err, diff)
		}
		if err := s.UnlinkBlob(ctx, reg.ID, "r", dg("a")); err != nil {
			t.Fatal(err)
		}
		if err := s.UnlinkBlob(ctx, reg.ID, "r", dg("a")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second unlink err = %v", err)
		}
	})

	t.Run("Manifests", func(t *testing.T) {
		s, reg := setup(t)
		m := store.Manifest{Digest: dg("m1"), MediaType: oci.MediaTypeImageManifest, Size: 10, Annotations: map[string]string{"k": "v"}}
		var missing *store.MissingError
		err := s.PutManifest(ctx, reg.ID, "r", m, []oci.Digest{dg("layer")}, nil, []string{"v1"})
		if !errors.As(err, &missing) || missing.Digest != dg("layer") {
			t.Fatalf("PutManifest without its blob err = %v", err)
		}
		if _, err := s.Tag(ctx, reg.ID, "r", "v1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refused manifest left a tag: %v", err)
		}
		s.LinkBlob(ctx, reg.ID, "r", dg("layer"), 5)
		if err := s.PutManifest(ctx, reg.ID, "r", m, []oci.Digest{dg("layer"), dg("layer")}, nil, []string{"v1", "latest"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Tag(ctx, reg.ID, "r", "latest")
		if err != nil || got.Digest != m.Digest || got.Annotations["k"] != "v" {
			t.Errorf("Tag = %+v, %v", got, err)
		}
		idx := store.Manifest{Digest: dg("idx"), MediaType: oci.MediaTypeImageIndex, Size: 3}
		if err := s.PutManifest(ctx, reg.ID, "r", idx, nil, []oci.Digest{dg("nope")}, nil); !errors.As(err, &missing) || !missing.Manifest {
			t.Errorf("index with a missing child err = %v", err)
		}
		if err := s.PutManifest(ctx, reg.ID, "r", idx, nil, []oci.Digest{m.Digest}, []string{"latest"}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Tag(ctx, reg.ID, "r", "latest"); got.Digest != idx.Digest {
			t.Errorf("latest did not move to the index: %s", got.Digest)
		}
		tags, err := s.DeleteManifest(ctx, reg.ID, "r", m.Digest)
		if err != nil || len(tags) != 1 || tags[0] != "v1" {
			t.Errorf("DeleteManifest = %v, %v; want [v1]", tags, err)
		}
		if _, err := s.Manifest(ctx, reg.ID, "r", m.Digest); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("manifest after delete: %v", err)
		}
		if _, err := s.DeleteManifest(ctx, reg.ID, "r", m.Digest); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second delete err = %v", err)
		}
		if d, err := s.DeleteTag(ctx, reg.ID, "r", "latest"); err != nil || d != idx.Digest {
			t.Errorf("DeleteTag = %s, %v", d, err)
		}
		if _, err := s.Manifest(ctx, reg.ID, "r", idx.Digest); err != nil {
			t.Errorf("untagged manifest is gone: %v", err)
		}
	})

	t.Run("TagsAndCatalogPages", func(t *testing.T) {
		s, reg := setup(t)
		m := store.Manifest{Digest: dg("m"), MediaType: oci.MediaTypeImageManifest, Size: 1}
		var tags []string
		for i := 0; i < 25; i++ {
			tags = append(tags, fmt.Sprintf("t%02d", i))
		}
		if err := s.PutManifest(ctx, reg.ID, "r", m, nil, nil, tags); err != nil {
			t.Fatal(err)
		}
		var got []string
		last := ""
		for {
			page, more, err := s.Tags(ctx, reg.ID, "r", last, 10)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if !more {
				break
			}
			last = page[len(page)-1]
		}
		if diff := cmp.Diff(tags, got); diff != "" {
			t.Errorf("paged tags (-want +got):\n%s", diff)
		}
		if _, _, err := s.Tags(ctx, reg.ID, "absent", "", 10); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Tags of an unknown repository err = %v", err)
		}
		if err := s.PutManifest(ctx, reg.ID, "a", m, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		s.LinkBlob(ctx, reg.ID, "b", dg("x"), 1) // a blob, no manifest: not in the catalog
		names, more, err := s.Catalog(ctx, reg.ID, "", 1)
		if err != nil || !more || len(names) != 1 || names[0] != "a" {
			t.Errorf("Catalog page = %v %v %v", names, more, err)
		}
		if names, more, err = s.Catalog(ctx, reg.ID, "a", 10); err != nil || more || len(names) != 1 || names[0] != "r" {
			t.Errorf("Catalog after a = %v %v %v, want r alone (b holds no manifest)", names, more, err)
		}
	})

	t.Run("Referrers", func(t *testing.T) {
		s, reg := setup(t)
		subj := dg("subject")
		for i, at := range []string{"x/sig", "x/sbom", "x/sig"} {
			m := store.Manifest{Digest: dg(fmt.Sprint("ref", i)), MediaType: oci.MediaTypeImageManifest, ArtifactType: at, Size: 1, Subject: subj,
				Annotations: map[string]string{"note": strings.Repeat("n", 100)}}
			if err := s.PutManifest(ctx, reg.ID, "r", m, nil, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		all, more, err := s.Referrers(ctx, reg.ID, "r", subj, "", "", 10, 0)
		if err != nil || len(all) != 3 || more {
			t.Errorf("Referrers = %d, %v, %v", len(all), more, err)
		}
		page, more, err := s.Referrers(ctx, reg.ID, "r", subj, "", "", 2, 0)
		if err != nil || len(page) != 2 || !more {
			t.Fatalf("Referrers page = %d, %v, %v", len(page), more, err)
		}
		rest, more, err := s.Referrers(ctx, reg.ID, "r", subj, "", string(page[1].Digest), 2, 0)
		if err != nil || len(rest) != 1 || more || rest[0].Digest <= page[1].Digest {
			t.Errorf("Referrers after %s = %v, %v, %v", page[1].Digest, rest, more, err)
		}
		// A byte budget cuts the page (at least one is listed, whatever its size).
		if cut, more, err := s.Referrers(ctx, reg.ID, "r", subj, "", "", 10, 250); err != nil || len(cut) != 2 || !more {
			t.Errorf("Referrers within 250 bytes = %d, %v, %v", len(cut), more, err)
		}
		if one, more, err := s.Referrers(ctx, reg.ID, "r", subj, "", "", 10, 1); err != nil || len(one) != 1 || !more {
			t.Errorf("Referrers within 1 byte = %d, %v, %v", len(one), more, err)
		}
		sigs, _, err := s.Referrers(ctx, reg.ID, "r", subj, "x/sig", "", 10, 0)
		if err != nil || len(sigs) != 2 {
			t.Errorf("Referrers(x/sig) = %d, %v", len(sigs), err)
		}
		other, _, _ := s.Referrers(ctx, reg.ID, "other", subj, "", "", 10, 0)
		if len(other) != 0 {
			t.Errorf("referrers leaked across repositories: %d", len(other))
		}
	})

	t.Run("Uploads", func(t *testing.T) {
		s, reg := setup(t)
		u := store.Upload{ID: "u1", RegistryID: reg.ID, Repository: "r", HashAlgorithm: "sha256", HashState: []byte("s0")}
		if err := s.CreateUpload(ctx, u); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Upload(ctx, reg.ID, "other", "u1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("upload visible from another repository: %v", err)
		}
		if err := s.CheckpointUpload(ctx, "u1", 0, 100, []byte("s1"), ""); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckpointUpload(ctx, "u1", 0, 50, []byte("stale"), ""); !errors.Is(err, store.ErrConflict) {
			t.Errorf("stale checkpoint err = %v; want ErrConflict", err)
		}
		got, err := s.Upload(ctx, reg.ID, "r", "u1")
		if err != nil || got.Size != 100 || string(got.HashState) != "s1" {
			t.Errorf("Upload = %+v, %v", got, err)
		}
		if n, _ := s.CountUploads(ctx, reg.ID); n != 1 {
			t.Errorf("CountUploads = %d", n)
		}
		// A lease keeps every other holder out until it ends; its holder renews it; a release ends it.
		now := time.UnixMilli(time.Now().UnixMilli())
		if err := s.LeaseUpload(ctx, "u1", "a", now, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.LeaseUpload(ctx, "u1", "b", now.Add(time.Second), now.Add(time.Minute)); !errors.Is(err, store.ErrConflict) {
			t.Errorf("a second holder during the lease: %v; want ErrConflict", err)
		}
		if err := s.LeaseUpload(ctx, "u1", "a", now.Add(time.Second), now.Add(2*time.Minute)); err != nil {
			t.Errorf("its holder renews: %v", err)
		}
		if err := s.LeaseUpload(ctx, "u1", "b", now.Add(2*time.Minute+time.Second), now.Add(3*time.Minute)); err != nil {
			t.Errorf("another holder once the lease ran out: %v", err)
		}
		if err := s.ReleaseUpload(ctx, "u1", "a"); err != nil { // not a's any more: nothing happens
			t.Fatal(err)
		}
		if err := s.LeaseUpload(ctx, "u1", "c", now.Add(2*time.Minute+2*time.Second), now.Add(3*time.Minute)); !errors.Is(err, store.ErrConflict) {
			t.Errorf("a release by a former holder ended the lease: %v", err)
		}
		if err := s.ReleaseUpload(ctx, "u1", "b"); err != nil {
			t.Fatal(err)
		}
		if err := s.LeaseUpload(ctx, "u1", "c", now.Add(2*time.Minute+2*time.Second), now.Add(3*time.Minute)); err != nil {
			t.Errorf("after the release: %v", err)
		}
		if err := s.LeaseUpload(ctx, "nope", "a", now, now.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a lease of no upload: %v", err)
		}
		if err := s.CreateUpload(ctx, store.Upload{ID: "u2", RegistryID: reg.ID, Repository: "r", HashAlgorithm: "sha256", Owner: "token:9"}); err != nil {
			t.Fatal(err)
		}
		for owner, want := range map[string]int{"token:9": 1, "token:8": 0} {
			if n, err := s.CountUploadsOf(ctx, reg.ID, owner); err != nil || n != want {
				t.Errorf("CountUploadsOf(%s) = %d, %v; want %d", owner, n, err, want)
			}
		}
		// The blob an open upload holds (a blob store may keep its first bytes at their digest)
		// is spared by garbage collection until the upload ends; later checkpoints keep it.
		held := oci.FromBytes(oci.SHA256, []byte("first"))
		collectable := func() bool {
			t.Helper()
			got, err := s.MarkUnreferenced(ctx, []oci.Digest{held}, time.Now().Add(time.Hour), true)
			if err != nil {
				t.Fatal(err)
			}
			return len(got) == 1
		}
		if !collectable() {
			t.Fatalf("a digest nothing holds is not collectable")
		}
		if err := s.CheckpointUpload(ctx, "u2", 0, 5, []byte("s"), held); err != nil {
			t.Fatal(err)
		}
		if collectable() {
			t.Errorf("garbage collection would take the blob an open upload holds")
		}
		if err := s.CheckpointUpload(ctx, "u2", 5, 10, []byte("s"), ""); err != nil {
			t.Fatal(err)
		}
		if collectable() {
			t.Errorf("a later checkpoint let go of the blob the upload holds")
		}
		if err := s.DeleteUpload(ctx, "u2"); err != nil {
			t.Fatal(err)
		}
		if !collectable() {
			t.Errorf("a finished upload still holds its blob from garbage collection")
		}
		if err := s.DeleteUpload(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckpointUpload(ctx, "u1", 100, 200, nil, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("checkpoint of a deleted upload err = %v", err)
		}
	})
	runIdentities(t, setup)
	runContent(t, setup)
	runSSO(t, setup)
	runSoftDelete(t, setup)
	runWebhooks(t, setup)
	runAccessAndEvents(t, setup)
}
