// Package metrics exposes straas's Prometheus metrics in embedded mode.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the collectors.
type Metrics struct {
	Registry       *prometheus.Registry
	messages       *prometheus.CounterVec
	leaseWrites    prometheus.Counter
	ingestLatency  prometheus.Histogram
	Transitions    prometheus.Counter
	HTTPRequests   *prometheus.CounterVec
	HTTPDurationMS *prometheus.HistogramVec
}

// New registers the collectors on a fresh registry.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "straas_status_messages_total", Help: "Agent messages handled by the conductor, by type."}, []string{"type"})
	m.leaseWrites = prometheus.NewCounter(prometheus.CounterOpts{Name: "straas_lease_writes_total", Help: "Heartbeat leases written to the store."})
	m.ingestLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "straas_heartbeat_ingest_seconds", Help: "From an agent sending a heartbeat to its lease being stored.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
	m.Transitions = prometheus.NewCounter(prometheus.CounterOpts{Name: "straas_workflow_transitions_total", Help: "Durable state transitions of the embedded interpreter."})
	m.HTTPRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "straas_http_requests_total", Help: "API requests by method and status."}, []string{"method", "code"})
	m.Registry.MustRegister(m.messages, m.leaseWrites, m.ingestLatency, m.Transitions, m.HTTPRequests,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Message counts an agent message (conductor.Metrics).
func (m *Metrics) Message(kind string) { m.messages.WithLabelValues(kind).Inc() }

// LeaseWrite counts a stored lease (conductor.Metrics).
func (m *Metrics) LeaseWrite() { m.leaseWrites.Inc() }

// IngestLatency observes a heartbeat's receive-to-stored time (conductor.Metrics).
func (m *Metrics) IngestLatency(d time.Duration) { m.ingestLatency.Observe(d.Seconds()) }
