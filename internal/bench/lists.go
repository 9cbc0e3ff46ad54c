package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// seeder creates the repositories and tags the list pages are measured over. It sends the
// credentials Basic (every registry compared takes them on /v2/): the seeding is set-up, not
// measured.
type seeder struct {
	r        *runner
	c        *http.Client
	blob     []byte
	digest   string
	manifest []byte
}

const seedConcurrency = 16

func (r *runner) newSeeder() *seeder {
	blob := []byte("{}")
	sum := sha256.Sum256(blob)
	d := "sha256:" + hex.EncodeToString(sum[:])
	desc := func(mt string) map[string]any { return map[string]any{"mediaType": mt, "digest": d, "size": len(blob)} }
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        desc("application/vnd.oci.image.config.v1+json"),
		"layers":        []any{desc("application/vnd.oci.image.layer.v1.tar")},
	})
	return &seeder{r: r, c: &http.Client{Transport: r.tr}, blob: blob, digest: d, manifest: m}
}

func (s *seeder) send(ctx context.Context, method, path string, body []byte, hdr ...string) (*http.Response, error) {
	u := path
	if !strings.HasPrefix(u, "http") {
		u = s.r.base() + path
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if s.r.cfg.Username != "" {
		req.SetBasicAuth(s.r.cfg.Username, s.r.cfg.Password)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.c.Do(req)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *seeder) expect(ctx context.Context, want int, method, path string, body []byte, hdr ...string) (*http.Response, error) {
	resp, err := s.send(ctx, method, path, body, hdr...)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return nil, errStatus(method+" "+path, resp)
	}
	return resp, nil
}

// exists reports whether repo:tag is there.
func (s *seeder) exists(ctx context.Context, repo, tag string) bool {
	resp, err := s.send(ctx, http.MethodHead, "/v2/"+repo+"/manifests/"+tag, nil, "Accept", manifestAccept)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// upload puts the blob into repo: mounted from the seed repository, or uploaded when the
// registry does not mount.
func (s *seeder) upload(ctx context.Context, repo, from string) error {
	path := "/v2/" + repo + "/blobs/uploads/"
	if from != "" {
		path += "?mount=" + s.digest + "&from=" + url.QueryEscape(from)
	}
	resp, err := s.send(ctx, http.MethodPost, path, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return nil
	case http.StatusAccepted:
	default:
		return errStatus("POST "+path, resp)
	}
	loc, err := resp.Location()
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	q := loc.Query()
	q.Set("digest", s.digest)
	loc.RawQuery = q.Encode()
	_, err = s.expect(ctx, http.StatusCreated, http.MethodPut, loc.String(), s.blob, "Content-Type", "application/octet-stream")
	return err
}

func (s *seeder) tag(ctx context.Context, repo, tag string) error {
	_, err := s.expect(ctx, http.StatusCreated, http.MethodPut, "/v2/"+repo+"/manifests/"+tag, s.manifest,
		"Content-Type", "application/vnd.oci.image.manifest.v1+json")
	return err
}

func (r *runner) repoName(i int) string { return fmt.Sprintf("%s/cat/r%06d", r.cfg.Repository, i) }
func tagName(i int) string              { return fmt.Sprintf("t%06d", i) }

// seed creates cfg.Repos repositories and cfg.Tags tags of one repository, unless an earlier
// run did.
func (r *runner) seed(ctx context.Context) error {
	s := r.newSeeder()
	src, tagged := r.cfg.Repository+"/seed", r.cfg.Repository+"/tagged"
	if err := s.upload(ctx, src, ""); err != nil {
		return err
	}
	if !s.exists(ctx, r.repoName(r.cfg.Repos-1), "latest") {
		r.log.Info("creating repositories", "count", r.cfg.Repos)
		if _, err := each(ctx, r.cfg.Repos, seedConcurrency, func(ctx context.Context, i int) error {
			if err := s.upload(ctx, r.repoName(i), src); err != nil {
				return err
			}
			return s.tag(ctx, r.repoName(i), "latest")
		}); err != nil {
			return err
		}
	}
	if !s.exists(ctx, tagged, tagName(r.cfg.Tags-1)) {
		r.log.Info("creating tags", "count", r.cfg.Tags)
		if err := s.upload(ctx, tagged, src); err != nil {
			return err
		}
		if _, err := each(ctx, r.cfg.Tags, seedConcurrency, func(ctx context.Context, i int) error {
			return s.tag(ctx, tagged, tagName(i))
		}); err != nil {
			return err
		}
	}
	return nil
}

// lists measures a page of the catalog and of a tag list, starting after a random entry, one
// client at a time (the latency of one page is the figure).
func (r *runner) lists(ctx context.Context, res *Result) error {
	if r.cfg.Repos < 1 || r.cfg.Tags < 1 {
		return fmt.Errorf("lists need at least one repository and one tag")
	}
	if err := r.seed(ctx); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	tagged := r.reg.Repo(r.cfg.Repository, "tagged")
	n := r.cfg.PageSize
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, l := range []struct {
		what  string
		scope string
		url   func() string
		key   string
	}{
		{fmt.Sprintf("catalog page (n=%d, %d repositories)", n, r.cfg.Repos), "registry:catalog:*", func() string {
			return fmt.Sprintf("%s/v2/_catalog?n=%d&last=%s", r.base(), n, url.QueryEscape(r.repoName(rnd.IntN(r.cfg.Repos))))
		}, "repositories"},
		{fmt.Sprintf("tag list page (n=%d, %d tags)", n, r.cfg.Tags), tagged.Scope(transport.PullScope), func() string {
			return fmt.Sprintf("%s/v2/%s/tags/list?n=%d&last=%s", r.base(), tagged.RepositoryStr(), n, tagName(rnd.IntN(r.cfg.Tags)))
		}, "tags"},
	} {
		c, err := r.client(ctx, l.scope)
		if err != nil {
			return err
		}
		lat, err := load(ctx, 1, r.cfg.Duration, func(ctx context.Context, _, _ int) error {
			body, err := do(ctx, c, http.MethodGet, l.url(), nil, http.StatusOK)
			if err != nil {
				return err
			}
			var page map[string]json.RawMessage
			if err := json.Unmarshal(body, &page); err != nil || page[l.key] == nil {
				return fmt.Errorf("%s: the page has no %q: %.200s", l.what, l.key, body)
			}
			return nil
		})
		if err != nil {
			return err
		}
		res.add(l.what+", p50", ms(lat.p50), "ms", true)
		res.add(l.what+", p99", ms(lat.p99), "ms", true)
	}
	return nil
}
