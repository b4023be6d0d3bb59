package runtimesensorreceiver

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/runtrust/runtrust/internal/records"
	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/hostcontainers"
)

// hostContainer is a container in no known pod, as its cgroup names it.
type hostContainer struct {
	id string
	// runtime is the runtime the cgroup path pattern belongs to (containerd, docker, podman, …; "" when the
	// path does not say): it decides which runtime is asked.
	runtime    string
	cgroupPath string
	// podUID is the pod the cgroup path names (kubepods…pod<uid>) when no pod watch knew it: its records carry
	// the image, but it is the inventory's to describe, so it is never announced, and no scan forgets it.
	podUID string
}

// lookupFunc asks the host's runtime which image a container runs.
type lookupFunc func(ctx context.Context, c hostContainer) (hostcontainers.Image, error)

// hostImages learns, from the host's container runtime, which image a container that is in no known pod runs,
// for records to carry container.image.name and the running digest as the inventory gives them for pods.
// Lookups run on a goroutine of their own, never on the event path: a container's first records go out
// before the answer, the ones after carry it. Each container the runtime described is announced (a
// runtrust.host.container record: added), again every HostContainerRefresh while its cgroup is there (snapshot:
// the runtime service forgets a host container its sensor stopped describing, so one removed while the
// collector was down does not stay listed), and as deleted once its cgroup is gone (observe).
type hostImages struct {
	lookup   lookupFunc
	announce func(c hostContainer, img hostcontainers.Image, change string)
	log      *zap.Logger
	// retry is how long a container the runtime did not know (or a runtime that did not answer) is left
	// before it is asked again.
	retry time.Duration
	// refresh is how often a live host container is announced again.
	refresh time.Duration

	mu      sync.Mutex
	known   map[string]hostImage // by container id
	pending chan hostContainer
	// failing is the last lookup error said in the log, so a runtime that is not there is said once, not per
	// container.
	failing string
}

type hostImage struct {
	c       hostContainer
	img     hostcontainers.Image
	ok      bool
	retryAt time.Time
	// announcedAt is when the container was last announced.
	announcedAt time.Time
}

// HostContainerRefresh is how often the sensor describes each live host container again; the runtime service
// lists a host container for three times as long after the last description (store.HostContainerTTL).
const HostContainerRefresh = 10 * time.Minute

// maxHostImages bounds the cache; a host runs far fewer containers than this at once.
const maxHostImages = 16384

func newHostImages(lookup lookupFunc, announce func(hostContainer, hostcontainers.Image, string), log *zap.Logger) *hostImages {
	return &hostImages{lookup: lookup, announce: announce, log: log, retry: 30 * time.Second, refresh: HostContainerRefresh,
		known: map[string]hostImage{}, pending: make(chan hostContainer, 256)}
}

// ImageFor returns what the runtime said container c runs, or false (not asked yet: it is queued).
func (h *hostImages) ImageFor(c hostContainer) (hostcontainers.Image, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.queue(c, time.Now())
	return e.img, ok
}

// queue asks the runtime about c unless it answered, or was asked within retry (h.mu held).
func (h *hostImages) queue(c hostContainer, now time.Time) (hostImage, bool) {
	e, seen := h.known[c.id]
	if e.ok {
		return e, true
	}
	if !seen || now.After(e.retryAt) {
		if len(h.known) >= maxHostImages {
			clear(h.known) // the live ones are announced again at their next record or scan
		}
		h.known[c.id] = hostImage{c: c, retryAt: now.Add(h.retry)}
		select {
		case h.pending <- c:
		default: // a burst of new containers: the rest are asked at their next record or scan after retry
		}
	}
	return e, false
}

// observe takes the host containers whose cgroups exist now outside the kubepods tree (a cgroup scan): each new
// one is asked about, each announced one is announced again once refresh has passed, and each announced one
// that is no longer there is announced as deleted and forgotten.
func (h *hostImages) observe(live map[string]hostContainer) {
	now := time.Now()
	var gone, again []hostImage
	h.mu.Lock()
	for _, c := range live {
		if e, ok := h.queue(c, now); ok && c.podUID == "" && now.Sub(e.announcedAt) >= h.refresh {
			e.announcedAt = now
			h.known[c.id] = e
			again = append(again, e)
		}
	}
	for id, e := range h.known {
		if _, ok := live[id]; ok || e.c.podUID != "" {
			continue
		}
		if e.ok {
			gone = append(gone, e)
		}
		delete(h.known, id)
	}
	h.mu.Unlock()
	for _, e := range again {
		h.announce(e.c, e.img, records.ChangeSnapshot)
	}
	for _, e := range gone {
		h.announce(e.c, e.img, records.ChangeDeleted)
	}
}

// run answers queued lookups until ctx ends.
func (h *hostImages) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-h.pending:
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			img, err := h.lookup(lctx, c)
			cancel()
			h.mu.Lock()
			_, still := h.known[c.id] // not forgotten by a scan while the runtime was asked
			added := err == nil && still
			switch {
			case added:
				h.known[c.id] = hostImage{c: c, img: img, ok: true, announcedAt: time.Now()}
				h.failing = ""
			case err == nil:
			case errors.Is(err, hostcontainers.ErrNotFound):
				// Not the runtime's (another runtime's, or gone): asked again after retry.
			case err.Error() != h.failing && ctx.Err() == nil:
				h.failing = err.Error()
				h.log.Info("the host's container runtime did not say which image a container runs; its records carry no image until it does",
					zap.String("container.id", c.id), zap.String("container.runtime.name", c.runtime), zap.Error(err))
			}
			h.mu.Unlock()
			if added && c.podUID == "" {
				h.announce(c, img, records.ChangeAdded)
			}
		}
	}
}

// hostRuntimes routes a lookup to the runtime a container's cgroup names: Docker's and Podman's containers to
// their engines' APIs, every other one (containerd's own pattern, or none) to containerd.
type hostRuntimes struct {
	containerd, docker, podman func(context.Context, string) (hostcontainers.Image, error)
}

// errRuntimeOff says the runtime of a container is not configured (its socket is empty).
var errRuntimeOff = errors.New("this runtime's socket is not configured (host_containers)")

func (rt hostRuntimes) lookup(ctx context.Context, c hostContainer) (hostcontainers.Image, error) {
	f := rt.containerd
	switch c.runtime {
	case "docker":
		f = rt.docker
	case "podman":
		f = rt.podman
	}
	if f == nil {
		return hostcontainers.Image{}, errRuntimeOff
	}
	return f(ctx, c.id)
}
