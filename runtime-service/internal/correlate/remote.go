package correlate

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runtrust/runtrust/internal/registry"
)

// retryBackoff is the first wait before a request is tried again (it doubles each time), and how long a 429
// without a usable Retry-After holds the registry's requests.
const retryBackoff = 250 * time.Millisecond

// transport is the registry's transport, internal/registry's: its TLS settings, a connection pool sized to its
// concurrency, its concurrency and rate limits, and a 429's Retry-After waited out by every request to it. Each
// call builds a new one, with limits of its own.
func (r Registry) transport() *registry.Transport {
	host := r.Host
	if r.BaseURL != nil {
		host = r.BaseURL.Host
	}
	return registry.NewTransport(registry.TransportOptions{Registry: host, TLS: r.TLS, Limits: r.Limits,
		WaitRetryAfter: true, DefaultRetryAfter: retryBackoff})
}

// RemoteOptions are the go-containerregistry options that reach one configured registry as the correlator does:
// its TLS settings, concurrency and rate limits, Retry-After, and credentials. Each call builds its own
// transport, so its limits hold for the requests made with the options it returned: build them once per
// registry and reuse them.
func (r Registry) RemoteOptions() []remote.Option {
	return []remote.Option{remote.WithTransport(r.transport()), remote.WithAuth(r.authenticator())}
}

// authenticator is the registry's credentials in go-containerregistry's form.
func (r Registry) authenticator() authn.Authenticator {
	a := r.Auth
	if a == (Credentials{}) {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password, RegistryToken: a.Token})
}

// Insecure says the registry is reached over plain HTTP (its url's scheme is http).
func (r Registry) Insecure() bool { return r.BaseURL != nil && r.BaseURL.Scheme == "http" }

// Remotes reaches the configured registries from the service's background jobs (SBOMs, labels, signatures):
// one transport per registry, built once so its limits hold across the job's requests, and anonymous access to
// a registry not configured.
type Remotes struct {
	regs map[string]Registry
	opts map[string][]remote.Option
}

// NewRemotes builds the options of each registry in regs.
func NewRemotes(regs []Registry) *Remotes {
	r := &Remotes{regs: map[string]Registry{}, opts: map[string][]remote.Option{}}
	for _, reg := range regs {
		r.regs[reg.Host], r.opts[reg.Host] = reg, reg.RemoteOptions()
	}
	return r
}

// Options reach registry host (as name.Registry.RegistryStr gives it) with its configured settings, or
// anonymously (nil). The slice is shared: append to a clipped copy.
func (r *Remotes) Options(host string) []remote.Option { return r.opts[host] }

// DigestRef names digest in the repository of ref, one of its references ("host/repo:tag" →
// "host/repo@digest"), over plain HTTP when its registry is configured so.
func (r *Remotes) DigestRef(ref, digest string) (name.Digest, error) {
	p, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return name.Digest{}, fmt.Errorf("image reference %q: %w", ref, err)
	}
	var opts []name.Option
	if reg, ok := r.regs[p.Context().RegistryStr()]; ok && reg.Insecure() {
		opts = append(opts, name.Insecure)
	}
	return name.NewDigest(p.Context().Name()+"@"+digest, opts...)
}

// PlatformImage returns the image of the index desc for platform, and its descriptor: the SBOM generator and the
// drift index read the layers of one platform. The error names the platforms the index has when none matches.
func PlatformImage(desc *remote.Descriptor, platform v1.Platform) (v1.Image, v1.Descriptor, error) {
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, v1.Descriptor{}, fmt.Errorf("read index: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, v1.Descriptor{}, fmt.Errorf("read index: %w", err)
	}
	var have []string
	for _, m := range im.Manifests {
		if m.Platform == nil || !m.MediaType.IsImage() {
			continue
		}
		if m.Platform.Satisfies(platform) {
			img, err := idx.Image(m.Digest)
			if err != nil {
				return nil, m, fmt.Errorf("read the %s manifest %s: %w", m.Platform, m.Digest, err)
			}
			return img, m, nil
		}
		have = append(have, m.Platform.String())
	}
	if len(have) == 0 {
		have = []string{"none"}
	}
	return nil, v1.Descriptor{}, fmt.Errorf("no manifest for platform %s in the index (platforms: %s)",
		platform.String(), strings.Join(have, ", "))
}
