package reqlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/reqlog"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestMiddleware: over a socket, every request gets a correlation id (a valid one of the
// client's is kept), one access-log record with who asked and why it was refused, and an
// observation; a panic is answered by fail (once nothing was written) and logged.
func TestMiddleware(t *testing.T) {
	var logged syncBuffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	var mu sync.Mutex
	var seen []reqlog.Outcome
	observe := func(r *http.Request, o reqlog.Outcome) { mu.Lock(); seen = append(seen, o); mu.Unlock() }
	fail := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "failed "+reqlog.CorrelationID(r.Context()))
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqlog.SetIdentity(r.Context(), reqlog.Name("alice"))
		reqlog.SetReason(r.Context(), "first")
		reqlog.SetReason(r.Context(), "second")
		w.Write(append(b, " back"...))
	})
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	mux.HandleFunc("/late-panic", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		panic("after the reply")
	})
	srv := httptest.NewServer(reqlog.Middleware(log, time.Now, observe, fail, mux))
	defer srv.Close()

	do := func(path, id, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		if id != "" {
			req.Header.Set(reqlog.HeaderCorrelationID, id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := do("/ok", "client-id-1", "hello")
	if resp.StatusCode != 200 || body != "hello back" || resp.Header.Get(reqlog.HeaderCorrelationID) != "client-id-1" {
		t.Errorf("ok: %d %q %q", resp.StatusCode, body, resp.Header.Get(reqlog.HeaderCorrelationID))
	}
	resp, _ = do("/ok", "bad id with spaces", "")
	if id := resp.Header.Get(reqlog.HeaderCorrelationID); id == "" || strings.Contains(id, " ") {
		t.Errorf("an unsafe id is replaced: %q", id)
	}
	resp, body = do("/panic", "p-1", "")
	if resp.StatusCode != 500 || body != "failed p-1" {
		t.Errorf("panic: %d %q", resp.StatusCode, body)
	}
	resp, _ = do("/late-panic", "p-2", "")
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("a panic after the reply keeps it: %d", resp.StatusCode)
	}
	out := logged.String()
	for _, want := range []string{
		`msg=request method=POST path=/ok`, `status=200 bytes_in=5 bytes_out=10`, `correlation_id=client-id-1 identity=alice reason=first`,
		`msg=panic panic=boom`, `path=/panic host=`, `status=500`, `correlation_id=p-1`, `panic="after the reply"`, `status=202`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 4 || seen[0].Status != 200 || seen[0].BytesIn != 5 || seen[0].BytesOut != 10 || seen[2].Status != 500 {
		t.Errorf("observations: %+v", seen)
	}
}

// sink is a ResponseWriter with a ReadFrom of its own, as net/http's (sendfile for a file).
type sink struct {
	h      http.Header
	status int
	body   bytes.Buffer
	froms  int
}

func (s *sink) Header() http.Header                 { return s.h }
func (s *sink) WriteHeader(c int)                   { s.status = c }
func (s *sink) Write(p []byte) (int, error)         { return s.body.Write(p) }
func (s *sink) ReadFrom(r io.Reader) (int64, error) { s.froms++; return s.body.ReadFrom(r) }

// TestReadFromPassesThrough: io.Copy into the recorded writer reaches the underlying writer's
// ReadFrom (so that a blob's file goes out with sendfile), and the bytes and status are still
// what the access log and the observation say.
func TestReadFromPassesThrough(t *testing.T) {
	var logged syncBuffer
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	var seen reqlog.Outcome
	h := reqlog.Middleware(log, time.Now, func(r *http.Request, o reqlog.Outcome) { seen = o }, nil,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(w, io.LimitReader(strings.NewReader(strings.Repeat("x", 5000)), 4000))
		}))
	s := &sink{h: http.Header{}}
	h.ServeHTTP(s, httptest.NewRequest("GET", "/v2/app/blobs/x", nil))
	if s.froms != 1 || s.body.Len() != 4000 {
		t.Errorf("ReadFrom calls %d, %d bytes; want 1 call of 4000", s.froms, s.body.Len())
	}
	if seen.BytesOut != 4000 || seen.Status != http.StatusOK || !strings.Contains(logged.String(), `"bytes_out":4000`) {
		t.Errorf("observed %+v, logged %s; want 4000 bytes out, status 200", seen, logged.String())
	}
}

// TestClientIDs: a client's correlation id is kept when it is 1 to 128 of [A-Za-z0-9_.:-],
// replaced otherwise.
func TestClientIDs(t *testing.T) {
	srv := httptest.NewServer(reqlog.Middleware(slog.New(slog.DiscardHandler), time.Now, nil, nil,
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	defer srv.Close()
	for _, tc := range []struct {
		id   string
		kept bool
	}{
		{"az-AZ_09.x:y", true},
		{"z", true}, {"A", true}, {"Z", true}, {"9", true}, {"0", true}, {"a", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"a[", false}, {"a@", false}, {"a{", false}, {"a`", false}, {"a/", false}, {"a;", false}, {"a b", false}, {"é", false},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set(reqlog.HeaderCorrelationID, tc.id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get(reqlog.HeaderCorrelationID) == tc.id; got != tc.kept {
			t.Errorf("%q: kept %v, want %v", tc.id, got, tc.kept)
		}
	}
}

// TestClientGone: a request whose client leaves before any reply is logged and observed as 499;
// one that was answered (by Write or by ReadFrom) keeps its status when the client leaves
// afterwards. The log gives the duration in milliseconds.
func TestClientGone(t *testing.T) {
	var logged syncBuffer
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	seen := make(chan reqlog.Outcome, 3)
	wait := func(r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/silent", func(w http.ResponseWriter, r *http.Request) { wait(r) })
	mux.HandleFunc("/written", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("x"))
		http.NewResponseController(w).Flush()
		wait(r)
	})
	mux.HandleFunc("/copied", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, struct{ io.Reader }{strings.NewReader("x")}) // through the recorder's ReadFrom
		http.NewResponseController(w).Flush()
		wait(r)
	})
	srv := httptest.NewServer(reqlog.Middleware(log, time.Now, func(r *http.Request, o reqlog.Outcome) { seen <- o }, nil, mux))
	defer srv.Close()
	for _, tc := range []struct {
		path   string
		status int
	}{{"/silent", 499}, {"/written", 200}, {"/copied", 200}} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+tc.path, nil)
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.ReadAll(resp.Body) // until the client leaves
			resp.Body.Close()
		}
		select {
		case o := <-seen:
			if o.Status != tc.status {
				t.Errorf("%s: observed status %d, want %d", tc.path, o.Status, tc.status)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: not observed", tc.path)
		}
		cancel()
	}
	for line := range strings.Lines(logged.String()) {
		var rec struct {
			Path       string  `json:"path"`
			Status     int     `json:"status"`
			DurationMS float64 `json:"duration_ms"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Path == "" {
			continue
		}
		// Each waited for the client to leave, 50 ms after it asked.
		if rec.DurationMS < 40 || rec.DurationMS > 5000 {
			t.Errorf("%s: duration_ms %v, want the milliseconds it took (about 50)", rec.Path, rec.DurationMS)
		}
		if want := map[string]int{"/silent": 499}[rec.Path]; want != 0 && rec.Status != want {
			t.Errorf("%s: logged status %d, want %d", rec.Path, rec.Status, want)
		}
	}
}
