package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/httperr"
)

// The deadlines' own rules, around handlers of the test's (TestSlowBodiesCannotHoldTheServer
// and TestStalledDownloadEnds drive them through berth's routes): each is what a mutation run
// found unchecked.

const (
	testBodyIdle  = 600 * time.Millisecond
	testWriteIdle = 300 * time.Millisecond
	testMinRate   = 1000 // bytes a second
)

// deadlineServer serves mux behind the deadlines, on a socket, as berth's server does (its
// header and idle timeouts).
func deadlineServer(t *testing.T, mux http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(deadlines{bodyIdle: testBodyIdle, writeIdle: testWriteIdle, minRate: testMinRate}.wrap(mux))
	srv.Config.ReadHeaderTimeout, srv.Config.IdleTimeout = 10*time.Second, 2*time.Minute
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// reply reads one response from r: its status and body ("" and an error if none came).
func reply(c net.Conn, r *bufio.Reader) (int, string, error) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestDeadlinesBetweenRequests: a keep-alive connection's next request gets a fresh write
// deadline (a head flushed before any Write goes out), and the reply a handler leaves in the buffer is flushed under a fresh one too, however
// long the handler worked after its last write.
func TestDeadlinesBetweenRequests(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/quick", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/flushed", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK) // the head goes out before any Write of the handler
		http.NewResponseController(w).Flush()
		io.WriteString(w, "after the head")
	})
	mux.HandleFunc("/late", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "written early") // buffered: it goes out when the handler returns
		time.Sleep(2 * testWriteIdle)
	})
	addr := deadlineServer(t, mux)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for i, path := range []string{"/quick", "/flushed", "/quick", "/late"} {
		if i > 0 {
			time.Sleep(2 * testWriteIdle) // the connection idles longer than a write may take
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		st, body, err := reply(c, r)
		want, wantBody := map[string]int{"/quick": 204, "/flushed": 200, "/late": 200}[path], map[string]string{"/flushed": "after the head", "/late": "written early"}[path]
		if err != nil || st != want || body != wantBody {
			t.Fatalf("request %d (%s) on one connection: %d %q %v", i+1, path, st, body, err)
		}
	}
}

// TestBodyReadWhole: once a body is read to its end, no read deadline is left on the connection
// (net/http reads it in the background, and a deadline there would cancel the request), even
// when the handler reads again after the end and then works longer than the idle timeout.
func TestBodyReadWhole(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if _, err := r.Body.Read(make([]byte, 8)); err != io.EOF {
			http.Error(w, fmt.Sprintf("a read after the end: %v", err), 500)
			return
		}
		time.Sleep(2 * testBodyIdle)
		if err := r.Context().Err(); err != nil {
			http.Error(w, "the request was cancelled: "+err.Error(), 500)
			return
		}
		w.Write(b)
	})
	addr := deadlineServer(t, mux)
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("the body"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "the body" {
		t.Errorf("%d %q", resp.StatusCode, b)
	}
}

// rateOf reads the number that starts s ("950 bytes a second…"), -1 if none.
func rateOf(s string) int {
	f, _, _ := strings.Cut(s, " ")
	n, err := strconv.Atoi(f)
	if err != nil {
		return -1
	}
	return n
}

// TestBodyPace: a body is judged by its average only after the idle timeout (one that starts
// slowly is not cut in its first moments), then by its bytes per second (a burst first does not
// buy a trickle after it); a body that fails otherwise (the client goes away) is not called slow.
func TestBodyPace(t *testing.T) {
	t.Parallel()
	type result struct {
		n   int
		err error
		at  time.Time
	}
	got := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		got <- result{len(b), err, time.Now()}
		if err != nil {
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	addr := deadlineServer(t, mux)
	reasonOf := func(err error) string {
		var he *httperr.Error
		if errors.As(err, &he) {
			return he.Reason
		}
		return ""
	}
	// send writes the request's head announcing size bytes, then each part after its pause;
	// closeAfter > 0 closes the connection that long after the last part.
	send := func(size int, parts []string, pauses []time.Duration, closeAfter time.Duration) result {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
		for i, p := range parts {
			time.Sleep(pauses[i])
			c.Write([]byte(p))
		}
		if closeAfter > 0 {
			time.Sleep(closeAfter)
			c.Close()
		}
		select {
		case r := <-got:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("the handler never finished reading")
			return result{}
		}
	}

	// Two bytes 400 ms apart: far under the minimum rate, but within the first idle timeout.
	if r := send(2, []string{"a", "b"}, []time.Duration{0, 400 * time.Millisecond}, 0); r.err != nil || r.n != 2 {
		t.Errorf("a slow start within the idle timeout: %d bytes, %v", r.n, r.err)
	}
	// 2 300 bytes at once, then a byte every 100 ms for 4 s (reads never idle for long): some
	// 2.3 s in, the average falls under 1 000 bytes a second.
	parts, pauses := []string{strings.Repeat("x", 2300)}, []time.Duration{0}
	for range 40 {
		parts, pauses = append(parts, "y"), append(pauses, 100*time.Millisecond)
	}
	start := time.Now()
	r := send(2300+40, parts, pauses, 0)
	if reasonOf(r.err) != "body_too_slow" {
		t.Errorf("a burst, then a trickle: %d bytes, %v; want body_too_slow", r.n, r.err)
	} else if _, rest, _ := strings.Cut(r.err.Error(), "came at "); rateOf(rest) >= testMinRate || rateOf(rest) < 500 {
		t.Errorf("the refusal names %q bytes a second, want the body's average (under 1 000): %v", rest, r.err)
	}
	if el := r.at.Sub(start); el < 2*time.Second || el > 3500*time.Millisecond {
		t.Errorf("the trickle was cut after %s, want about 2.3 s", el)
	}
	// A byte, another 300 ms later, then the client goes away 400 ms after that, past the idle
	// timeout since the start but not since the last read began: an unexpected end, neither a
	// slow nor an idle body.
	r = send(10, []string{"a", "b"}, []time.Duration{0, 300 * time.Millisecond}, 400*time.Millisecond)
	if r.err == nil || reasonOf(r.err) != "" {
		t.Errorf("a client gone mid-body: %v (reason %q); want its own error, no reason", r.err, reasonOf(r.err))
	}
}

// TestWritesEachGetTheirTime: a reply written in many Writes to a client that keeps reading
// gets it whole however long it takes in all: each Write gets its own write-idle deadline.
func TestWritesEachGetTheirTime(t *testing.T) {
	t.Parallel()
	const pieces, piece = 96, 256 << 10 // 24 MiB
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, piece)
		for range pieces {
			if _, err := w.Write(b); err != nil {
				return
			}
		}
	})
	addr := deadlineServer(t, mux)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n int64
	for err == nil { // 1 MiB every 50 ms: 1.2 s in all, four times the write-idle timeout
		var m int64
		m, err = io.CopyN(io.Discard, resp.Body, 1<<20)
		n += m
		time.Sleep(50 * time.Millisecond)
	}
	if err != io.EOF || n != pieces*piece {
		t.Errorf("a reading client got %d of %d bytes (%v)", n, pieces*piece, err)
	}
}

