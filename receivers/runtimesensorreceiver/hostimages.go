package runtimesensorreceiver

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/runtrust/runtrust/receivers/runtimesensorreceiver/internal/hostcontainers"
)

// hostImages learns, from the host's container runtime, which image a container that is in no known pod runs,
// for records to carry container.image.name and the running digest as the inventory gives them for pods.
// Lookups run on a goroutine of their own, never on the event path: a container's first records go out
// before the answer, the ones after carry it.
type hostImages struct {
	lookup func(context.Context, string) (hostcontainers.Image, error)
	log    *zap.Logger
	// retry is how long a container the runtime did not know (or a runtime that did not answer) is left
	// before it is asked again.
	retry time.Duration

	mu      sync.Mutex
	known   map[string]hostImage // by container id
	pending chan string
	// failing is the last lookup error said in the log, so a runtime that is not there is said once, not per
	// container.
	failing string
}

type hostImage struct {
	img     hostcontainers.Image
	ok      bool
	retryAt time.Time
}

// maxHostImages bounds the cache; a host runs far fewer containers than this at once.
const maxHostImages = 16384

func newHostImages(lookup func(context.Context, string) (hostcontainers.Image, error), log *zap.Logger) *hostImages {
	return &hostImages{lookup: lookup, log: log, retry: 30 * time.Second,
		known: map[string]hostImage{}, pending: make(chan string, 256)}
}

// ImageFor returns what the runtime said container id runs, or false (not asked yet: it is queued).
func (h *hostImages) ImageFor(id string) (hostcontainers.Image, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, seen := h.known[id]
	if e.ok {
		return e.img, true
	}
	if now := time.Now(); !seen || now.After(e.retryAt) {
		if len(h.known) >= maxHostImages {
			clear(h.known)
		}
		h.known[id] = hostImage{retryAt: now.Add(h.retry)}
		select {
		case h.pending <- id:
		default: // a burst of new containers: the rest are asked at their next record after retry
		}
	}
	return hostcontainers.Image{}, false
}

// run answers queued lookups until ctx ends.
func (h *hostImages) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-h.pending:
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			img, err := h.lookup(lctx, id)
			cancel()
			h.mu.Lock()
			switch {
			case err == nil:
				h.known[id] = hostImage{img: img, ok: true}
				h.failing = ""
			case errors.Is(err, hostcontainers.ErrNotFound):
				// Not the runtime's (another runtime's, or gone): asked again after retry.
			case err.Error() != h.failing && ctx.Err() == nil:
				h.failing = err.Error()
				h.log.Info("the host's container runtime did not say which image a container runs; its records carry no image until it does",
					zap.String("container.id", id), zap.Error(err))
			}
			h.mu.Unlock()
		}
	}
}
