package correlate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/runtrust/runtrust/internal/periodic"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// Metrics are the correlation's Prometheus metrics.
type Metrics struct {
	refreshes *prometheus.CounterVec   // registry, result
	duration  *prometheus.HistogramVec // registry
	artifacts *prometheus.GaugeVec     // registry
	errors    *prometheus.CounterVec   // registry, stage
	feedback  *prometheus.CounterVec   // registry, result
}

// NewMetrics registers the correlation metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runtrust_registry_refreshes_total",
			Help: "Registry listings, by registry and result (ok, partial, error)."}, []string{"registry", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "runtrust_registry_refresh_duration_seconds",
			Help: "How long a registry listing took.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}, []string{"registry"}),
		artifacts: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "runtrust_registry_artifacts_listed",
			Help: "Tags the last successful listing of a registry found."}, []string{"registry"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runtrust_registry_errors_total",
			Help: "Registry request failures, by registry and stage (catalog, tags, manifest, store, feedback, properties)."}, []string{"registry", "stage"}),
		feedback: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runtrust_registry_feedback_total",
			Help: "Artifactory property writes, by registry and result (written, unchanged, error)."}, []string{"registry", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.refreshes, m.duration, m.artifacts, m.errors, m.feedback)
	}
	return m
}

// Artifacts is the gauge of tags a registry's last successful listing found (for tests and dashboards).
func (m *Metrics) Artifacts(registry string) prometheus.Gauge {
	return m.artifacts.WithLabelValues(registry)
}

// Refreshes is the counter of a registry's listings with result (ok, partial, error).
func (m *Metrics) Refreshes(registry, result string) prometheus.Counter {
	return m.refreshes.WithLabelValues(registry, result)
}

// Correlator lists each configured registry at start and every refresh interval.
type Correlator struct {
	st   *store.Store
	log  *slog.Logger
	m    *Metrics
	now  func() time.Time
	regs []*job

	// readProps: read the properties of Artifactory registries' in-use tags (properties.go). Atomic: a reloaded
	// placement policy turns it on or off while Run runs.
	readProps atomic.Bool
}

type job struct {
	reg Registry
	cl  *client
	fb  *feedback // nil unless an Artifactory registry with feedback: true
	mu  sync.Mutex
}

// New prepares a correlator for the registries and records them in the store. now may be nil (time.Now).
func New(ctx context.Context, st *store.Store, regs []Registry, log *slog.Logger, m *Metrics, now func() time.Time) (*Correlator, error) {
	if now == nil {
		now = time.Now
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	c := &Correlator{st: st, log: log, m: m, now: now}
	cfgs := make([]store.RegistryConfig, 0, len(regs))
	for _, r := range regs {
		cl := newClient(r)
		j := &job{reg: r, cl: cl}
		if r.Kind == KindArtifactory && r.Feedback {
			j.fb = newFeedback(cl)
		}
		c.regs = append(c.regs, j)
		cfgs = append(cfgs, store.RegistryConfig{Name: r.Name, Kind: r.Kind, URL: r.BaseURL.String(), Host: r.Host, Feedback: r.Feedback})
	}
	if err := st.ConfigureRegistries(ctx, cfgs); err != nil {
		return nil, err
	}
	return c, nil
}

// Run refreshes every registry at once and then every its interval, until ctx ends. A failed refresh is
// logged, counted and stored as the registry's status; the next one is tried at the next interval.
func (c *Correlator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, j := range c.regs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			periodic.NowAndEvery(ctx, j.reg.Refresh, func(ctx context.Context) { _ = c.refresh(ctx, j) })
		}()
	}
	wg.Wait()
}

// Refresh lists one registry now, stores the listing and, if configured, writes feedback. The error is the
// listing's (the store has its status either way).
func (c *Correlator) Refresh(ctx context.Context, name string) error {
	for _, j := range c.regs {
		if j.reg.Name == name {
			return c.refresh(ctx, j)
		}
	}
	return fmt.Errorf("no registry named %q is configured", name)
}