// fromSink is a ResponseWriter with a ReadFrom of its own, as net/http's is (sendfile when it
// gets a file, or a file in one io.LimitedReader); it notes what each ReadFrom got.
type fromSink struct {
	h     http.Header
	body  bytes.Buffer
	froms []string // per ReadFrom: "file" (sendfile would do) or "other"
}

func (s *fromSink) Header() http.Header         { return s.h }
func (s *fromSink) WriteHeader(int)             {}
func (s *fromSink) Write(p []byte) (int, error) { return s.body.Write(p) }
func (s *fromSink) ReadFrom(r io.Reader) (int64, error) {
	kind := "other"
	if lr, ok := r.(*io.LimitedReader); ok {
		if _, ok := lr.R.(*os.File); ok {
			kind = "file"
		}
	} else if _, ok := r.(*os.File); ok {
		kind = "file"
	}
	s.froms = append(s.froms, kind)
	return s.body.ReadFrom(r)
}

// plainSink has no ReadFrom.
type plainSink struct{ fromSink }

func (s *plainSink) ReadFrom() {} // not io.ReaderFrom's: hides the embedded one

// TestReadFromPieces: a file (alone or in an io.LimitedReader) goes to the connection's own
// ReadFrom in pieces of sendChunk, never more than the caller's limit, which is left at what
// was not sent; anything else, or a connection without ReadFrom, goes through Write.
func TestReadFromPieces(t *testing.T) {
	const size = 600 << 10 // two pieces and a part
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	open := func() *os.File {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	file := func() io.Reader { return open() }
	for _, tc := range []struct {
		name  string
		src   func() io.Reader
		limit int64 // > -1: src in an io.LimitedReader of this many bytes
		plain bool  // the connection has no ReadFrom
		want  int   // bytes sent
		froms string
		left  int64 // what the caller's io.LimitedReader has left
	}{
		{"a file", file, -1, false, size, "file file file", 0},
		{"a file, limited", file, 300 << 10, false, 300 << 10, "file file", 0},
		{"a file, limited beyond its end", file, size + 10, false, size, "file file file", 10},
		{"a file, limited to nothing", file, 0, false, 0, "", 0},
		{"not a file", func() io.Reader { return bytes.NewReader(data) }, -1, false, size, "", 0},
		{"no ReadFrom", file, -1, true, size, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src()
			var lr *io.LimitedReader
			if tc.limit > -1 {
				lr = &io.LimitedReader{R: src, N: tc.limit}
				src = lr
			}
			sink := &fromSink{h: http.Header{}}
			var w http.ResponseWriter = sink
			if tc.plain {
				w = &plainSink{fromSink: fromSink{h: http.Header{}}}
			}
			wd := &writeDeadline{ResponseWriter: w, rc: http.NewResponseController(w), idle: time.Second}
			done := make(chan struct{})
			var n int64
			var err error
			go func() { n, err = wd.ReadFrom(src); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("ReadFrom did not return")
			}
			got := sink
			if tc.plain {
				got = &w.(*plainSink).fromSink
			}
			if err != nil || n != int64(tc.want) || got.body.Len() != tc.want || !bytes.Equal(got.body.Bytes(), data[:tc.want]) {
				t.Errorf("sent %d (%v), %d bytes arrived; want %d", n, err, got.body.Len(), tc.want)
			}
			if froms := strings.Join(got.froms, " "); froms != tc.froms {
				t.Errorf("the connection's ReadFrom got %q, want %q", froms, tc.froms)
			}
			if lr != nil && lr.N != tc.left {
				t.Errorf("the caller's limit left at %d, want %d", lr.N, tc.left)
			}
		})
	}
}
