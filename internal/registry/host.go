package registry

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/time/rate"
)

// host is the state kept for one registry: its limits, its Retry-After block and its puller (which keeps one
// authenticated transport per repository, so a lookup is one request, not a ping and a token exchange too).
type host struct {
	registry    string
	insecure    bool
	sem         chan struct{}
	limiter     *rate.Limiter
	defaultWait time.Duration
	now         func() time.Time
	pullerOpts  []remote.Option

	// The puller caches an authenticated transport per repository, so it is rebuilt when the credentials files
	// were read again (keychain generation).
	pmu       sync.Mutex
	puller    *remote.Puller
	pullerGen uint64

	mu      sync.Mutex
	blocked time.Time
}

// pullerFor returns the host's puller, rebuilt if the credentials changed since it was built.
func (h *host) pullerFor(k *keychain) (*remote.Puller, error) {
	k.refresh()
	gen := k.generation()
	h.pmu.Lock()
	defer h.pmu.Unlock()
	if h.puller == nil || h.pullerGen != gen {
		p, err := remote.NewPuller(h.pullerOpts...)
		if err != nil {
			return nil, err
		}
		h.puller, h.pullerGen = p, gen
	}
	return h.puller, nil
}

func newHostState(registry string, l LimitsConfig, defaultWait time.Duration, now func() time.Time) *host {
	return &host{
		registry:    registry,
		sem:         make(chan struct{}, l.MaxConcurrent),
		limiter:     rate.NewLimiter(rate.Limit(l.RateLimit), l.Burst),
		defaultWait: defaultWait,
		now:         now,
	}
}

// repository returns go-containerregistry's name for a repository on this host.
func (h *host) repository(repo Repo) (name.Repository, error) {
	var opts []name.Option
	if h.insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(repo.Registry+"/"+repo.Repository, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("repository %q: %w", repo, err)
	}
	return r, nil
}

func (h *host) blockedUntil() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.blocked
}

func (h *host) block(until time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if until.After(h.blocked) {
		h.blocked = until
	}
}

// limitedTransport is the bottom of every request to a host: it waits out a Retry-After, holds the concurrency
// limit and the rate limit, counts the request, and reads a 429's Retry-After.
type limitedTransport struct {
	h    *host
	base http.RoundTripper
	obs  Observer
}

func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if until := t.h.blockedUntil(); t.h.now().Before(until) {
		return nil, &Error{Kind: KindRateLimited, Registry: t.h.registry, Status: http.StatusTooManyRequests,
			Detail: fmt.Sprintf("rate limited us; waiting until %s as its Retry-After asked", until.UTC().Format(time.RFC3339))}
	}
	ctx := req.Context()
	select {
	case t.h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-t.h.sem }()
	if err := t.h.limiter.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Wait refuses at once when the deadline comes before the next token.
		return nil, fmt.Errorf("rate_limit leaves no room before the deadline: %w", context.DeadlineExceeded)
	}
	t.obs.Request(req.Method)
	resp, err := t.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		now := t.h.now()
		wait, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), now)
		if !ok {
			wait = t.h.defaultWait
		}
		t.h.block(now.Add(wait))
	}
	return resp, err
}
