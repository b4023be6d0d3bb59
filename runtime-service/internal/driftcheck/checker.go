// Package driftcheck runs exact drift (docs/drift.md) in the background: it indexes the layers of each running
// image whose containers executed something, once per digest, from the image's registry, and judges every exec
// aggregate against its image's index under the drift rules, keeping indexes and findings in the store. The
// decisions themselves are internal/drift's.
package driftcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runtrust/runtrust/internal/periodic"
	"github.com/runtrust/runtrust/runtime-service/internal/correlate"
	"github.com/runtrust/runtrust/runtime-service/internal/drift"
	"github.com/runtrust/runtrust/runtime-service/internal/placement"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// Defaults for zero-valued options.
const (
	DefaultInterval = 30 * time.Second
	// DefaultConcurrency: images indexed at once. Each build streams its layers and holds one entry per file, so
	// two keep the registry and the service's memory modest while one slow image does not hold up the rest.
	DefaultConcurrency = 2
	// DefaultCacheSize: decoded indexes kept in memory for judging. An index of 100,000 files takes some 10 MiB.
	DefaultCacheSize = 8
	DefaultRetry     = time.Minute
	MaxRetry         = 6 * time.Hour
	indexBatch       = 16
	judgeBatch       = 2000
	// maxJudgeBatches bounds one pass's judging, so the building of new indexes is not held up for long.
	maxJudgeBatches = 50
)

// Options configure a Checker.
type Options struct {
	Policy *drift.Policy // nil: the builtin rules only
	// Current, when not nil, returns the rules in force at each judging pass instead of Policy: a reloaded
	// file replaces them while the checker runs, and their new fingerprint makes every finding due again.
	Current func() *drift.Policy
	// Registries are the configured registries: an image on one of their hosts is read with its credentials,
	// TLS settings and limits; any other anonymously.
	Registries  []correlate.Registry
	Limits      drift.Limits
	Interval    time.Duration
	Concurrency int
	// Platform picks the manifest of a running digest that is an image index; zero: linux/amd64.
	Platform  v1.Platform
	CacheSize int
}

// Checker builds indexes and judges exec aggregates, in passes.
type Checker struct {
	st      *store.Store
	log     *slog.Logger
	opts    Options
	remotes *correlate.Remotes
	cache   *lru

	buildingMu sync.Mutex
	building   map[string]bool // digests whose layers are being read now
}

// New returns a Checker.
func New(st *store.Store, opts Options, log *slog.Logger) (*Checker, error) {
	if opts.Policy == nil {
		p, err := drift.Compile(drift.Rules{})
		if err != nil {
			return nil, err
		}
		opts.Policy = p
	}
	if opts.Current == nil {
		p := opts.Policy
		opts.Current = func() *drift.Policy { return p }
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Platform.OS == "" && opts.Platform.Architecture == "" {
		opts.Platform = v1.Platform{OS: "linux", Architecture: "amd64"}
	}
	return &Checker{st: st, log: log, opts: opts, remotes: correlate.NewRemotes(opts.Registries), cache: newLRU(opts.CacheSize),
		building: map[string]bool{}}, nil
}

// Building says whether digest's layers are being read now (the API shows it as building).
func (c *Checker) Building(digest string) bool {
	c.buildingMu.Lock()
	defer c.buildingMu.Unlock()
	return c.building[digest]
}

func (c *Checker) setBuilding(digest string, on bool) {
	c.buildingMu.Lock()
	defer c.buildingMu.Unlock()
	if on {
		c.building[digest] = true
	} else {
		delete(c.building, digest)
	}
}

// Run builds and judges until ctx ends, each on its own schedule: reading a large image's layers takes minutes,
// and the programs of images already indexed are judged meanwhile.
func (c *Checker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		periodic.NowAndEvery(ctx, c.opts.Interval, c.judgePass)
	}()
	periodic.NowAndEvery(ctx, c.opts.Interval, c.buildPass)
	wg.Wait()
}

// Pass builds the indexes that are due, Concurrency at a time, then judges the aggregates that are due.
func (c *Checker) Pass(ctx context.Context) {
	c.buildPass(ctx)
	c.judgePass(ctx)
}

func (c *Checker) buildPass(ctx context.Context) {
	cands, err := c.st.DriftIndexCandidates(ctx, indexBatch)
	if err != nil {
		c.log.Warn("drift: listing the images to index", "error", err)
		return
	}
	periodic.Each(ctx, c.opts.Concurrency, cands, c.buildOne)
}

func (c *Checker) judgePass(ctx context.Context) {
	if err := c.judge(ctx); err != nil && ctx.Err() == nil {
		c.log.Warn("drift: judging the programs executed", "error", err)
	}
}