func (c *Correlator) refresh(ctx context.Context, j *job) error {
	// One refresh per registry at a time, even if a test's Refresh meets the schedule's.
	j.mu.Lock()
	defer j.mu.Unlock()
	name := j.reg.Name
	start := c.now()
	c.log.Debug("registry listing starts", "registry", name)
	l := c.list(ctx, j)
	l.Started, l.Duration = start, c.now().Sub(start)
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: do not record a half listing as the registry's fault
	}
	result := store.RegistryOK
	switch {
	case l.Err != nil:
		result = store.RegistryError
	case len(l.Failed) > 0:
		result = store.RegistryPartial
	}
	c.m.refreshes.WithLabelValues(name, result).Inc()
	c.m.duration.WithLabelValues(name).Observe(l.Duration.Seconds())
	storeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := c.st.RecordListing(storeCtx, name, l); err != nil {
		c.m.errors.WithLabelValues(name, "store").Inc()
		c.log.Error("registry listing not stored", "registry", name, "error", err)
		return err
	}
	if l.Err != nil {
		c.log.Warn("registry listing failed; the last listing is kept", "registry", name, "error", l.Err,
			"duration", l.Duration.String())
		return l.Err
	}
	c.m.artifacts.WithLabelValues(name).Set(float64(len(l.Tags)))
	failed := make([]string, 0, len(l.Failed))
	for r := range l.Failed {
		failed = append(failed, r)
	}
	sort.Strings(failed)
	c.log.Info("registry listed", "registry", name, "repositories", l.Repositories, "tags", len(l.Tags),
		"failed_repositories", failed, "duration", l.Duration.String())
	if c.readProps.Load() && j.reg.Kind == KindArtifactory {
		c.readProperties(ctx, j)
	}
	if j.fb != nil {
		c.writeFeedback(ctx, j)
	}
	return nil
}

// list reads a registry's catalog, each repository's tags and each tag's digest, with at most the registry's
// max_concurrent requests in flight.
func (c *Correlator) list(ctx context.Context, j *job) store.Listing {
	l := store.Listing{Failed: map[string]bool{}, CatalogComplete: true}
	defer j.cl.forgetRepositories()
	type repoRef struct {
		rt         root
		repo, name string // repo: as the docker API names it; name: as the store keeps it (key/repo)
	}
	var repos []repoRef
	for _, rt := range j.cl.roots() {
		names, err := j.cl.catalog(ctx, rt)
		if err != nil {
			c.m.errors.WithLabelValues(j.reg.Name, "catalog").Inc()
			l.Err = fmt.Errorf("catalog: %w", err)
			return l
		}
		for _, n := range names {
			stored := n
			if rt.key != "" {
				stored = rt.key + "/" + n
			}
			repos = append(repos, repoRef{rt: rt, repo: n, name: stored})
		}
	}
	l.Repositories = len(repos)
	var mu sync.Mutex
	fail := func(repo, stage string, err error) {
		c.m.errors.WithLabelValues(j.reg.Name, stage).Inc()
		c.log.Warn("registry repository not listed completely; its stored tags are kept", "registry", j.reg.Name,
			"repository", repo, "stage", stage, "error", err)
		mu.Lock()
		l.Failed[repo] = true
		mu.Unlock()
	}
	type tagRef struct {
		r   repoRef
		tag string
	}
	var tags []tagRef
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(j.reg.Limits.MaxConcurrent)
	for _, r := range repos {
		g.Go(func() error {
			ts, err := j.cl.tags(gctx, r.rt, r.repo)
			if err != nil {
				fail(r.name, "tags", err)
				return nil
			}
			mu.Lock()
			for _, t := range ts {
				tags = append(tags, tagRef{r, t})
			}
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(j.reg.Limits.MaxConcurrent)
	for _, t := range tags {
		g.Go(func() error {
			d, mt, manifests, err := j.cl.resolve(gctx, t.r.rt, t.r.repo, t.tag)
			if errors.Is(err, errTagGone) {
				return nil
			}
			if err != nil {
				fail(t.r.name, "manifest", fmt.Errorf("tag %s: %w", t.tag, err))
				return nil
			}
			mu.Lock()
			l.Tags = append(l.Tags, store.ListedTag{Repository: t.r.name, Image: t.r.repo, Tag: t.tag, Digest: d,
				MediaType: mt, Manifests: manifests})
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	if ctx.Err() != nil {
		l.Err = ctx.Err()
	}
	return l
}
