package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/singleflight"

	"github.com/runtrust/runtrust/internal/configerr"
	"github.com/runtrust/runtrust/internal/imageref"
	"github.com/runtrust/runtrust/internal/registryrule"
)

// Options configures a Client.
type Options struct {
	// Hosts holds per-registry settings; the first entry whose host matches applies.
	Hosts []HostConfig
	// Defaults are the limits for registries without their own (zero fields: DefaultLimits).
	Defaults LimitsConfig
	// Credentials files apply to every registry they have an entry for, after Hosts' auth.
	Credentials CredentialsConfig
	// Cache TTLs and size (zero fields: DefaultCacheConfig, except Refresh).
	Cache CacheConfig
	// RequestTimeout bounds one lookup, which goes on after its caller gave up (default 30s).
	RequestTimeout time.Duration
	// SkipUnlisted answers KindNotConfigured for registries no Hosts entry matches, without asking them.
	SkipUnlisted bool
	// Observer is told about lookups, cache hits, errors and requests; nil for none.
	Observer Observer
	// UserAgent is sent with every request.
	UserAgent string
	// Now is the clock (tests); nil for time.Now.
	Now func() time.Time
	// CredentialsReloaded is told when the credentials files changed on disk and were read again (err nil), or
	// could not be (the credentials read before stay in use); nil for none.
	CredentialsReloaded func(err error)
}

// Observer receives the client's self-metrics. Methods are called concurrently.
type Observer interface {
	// Lookup: an answer came from the registry (not the cache). target is "tag" or "digest".
	Lookup(target string)
	// CacheHit: an answer (good or error) came from the cache.
	CacheHit()
	// Error: a lookup failed, or a caller gave up waiting (KindTimeout).
	Error(kind Kind)
	// Request: one HTTP request went to a registry (pings and token requests included).
	Request(method string)
}

type nopObserver struct{}

func (nopObserver) Lookup(string)  {}
func (nopObserver) CacheHit()      {}
func (nopObserver) Error(Kind)     {}
func (nopObserver) Request(string) {}

// Repo names a repository: a normalized registry (imageref's, e.g. "docker.io") and the path in it.
type Repo struct {
	Registry   string
	Repository string
}

// RepoOf returns the repository of an image reference.
func RepoOf(ref imageref.Reference) Repo {
	return Repo{Registry: ref.Registry, Repository: ref.Repository}
}

func (r Repo) String() string { return r.Registry + "/" + r.Repository }

// Answer is what the registry said about a tag or digest.
type Answer struct {
	// Digest is the manifest's digest (for a tag: what it points at now).
	Digest string
	// MediaType is the manifest's media type.
	MediaType string
	// Manifests lists the platform manifests when the manifest is an index.
	Manifests []Platform
	// CheckedAt is when the registry gave this answer.
	CheckedAt time.Time
}

// IsIndex reports whether the answer is an image index or manifest list.
func (a Answer) IsIndex() bool { return isIndex(a.MediaType) }

// Lists reports whether digest is one of the index's manifests, and which platform it is for.
func (a Answer) Lists(digest string) (Platform, bool) {
	for _, p := range a.Manifests {
		if p.Digest == digest {
			return p, true
		}
	}
	return Platform{}, false
}

// Client asks registries about tags and digests. It is safe for concurrent use; Start begins the background
// refresh, Close ends it and every lookup in flight.
type Client struct {
	opts     Options
	cache    CacheConfig
	now      func() time.Time
	obs      Observer
	keychain *keychain
	// configured is Options.Hosts compiled (rules parsed, CA and credentials files read) once, in New.
	configured []compiledHost

	ctx    context.Context // ends at Close; every lookup runs under it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	flights singleflight.Group

	mu      sync.RWMutex
	entries map[string]*entry

	contentMu sync.RWMutex
	content   map[string][]Platform // index digest → its manifests; content-addressed, never expires

	hostsMu sync.Mutex
	hosts   map[string]*host
}