func (c *Checker) buildOne(ctx context.Context, cand store.DriftIndexCandidate) {
	c.setBuilding(cand.Digest, true)
	defer c.setBuilding(cand.Digest, false)
	start := time.Now()
	x, ref, err := c.build(ctx, cand)
	if err == nil {
		if err = c.st.PutDriftIndex(ctx, x); err == nil {
			c.log.Info("drift: image indexed", "digest", cand.Digest, "ref", ref, "manifest", x.Manifest, "files", x.Files,
				"bytes", x.Bytes, "truncated", x.Truncated, "notes", x.Notes, "duration", time.Since(start).Round(time.Millisecond).String())
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	retry := min(DefaultRetry<<min(cand.Attempts, 10), MaxRetry)
	c.log.Warn("drift: image not indexed; will retry", "digest", cand.Digest, "refs", cand.Refs, "attempt", cand.Attempts+1,
		"retry_in", retry.String(), "error", err)
	if ferr := c.st.FailDriftIndex(ctx, cand.Digest, err.Error(), time.Now().Add(retry)); ferr != nil {
		c.log.Warn("drift: recording the failure", "digest", cand.Digest, "error", ferr)
	}
}

// build reads the image from the repository of its first reference whose registry answers.
func (c *Checker) build(ctx context.Context, cand store.DriftIndexCandidate) (store.DriftIndex, string, error) {
	var errs []error
	for _, ref := range cand.Refs {
		if ctx.Err() != nil {
			break
		}
		d, err := c.remotes.DigestRef(ref, cand.Digest)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		x, err := c.buildFrom(ctx, d)
		if err == nil {
			return x, d.String(), nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no image reference names %s", cand.Digest))
	}
	return store.DriftIndex{}, "", errors.Join(errs...)
}

func (c *Checker) buildFrom(ctx context.Context, d name.Digest) (store.DriftIndex, error) {
	x := store.DriftIndex{Digest: d.DigestStr()}
	opts := append(slices.Clip(c.remotes.Options(d.RegistryStr())), remote.WithContext(ctx))
	c.log.Info("drift: reading image layers", "image", d.String())
	desc, err := remote.Get(d, opts...)
	if err != nil {
		return x, fmt.Errorf("%s: %w", d, err)
	}
	var img v1.Image
	switch {
	case desc.MediaType.IsIndex():
		var m v1.Descriptor
		if img, m, err = correlate.PlatformImage(desc, c.opts.Platform); err != nil {
			return x, fmt.Errorf("%s: %w", d, err)
		}
		x.Manifest = m.Digest.String()
	case desc.MediaType.IsImage():
		if img, err = desc.Image(); err != nil {
			return x, fmt.Errorf("%s: %w", d, err)
		}
	default:
		return x, fmt.Errorf("%s: media type %s is neither an image nor an index", d, desc.MediaType)
	}
	idx, err := drift.Build(ctx, img, c.opts.Limits)
	if err != nil {
		return x, fmt.Errorf("%s: %w", d, err)
	}
	if x.Encoded, err = drift.Encode(idx); err != nil {
		return x, err
	}
	x.Files, x.Truncated, x.Notes, x.Bytes = len(idx.Files), idx.Truncated, idx.Notes, idx.Bytes
	return x, nil
}

// judge judges the aggregates due under the rules, a batch at a time, image by image. It takes the rules in
// force once, so each finding is stored with the fingerprint of the rules that judged it; a reload meanwhile
// makes them due again at the next pass.
func (c *Checker) judge(ctx context.Context) error {
	pol := c.opts.Current()
	fp := pol.Fingerprint()
	counts := map[drift.Verdict]int{}
	drifted := 0
	for range maxJudgeBatches {
		due, err := c.st.DriftDue(ctx, fp, judgeBatch)
		if err != nil || len(due) == 0 {
			c.logJudged(counts, drifted)
			return err
		}
		var out []store.DriftFinding
		for _, a := range due {
			idx, err := c.index(ctx, a.Digest)
			if err != nil {
				if errors.Is(err, errUnreadable) {
					continue // the index is to be built again; its aggregates are no longer due
				}
				return err
			}
			repos := repositories(a.Refs)
			j := pol.Judge(drift.Decide(idx.files, idx.truncated, a.Path, a.SHA256), repos, a.Path)
			counts[j.Verdict]++
			if j.Severity != "none" {
				drifted++
			}
			out = append(out, store.DriftFinding{DriftAggregate: a, Verdict: string(j.Verdict), Severity: j.Severity,
				AllowedBy: j.AllowedBy, Repositories: repos, Fingerprint: fp})
		}
		if err := c.st.PutDriftFindings(ctx, out); err != nil {
			return err
		}
		if len(due) < judgeBatch {
			break
		}
	}
	c.logJudged(counts, drifted)
	return nil
}

func (c *Checker) logJudged(counts map[drift.Verdict]int, drifted int) {
	if len(counts) == 0 {
		return
	}
	level := slog.LevelInfo
	if drifted > 0 {
		level = slog.LevelWarn
	}
	c.log.Log(context.Background(), level, "drift: programs judged", "drift_with_severity", drifted,
		"in_image", counts[drift.InImage], "modified", counts[drift.Modified], "added", counts[drift.Added],
		"memory", counts[drift.Memory], "unknown", counts[drift.Unknown])
}

var errUnreadable = errors.New("stored drift index unreadable")

// index returns a digest's decoded index, from the cache or the store. A stored index that does not decode is
// marked failed, so the next pass builds it again.
func (c *Checker) index(ctx context.Context, digest string) (cached, error) {
	if x, ok := c.cache.get(digest); ok {
		return x, nil
	}
	enc, truncated, err := c.st.LoadDriftIndex(ctx, digest)
	if err != nil {
		return cached{}, err
	}
	files, err := drift.Decode(enc)
	if err != nil {
		c.log.Warn("drift: stored index unreadable; it will be built again", "digest", digest, "error", err)
		if ferr := c.st.FailDriftIndex(ctx, digest, err.Error(), time.Now()); ferr != nil {
			return cached{}, ferr
		}
		return cached{}, errUnreadable
	}
	x := cached{files: files, truncated: truncated}
	c.cache.put(digest, x)
	return x, nil
}

// repositories are the repositories (registry/repository) an image's references name, as the allow rules' image
// globs match them; Docker Hub is docker.io.
func repositories(refs []string) []string {
	var out []string
	for _, ref := range refs {
		if reg, repo, ok := placement.SplitRef(ref); ok && !slices.Contains(out, reg+"/"+repo) {
			out = append(out, reg+"/"+repo)
		}
	}
	return out
}
