package correlate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runtrust/runtrust/internal/registry"
)

// Response bounds: a catalog or tag page of 10,000 names is well under 1 MiB; a manifest index under 4 MiB.
const (
	maxListBody     = 8 << 20
	maxManifestBody = 4 << 20
	maxNames        = 1_000_000
	maxRetries      = 3
)

// manifestAccept asks for every manifest kind, so a HEAD answers with the digest the tag points at whatever it
// is (the registry would otherwise convert, or 404, an index for a client that does not accept one).
var manifestAccept = strings.Join([]string{
	string(types.OCIImageIndex), string(types.DockerManifestList), string(types.OCIManifestSchema1),
	string(types.DockerManifestSchema2), string(types.DockerManifestSchema1Signed), string(types.DockerManifestSchema1),
}, ", ")

// client talks to one registry's distribution (v2) API: OCI at the registry's root, Artifactory under each
// repository key's docker API (/api/docker/<key>/v2/).
type client struct {
	reg Registry
	rt  *registry.Transport // TLS, limits and Retry-After; auth goes on top

	mu         sync.Mutex
	transports map[string]http.RoundTripper // OCI: per token scope
}

func newClient(r Registry) *client {
	return &client{reg: r, rt: r.transport(), transports: map[string]http.RoundTripper{}}
}

// staticAuth sets one Authorization header: Artifactory's REST and docker APIs take an access token as a
// bearer token, or basic authentication, on every request without a challenge round.
type staticAuth struct {
	header string
	base   http.RoundTripper
}

func (s *staticAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	if s.header != "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", s.header)
	}
	return s.base.RoundTrip(req)
}

func (c *client) authHeader() string {
	a := c.reg.Auth
	switch {
	case a.Token != "":
		return "Bearer " + a.Token
	case a.Username != "":
		r := &http.Request{Header: http.Header{}}
		r.SetBasicAuth(a.Username, a.Password)
		return r.Header.Get("Authorization")
	}
	return ""
}

// transport returns the authenticating transport for a token scope. OCI registries hand out bearer tokens per
// scope (catalog, or pull of one repository) after a challenge: go-containerregistry's transport does that
// dance. Artifactory takes the credentials as they are.
func (c *client) transport(ctx context.Context, scope string) (http.RoundTripper, error) {
	if c.reg.Kind == KindArtifactory {
		return &staticAuth{header: c.authHeader(), base: c.rt}, nil
	}
	c.mu.Lock()
	t, ok := c.transports[scope]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	var opts []name.Option
	if c.reg.BaseURL.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(c.reg.BaseURL.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", c.reg.BaseURL.Host, err)
	}
	t, err = transport.NewWithContext(ctx, reg, c.reg.authenticator(), c.rt, []string{scope})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.transports[scope] = t
	c.mu.Unlock()
	return t, nil
}

// forgetRepositories drops the repository-scoped transports (one per repository, each holding its token), so
// they do not pile up across refreshes for repositories that are gone; the catalog's is kept.
func (c *client) forgetRepositories() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for scope := range c.transports {
		if scope != catalogScope {
			delete(c.transports, scope)
		}
	}
}

const catalogScope = "registry:catalog:*"

func repoScope(repo string) string { return "repository:" + repo + ":pull" }

// roots are the v2 API roots to list, with the Artifactory repository key of each ("" for OCI).
func (c *client) roots() []root {
	if c.reg.Kind == KindArtifactory {
		out := make([]root, 0, len(c.reg.RepoKeys))
		for _, k := range c.reg.RepoKeys {
			u := *c.reg.BaseURL
			u.Path = c.reg.BaseURL.Path + "/api/docker/" + k + "/v2/"
			out = append(out, root{key: k, url: &u})
		}
		return out
	}
	u := *c.reg.BaseURL
	u.Path = "/v2/"
	return []root{{url: &u}}
}

type root struct {
	key string
	url *url.URL
}