// entry is one cached answer or error. Entries are replaced, never changed, except lastUsed.
type entry struct {
	repo     Repo
	ident    string // tag or digest
	isTag    bool
	ans      Answer
	err      *Error
	expires  time.Time
	lastGood time.Time
	lastUsed atomic.Int64 // unix nanoseconds
}

func (e *entry) result() (Answer, error) {
	if e.err != nil {
		return Answer{}, e.err
	}
	return e.ans, nil
}

// New builds a client, loading every CA and credentials file it names; errors name the field.
func New(opts Options) (*Client, error) {
	if opts.Cache.TTL == 0 {
		opts.Cache.TTL = DefaultTTL
	}
	if opts.Cache.NegativeTTL == 0 {
		opts.Cache.NegativeTTL = min(DefaultNegativeTTL, opts.Cache.TTL)
	}
	if opts.Cache.MaxEntries == 0 {
		opts.Cache.MaxEntries = DefaultMaxEntries
	}
	if err := opts.Cache.Validate(); err != nil {
		return nil, err
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	opts.Defaults = opts.Defaults.WithDefaults(DefaultLimits())
	c := &Client{
		opts:    opts,
		cache:   opts.Cache,
		now:     opts.Now,
		obs:     opts.Observer,
		entries: map[string]*entry{},
		content: map[string][]Platform{},
		hosts:   map[string]*host{},
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.obs == nil {
		c.obs = nopObserver{}
	}
	var errs []error
	for i, h := range opts.Hosts {
		ch, err := h.compile()
		errs = append(errs, configerr.Index("registries", i, err))
		c.configured = append(c.configured, ch)
	}
	// The credentials files are read even when an entry is bad, so that one start names every problem.
	kc, err := newKeychain(c.configured, opts.Credentials)
	errs = append(errs, configerr.Prefix("credentials", err))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	kc.now, kc.reloaded = c.now, opts.CredentialsReloaded
	c.keychain = kc
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Start begins the background refresh of the tags in use (when the cache config asks for it).
func (c *Client) Start() {
	if !c.cache.Refresh {
		return
	}
	c.wg.Add(1)
	go c.refreshLoop()
}

// Close stops the refresh and every lookup in flight, and waits for the refresh to end.
func (c *Client) Close() {
	c.cancel()
	c.wg.Wait()
}

// Tag asks what repo:tag points at. It returns when the answer is known or ctx ends, whichever is first; a
// lookup cut short by ctx goes on and its answer lands in the cache. Errors are *Error.
func (c *Client) Tag(ctx context.Context, repo Repo, tag string) (Answer, error) {
	return c.get(ctx, repo, tag, true)
}

// Digest asks whether repo holds the manifest digest (and, for an index, what it lists). A repository that
// does not hold it answers an *Error of KindNotFound.
func (c *Client) Digest(ctx context.Context, repo Repo, digest string) (Answer, error) {
	return c.get(ctx, repo, digest, false)
}

// Cached returns the cached answer for repo:tag without asking the registry or marking the tag in use.
func (c *Client) Cached(repo Repo, tag string) (Answer, error, bool) {
	c.mu.RLock()
	e := c.entries[key(repo, tag, true)]
	c.mu.RUnlock()
	if e == nil {
		return Answer{}, nil, false
	}
	a, err := e.result()
	return a, err, true
}

func key(repo Repo, ident string, isTag bool) string {
	sep := "@"
	if isTag {
		sep = ":"
	}
	return repo.Registry + "/" + repo.Repository + sep + ident
}

func (c *Client) get(ctx context.Context, repo Repo, ident string, isTag bool) (Answer, error) {
	now := c.now()
	k := key(repo, ident, isTag)
	c.mu.RLock()
	e := c.entries[k]
	c.mu.RUnlock()
	if e != nil && now.Before(e.expires) {
		e.lastUsed.Store(now.UnixNano())
		c.obs.CacheHit()
		return e.result()
	}
	h, err := c.host(repo.Registry)
	if err != nil {
		c.obs.Error(err.Kind)
		return Answer{}, err
	}
	ch := c.flights.DoChan(k, func() (any, error) {
		// A flight for k may have stored its answer and ended between this caller's cache miss above and its
		// DoChan: take that answer rather than ask again (under load this made a second request per tag).
		c.mu.RLock()
		fresh := c.entries[k]
		c.mu.RUnlock()
		if fresh != nil && c.now().Before(fresh.expires) {
			c.obs.CacheHit()
			return fresh, nil
		}
		return c.fetch(k, h, repo, ident, isTag), nil
	})
	select {
	case r := <-ch:
		fe := r.Val.(*entry)
		fe.lastUsed.Store(c.now().UnixNano())
		return fe.result()
	case <-ctx.Done():
		te := &Error{Kind: KindTimeout, Registry: repo.Registry,
			Detail: "no answer before the deadline; the lookup goes on and its answer will be cached"}
		if e != nil {
			te.LastGood = e.lastGood
			e.lastUsed.Store(now.UnixNano())
		}
		c.obs.Error(KindTimeout)
		return Answer{}, te
	}
}

// fetch asks the registry (under the client's context, not the caller's) and stores the answer.
func (c *Client) fetch(k string, h *host, repo Repo, ident string, isTag bool) *entry {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.RequestTimeout)
	defer cancel()
	ans, err := c.resolve(ctx, h, repo, ident, isTag)
	now := c.now()
	c.mu.RLock()
	old := c.entries[k]
	c.mu.RUnlock()
	e := &entry{repo: repo, ident: ident, isTag: isTag}
	if old != nil {
		e.lastGood = old.lastGood
		e.lastUsed.Store(old.lastUsed.Load())
	}
	if err == nil {
		ans.CheckedAt = now
		e.ans, e.lastGood, e.expires = ans, now, now.Add(c.cache.TTL)
		target := "digest"
		if isTag {
			target = "tag"
		}
		c.obs.Lookup(target)
	} else {
		re := classify(err, repo.Registry, c.keychain.has(repo))
		re.LastGood = e.lastGood
		e.err, e.expires = re, now.Add(c.cache.NegativeTTL)
		if until := h.blockedUntil(); until.After(e.expires) {
			e.expires = until
		}
		c.obs.Error(re.Kind)
		if c.ctx.Err() != nil {
			return e // closing: do not cache
		}
	}
	c.store(k, e)
	return e
}

func (c *Client) store(k string, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.cache.MaxEntries {
		c.evictLocked(c.now())
	}
	c.entries[k] = e
}

// evictLocked drops expired entries nobody used for two TTLs, then, if the cache is still full, the least
// recently used tenth.
func (c *Client) evictLocked(now time.Time) {
	idle := now.Add(-2 * c.cache.TTL).UnixNano()
	for k, e := range c.entries {
		if now.After(e.expires) && e.lastUsed.Load() < idle {
			delete(c.entries, k)
		}
	}
	if len(c.entries) < c.cache.MaxEntries {
		return
	}
	type kv struct {
		k    string
		used int64
	}
	all := make([]kv, 0, len(c.entries))
	for k, e := range c.entries {
		all = append(all, kv{k, e.lastUsed.Load()})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used < all[j].used })
	for _, x := range all[:len(all)/10+1] {
		delete(c.entries, x.k)
	}
}

// resolve makes the requests for one lookup: a manifest HEAD (a GET when the HEAD lacks the headers), and for
// an index not seen before, a GET of the index by digest.
func (c *Client) resolve(ctx context.Context, h *host, repo Repo, ident string, isTag bool) (Answer, error) {
	r, err := h.repository(repo)
	if err != nil {
		return Answer{}, &Error{Kind: KindRegistryError, Registry: repo.Registry, Detail: err.Error()}
	}
	var ref name.Reference
	if isTag {
		ref = r.Tag(ident)
	} else {
		ref = r.Digest(ident)
	}
	puller, err := h.pullerFor(c.keychain)
	if err != nil {
		return Answer{}, &Error{Kind: KindRegistryError, Registry: repo.Registry, Detail: err.Error()}
	}
	desc, err := puller.Head(ctx, ref)
	var ans Answer
	switch {
	case err == nil:
		ans = Answer{Digest: desc.Digest.String(), MediaType: string(desc.MediaType)}
	case headNeedsGet(err):
		// The HEAD answered 200 without Docker-Content-Digest or Content-Type: a GET tells (and counts as a pull
		// on registries that count them).
		d, gerr := puller.Get(ctx, ref)
		if gerr != nil {
			return Answer{}, gerr
		}
		ans = Answer{Digest: d.Digest.String(), MediaType: string(d.MediaType)}
		if ans.IsIndex() {
			ps, perr := ParseIndex(ans.MediaType, d.Manifest)
			if perr != nil {
				return Answer{}, &Error{Kind: KindRegistryError, Registry: repo.Registry, Detail: perr.Error()}
			}
			c.putContent(ans.Digest, ps)
		}
	default:
		return Answer{}, err
	}
	if ans.IsIndex() {
		ps, ok := c.getContent(ans.Digest)
		if !ok {
			d, err := puller.Get(ctx, r.Digest(ans.Digest))
			if err != nil {
				return Answer{}, err
			}
			if d.Digest.String() != ans.Digest {
				return Answer{}, &Error{Kind: KindRegistryError, Registry: repo.Registry,
					Detail: fmt.Sprintf("asked for index %s, got %s", ans.Digest, d.Digest)}
			}
			if ps, err = ParseIndex(string(d.MediaType), d.Manifest); err != nil {
				return Answer{}, &Error{Kind: KindRegistryError, Registry: repo.Registry, Detail: err.Error()}
			}
			c.putContent(ans.Digest, ps)
		}
		ans.Manifests = ps
	}
	return ans, nil
}

// headNeedsGet reports whether a HEAD failed only for missing headers (an HTTP 200 we cannot use).
func headNeedsGet(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return false
	}
	var re *Error
	if errors.As(err, &re) {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "did not include") && strings.HasPrefix(msg, "HEAD ") ||
		strings.Contains(msg, "response did not include Content-Length")
}

