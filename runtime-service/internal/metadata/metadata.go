// Package metadata reads the labels of running artifacts from their registries, for the placement rules that
// select by a label or take their places from one (docs/placement.md): an image's manifest annotations and its
// config's labels, an index's annotations. A digest's content never changes, so each digest is read once and
// kept in the store (a failure is tried again later, with backoff); the store then decides its placements
// again. Artifactory properties, which do change, are read by the correlator with each listing instead.
package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runtrust/runtrust/internal/periodic"
	"github.com/runtrust/runtrust/runtime-service/internal/correlate"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// Defaults for zero-valued options.
const (
	DefaultInterval    = 15 * time.Second
	DefaultConcurrency = 2
	DefaultRetry       = time.Minute
	MaxRetry           = time.Hour
	batch              = 64
)

// Options configure a Reader.
type Options struct {
	// Registries are the configured registries: an image on one of their hosts is read with its credentials,
	// TLS settings and limits; any other anonymously.
	Registries  []correlate.Registry
	Interval    time.Duration
	Concurrency int
	// Active, when not nil, says at each pass whether labels are wanted (the placement policy in force reads
	// them): a reloadable policy may come to read labels, or stop, while the reader runs. Nil: always.
	Active func() bool
}

// Reader reads the labels of the running digests that have none stored, in the background.
type Reader struct {
	st      *store.Store
	log     *slog.Logger
	opts    Options
	remotes *correlate.Remotes
}

// New returns a Reader.
func New(st *store.Store, opts Options, log *slog.Logger) *Reader {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	r := &Reader{st: st, log: log, opts: opts, remotes: correlate.NewRemotes(opts.Registries)}
	return r
}

// Run does passes until ctx ends.
func (r *Reader) Run(ctx context.Context) { periodic.NowAndEvery(ctx, r.opts.Interval, r.Pass) }

// Pass reads the labels of the digests that are due, Concurrency at a time.
func (r *Reader) Pass(ctx context.Context) {
	if r.opts.Active != nil && !r.opts.Active() {
		return
	}
	cands, err := r.st.LabelCandidates(ctx, batch)
	if err != nil {
		r.log.Warn("artifact labels: listing the images due", "error", err)
		return
	}
	periodic.Each(ctx, r.opts.Concurrency, cands, r.readOne)
}

func (r *Reader) readOne(ctx context.Context, c store.LabelCandidate) {
	labels, ref, err := r.read(ctx, c)
	if err == nil {
		err = r.st.PutLabels(ctx, c.Digest, labels, ref)
		if err == nil {
			r.log.Info("artifact labels read", "digest", c.Digest, "ref", ref, "labels", len(labels))
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	retry := min(DefaultRetry<<min(c.Attempts, 10), MaxRetry)
	r.log.Warn("artifact labels not read; placement rules that need them wait", "digest", c.Digest, "refs", c.Refs,
		"attempt", c.Attempts+1, "retry_in", retry.String(), "error", err)
	if ferr := r.st.FailLabels(ctx, c.Digest, err.Error(), time.Now().Add(retry)); ferr != nil {
		r.log.Warn("artifact labels: recording the failure", "digest", c.Digest, "error", ferr)
	}
}

// read gets a digest's labels through the first of its references that works.
func (r *Reader) read(ctx context.Context, c store.LabelCandidate) (map[string]string, string, error) {
	var errs []error
	for _, ref := range c.Refs {
		d, err := r.remotes.DigestRef(ref, c.Digest)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		labels, err := Read(ctx, d, r.remotes.Options(d.RegistryStr())...)
		if err == nil {
			return labels, d.String(), nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, "", fmt.Errorf("no image reference names %s", c.Digest)
	}
	return nil, "", errors.Join(errs...)
}

// Read returns the labels of the artifact d names: an image's config labels with its manifest's annotations
// over them (an annotation wins over a label of the same key), or an index's annotations.
func Read(ctx context.Context, d name.Digest, opts ...remote.Option) (map[string]string, error) {
	opts = append(opts[:len(opts):len(opts)], remote.WithContext(ctx))
	desc, err := remote.Get(d, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: fetch manifest: %w", d, err)
	}
	labels := map[string]string{}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("%s: read index: %w", d, err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("%s: read index: %w", d, err)
		}
		maps.Copy(labels, m.Annotations)
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return nil, fmt.Errorf("%s: read manifest: %w", d, err)
		}
		var cf *v1.ConfigFile
		if cf, err = img.ConfigFile(); err != nil {
			return nil, fmt.Errorf("%s: read config: %w", d, err)
		}
		maps.Copy(labels, cf.Config.Labels)
		m, err := img.Manifest()
		if err != nil {
			return nil, fmt.Errorf("%s: read manifest: %w", d, err)
		}
		maps.Copy(labels, m.Annotations)
	default:
		return nil, fmt.Errorf("%s: media type %s is neither an image nor an index", d, desc.MediaType)
	}
	return labels, nil
}