// HTTPError is a registry's answer that is not what was asked for.
type HTTPError struct {
	Method, URL string
	Status      int
	Detail      string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s %s: %d %s%s", e.Method, e.URL, e.Status, http.StatusText(e.Status), e.Detail)
}

func httpError(req *http.Request, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	detail := ""
	if s := strings.TrimSpace(strings.ToValidUTF8(string(body), "")); s != "" {
		detail = ": " + clip(s)
	}
	u := *req.URL
	u.RawQuery = ""
	return &HTTPError{Method: req.Method, URL: u.String(), Status: resp.StatusCode, Detail: detail}
}

// do sends a request, retrying a dropped connection, a 429 (after its Retry-After) and a 5xx a few times.
func (c *client) do(ctx context.Context, rt http.RoundTripper, method string, u *url.URL, accept string) (*http.Response, error) {
	var lastErr error
	for attempt := 0; attempt <= maxRetries; attempt++ {
		if attempt > 0 {
			// The transport blocks the registry for a 429's Retry-After: wait that out here, under ctx rather than
			// the request timeout, so a Retry-After longer than the timeout is honoured too.
			wait := max(time.Duration(1<<(attempt-1))*retryBackoff, time.Until(c.rt.BlockedUntil()))
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		rctx, cancel := context.WithTimeout(ctx, c.reg.Timeout)
		req, err := http.NewRequestWithContext(rctx, method, u.String(), nil)
		if err != nil {
			cancel()
			return nil, err
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = fmt.Errorf("%s %s: %w", method, redactURL(u), err)
			continue
		}
		resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			lastErr = httpError(req, resp)
			resp.Body.Close()
			continue
		}
		return resp, nil
	}
	return nil, lastErr
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error { err := b.ReadCloser.Close(); b.cancel(); return err }

func redactURL(u *url.URL) string {
	v := *u
	v.RawQuery = ""
	return v.String()
}

// list reads a paginated name list (catalog or tags) from first, following Link headers, into names.
func (c *client) list(ctx context.Context, rt http.RoundTripper, first *url.URL, field string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	next := first
	for pages := 0; next != nil; pages++ {
		if seen[next.String()] {
			return nil, fmt.Errorf("%s: the Link header leads back to a page already read", redactURL(next))
		}
		seen[next.String()] = true
		resp, err := c.do(ctx, rt, http.MethodGet, next, "application/json")
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			err := httpError(resp.Request, resp)
			resp.Body.Close()
			return nil, err
		}
		page, err := ParseNameList(io.LimitReader(resp.Body, maxListBody+1), field)
		link := resp.Header.Get("Link")
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", redactURL(next), err)
		}
		names = append(names, page...)
		if len(names) > maxNames {
			return nil, fmt.Errorf("%s: more than %d names", redactURL(first), maxNames)
		}
		if next, err = NextLink(link, next); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// ParseNameList reads a catalog page ({"repositories": [...]}) or a tag list page ({"name": ..., "tags":
// [...]}): field names the list. A null list is an empty page (registries answer "tags": null for a
// repository whose tags were all deleted).
func ParseNameList(r io.Reader, field string) ([]string, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxListBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxListBody {
		return nil, fmt.Errorf("the answer is larger than %d bytes", maxListBody)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("the answer is not a JSON object: %w", err)
	}
	raw, ok := top[field]
	if !ok {
		return nil, fmt.Errorf("the answer has no %q list", field)
	}
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		return nil, fmt.Errorf("%q is not a list of strings: %w", field, err)
	}
	for i, n := range names {
		if n == "" || len(n) > 512 || strings.ContainsAny(n, "\x00\n\r") {
			return nil, fmt.Errorf("%s[%d] %q is not a name", field, i, clip(n))
		}
	}
	return names, nil
}

