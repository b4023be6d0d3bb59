// Package registrytest runs a real OCI registry (go-containerregistry's pkg/registry) on 127.0.0.1 for tests,
// optionally behind real basic or bearer-token authentication, TLS, or a delay, and pushes images built with
// go-containerregistry into it. It counts the requests the registry receives.
package registrytest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Option configures a Registry.
type Option func(*Registry)

// WithBasicAuth requires HTTP basic authentication with user and password.
func WithBasicAuth(user, password string) Option {
	return func(r *Registry) { r.user, r.password, r.mode = user, password, "basic" }
}

// WithTokenAuth requires bearer tokens from the registry's token endpoint (/token), which hands them out for
// basic authentication with user and password: the docker registry token flow.
func WithTokenAuth(user, password string) Option {
	return func(r *Registry) { r.user, r.password, r.mode = user, password, "token" }
}

// WithStaticToken also accepts "Authorization: Bearer token" (an Artifactory-style access token) where
// authentication is required.
func WithStaticToken(token string) Option {
	return func(r *Registry) { r.staticToken = token }
}

// WithMiddleware puts wrap in front of the registry (after authentication), to misbehave on purpose: answer
// 429, drop headers, count concurrency.
func WithMiddleware(wrap func(http.Handler) http.Handler) Option {
	return func(r *Registry) { r.wrap = wrap }
}

// WithTLS serves HTTPS with a test certificate; CAFile writes its CA.
func WithTLS() Option { return func(r *Registry) { r.tls = true } }

// WithReferrers serves the OCI 1.1 referrers API (GET /v2/<repo>/referrers/<digest>). Without it the registry
// answers 404 there, as registries without the API do, and clients fall back to the sha256-<hex> tag scheme.
func WithReferrers() Option { return func(r *Registry) { r.referrers = true } }

// Registry is a running registry.
type Registry struct {
	// Host is host:port, as an image reference names the registry.
	Host   string
	server *httptest.Server

	mode, user, password, staticToken string
	tls, referrers                    bool
	wrap                              func(http.Handler) http.Handler

	tokensMu sync.Mutex
	tokens   map[string]bool

	delay    atomic.Int64 // nanoseconds to hold manifest requests
	requests sync.Map     // "METHOD kind" → *atomic.Int64, kind: manifests, blobs, ping, token, other
	total    atomic.Int64
}

// Start starts a registry on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	r := &Registry{tokens: map[string]bool{}}
	for _, o := range opts {
		o(r)
	}
	var reg http.Handler = ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)),
		ggcrregistry.WithReferrersSupport(r.referrers))
	if r.wrap != nil {
		reg = r.wrap(reg)
	}
	r.server = httptest.NewUnstartedServer(r.handler(reg))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.server.Listener = l
	r.server.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS tests provoke handshake errors on purpose
	if r.tls {
		r.server.StartTLS()
	} else {
		r.server.Start()
	}
	r.Host = l.Addr().String()
	t.Cleanup(r.Stop)
	return r
}

// Stop stops the registry; requests in flight are cut.
func (r *Registry) Stop() {
	r.server.CloseClientConnections()
	r.server.Close()
}

// SetDelay holds every manifest request for d before answering (0: answer at once). A held request still ends
// when the client goes away.
func (r *Registry) SetDelay(d time.Duration) { r.delay.Store(int64(d)) }