func (c *Client) getContent(digest string) ([]Platform, bool) {
	c.contentMu.RLock()
	defer c.contentMu.RUnlock()
	ps, ok := c.content[digest]
	return ps, ok
}

func (c *Client) putContent(digest string, ps []Platform) {
	c.contentMu.Lock()
	defer c.contentMu.Unlock()
	if len(c.content) >= c.cache.MaxEntries {
		n := 0
		for k := range c.content { // drop an arbitrary tenth; a dropped index is fetched again when needed
			delete(c.content, k)
			if n++; n > c.cache.MaxEntries/10 {
				break
			}
		}
	}
	c.content[digest] = ps
}

// refreshLoop re-resolves the tags in use before their entries expire, so that the answer a record gets is
// never older than one TTL and never waits for the registry.
func (c *Client) refreshLoop() {
	defer c.wg.Done()
	interval := min(max(c.cache.TTL/4, 50*time.Millisecond), time.Minute)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.refresh(interval)
		}
	}
}

// refresh starts a lookup for every tag entry used within the last two TTLs that expires within the next
// interval (twice, for slack), and drops what nobody uses any more.
func (c *Client) refresh(interval time.Duration) {
	now := c.now()
	inUse := now.Add(-2 * c.cache.TTL).UnixNano()
	soon := now.Add(2 * interval)
	type job struct {
		k string
		e *entry
	}
	var jobs []job
	c.mu.Lock()
	for k, e := range c.entries {
		used := e.lastUsed.Load() >= inUse
		switch {
		case e.isTag && used && e.expires.Before(soon):
			jobs = append(jobs, job{k, e})
		case !used && now.After(e.expires):
			delete(c.entries, k)
		}
	}
	c.mu.Unlock()
	for _, j := range jobs {
		h, err := c.host(j.e.repo.Registry)
		if err != nil {
			continue
		}
		j := j
		c.flights.DoChan(j.k, func() (any, error) {
			return c.fetch(j.k, h, j.e.repo, j.e.ident, true), nil
		})
	}
}

