package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const mib = 1 << 20

// sizeLabel names a size in metric names: 8MiB, 256KiB.
func sizeLabel(n int64) string {
	if n%mib == 0 {
		return fmt.Sprintf("%dMiB", n/mib)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// images returns n OCI images of layers random layers of size bytes each, digests computed,
// so that what a push then measures is the transfer. The bytes come from a fresh random seed:
// a registry that already holds them would skip the upload.
func images(n, layers int, size int64) ([]v1.Image, error) {
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	src := mrand.NewChaCha8(seed)
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	out := make([]v1.Image, n)
	for i := range out {
		ls := make([]v1.Layer, layers)
		for j := range ls {
			b := make([]byte, size)
			_, _ = src.Read(b)
			ls[j] = static.NewLayer(b, types.OCILayer)
			if _, err := ls[j].Digest(); err != nil {
				return nil, err
			}
		}
		img, err := mutate.AppendLayers(base, ls...)
		if err != nil {
			return nil, err
		}
		if _, err := img.Digest(); err != nil {
			return nil, err
		}
		out[i] = img
	}
	return out, nil
}

func (r *runner) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithAuth(r.auth), remote.WithTransport(r.tr), remote.WithContext(ctx), remote.WithJobs(1)}
}

// each runs f(i) for i in [0, n) on conc workers and returns the wall time and the first error.
func each(ctx context.Context, n, conc int, f func(ctx context.Context, i int) error) (time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range min(conc, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return 0, err
	}
	return time.Since(start), nil
}

