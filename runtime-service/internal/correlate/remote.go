package correlate

import (
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/time/rate"
)

// RemoteOptions are the go-containerregistry options that reach one configured registry as the correlator does:
// its TLS settings, concurrency and rate limits, and credentials. Each call builds its own transport, so its
// limits hold for the requests made with the options it returned: build them once per registry and reuse them.
func (r Registry) RemoteOptions() ([]remote.Option, error) {
	lt, err := limitedTransport(r)
	if err != nil {
		return nil, err
	}
	auth := authn.Anonymous
	if a := r.Auth; a != (Credentials{}) {
		auth = authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password, RegistryToken: a.Token})
	}
	return []remote.Option{remote.WithTransport(lt), remote.WithAuth(auth)}, nil
}

// limitedTransport is the registry's base transport under its concurrency and rate limits.
func limitedTransport(r Registry) (*limited, error) {
	t, err := baseTransport(r)
	if err != nil {
		return nil, err
	}
	return &limited{sem: make(chan struct{}, r.Limits.MaxConcurrent), limiter: rate.NewLimiter(rate.Limit(r.Limits.RateLimit), r.Limits.Burst), base: t}, nil
}

// Insecure says the registry is reached over plain HTTP (its url's scheme is http).
func (r Registry) Insecure() bool { return r.BaseURL != nil && r.BaseURL.Scheme == "http" }
