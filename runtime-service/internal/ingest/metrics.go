package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ingest path's Prometheus metrics. Cluster is not a label: label values would grow with every
// cluster enrolled; the logs name the cluster of every failure.
type Metrics struct {
	Records  *prometheus.CounterVec // by event name and result (accepted, rejected)
	Batches  *prometheus.CounterVec // by result
	Duration prometheus.Histogram   // Export calls that reached the store, until commit
	InFlight prometheus.Gauge       // Export calls being handled
	Events   *prometheus.CounterVec // events by what happened beyond storage (unattributed, raw_skipped)
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runtrust_ingest_records_total",
			Help: "Log records received over OTLP, by event name and result (accepted, rejected).",
		}, []string{"event", "result"}),
		Batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runtrust_ingest_batches_total",
			Help: "OTLP Export calls, by result (ok, partial, duplicate, invalid, unauthenticated, rate_limited, unavailable, error).",
		}, []string{"result"}),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "runtrust_ingest_batch_duration_seconds",
			Help:    "Time from receiving an Export call to its transaction's commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "runtrust_ingest_in_flight",
			Help: "Export calls being handled now.",
		}),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runtrust_ingest_events_total",
			Help: "Exec and file-open events by what happened beyond storing them: unattributed (no image known: not aggregated), raw_skipped (outside the retention window: aggregated only).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.Records, m.Batches, m.Duration, m.InFlight, m.Events)
	return m
}
