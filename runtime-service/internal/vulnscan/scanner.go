// Package vulnscan finds the vulnerabilities of the images running now and says which ones their containers
// really load. For every running digest it gets the SBOM once (attached in the registry, else generated from
// the layers: internal/sbom) and keeps it in the store; matches it against the offline vulnerability database
// (internal/vulndb), again whenever the database changes, without fetching the SBOM again; and decides each
// finding's runtime reachability by joining the package file lists with what the sensors saw the image's
// containers execute and open (reach.go).
package vulnscan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runtrust/runtrust/internal/periodic"
	"github.com/runtrust/runtrust/runtime-service/internal/correlate"
	"github.com/runtrust/runtrust/runtime-service/internal/sbom"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
	"github.com/runtrust/runtrust/runtime-service/internal/vulndb"
)

// Defaults for zero-valued options.
const (
	DefaultInterval    = 15 * time.Second
	DefaultConcurrency = 2
	DefaultWindow      = 15 * time.Minute
	DefaultRetry       = time.Minute
	MaxRetry           = time.Hour
	// batch is how many digests one pass takes of each kind of work; the pass after takes the next ones.
	batch = 64
	// indexCacheSize bounds the file indexes kept decoded between passes (each is one image's file list).
	indexCacheSize = 32
)

// Options configure a Scanner.
type Options struct {
	// Databases are the vulnerability database mirrors to match against (at least one).
	Databases []vulndb.Config
	// Registries are the service's configured registries: an image on one of their hosts is read with its
	// credentials, TLS settings and limits; any other anonymously.
	Registries []correlate.Registry
	// Interval between passes; Concurrency bounds the SBOMs fetched or generated at once.
	Interval    time.Duration
	Concurrency int
	// Window: a finding is not_loaded once a sensor watched a container of the image this long and saw none of
	// the package's files used.
	Window time.Duration
	// Limits bound each generated SBOM (zero fields: sbom.DefaultLimits); Platform picks the manifest of an
	// index (default linux/amd64).
	Limits   sbom.Limits
	Platform string
}

// Scanner runs the vulnerability work in the background.
type Scanner struct {
	st      *store.Store
	log     *slog.Logger
	m       *Metrics
	opts    Options
	fetcher *sbom.Fetcher
	remotes *correlate.Remotes

	db          vulndb.Matcher
	fingerprint string

	cacheMu sync.Mutex
	cache   map[string]*cached
	order   []string
}

type cached struct {
	sbom *sbom.SBOM
	idx  FileIndex
}

