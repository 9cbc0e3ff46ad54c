package server

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
)

// CodeRequestTimeout answers a request whose body stopped coming.
const CodeRequestTimeout oci.ErrorCode = "REQUEST_TIMEOUT"

// deadlines bound how long a client may hold a request without sending its body or reading its
// reply: every read of a body must bring bytes within bodyIdle, and after bodyIdle the body must
// average minRate bytes a second; every write of a reply must be taken within writeIdle. A slow
// client is cut off; a fast one never notices, however large its body or reply.
type deadlines struct {
	bodyIdle, writeIdle time.Duration
	minRate             int64
}

func (d deadlines) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// The reply's first bytes (a head flushed before any Write) get the time a Write gets
		// (net/http leaves a connection without a write deadline between requests).
		rc.SetWriteDeadline(time.Now().Add(d.writeIdle))
		var body *slowBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &slowBody{ReadCloser: r.Body, rc: rc, d: d, start: time.Now()}
			r.Body = body
		}
		next.ServeHTTP(&writeDeadline{ResponseWriter: w, rc: rc, idle: d.writeIdle}, r)
		// net/http flushes the reply after the handler: give it the time a write gets. A body
		// left unread is first read and thrown away (up to 256 KiB, so that the connection can
		// serve another request; a client still sending gets its reply after that): a stalled
		// one for bodyIdle at most, then the connection is closed.
		rc.SetWriteDeadline(time.Now().Add(d.writeIdle))
		if body != nil && !body.done {
			rc.SetReadDeadline(time.Now().Add(d.bodyIdle))
		}
	})
}

type slowBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	d     deadlines
	start time.Time
	n     int64
	done  bool
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	b.rc.SetReadDeadline(time.Now().Add(b.d.bodyIdle))
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		// The whole body is in: net/http reads the connection in the background from now on,
		// and a deadline there would cancel the request (net/http clears it too, as it starts).
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	case err != nil && isTimeout(err):
		return n, httperr.New(CodeRequestTimeout, "the request body sent nothing for %s: the request is ended", b.d.bodyIdle).
			WithStatus(http.StatusRequestTimeout).WithReason("body_timeout").Wrap(err)
	case err == nil && b.d.minRate > 0:
		if el := time.Since(b.start); el > b.d.bodyIdle && float64(b.n)/el.Seconds() < float64(b.d.minRate) {
			return n, httperr.New(CodeRequestTimeout, "the request body came at %.0f bytes a second, under the %d the server needs: the request is ended",
				float64(b.n)/el.Seconds(), b.d.minRate).WithStatus(http.StatusRequestTimeout).WithReason("body_too_slow")
		}
	}
	return n, err
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

type writeDeadline struct {
	http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
}

func (w *writeDeadline) Write(p []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.idle))
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *writeDeadline) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// sendChunk is what ReadFrom sends under one write deadline: as much as a Write of the
// handlers' copy buffer, so that a slow client gets the same time for the same bytes.
const sendChunk = 256 << 10

// ReadFrom sends a file (a blob's, maybe in an io.LimitedReader) through the connection's own
// ReadFrom — sendfile: no copy through the process — in pieces of sendChunk, each with the
// deadline a Write gets; anything else through Write, sendChunk at a time.
func (w *writeDeadline) ReadFrom(src io.Reader) (int64, error) {
	// The connection uses sendfile when it gets the file itself, or the file in one
	// io.LimitedReader: unwrap the caller's limit rather than nest another.
	r, limit := src, int64(-1)
	lr, limited := src.(*io.LimitedReader)
	if limited {
		r, limit = lr.R, max(lr.N, 0)
	}
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if _, file := r.(*os.File); !ok || !file {
		buf := sendBuffers.Get().(*[]byte)
		defer sendBuffers.Put(buf)
		return io.CopyBuffer(writerOnly{w}, src, *buf)
	}
	var n int64
	for limit != 0 {
		chunk := int64(sendChunk)
		if limit > 0 {
			chunk = min(chunk, limit)
		}
		w.rc.SetWriteDeadline(time.Now().Add(w.idle))
		m, err := rf.ReadFrom(&io.LimitedReader{R: r, N: chunk})
		n += m
		if limited {
			limit -= m
			lr.N = limit
		}
		if err != nil || m < chunk {
			return n, err
		}
	}
	return n, nil
}

// writerOnly hides a writer's other methods (its ReadFrom, from io.Copy).
type writerOnly struct{ io.Writer }

var sendBuffers = sync.Pool{New: func() any { b := make([]byte, sendChunk); return &b }}

// anonymousLimit bounds the requests without credentials that one client address has in flight
// (health checks aside): an address without credentials cannot hold more than max of the
// server's connections and handlers, whatever it sends.
type anonymousLimit struct {
	max int
	log *slog.Logger
	mu  sync.Mutex
	in  map[string]int
}

func (l *anonymousLimit) wrap(next http.Handler) http.Handler {
	l.in = map[string]int{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		ip := authn.ClientIP(r)
		l.mu.Lock()
		if l.in[ip] >= l.max {
			l.mu.Unlock()
			httperr.Write(w, r, l.log, httperr.New(oci.CodeTooManyRequests,
				"too many requests without credentials from %s at once (limits.max_anonymous_per_address is %d): sign in, or wait for the others", ip, l.max).
				WithStatus(http.StatusTooManyRequests).WithHeader("Retry-After", "1").WithReason("anonymous_limit"))
			return
		}
		l.in[ip]++
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			if l.in[ip]--; l.in[ip] == 0 {
				delete(l.in, ip)
			}
			l.mu.Unlock()
		}()
		next.ServeHTTP(w, r)
	})
}
