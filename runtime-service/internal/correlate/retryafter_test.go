package correlate_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runtrust/runtrust/internal/registry/registrytest"
	"github.com/runtrust/runtrust/runtime-service/internal/correlate"
	"github.com/runtrust/runtrust/runtime-service/internal/store"
)

// TestRetryAfterHoldsTheRegistry: a real registry on loopback answers one manifest HEAD with 429 and
// "Retry-After: 2" while the correlator resolves tags four at a time. The registry transport (internal/registry's)
// holds every request to the registry until the Retry-After ends, not only the one refused: nothing reaches the
// registry in the window, and the listing then completes with every tag.
func TestRetryAfterHoldsTheRegistry(t *testing.T) {
	const retryAfter = 2 * time.Second
	var (
		armed    atomic.Bool
		mu       sync.Mutex
		limitAt  time.Time   // when the 429 was written
		arrivals []time.Time // every request after it
	)
	reg := registrytest.Start(t, registrytest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			now := time.Now()
			isHead := r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/")
			if isHead && armed.CompareAndSwap(true, false) {
				mu.Lock()
				limitAt = now
				mu.Unlock()
				w.Header().Set("Retry-After", fmt.Sprint(int(retryAfter/time.Second)))
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			mu.Lock()
			if !limitAt.IsZero() {
				arrivals = append(arrivals, now)
			}
			mu.Unlock()
			if isHead {
				// The HEADs in flight with the refused one answer late, so that, without the registry-wide
				// block, their goroutines would send the next tags' HEADs well inside the Retry-After.
				time.Sleep(500 * time.Millisecond)
			}
			next.ServeHTTP(w, r)
		})
	}))
	const tags = 12
	for i := range tags {
		reg.PushImage(t, fmt.Sprintf("app/web:%d", i))
	}
	regs, err := correlate.Parse([]byte(fmt.Sprintf(`registries:
  - name: local
    kind: oci
    url: http://%s
    tls: {insecure: true}
    max_concurrent: 4
    rate_limit: 100
    burst: 100
`, reg.Host)), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	st := openStore(t, clk)
	m := correlate.NewMetrics(prometheus.NewRegistry())
	cor, err := correlate.New(ctx, st, regs, quiet, m, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	if err := cor.Refresh(ctx, "local"); err != nil {
		t.Fatal(err)
	}
	if v := value(m.Refreshes("local", store.RegistryOK)); v != 1 {
		t.Fatalf("refreshes ok = %v; the listing was not complete", v)
	}
	if v := value(m.Artifacts("local")); v != tags {
		t.Fatalf("%v tags listed, want %d", v, tags)
	}
	mu.Lock()
	defer mu.Unlock()
	if limitAt.IsZero() {
		t.Fatal("the registry never answered 429")
	}
	// Requests sent before the client read the 429 arrive at once; anything later than that inside the
	// Retry-After was sent during the block.
	windowStart, windowEnd := limitAt.Add(250*time.Millisecond), limitAt.Add(retryAfter)
	retried := false
	for _, at := range arrivals {
		if at.After(windowStart) && at.Before(windowEnd) {
			t.Errorf("a request reached the registry %s after its 429, inside the %s Retry-After", at.Sub(limitAt), retryAfter)
		}
		retried = retried || !at.Before(windowEnd)
	}
	if !retried {
		t.Fatal("nothing was sent after the Retry-After ended")
	}
}
