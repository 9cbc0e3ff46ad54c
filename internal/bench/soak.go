package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// soak runs mixed load for cfg.Duration — pushes, pulls, manifest HEADs, token requests,
// anonymous requests and a slow client — and records every failed request and the server's RSS
// over time: what must stay at zero errors and flat memory for hours.
func (r *runner) soak(ctx context.Context, res *Result) error {
	base, err := images(1, 2, 64<<10)
	if err != nil {
		return err
	}
	if _, err := r.push(ctx, "soak-base", base, 1); err != nil {
		return err
	}
	repo := r.reg.Repo(r.cfg.Repository, "soak-base")
	c, err := r.client(ctx, repo.Scope(transport.PullScope))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	var requests, failures atomic.Int64
	var mu sync.Mutex
	var firstErrs []string
	fail := func(what string, err error) {
		if ctx.Err() != nil {
			return // the soak ended mid-request
		}
		failures.Add(1)
		mu.Lock()
		if len(firstErrs) < 10 {
			firstErrs = append(firstErrs, what+": "+err.Error())
		}
		mu.Unlock()
	}
	worker := func(what string, pause time.Duration, f func(i int) error) func() {
		return func() {
			for i := 0; ctx.Err() == nil; i++ {
				requests.Add(1)
				if err := f(i); err != nil {
					fail(what, err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		}
	}
	manifest := r.base() + "/v2/" + repo.RepositoryStr() + "/manifests/0"
	var wg sync.WaitGroup
	for w := range 2 { // pushes of fresh images
		wg.Go(worker("push", 50*time.Millisecond, func(i int) error {
			imgs, err := images(1, 2, 32<<10)
			if err != nil {
				return err
			}
			ref := r.reg.Repo(r.cfg.Repository, fmt.Sprintf("soak-push-%d", w)).Tag(fmt.Sprint(i % 50))
			return remote.Write(ref, imgs[0], r.remoteOptions(ctx)...)
		}))
	}
	for range 2 { // pulls, layers read whole
		wg.Go(worker("pull", 20*time.Millisecond, func(int) error {
			_, err := r.pull(ctx, "soak-base", 1, 1)
			return err
		}))
	}
	for range 4 { // manifest HEADs with a bearer token
		wg.Go(worker("manifest HEAD", 0, func(int) error {
			_, err := do(ctx, c, http.MethodHead, manifest, nil, http.StatusOK, "Accept", manifestAccept)
			return err
		}))
	}
	if r.challenge == "bearer" { // token requests, as every CI job's first step
		wg.Go(worker("token", 50*time.Millisecond, func(int) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.realm+"?service="+r.service+"&scope="+repo.Scope(transport.PullScope), nil)
			if err != nil {
				return err
			}
			req.SetBasicAuth(r.cfg.Username, r.cfg.Password)
			_, err = r.token(&http.Client{Transport: r.tr}, req)
			return err
		}))
	}
	wg.Go(worker("anonymous", 20*time.Millisecond, func(int) error { // a client without credentials
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, manifest, nil)
		if err != nil {
			return err
		}
		resp, err := r.tr.RoundTrip(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	}))
	wg.Go(worker("slow push", 100*time.Millisecond, func(i int) error { // a slow (64 KiB/s) but honest client
		imgs, err := images(1, 1, 96<<10)
		if err != nil {
			return err
		}
		ref := r.reg.Repo(r.cfg.Repository, "soak-slow").Tag(fmt.Sprint(i % 10))
		slow := &throttled{rt: r.tr, rate: 64 << 10}
		return remote.Write(ref, imgs[0], remote.WithAuth(r.auth), remote.WithTransport(slow), remote.WithContext(ctx))
	}))
	// The server's memory, every few seconds; the first fifth of the run is warm-up.
	var rss []float64
	every := max(r.cfg.Duration/30, time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
sample:
	for {
		select {
		case <-ctx.Done():
			break sample
		case <-tick.C:
			if r.proc != nil {
				if v, err := r.proc.status("VmRSS"); err == nil {
					rss = append(rss, v)
					r.log.Info("soak", "requests", requests.Load(), "failures", failures.Load(), "rss_mib", v)
				}
			}
		}
	}
	wg.Wait()
	res.add("soak requests", float64(requests.Load()), "requests", false)
	res.add("soak failed requests", float64(failures.Load()), "requests", true)
	if len(rss) >= 10 {
		// After warm-up: the highest sample of the run's second to fifth tenths; at the end: the
		// median of the last three. A leak grows past the first; heap settling does not.
		warm := slices.Max(rss[len(rss)/5 : len(rss)/2])
		last := slices.Clone(rss[len(rss)-3:])
		slices.Sort(last)
		end := last[1]
		res.add("soak server RSS after warm-up", warm, "MiB", true)
		res.add("soak server RSS at the end", end, "MiB", true)
		res.add("soak server RSS growth", 100*(end-warm)/warm, "%", true)
	}
	if n := failures.Load(); n > 0 {
		return fmt.Errorf("%d of %d requests failed; the first: %s", n, requests.Load(), strings.Join(firstErrs, "; "))
	}
	return nil
}

// throttled sends request bodies at rate bytes a second, as a client on a slow link.
type throttled struct {
	rt   http.RoundTripper
	rate int
}

func (t *throttled) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = &slowReader{rc: req.Body, rate: t.rate, start: time.Now()}
	}
	return t.rt.RoundTrip(req)
}

type slowReader struct {
	rc    io.ReadCloser
	rate  int
	start time.Time
	n     int
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(p) > s.rate/10 {
		p = p[:s.rate/10]
	}
	if ahead := time.Duration(float64(s.n)/float64(s.rate)*float64(time.Second)) - time.Since(s.start); ahead > 0 {
		time.Sleep(ahead)
	}
	n, err := s.rc.Read(p)
	s.n += n
	return n, err
}

func (s *slowReader) Close() error { return s.rc.Close() }
