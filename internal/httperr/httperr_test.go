package httperr

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
)

type sqlErr string

func (e sqlErr) Error() string    { return "sql: " + string(e) }
func (e sqlErr) SQLState() string { return string(e) }

// unsent is a driver's error for work it never sent (pgx's "conn closed").
type unsent bool

func (e unsent) Error() string     { return "conn closed" }
func (e unsent) SafeToRetry() bool { return bool(e) }

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("a bug"), false},
		{fmt.Errorf("store: upload: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true},
		{fmt.Errorf("store: %w", driver.ErrBadConn), true},
		{fmt.Errorf("s3: %w", syscall.ECONNRESET), true},
		{fmt.Errorf("store: %w", io.ErrUnexpectedEOF), true}, // a connection cut mid-reply
		{fmt.Errorf("store: %w", sqlErr("57P01")), true},     // admin_shutdown
		{fmt.Errorf("store: %w", sqlErr("08006")), true},     // connection_failure
		{fmt.Errorf("store: %w", sqlErr("53300")), true},     // too_many_connections
		{fmt.Errorf("store: %w", sqlErr("53200")), true},     // out_of_memory
		{fmt.Errorf("store: %w", sqlErr("23505")), false},    // unique_violation: berth's to handle
		{fmt.Errorf("store: %w", sqlErr("42P01")), false},    // undefined_table: a bug
		{fmt.Errorf("store: link blob: %w", errors.Join(unsent(true), nil)), true},
		{fmt.Errorf("store: %w", unsent(false)), false},
	} {
		if got := Unavailable(tc.err); got != tc.want {
			t.Errorf("Unavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	// Written, an outage is a 503 with Retry-After that names no driver; a bug stays a 500.
	for _, tc := range []struct {
		err    error
		status int
	}{{fmt.Errorf("pgx: %w", sqlErr("57P01")), 503}, {errors.New("nil map"), 500}} {
		w := httptest.NewRecorder()
		Write(w, httptest.NewRequest("GET", "/v2/", nil), slog.New(slog.DiscardHandler), tc.err)
		if w.Code != tc.status || (tc.status == 503) != (w.Header().Get("Retry-After") != "") || strings.Contains(w.Body.String(), "pgx") {
			t.Errorf("%v: %d %v %s", tc.err, w.Code, w.Header(), w.Body.String())
		}
	}
}