// host returns the per-registry state (limits, TLS, puller) for a normalized registry, building it on first use.
func (c *Client) host(registry string) (*host, *Error) {
	c.hostsMu.Lock()
	defer c.hostsMu.Unlock()
	if h, ok := c.hosts[registry]; ok {
		return h, nil
	}
	hostname, port, err := registryrule.SplitHostPort(registry)
	if err != nil {
		return nil, &Error{Kind: KindRegistryError, Registry: registry, Detail: err.Error()}
	}
	hostname = strings.ToLower(hostname)
	cfg := compiledHost{HostConfig: HostConfig{Host: registry}}
	listed := false
	for _, ch := range c.configured {
		if ch.rule.Matches(hostname, port, "") {
			cfg, listed = ch, true
			break
		}
	}
	if !listed && c.opts.SkipUnlisted {
		return nil, &Error{Kind: KindNotConfigured, Registry: registry,
			Detail: "is not listed in registries, and unlisted registries are not asked"}
	}
	h, err := c.newHost(registry, cfg)
	if err != nil {
		return nil, &Error{Kind: KindRegistryError, Registry: registry, Detail: err.Error()}
	}
	c.hosts[registry] = h
	return h, nil
}

func (c *Client) newHost(registry string, cfg compiledHost) (*host, error) {
	rt := NewTransport(TransportOptions{Registry: registry, TLS: cfg.tls, Limits: cfg.Limits.WithDefaults(c.opts.Defaults),
		DefaultRetryAfter: c.cache.NegativeTTL, Observer: c.obs, Now: c.now})
	h := &host{registry: registry, insecure: cfg.TLS.Insecure, rt: rt}
	opts := []remote.Option{
		remote.WithTransport(rt),
		remote.WithAuthFromKeychain(c.keychain),
		// One quick retry for a dropped connection or a 5xx; a 429 is not retried here but waited out by the
		// transport, as long as Retry-After says.
		remote.WithRetryBackoff(remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 2}),
		remote.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout),
	}
	if c.opts.UserAgent != "" {
		opts = append(opts, remote.WithUserAgent(c.opts.UserAgent))
	}
	h.pullerOpts = opts
	if _, err := h.pullerFor(c.keychain); err != nil {
		return nil, err
	}
	return h, nil
}

