package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// TransportOptions say how to reach one registry. Both the Client (one per host it asks) and the runtime
// service's correlation (one per configured registry) build their registry transports from them, so TLS, the
// connection pool, the limits and Retry-After behave the same everywhere.
type TransportOptions struct {
	// Registry is the registry's host[:port], for error messages.
	Registry string
	// TLS is the compiled TLS settings (TLSConfig.ClientConfig); nil for the system's defaults.
	TLS *tls.Config
	// Limits bound the requests (zero fields: DefaultLimits). The idle connection pool is sized to
	// MaxConcurrent.
	Limits LimitsConfig
	// WaitRetryAfter makes a request sent while a 429's Retry-After lasts wait for it to end, when its context
	// allows that. Without it the request fails at once with KindRateLimited: a lookup that must never stall its
	// caller wants that, a background listing wants to wait.
	WaitRetryAfter bool
	// DefaultRetryAfter is how long a 429 without a usable Retry-After blocks the registry (default
	// DefaultNegativeTTL).
	DefaultRetryAfter time.Duration
	// Observer is told about every request sent; nil for none.
	Observer Observer
	// Now is the clock; nil for time.Now.
	Now func() time.Time
}

// Transport is the bottom of every request to one registry, token requests included: it waits out (or fails
// during) a 429's Retry-After, holds the concurrency limit and the rate limit, counts the request, and reads a
// 429's Retry-After to block the registry for that long.
type Transport struct {
	registry    string
	wait        bool
	defaultWait time.Duration
	now         func() time.Time
	obs         Observer
	sem         chan struct{}
	limiter     *rate.Limiter
	base        http.RoundTripper

	mu      sync.Mutex
	blocked time.Time
}

// NewTransport builds the transport for one registry.
func NewTransport(o TransportOptions) *Transport {
	limits := o.Limits.WithDefaults(DefaultLimits())
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = limits.MaxConcurrent
	if o.TLS != nil {
		base.TLSClientConfig = o.TLS
	}
	t := &Transport{
		registry:    o.Registry,
		wait:        o.WaitRetryAfter,
		defaultWait: o.DefaultRetryAfter,
		now:         o.Now,
		obs:         o.Observer,
		sem:         make(chan struct{}, limits.MaxConcurrent),
		limiter:     rate.NewLimiter(rate.Limit(limits.RateLimit), limits.Burst),
		base:        base,
	}
	if t.defaultWait <= 0 {
		t.defaultWait = DefaultNegativeTTL
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.obs == nil {
		t.obs = nopObserver{}
	}
	return t
}

// BlockedUntil is when the last 429's Retry-After ends (zero: never blocked).
func (t *Transport) BlockedUntil() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.blocked
}

func (t *Transport) block(until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if until.After(t.blocked) {
		t.blocked = until
	}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if err := t.waitRetryAfter(ctx); err != nil {
		return nil, err
	}
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-t.sem }()
	if err := t.limiter.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Wait refuses at once when the deadline comes before the next token.
		return nil, fmt.Errorf("rate_limit leaves no room before the deadline: %w", context.DeadlineExceeded)
	}
	t.obs.Request(req.Method)
	resp, err := t.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		now := t.now()
		wait, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), now)
		if !ok {
			wait = t.defaultWait
		}
		t.block(now.Add(wait))
	}
	return resp, err
}

// waitRetryAfter returns at once when the registry is not blocked. When it is, it fails with KindRateLimited,
// unless the transport waits and ctx lets it wait until the block ends.
func (t *Transport) waitRetryAfter(ctx context.Context) error {
	until := t.BlockedUntil()
	left := until.Sub(t.now())
	if left <= 0 {
		return nil
	}
	deadline, hasDeadline := ctx.Deadline()
	if !t.wait || hasDeadline && time.Until(deadline) < left {
		return &Error{Kind: KindRateLimited, Registry: t.registry, Status: http.StatusTooManyRequests,
			Detail: fmt.Sprintf("rate limited us; waiting until %s as its Retry-After asked", until.UTC().Format(time.RFC3339))}
	}
	timer := time.NewTimer(left)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ClientConfig compiles the TLS settings: the CA file read into a pool beside the system's, verification skipped
// only when configured. nil (with no error) when the system's defaults apply.
func (c TLSConfig) ClientConfig() (*tls.Config, error) {
	if c.CAFile == "" && !c.InsecureSkipVerify {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // only when configured
	if c.CAFile != "" {
		pool, err := LoadCAPool(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// LoadCAPool reads a PEM file of CAs to trust beside the system's (the collector's registry hosts and the
// runtime service's correlated registries both take a tls.ca_file).
func LoadCAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}
