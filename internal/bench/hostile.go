package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Hostile load: how many slow-body connections and attacking sign-ins run beside the honest
// clients.
const (
	hostileSlowBodies = 300
	hostileSignins    = 64
	hostileHonest     = 8
)

// hostile measures what an attack costs the honest clients of a registry: 8 clients pull (a
// manifest and its layer) for cfg.Duration alone, then again while 300 connections send
// request bodies a byte at a time and 64 clients sign in with a wrong password as fast as they
// are answered. It records the honest p99 of both runs and their ratio, and the server's peak
// RSS during the attack.
func (r *runner) hostile(ctx context.Context, res *Result) error {
	imgs, err := images(1, 1, 64<<10)
	if err != nil {
		return err
	}
	if _, err := r.push(ctx, "hostile", imgs, 1); err != nil {
		return err
	}
	repo := r.reg.Repo(r.cfg.Repository, "hostile")
	c, err := r.client(ctx, repo.Scope(transport.PullScope))
	if err != nil {
		return err
	}
	layers, _ := imgs[0].Layers()
	ld, _ := layers[0].Digest()
	manifest := r.base() + "/v2/" + repo.RepositoryStr() + "/manifests/0"
	layer := r.base() + "/v2/" + repo.RepositoryStr() + "/blobs/" + ld.String()
	honest := func(ctx context.Context, _, i int) error {
		u := manifest
		if i%2 == 1 {
			u = layer
		}
		_, err := do(ctx, c, http.MethodGet, u, nil, http.StatusOK, "Accept", manifestAccept)
		return err
	}
	calm, err := load(ctx, hostileHonest, r.cfg.Duration, honest)
	if err != nil {
		return fmt.Errorf("without the attack: %w", err)
	}
	actx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var slowOpen, signins atomic.Int64
	host := r.reg.RegistryStr()
	for range hostileSlowBodies { // bodies that never come, reconnecting when cut
		wg.Go(func() {
			for actx.Err() == nil {
				conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(actx, "tcp", host)
				if err != nil {
					sleepCtx(actx, time.Second)
					continue
				}
				slowOpen.Add(1)
				fmt.Fprintf(conn, "POST /oauth2/token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\ng", host)
				done := make(chan struct{})
				go func() { io.Copy(io.Discard, conn); close(done) }() // the reply, or the cut
				for alive := true; alive; {
					select {
					case <-actx.Done():
						alive = false
					case <-done:
						alive = false
					case <-time.After(5 * time.Second):
						conn.Write([]byte("r")) // a byte now and then
					}
				}
				conn.Close()
				slowOpen.Add(-1)
				sleepCtx(actx, time.Second) // refused or cut: come back
			}
		})
	}
	if r.challenge == "bearer" {
		for range hostileSignins { // wrong passwords, as fast as they are answered
			wg.Go(func() {
				for i := 0; actx.Err() == nil; i++ {
					req, err := http.NewRequestWithContext(actx, http.MethodGet, r.realm+"?service="+r.service, nil)
					if err != nil {
						return
					}
					req.SetBasicAuth(fmt.Sprintf("attacker-%d", i%16), "wrong")
					resp, err := r.tr.RoundTrip(req)
					if err != nil {
						sleepCtx(actx, 100*time.Millisecond)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					signins.Add(1)
				}
			})
		}
	}
	sleepCtx(ctx, 2*time.Second) // the attack in full swing
	if r.proc != nil {
		r.proc.resetPeak()
	}
	attacked, err := load(ctx, hostileHonest, r.cfg.Duration, honest)
	open := slowOpen.Load()
	stop()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("during the attack: %w", err)
	}
	res.add("hostile: honest pulls, p99 without the attack", ms(calm.p99), "ms", true)
	res.add("hostile: honest pulls, p99 during the attack", ms(attacked.p99), "ms", true)
	res.add("hostile: p99 during / without", ms(attacked.p99)/max(ms(calm.p99), 0.001), "×", true)
	res.add("hostile: honest pulls during the attack", attacked.rate(), "req/s", false)
	res.add("hostile: slow-body connections open at the end", float64(open), "connections", false)
	res.add("hostile: attacking sign-ins answered", float64(signins.Load())/(attacked.wall.Seconds()+2), "req/s", false)
	if r.proc != nil {
		if hwm, err := r.proc.status("VmHWM"); err == nil {
			res.add("hostile: server RSS peak during the attack", hwm, "MiB", true)
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