// catalog lists the repositories under a root, filtered by the include/exclude globs.
func (c *client) catalog(ctx context.Context, rt root) ([]string, error) {
	t, err := c.transport(ctx, catalogScope)
	if err != nil {
		return nil, err
	}
	u := *rt.url
	u.Path += "_catalog"
	u.RawQuery = "n=" + strconv.Itoa(c.reg.PageSize)
	repos, err := c.list(ctx, t, &u, "repositories")
	if err != nil {
		return nil, err
	}
	out := repos[:0]
	for _, r := range repos {
		if c.wanted(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// wanted applies the include (any; none means all) and exclude (none) globs to a repository name.
func (c *client) wanted(repo string) bool {
	if len(c.reg.Include) > 0 {
		in := false
		for _, g := range c.reg.Include {
			if ok, _ := path.Match(g, repo); ok {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	for _, g := range c.reg.Exclude {
		if ok, _ := path.Match(g, repo); ok {
			return false
		}
	}
	return true
}

// tags lists a repository's tags.
func (c *client) tags(ctx context.Context, rt root, repo string) ([]string, error) {
	t, err := c.transport(ctx, repoScope(repo))
	if err != nil {
		return nil, err
	}
	u := *rt.url
	u.Path += repo + "/tags/list"
	u.RawQuery = "n=" + strconv.Itoa(c.reg.PageSize)
	tags, err := c.list(ctx, t, &u, "tags")
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		return nil, nil // deleted between the catalog and now
	}
	return tags, err
}

var digestRE = regexp.MustCompile(`^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$`)

// errTagGone: the tag was deleted between its listing and its resolution.
var errTagGone = errors.New("tag gone")

// resolve returns the digest and media type a tag points at, and an index's platform manifests.
func (c *client) resolve(ctx context.Context, rt root, repo, tag string) (digest, mediaType string, manifests []string, err error) {
	t, err := c.transport(ctx, repoScope(repo))
	if err != nil {
		return "", "", nil, err
	}
	u := *rt.url
	u.Path += repo + "/manifests/" + tag
	resp, err := c.do(ctx, t, http.MethodHead, &u, manifestAccept)
	if err != nil {
		return "", "", nil, err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", "", nil, errTagGone
	case resp.StatusCode != http.StatusOK:
		return "", "", nil, httpError(resp.Request, resp)
	}
	digest = resp.Header.Get("Docker-Content-Digest")
	mediaType = strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0])
	isIndex := types.MediaType(mediaType).IsIndex()
	if digest != "" && !digestRE.MatchString(digest) {
		return "", "", nil, fmt.Errorf("%s: Docker-Content-Digest %q is not a digest", redactURL(&u), clip(digest))
	}
	if digest != "" && !isIndex {
		return digest, mediaType, nil, nil
	}
	// No digest header (some proxies drop it), or an index whose platform manifests are wanted: GET it.
	resp, err = c.do(ctx, t, http.MethodGet, &u, manifestAccept)
	if err != nil {
		return "", "", nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return "", "", nil, errTagGone
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", nil, httpError(resp.Request, resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBody+1))
	if err != nil {
		return "", "", nil, fmt.Errorf("%s: %w", redactURL(&u), err)
	}
	if len(body) > maxManifestBody {
		return "", "", nil, fmt.Errorf("%s: manifest larger than %d bytes", redactURL(&u), maxManifestBody)
	}
	sum := sha256.Sum256(body)
	computed := "sha256:" + hex.EncodeToString(sum[:])
	if digest == "" || strings.HasPrefix(digest, "sha256:") {
		// The bytes are the manifest: their hash is its digest, whatever a header said.
		digest = computed
	}
	mediaType = strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0])
	if types.MediaType(mediaType).IsIndex() {
		ps, err := registry.ParseIndex(mediaType, body)
		if err != nil {
			return "", "", nil, fmt.Errorf("%s: %w", redactURL(&u), err)
		}
		for _, p := range ps {
			manifests = append(manifests, p.Digest)
		}
	}
	return digest, mediaType, manifests, nil
}
