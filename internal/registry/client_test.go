package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runtrust/runtrust/internal/registry/registrytest"
)

// countingObserver counts what the client reports.
type countingObserver struct {
	lookups, hits atomic.Int64
	mu            sync.Mutex
	errors        map[Kind]int
	requests      map[string]int
}

func newObserver() *countingObserver {
	return &countingObserver{errors: map[Kind]int{}, requests: map[string]int{}}
}

func (o *countingObserver) Lookup(string) { o.lookups.Add(1) }
func (o *countingObserver) CacheHit()     { o.hits.Add(1) }
func (o *countingObserver) Error(k Kind) {
	o.mu.Lock()
	o.errors[k]++
	o.mu.Unlock()
}
func (o *countingObserver) Request(m string) {
	o.mu.Lock()
	o.requests[m]++
	o.mu.Unlock()
}

func newClient(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

func repoOn(reg *registrytest.Registry, repo string) Repo {
	return Repo{Registry: reg.Host, Repository: repo}
}

// TestSingleflight: 100 callers asking for one tag at once make one manifest request.
func TestSingleflight(t *testing.T) {
	reg := registrytest.Start(t)
	d := reg.PushImage(t, "app/one:1")
	reg.SetDelay(300 * time.Millisecond) // keep the first request open while the others arrive
	before := reg.Requests("HEAD", "manifests")
	c := newClient(t, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := c.Tag(context.Background(), repoOn(reg, "app/one"), "1")
			if err == nil && a.Digest != d {
				err = errors.New("wrong digest " + a.Digest)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := reg.Requests("HEAD", "manifests") - before; got != 1 {
		t.Fatalf("%d manifest requests for one tag, want 1", got)
	}
}

// TestNegativeCache: a 404 is kept for the negative TTL, then asked again.
func TestNegativeCache(t *testing.T) {
	reg := registrytest.Start(t)
	reg.PushImage(t, "app/one:1")
	before := reg.Requests("HEAD", "manifests")
	c := newClient(t, Options{Cache: CacheConfig{TTL: time.Minute, NegativeTTL: 300 * time.Millisecond}})
	for range 5 {
		_, err := c.Tag(context.Background(), repoOn(reg, "app/one"), "gone")
		var re *Error
		if !errors.As(err, &re) || re.Kind != KindNotFound {
			t.Fatalf("err = %v, want not_found", err)
		}
	}
	if got := reg.Requests("HEAD", "manifests") - before; got != 1 {
		t.Fatalf("%d requests within the negative TTL, want 1", got)
	}
	time.Sleep(400 * time.Millisecond)
	_, _ = c.Tag(context.Background(), repoOn(reg, "app/one"), "gone")
	if got := reg.Requests("HEAD", "manifests") - before; got != 2 {
		t.Fatalf("%d requests after the negative TTL, want 2", got)
	}
}

// TestRefreshNoticesMovedTag: with nobody asking, the refresh re-resolves a tag in use within one TTL.
func TestRefreshNoticesMovedTag(t *testing.T) {
	reg := registrytest.Start(t)
	v1 := reg.PushImage(t, "app/one:latest")
	c := newClient(t, Options{Cache: CacheConfig{TTL: 400 * time.Millisecond, NegativeTTL: 100 * time.Millisecond, Refresh: true}})
	repo := repoOn(reg, "app/one")
	a, err := c.Tag(context.Background(), repo, "latest")
	if err != nil || a.Digest != v1 {
		t.Fatalf("got %v, %v", a, err)
	}
	v2 := reg.PushImage(t, "app/one:latest")
	deadline := time.Now().Add(20 * time.Second)
	for {
		a, _, ok := c.Cached(repo, "latest")
		if ok && a.Digest == v2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache still says %s; the refresh never noticed the move to %s", a.Digest, v2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A tag nobody asks about is not refreshed forever: after two TTLs unused, it is dropped.
	deadline = time.Now().Add(20 * time.Second)
	for {
		if _, _, ok := c.Cached(repo, "latest"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an unused tag is still refreshed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRetryAfter: a 429 blocks the registry for as long as Retry-After says; during the block nothing is sent.
func TestRetryAfter(t *testing.T) {
	var limited atomic.Bool
	reg := registrytest.Start(t, registrytest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if limited.Load() && strings.Contains(r.URL.Path, "/manifests/") {
				w.Header().Set("Retry-After", "1")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`))
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	d := reg.PushImage(t, "app/one:1")
	limited.Store(true)
	obs := newObserver()
	c := newClient(t, Options{Observer: obs, Cache: CacheConfig{TTL: time.Minute, NegativeTTL: 50 * time.Millisecond}})
	repo := repoOn(reg, "app/one")
	_, err := c.Tag(context.Background(), repo, "1")
	var re *Error
	if !errors.As(err, &re) || re.Kind != KindRateLimited {
		t.Fatalf("err = %v, want rate_limited", err)
	}
	after429 := reg.Requests("HEAD", "manifests")
	limited.Store(false)
	// Within the Retry-After second, other lookups fail fast without a request.
	_, err = c.Digest(context.Background(), repo, d)
	if !errors.As(err, &re) || re.Kind != KindRateLimited || !strings.Contains(re.Detail, "Retry-After") {
		t.Fatalf("err = %v, want rate_limited waiting for Retry-After", err)
	}
	if got := reg.Requests("HEAD", "manifests"); got != after429 {
		t.Fatalf("%d requests during the Retry-After block", got-after429)
	}
	// After it, the registry is asked again.
	time.Sleep(1100 * time.Millisecond)
	if a, err := c.Digest(context.Background(), repo, d); err != nil || a.Digest != d {
		t.Fatalf("after Retry-After: %v, %v", a, err)
	}
}

// TestConcurrencyLimit: max_concurrent bounds the requests open to a registry.
func TestConcurrencyLimit(t *testing.T) {
	var open, peak atomic.Int64
	reg := registrytest.Start(t, registrytest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := open.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			defer open.Add(-1)
			if r.Method == http.MethodHead {
				time.Sleep(50 * time.Millisecond)
			}
			next.ServeHTTP(w, r)
		})
	}))
	var digests []string
	for range 6 {
		digests = append(digests, reg.PushImage(t, "app/one:x"))
	}
	peak.Store(0)
	c := newClient(t, Options{Hosts: []HostConfig{{Host: reg.Host, Limits: LimitsConfig{MaxConcurrent: 2, RateLimit: 1000, Burst: 1000}}}})
	var wg sync.WaitGroup
	for _, d := range digests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Digest(context.Background(), repoOn(reg, "app/one"), d); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 2 || p < 1 {
		t.Fatalf("peak of %d open requests, want at most 2", p)
	}
}

// TestRateLimit: rate_limit spaces requests out; a caller whose deadline comes first is told so.
func TestRateLimit(t *testing.T) {
	reg := registrytest.Start(t)
	var digests []string
	for range 4 {
		digests = append(digests, reg.PushImage(t, "app/one:x"))
	}
	c := newClient(t, Options{Hosts: []HostConfig{{Host: reg.Host, Limits: LimitsConfig{RateLimit: 5, Burst: 1}}}})
	began := time.Now()
	for _, d := range digests {
		if _, err := c.Digest(context.Background(), repoOn(reg, "app/one"), d); err != nil {
			t.Fatal(err)
		}
	}
	// Four lookups plus the ping at 5/s with a burst of 1: at least 4 intervals of 200ms.
	if took := time.Since(began); took < 700*time.Millisecond {
		t.Fatalf("5 requests at 5/s took %s", took)
	}
}

// TestHeadWithoutDigest: a registry whose HEAD lacks Docker-Content-Digest is asked with a GET, which is
// counted.
func TestHeadWithoutDigest(t *testing.T) {
	var strip atomic.Bool
	reg := registrytest.Start(t, registrytest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strip.Load() && r.Method == http.MethodHead {
				next.ServeHTTP(headerStripper{w}, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	d := reg.PushImage(t, "app/one:1")
	index, _ := reg.PushIndex(t, "app/multi:1")
	strip.Store(true)
	obs := newObserver()
	c := newClient(t, Options{Observer: obs})
	gets := reg.Requests("GET", "manifests")
	a, err := c.Tag(context.Background(), repoOn(reg, "app/one"), "1")
	if err != nil || a.Digest != d {
		t.Fatalf("got %v, %v", a, err)
	}
	a, err = c.Tag(context.Background(), repoOn(reg, "app/multi"), "1")
	if err != nil || a.Digest != index || len(a.Manifests) != 2 {
		t.Fatalf("got %+v, %v", a, err)
	}
	if got := reg.Requests("GET", "manifests") - gets; got != 2 {
		t.Fatalf("%d GETs, want one per lookup (the index body came with its GET)", got)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.requests["GET"] < 2 {
		t.Fatalf("GETs not counted: %v", obs.requests)
	}
}

type headerStripper struct{ http.ResponseWriter }

func (h headerStripper) WriteHeader(code int) {
	h.Header().Del("Docker-Content-Digest")
	h.ResponseWriter.WriteHeader(code)
}

// TestIndexContentCached: an index's platform list is fetched once, whatever the TTL.
func TestIndexContentCached(t *testing.T) {
	reg := registrytest.Start(t)
	index, platforms := reg.PushIndex(t, "app/multi:1")
	c := newClient(t, Options{Cache: CacheConfig{TTL: 100 * time.Millisecond, NegativeTTL: 50 * time.Millisecond}})
	gets := reg.Requests("GET", "manifests")
	for range 3 {
		a, err := c.Tag(context.Background(), repoOn(reg, "app/multi"), "1")
		if err != nil || a.Digest != index {
			t.Fatalf("got %v, %v", a, err)
		}
		if p, ok := a.Lists(platforms[1]); !ok || p.Platform != "linux/arm64" {
			t.Fatalf("index lists %+v", a.Manifests)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if got := reg.Requests("GET", "manifests") - gets; got != 1 {
		t.Fatalf("%d GETs of the index, want 1", got)
	}
}

// TestCallerDeadline: a caller that gives up gets KindTimeout at once; the lookup goes on and is cached.
func TestCallerDeadline(t *testing.T) {
	reg := registrytest.Start(t)
	d := reg.PushImage(t, "app/one:1")
	reg.SetDelay(time.Second)
	obs := newObserver()
	c := newClient(t, Options{Observer: obs})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Tag(ctx, repoOn(reg, "app/one"), "1")
	var re *Error
	if !errors.As(err, &re) || re.Kind != KindTimeout {
		t.Fatalf("err = %v, want timeout", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if a, err, ok := c.Cached(repoOn(reg, "app/one"), "1"); ok {
			if err != nil || a.Digest != d {
				t.Fatalf("cached %v, %v", a, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lookup never landed in the cache")
		}
		time.Sleep(20 * time.Millisecond)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.errors[KindTimeout] != 1 || obs.lookups.Load() != 1 {
		t.Fatalf("observer: errors %v, lookups %d", obs.errors, obs.lookups.Load())
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, tt := range []struct {
		opts    Options
		wantErr string
	}{
		{Options{Cache: CacheConfig{TTL: time.Second, NegativeTTL: time.Minute}}, "negative_ttl"},
		{Options{Hosts: []HostConfig{{Host: "bad host"}}}, "registries[0].host"},
		{Options{Hosts: []HostConfig{{Host: "r.example", TLS: TLSConfig{CAFile: "/nonexistent/ca.pem"}}}}, "registries[0].tls.ca_file"},
		// Every entry is compiled before New gives up: the second entry's error is reported too.
		{Options{Hosts: []HostConfig{{Host: "bad host"}, {Host: "r.example", Limits: LimitsConfig{Burst: -1}}}}, "registries[1].burst"},
		{Options{Hosts: []HostConfig{{Host: "r.example", Auth: AuthConfig{TokenFile: "/nonexistent/token"}}}}, "registries[0].auth.token_file"},
		{Options{Credentials: CredentialsConfig{PullSecretFiles: []string{"/nonexistent/secret"}}}, "pull_secret_files[0]"},
	} {
		if _, err := New(tt.opts); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tt.opts, err, tt.wantErr)
		}
	}
}

// TestPullSecretRotation: a pull secret mounted the Kubernetes way (a symlink swapped to a new directory) is read
// again once it changes, so a lookup refused with the old password succeeds with the new one without a new
// client; a secret that stops parsing keeps the last good credentials, and the failure is reported once.
func TestPullSecretRotation(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithBasicAuth("ci", "new-password"))
	d := reg.PushImage(t, "app/one:1")
	reg.PushImage(t, "app/one:2")
	reg.PushImage(t, "app/one:3")

	dir := t.TempDir()
	version := 0
	mount := func(content string) { // what the kubelet does on a secret update
		version++
		data := filepath.Join(dir, fmt.Sprintf("..v%d", version))
		if err := os.Mkdir(data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, ".dockerconfigjson"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(data), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	secret := func(password string) string {
		return fmt.Sprintf(`{"auths":{%q:{"username":"ci","password":%q}}}`, reg.Host, password)
	}
	mount(secret("old-password"))
	file := filepath.Join(dir, ".dockerconfigjson")
	if err := os.Symlink("..data/.dockerconfigjson", file); err != nil {
		t.Fatal(err)
	}

	clock := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	var reloads []error
	c := newClient(t, Options{
		Credentials: CredentialsConfig{PullSecretFiles: []string{file}},
		Now:         func() time.Time { mu.Lock(); defer mu.Unlock(); return clock },
		CredentialsReloaded: func(err error) {
			mu.Lock()
			defer mu.Unlock()
			reloads = append(reloads, err)
		},
	})
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	kindOf := func(err error) Kind {
		var re *Error
		if errors.As(err, &re) {
			return re.Kind
		}
		return ""
	}
	lookup := func(tag string) (Answer, error) {
		return c.Tag(context.Background(), repoOn(reg, "app/one"), tag)
	}

	if _, err := lookup("1"); kindOf(err) != KindUnauthorized {
		t.Fatalf("with the old password: %v, want %s", err, KindUnauthorized)
	}
	mount(secret("new-password"))
	advance(time.Second) // within the check interval: not read yet
	if _, err := lookup("2"); kindOf(err) != KindUnauthorized {
		t.Fatalf("1 s after the rotation: %v, want %s (the files are checked every %v)", err, KindUnauthorized, credentialsCheckEvery)
	}
	advance(credentialsCheckEvery)
	a, err := lookup("3")
	if err != nil || a.Digest == "" {
		t.Fatalf("after the rotation: %v", err)
	}
	mu.Lock()
	if len(reloads) != 1 || reloads[0] != nil {
		t.Fatalf("reloads %v, want one without error", reloads)
	}
	mu.Unlock()

	mount(`{"auths": not json`)
	advance(credentialsCheckEvery)
	if a, err := c.Digest(context.Background(), repoOn(reg, "app/one"), d); err != nil || a.Digest != d {
		t.Fatalf("with a broken secret the last good credentials should stay: %v", err)
	}
	advance(credentialsCheckEvery)
	_, _ = lookup("1")
	mu.Lock()
	defer mu.Unlock()
	if len(reloads) != 2 || reloads[1] == nil || !strings.Contains(reloads[1].Error(), "pull_secret_files[0]") {
		t.Fatalf("reloads %v, want a second one naming pull_secret_files[0], reported once", reloads)
	}
}
