// Package httperr is berth's error boundary for HTTP: the Error type handlers return and the OCI
// error envelope it is written as, with the request's correlation id (package reqlog keeps the
// ids, the access log and panic recovery).
package httperr

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/reqlog"
)

// Error is an error a handler answers with. Message and Detail go to the client; Err only to
// the log.
type Error struct {
	Status  int
	Code    oci.ErrorCode
	Message string
	Detail  any
	Header  http.Header
	Err     error
	// Reason is a machine-readable cause for events and metrics (ip_denied, bad_password, …);
	// it is not sent.
	Reason string
}

var _ error = (*Error)(nil)

// New returns an error with the code's usual status.
func New(code oci.ErrorCode, format string, args ...any) *Error {
	return &Error{Status: code.Status(), Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// WithStatus returns e answering with another status.
func (e *Error) WithStatus(status int) *Error { e.Status = status; return e }

// WithDetail returns e carrying detail for the client.
func (e *Error) WithDetail(d any) *Error { e.Detail = d; return e }

// WithHeader returns e setting a response header.
func (e *Error) WithHeader(k, v string) *Error {
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Set(k, v)
	return e
}

// WithReason returns e carrying a machine-readable reason for events and metrics.
func (e *Error) WithReason(reason string) *Error { e.Reason = reason; return e }

// Wrap returns e recording cause for the log.
func (e *Error) Wrap(cause error) *Error { e.Err = cause; return e }

type envelope struct {
	Errors []item `json:"errors"`
}

type item struct {
	Code    oci.ErrorCode `json:"code"`
	Message string        `json:"message"`
	Detail  any           `json:"detail,omitempty"`
}

// Write answers with err as an OCI error envelope. An error that is not an *Error is a fault of
// berth's: it is logged, and the client gets a 500. Every message ends with the request's
// correlation id, so that the text a user pastes finds the events and log lines of the request.
func Write(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			return // the client went away; nobody to answer
		}
		if Unavailable(err) {
			log.ErrorContext(r.Context(), "a service berth depends on is unreachable", "err", err, "method", r.Method, "path", r.URL.Path)
			e = New(CodeUnavailable, "the registry cannot reach its database or storage right now: retry in a few seconds").
				WithStatus(http.StatusServiceUnavailable).WithHeader("Retry-After", "5").WithReason("dependency_unavailable")
		} else {
			log.ErrorContext(r.Context(), "internal error", "err", err, "method", r.Method, "path", r.URL.Path)
			e = New(oci.CodeUnknown, "internal server error: give the operator the correlation id")
		}
	} else if e.Status >= 500 {
		log.ErrorContext(r.Context(), "server error", "err", e, "method", r.Method, "path", r.URL.Path)
	} else if e.Err != nil {
		log.DebugContext(r.Context(), "request refused", "err", e, "method", r.Method, "path", r.URL.Path)
	}
	for k, vs := range e.Header {
		w.Header()[k] = vs
	}
	reqlog.SetReason(r.Context(), e.Reason)
	body, _ := json.Marshal(envelope{Errors: []item{{Code: e.Code, Message: WithCorrelation(e.Message, reqlog.CorrelationID(r.Context())), Detail: e.Detail}}})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Del("Docker-Content-Digest")
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// HandlerFunc is an http handler that returns its error instead of writing it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adapts h to http.Handler, writing any error it returns.
func Handle(log *slog.Logger, h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			Write(w, r, log, err)
		}
	})
}

// WithCorrelation appends the correlation id to a message for a client: "…; correlation id: ID".
func WithCorrelation(msg, id string) string {
	if id == "" || strings.HasSuffix(msg, id) {
		return msg
	}
	return msg + "; correlation id: " + id
}

// CodeUnavailable answers a request that met an outage of the database or the blob storage.
const CodeUnavailable oci.ErrorCode = "UNAVAILABLE"

// Unavailable reports whether err is an outage of something berth depends on rather than a
// fault of berth's: the network to it (refused, reset, cut mid-reply, timed out), a connection
// the database driver gave up, or a database that refuses work for now (SQLSTATE classes 08, connection
// exceptions; 53, insufficient resources such as too many connections; and 57, operator
// intervention such as a shutdown), or work the driver never sent because its connection was
// gone (SafeToRetry). Drivers are recognised by
// their errors' methods, so this package imports none.
func Unavailable(err error) bool {
	var ne net.Error
	var state interface{ SQLState() string }
	var unsent interface{ SafeToRetry() bool }
	switch {
	case err == nil:
		return false
	case errors.As(err, &ne), errors.Is(err, driver.ErrBadConn), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF):
		// (A client's body that ends early is answered by its handler before it gets here: an
		// unexpected end that reaches Write is a connection to a dependency cut mid-reply.)
		return true
	case errors.As(err, &unsent) && unsent.SafeToRetry():
		// The driver never sent the work: its connection was already gone (pgx's "conn closed",
		// met inside a transaction, where database/sql cannot take another connection).
		return true
	case errors.As(err, &state):
		c := state.SQLState()
		return strings.HasPrefix(c, "08") || strings.HasPrefix(c, "53") || strings.HasPrefix(c, "57")
	}
	return false
}
