package registry

import (
	"fmt"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// host is the state kept for one registry: its transport (limits and Retry-After block) and its puller (which
// keeps one authenticated transport per repository, so a lookup is one request, not a ping and a token exchange
// too).
type host struct {
	registry   string
	insecure   bool
	rt         *Transport
	pullerOpts []remote.Option

	// The puller caches an authenticated transport per repository, so it is rebuilt when the credentials files
	// were read again (keychain generation).
	pmu       sync.Mutex
	puller    *remote.Puller
	pullerGen uint64
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

// blockedUntil is when the registry's last Retry-After ends.
func (h *host) blockedUntil() time.Time { return h.rt.BlockedUntil() }
