package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// warn writes one of az's "WARNING: " lines to stderr, unless --only-show-errors.
func (a *app) warn(format string, args ...any) {
	if a.onlyErrors {
		return
	}
	fmt.Fprintf(a.stderr, "WARNING: "+format+"\n", args...)
}

// secretHeaders are the headers --debug never prints the value of.
var secretHeaders = map[string]bool{"Authorization": true, "Cookie": true, "Set-Cookie": true, "Proxy-Authorization": true}

// secretParams are the query parameters --debug never prints the value of.
var secretParams = []string{"password", "secret", "token", "assertion", "code"}

// debugTransport is --debug: each HTTP request the CLI makes and its answer, with the
// correlation id that finds the server's events and log lines, on stderr. Credentials (the
// Authorization header, cookies, query parameters that may carry secrets) are redacted and
// bodies are never printed: a --debug log can be pasted into an issue as it is.
type debugTransport struct {
	next http.RoundTripper
	mu   *sync.Mutex
	w    io.Writer
	now  func() time.Time
}

func (d debugTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := d.now()
	resp, err := d.next.RoundTrip(req)
	d.mu.Lock()
	defer d.mu.Unlock()
	line := func(format string, args ...any) { fmt.Fprintf(d.w, "DEBUG: "+format+"\n", args...) }
	line("Request URL: '%s'", redactURL(req.URL))
	line("Request method: '%s'", req.Method)
	line("Request headers:")
	printHeaders(line, req.Header)
	if req.ContentLength != 0 && req.Body != nil {
		line("Request body: %d bytes, not shown (it may carry secrets)", req.ContentLength)
	}
	if err != nil {
		line("Request failed after %s: %s", d.now().Sub(start).Round(time.Millisecond), safe(err.Error()))
		return nil, err
	}
	line("Response status: %d", resp.StatusCode)
	line("Response headers:")
	printHeaders(line, resp.Header)
	line("Correlation id: %s", safe(resp.Header.Get("X-Correlation-Id")))
	line("Response time: %s", d.now().Sub(start).Round(time.Millisecond))
	return resp, nil
}

func printHeaders(line func(string, ...any), h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.Join(h[k], ", ")
		if secretHeaders[http.CanonicalHeaderKey(k)] {
			scheme, _, _ := strings.Cut(v, " ")
			v = scheme + " *****"
		}
		line("    '%s': '%s'", safe(k), safe(v))
	}
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	q := c.Query()
	for k := range q {
		for _, s := range secretParams {
			if strings.Contains(strings.ToLower(k), s) {
				q[k] = []string{"*****"}
			}
		}
	}
	if len(q) > 0 {
		c.RawQuery = q.Encode()
	}
	return safe(c.String())
}
