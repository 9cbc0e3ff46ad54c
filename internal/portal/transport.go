package portal

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/netip"

	"github.com/berth-registry/berth/internal/authn"
)

// The portal is a client of berth's own APIs, like the CLI: each of its calls is a request to the
// server's handler (the management API, the token endpoints, /v2/ and /acr/v1/) made in
// process, with the signed-in user's token and the browser's address, so that the same checks,
// limits, events and access log apply.

type originKey struct{}

// origin is what the API should know of the browser a portal request came from.
type origin struct {
	ip        netip.Addr
	remote    string
	userAgent string
}

func withOrigin(ctx context.Context, r *http.Request) context.Context {
	ua := r.UserAgent()
	if len(ua) > 200 {
		ua = ua[:200]
	}
	return context.WithValue(ctx, originKey{}, origin{ip: authn.ClientAddr(r), remote: r.RemoteAddr, userAgent: "berth-portal (" + ua + ")"})
}

// maxReply bounds what one API reply may hold in memory (the client reads at most 32 MiB).
const maxReply = 32 << 20

// inProcess sends requests to the API's handler without a socket.
type inProcess struct{ api http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	o, _ := req.Context().Value(originKey{}).(origin)
	ctx := req.Context()
	if o.ip.IsValid() {
		ctx = authn.WithClientIP(ctx, o.ip)
	}
	in := req.Clone(ctx)
	in.Host = req.URL.Host
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = o.remote
	if in.RemoteAddr == "" {
		in.RemoteAddr = "127.0.0.1:0"
	}
	if o.userAgent != "" {
		in.Header.Set("User-Agent", o.userAgent)
	}
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := &recorder{header: http.Header{}}
	t.api.ServeHTTP(rec, in)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status: http.StatusText(rec.status), StatusCode: rec.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())), ContentLength: int64(rec.body.Len()), Request: req,
	}, nil
}

// recorder keeps a reply in memory, bounded.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if r.body.Len()+len(b) > maxReply {
		return 0, io.ErrShortWrite
	}
	return r.body.Write(b)
}
