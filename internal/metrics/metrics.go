// Package metrics is berth's Prometheus instrumentation: requests by route and status, bytes in
// and out, sign-ins by result and reason, tokens issued, upload durations, the audit queue and
// the policy snapshot version, plus the Go runtime and process collectors.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-registry/berth/internal/reqlog"
	"github.com/berth-registry/berth/internal/store"
)

// Gauges are values read when Prometheus scrapes.
type Gauges struct {
	QueueDepth    func() float64 // audit events waiting to be written
	QueueCapacity func() float64
	PolicyVersion func() float64 // version of the policy snapshot this replica enforces
}

// Metrics holds berth's collectors in a registry of its own.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	signins  *prometheus.CounterVec
	tokens   *prometheus.CounterVec
	uploads  prometheus.Histogram
}

// New registers the collectors.
func New(g Gauges) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_http_requests_total",
			Help: "HTTP requests by route, method and status."}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "berth_http_request_duration_seconds",
			Help: "HTTP request durations by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"route"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_http_request_bytes_total",
			Help: "Bytes received in request bodies, by route."}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_http_response_bytes_total",
			Help: "Bytes sent in response bodies, by route."}, []string{"route"}),
		signins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_signins_total",
			Help: "Sign-in attempts (login events) by operation, result and reason."}, []string{"operation", "result", "reason"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_tokens_issued_total",
			Help: "Tokens issued, by endpoint (token: access tokens, exchange: refresh tokens, directory: directory tokens)."}, []string{"operation"}),
		uploads: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "berth_upload_duration_seconds",
			Help: "Time from the start of a blob upload session to its completion.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.signins, m.tokens, m.uploads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gauge := func(name, help string, f func() float64) {
		if f != nil {
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
		}
	}
	gauge("berth_event_queue_depth", "Audit events waiting to be written.", g.QueueDepth)
	gauge("berth_event_queue_capacity", "Size of the audit event queue; at capacity, requests wait.", g.QueueCapacity)
	gauge("berth_policy_snapshot_version", "Version of the policy snapshot this replica enforces.", g.PolicyVersion)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Observe counts a finished request; it is an httperr.Observer.
func (m *Metrics) Observe(r *http.Request, o reqlog.Outcome) {
	route := Route(r.URL.Path)
	m.requests.WithLabelValues(route, method(r.Method), strconv.Itoa(o.Status)).Inc()
	m.duration.WithLabelValues(route).Observe(o.Duration.Seconds())
	if o.BytesIn > 0 {
		m.bytesIn.WithLabelValues(route).Add(float64(o.BytesIn))
	}
	if o.BytesOut > 0 {
		m.bytesOut.WithLabelValues(route).Add(float64(o.BytesOut))
	}
}

// Login counts a login event, and the token it issued if any.
func (m *Metrics) Login(e store.LoginEvent) {
	m.signins.WithLabelValues(e.Operation, e.Result, e.Reason).Inc()
	if e.TokenID != "" && e.Operation != "registry" {
		m.tokens.WithLabelValues(e.Operation).Inc()
	}
}

// Upload records how long a finished upload session took.
func (m *Metrics) Upload(d time.Duration, _ int64) { m.uploads.Observe(d.Seconds()) }

// Route is a request's path reduced to a label of few values: repository names, digests and
// ids are dropped.
func Route(path string) string {
	switch {
	case path == "/v2/" || path == "/v2":
		return "/v2/"
	case path == "/v2/_catalog":
		return "/v2/_catalog"
	case strings.HasSuffix(path, "/blobs/uploads/") && strings.HasPrefix(path, "/v2/"):
		return "/v2/*/blobs/uploads/"
	case strings.Contains(path, "/blobs/uploads/") && strings.HasPrefix(path, "/v2/"):
		return "/v2/*/blobs/uploads/*"
	case strings.HasPrefix(path, "/v2/"):
		i := strings.LastIndex(path, "/")
		j := strings.LastIndex(path[:i], "/")
		switch seg := path[j+1 : i]; seg {
		case "manifests", "blobs", "tags", "referrers":
			return "/v2/*/" + seg
		}
		return "/v2/other"
	case path == "/oauth2/token", path == "/oauth2/exchange", path == "/mgmt/v1/token", path == "/metrics", path == "/healthz", path == "/readyz":
		return path
	case strings.HasPrefix(path, "/mgmt/v1/"):
		return "/mgmt/v1/*"
	}
	return "other"
}

func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return m
	}
	return "OTHER"
}
