package vulnscan

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the scanner's progress signals: SBOMs pending, built and failed, findings matched, the database
// version loaded.
type Metrics struct {
	jobs         *prometheus.GaugeVec
	built        *prometheus.CounterVec
	failed       prometheus.Counter
	buildSeconds prometheus.Histogram
	matched      prometheus.Counter
	evaluations  prometheus.Counter
	database     *prometheus.GaugeVec
}

// NewMetrics registers the scanner's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		jobs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "runtrust_sbom_jobs",
			Help: "Running images by the state of their SBOM: pending, built, failed."}, []string{"state"}),
		built: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runtrust_sbom_built_total",
			Help: "SBOMs obtained, by where they came from (referrer, tag, generated)."}, []string{"source"}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "runtrust_sbom_failed_total",
			Help: "SBOM attempts that failed (each is retried with backoff)."}),
		buildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "runtrust_sbom_build_seconds",
			Help: "Time to fetch or generate one SBOM.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}),
		matched: prometheus.NewCounter(prometheus.CounterOpts{Name: "runtrust_vulnerability_findings_matched_total",
			Help: "Findings produced by matching SBOMs against the vulnerability database."}),
		evaluations: prometheus.NewCounter(prometheus.CounterOpts{Name: "runtrust_vulnerability_reachability_evaluations_total",
			Help: "Images whose findings' runtime reachability was decided again."}),
		database: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "runtrust_vulnerability_database_info",
			Help: "1 for the vulnerability database version loaded."}, []string{"version"}),
	}
	reg.MustRegister(m.jobs, m.built, m.failed, m.buildSeconds, m.matched, m.evaluations, m.database)
	return m
}

func (m *Metrics) setJobs(counts map[string]int) {
	for state, n := range counts {
		m.jobs.WithLabelValues(state).Set(float64(n))
	}
}

func (m *Metrics) setDatabase(version string) {
	m.database.Reset()
	m.database.WithLabelValues(version).Set(1)
}