// push writes imgs as repo:0, repo:1, … with conc pushes at a time; it returns MiB/s of layers.
func (r *runner) push(ctx context.Context, repo string, imgs []v1.Image, conc int) (float64, error) {
	var bytes atomic.Int64
	d, err := each(ctx, len(imgs), conc, func(ctx context.Context, i int) error {
		ref := r.reg.Repo(r.cfg.Repository, repo).Tag(fmt.Sprint(i))
		if err := remote.Write(ref, imgs[i], r.remoteOptions(ctx)...); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		ls, _ := imgs[i].Layers()
		for _, l := range ls {
			n, _ := l.Size()
			bytes.Add(n)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return float64(bytes.Load()) / mib / d.Seconds(), nil
}

// pull reads repo:0 … repo:n-1 whole (layers verified against their digests by the client),
// conc images at a time; it returns MiB/s of layers.
func (r *runner) pull(ctx context.Context, repo string, n, conc int) (float64, error) {
	var bytes atomic.Int64
	d, err := each(ctx, n, conc, func(ctx context.Context, i int) error {
		ref := r.reg.Repo(r.cfg.Repository, repo).Tag(fmt.Sprint(i))
		img, err := remote.Image(ref, r.remoteOptions(ctx)...)
		if err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		ls, err := img.Layers()
		if err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		for _, l := range ls {
			rc, err := l.Compressed()
			if err != nil {
				return fmt.Errorf("pull %s: %w", ref, err)
			}
			c, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				return fmt.Errorf("pull %s: %w", ref, err)
			}
			bytes.Add(c)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return float64(bytes.Load()) / mib / d.Seconds(), nil
}

// pushPull pushes and pulls a fresh set of images sequentially, then another set conc at a
// time, and records the four rates under label.
func (r *runner) pushPull(ctx context.Context, res *Result, label, repo string, n, layers int, size int64) error {
	modes := []struct {
		name string
		conc int
	}{{"sequential", 1}, {fmt.Sprintf("%d concurrent", r.cfg.Concurrency), r.cfg.Concurrency}}
	for _, m := range modes {
		imgs, err := images(n, layers, size)
		if err != nil {
			return err
		}
		dst := repo + "-" + fmt.Sprint(m.conc)
		cpu := r.proc.meter()
		up, err := r.push(ctx, dst, imgs, m.conc)
		if err != nil {
			return err
		}
		if cores := cpu.cores(); cores > 0 && m.conc == 1 {
			res.add(fmt.Sprintf("push %s sequential, server CPU", label), cores, "cores", true)
		}
		imgs = nil
		down, err := r.pull(ctx, dst, n, m.conc)
		if err != nil {
			return err
		}
		res.add(fmt.Sprintf("push %s %s", label, m.name), up, "MiB/s", false)
		res.add(fmt.Sprintf("pull %s %s", label, m.name), down, "MiB/s", false)
	}
	return nil
}

func (r *runner) blobs(ctx context.Context, res *Result) error {
	c := r.cfg
	label := fmt.Sprintf("%d×%d×%s", c.Images, c.Layers, sizeLabel(c.LayerSize))
	if err := r.pushPull(ctx, res, label, "layers", c.Images, c.Layers, c.LayerSize); err != nil {
		return err
	}
	pushShare(res, label, "sha256+write limit (one core)", fmt.Sprintf("sha256+write+fsync limit, %s blobs (one core)", sizeLabel(c.LayerSize)), s3LimitName(c.LayerSize))
	return nil
}

// pushShare adds, for each of the limits measured, the sequential push of label as a share of it.
func pushShare(res *Result, label string, limits ...string) {
	push, _ := res.Get(fmt.Sprintf("push %s sequential", label))
	for _, l := range limits {
		if limit, ok := res.Get(l); ok && limit.Value > 0 && push.Value > 0 {
			short, _, _ := strings.Cut(l, " (")
			res.add(fmt.Sprintf("push %s sequential / %s", label, short), 100*push.Value/limit.Value, "%", false)
		}
	}
}

func (r *runner) big(ctx context.Context, res *Result) error {
	c := r.cfg
	label := fmt.Sprintf("%d×%s", c.BigLayers, sizeLabel(c.BigSize))
	if err := r.pushPull(ctx, res, label, "big", c.BigLayers, 1, c.BigSize); err != nil {
		return err
	}
	pushShare(res, label, s3LimitName(c.BigSize))
	return nil
}

// peak pushes PeakPushes images at once and reads the server's peak RSS over them.
func (r *runner) peak(ctx context.Context, res *Result) error {
	c := r.cfg
	imgs, err := images(c.PeakPushes, 1, c.PeakSize)
	if err != nil {
		return err
	}
	if r.proc != nil {
		if r.peakBefore, err = r.proc.status("VmHWM"); err != nil {
			return err
		}
		if err := r.proc.resetPeak(); err != nil {
			return fmt.Errorf("reset the server's peak RSS: %w", err)
		}
	}
	rate, err := r.push(ctx, "peak", imgs, c.PeakPushes)
	if err != nil {
		return err
	}
	res.add(fmt.Sprintf("push %d×%s all at once", c.PeakPushes, sizeLabel(c.PeakSize)), rate, "MiB/s", false)
	if r.proc != nil {
		hwm, err := r.proc.status("VmHWM")
		if err != nil {
			return err
		}
		res.add(fmt.Sprintf("server RSS peak, %d concurrent pushes", c.PeakPushes), hwm, "MiB", true)
	}
	return nil
}

func (r *runner) idle(res *Result) error {
	if r.proc == nil {
		r.log.Warn("idle RSS needs the server's PID (--pid)")
		return nil
	}
	rss, err := r.proc.status("VmRSS")
	if err != nil {
		return err
	}
	res.add("server RSS idle", rss, "MiB", true)
	return nil
}

// limit measures what bounds a push on this machine: the sha256 speed of one core; sha256
// while writing a file and syncing it once at the end (what any registry does with a pushed
// byte); the same but each blob of the blobs section's layer size in its own file, synced
// (what a registry that makes every blob durable before acknowledging it does); and one TCP
// stream over loopback (the copy every byte makes between client and server here).
func (r *runner) limit(res *Result) error {
	buf := make([]byte, 64*mib)
	_, _ = mrand.NewChaCha8([32]byte{1}).Read(buf)
	const rounds = 4 // 256 MiB in all
	start := time.Now()
	for range rounds {
		sha256.Sum256(buf)
	}
	res.add("sha256 (one core)", rounds*64/time.Since(start).Seconds(), "MiB/s", false)

	// Start from clean page cache state: what earlier runs left dirty is not this run's cost.
	syscall.Sync()
	rate, err := writeLimit(r.cfg.LimitDir, buf, rounds, rounds*64*mib)
	if err != nil {
		return err
	}
	res.add("sha256+write limit (one core)", rate, "MiB/s", false)
	if size := r.cfg.LayerSize; size >= mib && size <= 64*mib && size%mib == 0 {
		syscall.Sync()
		rate, err := writeLimit(r.cfg.LimitDir, buf, rounds, size)
		if err != nil {
			return err
		}
		res.add(fmt.Sprintf("sha256+write+fsync limit, %s blobs (one core)", sizeLabel(size)), rate, "MiB/s", false)
	}
	rate, err = loopback(buf, rounds)
	if err != nil {
		return err
	}
	res.add("loopback TCP copy (one stream)", rate, "MiB/s", false)
	return nil
}

// writeLimit hashes and writes rounds×buf into files of fileSize bytes, each synced when full,
// and returns MiB/s.
func writeLimit(dir string, buf []byte, rounds int, fileSize int64) (float64, error) {
	var f *os.File
	var written int64
	var h hash.Hash
	var names []string
	defer func() {
		if f != nil {
			f.Close()
		}
		for _, n := range names {
			os.Remove(n)
		}
	}()
	finish := func() error {
		if f == nil {
			return nil
		}
		h.Sum(nil)
		err := errors.Join(f.Sync(), f.Close())
		f = nil
		return err
	}
	start := time.Now()
	for range rounds {
		for off := 0; off < len(buf); off += mib {
			if f == nil {
				var err error
				if f, err = os.CreateTemp(dir, "berth-bench-limit-*"); err != nil {
					return 0, err
				}
				names = append(names, f.Name())
				h, written = sha256.New(), 0
			}
			chunk := buf[off : off+mib]
			h.Write(chunk)
			if _, err := f.Write(chunk); err != nil {
				return 0, err
			}
			if written += mib; written >= fileSize {
				if err := finish(); err != nil {
					return 0, err
				}
			}
		}
	}
	if err := finish(); err != nil {
		return 0, err
	}
	return float64(rounds*len(buf)) / mib / time.Since(start).Seconds(), nil
}

// loopback sends rounds×buf through one TCP connection on 127.0.0.1 and returns MiB/s.
func loopback(buf []byte, rounds int) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(io.Discard, c)
		got <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for range rounds {
		for off := 0; off < len(buf); off += 256 << 10 {
			if _, err := c.Write(buf[off : off+256<<10]); err != nil {
				c.Close()
				return 0, err
			}
		}
	}
	c.Close()
	if err := <-got; err != nil {
		return 0, err
	}
	return float64(rounds*len(buf)) / mib / time.Since(start).Seconds(), nil
}