// keychain resolves credentials: per-registry auth first, then the credentials files, most specific first.
// The files are read again when they change on disk: Kubernetes updates a mounted pull secret in place (an
// atomic symlink swap), and a rotated registry password must not need a collector restart. At most one check per
// credentialsCheckEvery, before a lookup (host.pullerFor, which also rebuilds the puller after a reload); a file
// that no longer parses keeps the credentials read before.
type keychain struct {
	explicit []Credential
	paths    []credentialsPath
	now      func() time.Time
	reloaded func(error)

	mu      sync.RWMutex
	files   []Credential
	stamps  []fileStamp
	checked time.Time
	failed  []fileStamp // the stamps whose read failed: not retried until they change again
	gen     uint64      // counts successful reloads: a host's puller built before one is rebuilt
}

func (k *keychain) generation() uint64 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.gen
}

type credentialsPath struct{ field, path string }

// fileStamp is what a change of a credentials file changes: its identity (a symlink swap gives another file),
// size and modification time. nil: the file could not be found.
type fileStamp os.FileInfo

func sameStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		switch {
		case a[i] == nil || b[i] == nil:
			if a[i] != b[i] {
				return false
			}
		case !os.SameFile(a[i], b[i]) || a[i].Size() != b[i].Size() || !a[i].ModTime().Equal(b[i].ModTime()):
			return false
		}
	}
	return true
}