// Requests returns how many requests of method (e.g. "HEAD") for kind ("manifests", "blobs", "ping", "token";
// "manifests:tag" and "manifests:digest" split the manifests by what they name) the registry received.
func (r *Registry) Requests(method, kind string) int64 {
	v, ok := r.requests.Load(method + " " + kind)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

// Total returns how many requests the registry received.
func (r *Registry) Total() int64 { return r.total.Load() }

// CAFile writes the TLS server's certificate to a PEM file in dir and returns its path.
func (r *Registry) CAFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.server.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func kindOf(path string) string {
	switch {
	case path == "/v2/" || path == "/v2":
		return "ping"
	case path == "/token":
		return "token"
	case strings.Contains(path, "/manifests/"):
		return "manifests"
	case strings.Contains(path, "/blobs/"):
		return "blobs"
	}
	return "other"
}

func (r *Registry) count(method, kind string) {
	v, _ := r.requests.LoadOrStore(method+" "+kind, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	if !strings.Contains(kind, ":") {
		r.total.Add(1)
	}
}

func (r *Registry) handler(reg http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		kind := kindOf(req.URL.Path)
		r.count(req.Method, kind)
		if kind == "manifests" {
			if strings.Contains(req.URL.Path[strings.LastIndexByte(req.URL.Path, '/'):], ":") {
				r.count(req.Method, "manifests:digest")
			} else {
				r.count(req.Method, "manifests:tag")
			}
		}
		if kind == "token" {
			r.serveToken(w, req)
			return
		}
		if !r.authorized(req) {
			scheme := `Basic realm="registrytest"`
			if r.mode == "token" {
				proto := "http"
				if r.tls {
					proto = "https"
				}
				scheme = fmt.Sprintf(`Bearer realm="%s://%s/token",service="registrytest"`, proto, req.Host)
			}
			w.Header().Set("WWW-Authenticate", scheme)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		if d := time.Duration(r.delay.Load()); d > 0 && kind == "manifests" {
			select {
			case <-time.After(d):
			case <-req.Context().Done():
				return
			}
		}
		reg.ServeHTTP(w, req)
	})
}

func (r *Registry) authorized(req *http.Request) bool {
	if r.mode == "" {
		return true
	}
	h := req.Header.Get("Authorization")
	if bearer, ok := strings.CutPrefix(h, "Bearer "); ok {
		if r.staticToken != "" && bearer == r.staticToken {
			return true
		}
		r.tokensMu.Lock()
		defer r.tokensMu.Unlock()
		return r.mode == "token" && r.tokens[bearer]
	}
	if r.mode == "basic" {
		u, p, ok := req.BasicAuth()
		return ok && u == r.user && p == r.password
	}
	return false
}

func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request) {
	u, p, ok := req.BasicAuth()
	if r.mode != "token" || !ok || u != r.user || p != r.password {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`)
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	r.tokensMu.Lock()
	r.tokens[tok] = true
	r.tokensMu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300})
}

func (r *Registry) options() []remote.Option {
	opts := []remote.Option{remote.WithContext(context.Background())}
	if r.mode != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: r.user, Password: r.password}))
	}
	if r.tls {
		opts = append(opts, remote.WithTransport(r.server.Client().Transport))
	}
	return opts
}

// Ref returns "host/repo:tag" on this registry.
func (r *Registry) Ref(repoTag string) string { return r.Host + "/" + repoTag }

// PushImage pushes a new random image as repo:tag and returns its manifest digest.
func (r *Registry) PushImage(t testing.TB, repoTag string) string {
	t.Helper()
	img, d := randomImage(t)
	ref := r.reference(t, repoTag)
	if err := remote.Write(ref, img, r.options()...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return d
}

// randomImage builds a new random image and returns it with its manifest digest.
func randomImage(t testing.TB) (v1.Image, string) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return img, d.String()
}

// reference parses repoRef (repo:tag or repo@digest) on this registry.
func (r *Registry) reference(t testing.TB, repoRef string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.Ref(repoRef))
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// PushIndex pushes a new multi-arch index (linux/amd64 and linux/arm64 images) as repo:tag and returns the
// index digest and the platform manifests' digests, amd64 first.
func (r *Registry) PushIndex(t testing.TB, repoTag string) (index string, platforms []string) {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	for _, arch := range []string{"amd64", "arm64"} {
		img, d := randomImage(t)
		platforms = append(platforms, d)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	ref := r.reference(t, repoTag)
	if err := remote.WriteIndex(ref, idx, r.options()...); err != nil {
		t.Fatalf("push index %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), platforms
}

// Tag points repo:tag at the manifest digest already in repo.
func (r *Registry) Tag(t testing.TB, repo, tag, digest string) {
	t.Helper()
	src, err := name.NewDigest(r.Ref(repo + "@" + digest))
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(src, r.options()...)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.NewTag(r.Ref(repo + ":" + tag))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(dst, desc, r.options()...); err != nil {
		t.Fatal(err)
	}
}

// Delete deletes repo:tag (or repo@digest) from the registry.
func (r *Registry) Delete(t testing.TB, repoRef string) {
	t.Helper()
	ref := r.reference(t, repoRef)
	if err := remote.Delete(ref, r.options()...); err != nil {
		t.Fatalf("delete %s: %v", ref, err)
	}
}

// DockerConfig writes a docker config.json with credentials for this registry and returns its path.
func (r *Registry) DockerConfig(t testing.TB, user, password string) string {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	return WriteFile(t, "config.json", fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, r.Host, auth))
}

// WriteFile writes content to a file in a temporary directory and returns its path.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
