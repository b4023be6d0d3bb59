package provenance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runtrust/runtrust/internal/periodic"
	"github.com/runtrust/runtrust/runtime-service/internal/correlate"
	"github.com/runtrust/runtrust/runtime-service/internal/placement"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// Defaults for zero-valued options.
const (
	DefaultInterval    = 15 * time.Second
	DefaultConcurrency = 2
	// DefaultRecheck: a checked digest is checked again this long after, since a signature or attestation may
	// be attached (or removed) after the image started.
	DefaultRecheck = time.Hour
	DefaultRetry   = time.Minute
	MaxRetry       = time.Hour
	batch          = 64
)

// Options configure a Checker.
type Options struct {
	Policy *Policy
	// Current, when not nil, returns the policy in force at each pass instead of Policy: a reloaded file
	// replaces it while the checker runs, and its new fingerprint makes every digest due again.
	Current func() *Policy
	// Registries are the configured registries: an image on one of their hosts is read with its credentials,
	// TLS settings and limits; any other anonymously.
	Registries  []correlate.Registry
	Interval    time.Duration
	Concurrency int
	Recheck     time.Duration
}

// Checker checks the running digests in the background and keeps the results in the store.
type Checker struct {
	st      *store.Store
	log     *slog.Logger
	opts    Options
	remotes *correlate.Remotes
}

// New returns a Checker.
func New(st *store.Store, opts Options, log *slog.Logger) *Checker {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Recheck <= 0 {
		opts.Recheck = DefaultRecheck
	}
	if opts.Current == nil {
		p := opts.Policy
		opts.Current = func() *Policy { return p }
	}
	c := &Checker{st: st, log: log, opts: opts, remotes: correlate.NewRemotes(opts.Registries)}
	return c
}

// Run does passes until ctx ends.
func (c *Checker) Run(ctx context.Context) { periodic.NowAndEvery(ctx, c.opts.Interval, c.Pass) }

// Pass checks the digests that are due, Concurrency at a time. The pass takes the policy in force once: the
// digests due under its fingerprint are checked, and stored, under that same policy even if a reload replaces
// it meanwhile (the next pass then finds them due again).
func (c *Checker) Pass(ctx context.Context) {
	pol := c.opts.Current()
	cands, err := c.st.ProvenanceCandidates(ctx, pol.Fingerprint, batch)
	if err != nil {
		c.log.Warn("signatures and provenance: listing the images due", "error", err)
		return
	}
	periodic.Each(ctx, c.opts.Concurrency, cands, func(ctx context.Context, cand store.ProvenanceCandidate) {
		c.checkOne(ctx, pol, cand)
	})
}

func (c *Checker) checkOne(ctx context.Context, pol *Policy, cand store.ProvenanceCandidate) {
	res, err := c.check(ctx, pol, cand)
	if err == nil {
		var raw []byte
		if raw, err = json.Marshal(res); err == nil {
			err = c.st.PutProvenance(ctx, store.ProvenanceCheck{Digest: cand.Digest, Fingerprint: pol.Fingerprint,
				Status: res.Status, Rule: res.Rule, Findings: codesOf(res), Severity: res.Severity, Result: raw, Next: time.Now().Add(c.opts.Recheck)})
		}
		if err == nil {
			level := slog.LevelInfo
			if res.Status == StatusFinding {
				level = slog.LevelWarn
			}
			c.log.Log(ctx, level, "signatures and provenance checked", "digest", cand.Digest, "ref", res.Ref, "rule", res.Rule,
				"status", res.Status, "findings", codesOf(res), "signatures", len(res.Signatures), "provenance", len(res.Provenance))
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	retry := min(DefaultRetry<<min(cand.Attempts, 10), MaxRetry)
	c.log.Warn("signatures and provenance not checked; will retry", "digest", cand.Digest, "refs", cand.Refs,
		"attempt", cand.Attempts+1, "retry_in", retry.String(), "error", err)
	if ferr := c.st.FailProvenance(ctx, cand.Digest, pol.Fingerprint, err.Error(), time.Now().Add(retry)); ferr != nil {
		c.log.Warn("signatures and provenance: recording the failure", "digest", cand.Digest, "error", ferr)
	}
}

func codesOf(r Result) []string {
	out := make([]string, len(r.Findings))
	for i, f := range r.Findings {
		out[i] = f.Code
	}
	return out
}

// check checks a digest in the repository of the first of its references a rule selects (else of its first
// reference): the signatures are looked for where the rule applies. A reference whose registry fails makes way
// for the next one the same rule selects.
func (c *Checker) check(ctx context.Context, pol *Policy, cand store.ProvenanceCandidate) (Result, error) {
	type target struct {
		d    name.Digest
		rule *Rule
	}
	var targets []target
	var errs []error
	for _, ref := range cand.Refs {
		d, err := c.remotes.DigestRef(ref, cand.Digest)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		reg, repo, _ := placement.SplitRef(d.String())
		targets = append(targets, target{d, pol.RuleFor(reg, repo)})
	}
	if len(targets) == 0 {
		if len(errs) == 0 {
			return Result{}, fmt.Errorf("no image reference names %s", cand.Digest)
		}
		return Result{}, errors.Join(errs...)
	}
	// The first rule that selects one of the references decides; without any, the first reference is read.
	first := targets[0]
	for _, t := range targets {
		if t.rule != nil {
			first = t
			break
		}
	}
	for _, t := range targets {
		if t.rule != first.rule || ctx.Err() != nil {
			continue
		}
		res, err := Check(t.d, pol, t.rule, append(slices.Clip(c.remotes.Options(t.d.RegistryStr())), remote.WithContext(ctx)))
		if err == nil {
			return res, nil
		}
		errs = append(errs, err)
	}
	return Result{}, errors.Join(errs...)
}