const credentialsCheckEvery = 10 * time.Second

func newKeychain(hosts []compiledHost, creds CredentialsConfig) (*keychain, error) {
	k := &keychain{now: time.Now}
	for _, h := range hosts {
		if h.auth != (authn.AuthConfig{}) {
			k.explicit = append(k.explicit, Credential{Rule: h.rule, Auth: h.auth})
		}
	}
	for i, f := range creds.DockerConfigFiles {
		k.paths = append(k.paths, credentialsPath{fmt.Sprintf("docker_config_files[%d]", i), f})
	}
	for i, f := range creds.PullSecretFiles {
		k.paths = append(k.paths, credentialsPath{fmt.Sprintf("pull_secret_files[%d]", i), f})
	}
	stamps := k.stat()
	files, err := k.load()
	if err != nil {
		return nil, err
	}
	k.files, k.stamps, k.checked = files, stamps, k.now()
	return k, nil
}

func (k *keychain) stat() []fileStamp {
	out := make([]fileStamp, len(k.paths))
	for i, p := range k.paths {
		if fi, err := os.Stat(p.path); err == nil {
			out[i] = fi
		}
	}
	return out
}

func (k *keychain) load() ([]Credential, error) {
	var files []Credential
	for _, p := range k.paths {
		cs, err := loadCredentialsFile(p.path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.field, err)
		}
		files = append(files, cs...)
	}
	sortCredentials(files)
	return files, nil
}

// refresh reads the files again if one changed since the last read (checked at most every
// credentialsCheckEvery).
func (k *keychain) refresh() {
	if len(k.paths) == 0 {
		return
	}
	now := k.now()
	k.mu.RLock()
	due := now.Sub(k.checked) >= credentialsCheckEvery
	k.mu.RUnlock()
	if !due {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.checked) < credentialsCheckEvery { // another lookup did it meanwhile
		return
	}
	k.checked = now
	stamps := k.stat()
	if sameStamps(stamps, k.stamps) || sameStamps(stamps, k.failed) {
		return
	}
	files, err := k.load()
	if err != nil {
		k.failed = stamps
	} else {
		k.files, k.stamps, k.failed = files, stamps, nil
		k.gen++
	}
	if k.reloaded != nil {
		k.reloaded(err)
	}
}

// Resolve implements authn.Keychain.
func (k *keychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	registry := normalizeRegistry(target.RegistryStr())
	var repository string
	if r, ok := target.(name.Repository); ok {
		repository = r.RepositoryStr()
	}
	if a, ok := k.lookup(registry, repository); ok {
		return authn.FromConfig(a), nil
	}
	return authn.Anonymous, nil
}

func (k *keychain) lookup(registry, repository string) (authn.AuthConfig, bool) {
	host, port, err := registryrule.SplitHostPort(registry)
	if err != nil {
		return authn.AuthConfig{}, false
	}
	host = strings.ToLower(host)
	k.mu.RLock()
	files := k.files
	k.mu.RUnlock()
	for _, list := range [][]Credential{k.explicit, files} {
		for _, c := range list {
			if c.Rule.Matches(host, port, repository) {
				return c.Auth, true
			}
		}
	}
	return authn.AuthConfig{}, false
}

func (k *keychain) has(repo Repo) bool {
	_, ok := k.lookup(repo.Registry, repo.Repository)
	return ok
}

// normalizeRegistry folds go-containerregistry's name for Docker Hub into imageref's.
func normalizeRegistry(r string) string {
	switch strings.ToLower(r) {
	case name.DefaultRegistry, "registry-1.docker.io":
		return imageref.DefaultRegistry
	}
	return r
}