// New validates the options and opens the databases; it fails with the reason when a database cannot be read.
func New(st *store.Store, opts Options, log *slog.Logger, m *Metrics) (*Scanner, error) {
	if len(opts.Databases) == 0 {
		return nil, errors.New("vulnscan: no vulnerability database configured")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	s := &Scanner{st: st, log: log, m: m, opts: opts, remotes: correlate.NewRemotes(opts.Registries), cache: map[string]*cached{}}
	platform, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	s.fetcher = sbom.New(sbom.Options{Remote: s.remoteOptions, Limits: opts.Limits, Platform: platform})
	if err := s.openDatabase(); err != nil {
		return nil, err
	}
	return s, nil
}

// Run does passes until ctx ends.
func (s *Scanner) Run(ctx context.Context) { periodic.NowAndEvery(ctx, s.opts.Interval, s.Pass) }

// Pass does one round of every kind of work: reload the database if its files changed, build the SBOMs that
// are due, match what is not matched against the current database, and decide reachability again.
func (s *Scanner) Pass(ctx context.Context) {
	if err := s.reloadIfChanged(); err != nil {
		s.log.Warn("vulnerability database: keeping the one loaded", "error", err)
	}
	s.buildSBOMs(ctx)
	s.matchAll(ctx)
	s.evaluateAll(ctx)
	if counts, err := s.st.SBOMCounts(ctx); err == nil {
		s.m.setJobs(counts)
	}
}

func (s *Scanner) openDatabase() error {
	fp, err := vulndb.Fingerprint(s.opts.Databases...)
	if err != nil {
		return fmt.Errorf("vulnscan: %w", err)
	}
	start := time.Now()
	db, err := vulndb.Open(s.opts.Databases...)
	if err != nil {
		return fmt.Errorf("vulnscan: %w", err)
	}
	if old, ok := s.db.(io.Closer); ok {
		// A trivy.db stays memory-mapped until closed. Passes run one at a time, so nothing matches on it now.
		if err := old.Close(); err != nil {
			s.log.Warn("closing the previous vulnerability database", "error", err)
		}
	}
	s.db, s.fingerprint = db, fp
	s.m.setDatabase(db.Version())
	s.log.Info("vulnerability database loaded", "version", db.Version(), "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// reloadIfChanged reopens the databases when their files changed (a mirror updated in place). The findings are
// then matched again from the stored SBOMs (matchAll sees the new version).
func (s *Scanner) reloadIfChanged() error {
	fp, err := vulndb.Fingerprint(s.opts.Databases...)
	if err != nil || fp == s.fingerprint {
		return err
	}
	return s.openDatabase()
}

// buildSBOMs gets the SBOMs that are due, Concurrency at a time.
func (s *Scanner) buildSBOMs(ctx context.Context) {
	cands, err := s.st.SBOMCandidates(ctx, batch)
	if err != nil {
		s.log.Warn("SBOM work: listing the images due", "error", err)
		return
	}
	periodic.Each(ctx, s.opts.Concurrency, cands, s.buildOne)
}

func (s *Scanner) buildOne(ctx context.Context, c store.SBOMCandidate) {
	start := time.Now()
	doc, ref, err := s.fetch(ctx, c)
	if err == nil {
		var stored store.StoredSBOM
		if stored, err = encode(doc); err == nil {
			err = s.st.PutSBOM(ctx, stored)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		retry := min(DefaultRetry<<min(c.Attempts, 10), MaxRetry)
		s.m.failed.Inc()
		s.log.Warn("SBOM failed; will retry", "digest", c.Digest, "refs", c.Refs, "attempt", c.Attempts+1,
			"retry_in", retry.String(), "error", err)
		if ferr := s.st.FailSBOM(ctx, c.Digest, err.Error(), time.Now().Add(retry)); ferr != nil {
			s.log.Warn("SBOM work: recording the failure", "digest", c.Digest, "error", ferr)
		}
		return
	}
	took := time.Since(start)
	s.m.built.WithLabelValues(doc.Source).Inc()
	s.m.buildSeconds.Observe(took.Seconds())
	s.remember(doc)
	s.log.Info("SBOM ready", "digest", c.Digest, "ref", ref, "source", doc.Source, "format", doc.Format,
		"distro", distroString(doc.Distro), "packages", len(doc.Packages), "truncated", doc.Truncated, "took", took.Round(time.Millisecond).String())
}

// fetch gets a digest's SBOM through the first of its references that works.
func (s *Scanner) fetch(ctx context.Context, c store.SBOMCandidate) (*sbom.SBOM, string, error) {
	var errs []error
	for _, ref := range c.Refs {
		d, err := s.remotes.DigestRef(ref, c.Digest)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		doc, err := s.fetcher.Get(ctx, d)
		if err == nil {
			return doc, d.String(), nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", d, err))
	}
	if len(errs) == 0 {
		return nil, "", fmt.Errorf("no image reference names %s", c.Digest)
	}
	return nil, "", errors.Join(errs...)
}

// remoteOptions reach a repository's registry with its configured settings, or anonymously.
func (s *Scanner) remoteOptions(repo name.Repository) []remote.Option {
	return s.remotes.Options(repo.RegistryStr())
}

// matchAll matches every SBOM not yet matched against the loaded database version.
func (s *Scanner) matchAll(ctx context.Context) {
	version := s.db.Version()
	for ctx.Err() == nil {
		digests, err := s.st.DigestsToMatch(ctx, version, batch)
		if err != nil {
			s.log.Warn("vulnerability matching: listing the SBOMs due", "error", err)
			return
		}
		if len(digests) == 0 {
			return
		}
		start, findings := time.Now(), 0
		for _, d := range digests {
			n, err := s.matchOne(ctx, d, version)
			if err != nil {
				s.log.Warn("vulnerability matching failed", "digest", d, "error", err)
				return // the next pass tries again
			}
			findings += n
		}
		s.log.Info("matched SBOMs against the vulnerability database", "images", len(digests), "findings", findings,
			"database", version, "took", time.Since(start).Round(time.Millisecond).String())
	}
}

func (s *Scanner) matchOne(ctx context.Context, digest, version string) (int, error) {
	c, err := s.load(ctx, digest)
	if err != nil {
		return 0, err
	}
	found, err := s.db.Match(c.sbom)
	var incomplete *vulndb.IncompleteError
	switch {
	case errors.As(err, &incomplete):
		// Some packages could not be checked (a version that does not parse, a distribution no database
		// covers): keep what was found, and say what was not checked rather than letting it read as clean.
		s.log.Warn("vulnerability matching incomplete", "digest", digest, "problems", incomplete.Count, "error", err)
	case err != nil:
		return 0, err
	}
	rows := make([]store.VulnFinding, len(found))
	for i, f := range found {
		rows[i] = store.VulnFinding{ID: f.ID, PackageKey: f.PackageKey, Package: f.Package, PackageType: f.Type,
			Installed: f.Installed, Fixed: f.Fixed, Severity: f.Severity, CVSS: f.CVSS, CVSSVector: f.CVSSVector,
			Summary: f.Summary, Aliases: f.Aliases, Source: f.Source}
	}
	s.m.matched.Add(float64(len(rows)))
	return len(rows), s.st.ReplaceFindings(ctx, digest, version, rows)
}

// evaluateAll decides reachability again for the images whose findings are not all loaded, each at most once
// per interval.
func (s *Scanner) evaluateAll(ctx context.Context) {
	digests, err := s.st.DigestsToEvaluate(ctx, time.Now().Add(-s.opts.Interval/2), batch)
	if err != nil {
		s.log.Warn("reachability: listing the images due", "error", err)
		return
	}
	for _, d := range digests {
		if ctx.Err() != nil {
			return
		}
		if err := s.evaluateOne(ctx, d); err != nil {
			s.log.Warn("reachability failed", "digest", d, "error", err)
		}
	}
}

func (s *Scanner) evaluateOne(ctx context.Context, digest string) error {
	c, err := s.load(ctx, digest)
	if err != nil {
		return err
	}
	findings, err := s.st.FindingKeys(ctx, digest)
	if err != nil {
		return err
	}
	observed, err := s.st.ObservedPaths(ctx, digest)
	if err != nil {
		return err
	}
	watch, err := s.st.WatchOf(ctx, digest)
	if err != nil {
		return err
	}
	decided := Decide(findings, Loaded(c.idx, observed), watch, s.opts.Window)
	for _, r := range decided {
		if r.Reachability == store.ReachLoaded {
			s.log.Info("vulnerable package loaded at runtime", "digest", digest, "advisory", r.ID, "package", r.PackageKey,
				"kind", r.Evidence.Kind, "path", r.Evidence.Path, "process", r.Evidence.Process, "container", r.Evidence.ContainerID)
		}
	}
	s.m.evaluations.Inc()
	return s.st.SetReachability(ctx, digest, decided)
}

// load returns a digest's SBOM and file index, decoded from the store unless still cached.
func (s *Scanner) load(ctx context.Context, digest string) (*cached, error) {
	s.cacheMu.Lock()
	c, ok := s.cache[digest]
	s.cacheMu.Unlock()
	if ok {
		return c, nil
	}
	raw, err := s.st.SBOMDocument(ctx, digest)
	if err != nil {
		return nil, err
	}
	doc, err := decode(raw)
	if err != nil {
		return nil, fmt.Errorf("stored SBOM of %s: %w", digest, err)
	}
	return s.remember(doc), nil
}

func (s *Scanner) remember(doc *sbom.SBOM) *cached {
	c := &cached{sbom: doc, idx: IndexFiles(doc)}
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if _, ok := s.cache[doc.Digest]; !ok {
		s.order = append(s.order, doc.Digest)
	}
	s.cache[doc.Digest] = c
	for len(s.order) > indexCacheSize {
		delete(s.cache, s.order[0])
		s.order = s.order[1:]
	}
	return c
}

func distroString(d sbom.Distro) string {
	return strings.TrimSpace(d.ID + " " + d.VersionID)
}
