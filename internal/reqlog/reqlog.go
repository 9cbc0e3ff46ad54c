// Package reqlog follows each request: its correlation id (the client's or a new one), what
// the handlers learn about it (who asked, why it was refused), the access-log record and the
// metrics observation written when it ends, and recovery from a handler's panic.
package reqlog

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"
)

type correlationKey struct{}

// CorrelationID returns the request's correlation id, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

// WithCorrelationID returns ctx carrying id.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// HeaderCorrelationID is the request and response header carrying the correlation id.
const HeaderCorrelationID = "X-Correlation-Id"

// correlationEncoding keeps the byte order in the text order (0-9, then A-V).
var correlationEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// newCorrelationID returns 16 characters: the time in milliseconds (48 bits), then 32 bits from
// crypto/rand. The ids of later requests sort after earlier ones, so the event tables' indexes
// of correlation ids grow at one end, as their time indexes do: an insert or an expiry purge
// touches the few pages there, not one page anywhere in the index per row. A correlation id
// names a request for tracing; it is not unique by contract (a client may send its own).
func newCorrelationID(now time.Time) string {
	var b [10]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:])
	return correlationEncoding.EncodeToString(b[:])
}

// validClientID accepts a client-chosen correlation id of up to 128 safe characters.
func validClientID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// Info is what the handlers of a request tell the access log and the metrics about it. The
// middleware puts one in the request's context; handlers fill it in.
type Info struct {
	// Start is when the request arrived.
	Start time.Time
	// Reason is the machine-readable reason of a refusal (SetReason; httperr.Write sets it from
	// Error.Reason).
	Reason string
	// Status is the status the reply was given, once it was (0 before).
	Status   int
	identity fmt.Stringer // named only when the access log is written
	began    time.Time    // the wall clock's start (Start is the server's clock, which tests set)
}

// Identity names who made the request, once authentication knows ("" for anonymous).
func (i *Info) Identity() string {
	if i.identity == nil {
		return ""
	}
	return i.identity.String()
}

// Elapsed is how long the request has run.
func (i *Info) Elapsed() time.Duration { return time.Since(i.began) }

type infoKey struct{}

// InfoFrom returns the request's Info, or nil outside the middleware.
func InfoFrom(ctx context.Context) *Info {
	info, _ := ctx.Value(infoKey{}).(*Info)
	return info
}

// SetIdentity records who made the request, for the access log. It is formatted only if the
// line is written, so that a request pays nothing for it when the log is off.
func SetIdentity(ctx context.Context, identity fmt.Stringer) {
	if info := InfoFrom(ctx); info != nil {
		info.identity = identity
	}
}

// SetReason records the machine-readable reason of a refusal, for the access log; the first
// one set stays.
func SetReason(ctx context.Context, reason string) {
	if info := InfoFrom(ctx); info != nil && info.Reason == "" {
		info.Reason = reason
	}
}

// Name is a plain string as an identity for SetIdentity.
type Name string

func (n Name) String() string { return string(n) }

// Outcome is one finished request, as the middleware reports it to an Observer.
type Outcome struct {
	Status   int
	BytesIn  int64
	BytesOut int64
	Duration time.Duration
}

// Observer is told about each finished request (metrics).
type Observer func(r *http.Request, o Outcome)

// Middleware gives each request a correlation id (the client's, if it sent a valid one), turns
// panics into the reply of fail (a 500) when nothing was written yet, writes one access-log
// record per request and reports it to observe (which may be nil).
func Middleware(log *slog.Logger, now func() time.Time, observe Observer, fail http.Handler, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := now()
		id := r.Header.Get(HeaderCorrelationID)
		if !validClientID(id) {
			id = newCorrelationID(start)
		}
		info := &Info{Start: start, began: time.Now()}
		ctx := context.WithValue(WithCorrelationID(r.Context(), id), infoKey{}, info)
		r = r.WithContext(ctx)
		var in *countingBody
		if r.Body != nil && r.Body != http.NoBody {
			in = &countingBody{ReadCloser: r.Body}
			r.Body = in
		}
		w.Header().Set(HeaderCorrelationID, id)
		rec := &recorder{ResponseWriter: w, info: info}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(r.Context(), "panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rec.wrote {
					fail.ServeHTTP(rec, r)
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			if r.Context().Err() != nil && !rec.wrote {
				status = 499
			}
			o := Outcome{Status: status, BytesOut: rec.bytes, Duration: info.Elapsed()}
			if in != nil {
				o.BytesIn = in.n
			}
			if log.Enabled(r.Context(), slog.LevelInfo) {
				attrs := []slog.Attr{
					slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("host", r.Host),
					slog.Int("status", status), slog.Int64("bytes_in", o.BytesIn), slog.Int64("bytes_out", o.BytesOut),
					slog.Float64("duration_ms", float64(o.Duration.Microseconds())/1000),
					slog.String("remote", r.RemoteAddr), slog.String("user_agent", r.UserAgent()),
					slog.String("correlation_id", id), slog.String("identity", info.Identity()),
				}
				if info.Reason != "" {
					attrs = append(attrs, slog.String("reason", info.Reason))
				}
				log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
			}
			if observe != nil {
				observe(r, o)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

type recorder struct {
	http.ResponseWriter
	info   *Info
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(s int) {
	if !r.wrote {
		r.status, r.wrote, r.info.Status = s, true, s
	}
	r.ResponseWriter.WriteHeader(s)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.status, r.wrote, r.info.Status = http.StatusOK, true, http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ReadFrom counts what io.Copy sends through the underlying writer's own ReadFrom (to the
// connection: sendfile for a blob's file).
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if !r.wrote {
		r.status, r.wrote, r.info.Status = http.StatusOK, true, http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{r.ResponseWriter}, src)
	}
	r.bytes += n
	return n, err
}
